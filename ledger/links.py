"""Links between Zoho records and Xero records: bulk upserts and chunked look-ups."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, delete, select
from sqlalchemy.exc import IntegrityError

from ledger.base import LedgerBase, chunked
from ledger.clock import to_utc, utcnow
from ledger.errors import LinkConflict
from ledger.models import LinkRecord
from ledger.schemas import LinkRow, LinkState, entity_name

if TYPE_CHECKING:
    import pandas as pd

LINKS = LinkRecord.__table__

#: Columns a caller may set on a link (besides the key ``zoho_id``).
LINK_FIELDS = frozenset(
    {
        "xero_id",
        "zoho_number",
        "xero_number",
        "content_hash",
        "state",
        "xero_updated_at",
        "zoho_modified_at",
        "extra",
    }
)
_TIME_FIELDS = ("xero_updated_at", "zoho_modified_at")
_READ_COLUMNS = [c for c in LINKS.c if c.name != "id"]


def _clean_row(row: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(row) - LINK_FIELDS - {"zoho_id"}
    if unknown:
        raise ValueError(f"unknown link fields {sorted(unknown)}; allowed: zoho_id, {sorted(LINK_FIELDS)}")
    zoho_id = row.get("zoho_id")
    if not isinstance(zoho_id, str) or not zoho_id:
        raise ValueError(f"every link needs a zoho_id string, got {zoho_id!r}")
    clean = dict(row)
    if "state" in clean:
        clean["state"] = LinkState(clean["state"]).value  # ValueError for None or a typo
    for name in _TIME_FIELDS:
        value = clean.get(name)
        if isinstance(value, datetime):
            clean[name] = to_utc(value, what=name)
    return clean


class LinksMixin(LedgerBase):
    """Zoho id <-> Xero id, per org and entity."""

    def upsert_links(self, org: str, entity: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert or update links keyed by ``zoho_id``; returns how many distinct links were written.

        Each row holds ``zoho_id`` and any of :data:`LINK_FIELDS`; only the fields present are
        updated on an existing link (``extra`` is replaced as a whole). New links default to
        state ``synced``. Rows for the same zoho_id are merged, later ones winning. Runs as one
        ``executemany`` per chunk of rows with the same fields. Raises :class:`LinkConflict` when a
        Xero id is already linked to a different Zoho record.
        """
        entity = entity_name(entity)
        merged: dict[str, dict[str, Any]] = {}
        for row in rows:
            clean = _clean_row(row)
            merged.setdefault(clean["zoho_id"], {}).update(clean)
        if not merged:
            return 0
        claimed: dict[str, str] = {}
        for clean in merged.values():
            xero_id = clean.get("xero_id")
            if xero_id and claimed.setdefault(xero_id, clean["zoho_id"]) != clean["zoho_id"]:
                raise LinkConflict(org, entity, [(xero_id, claimed[xero_id], clean["zoho_id"])])

        # Rows with the same set of fields share one statement (executemany needs uniform rows).
        groups: dict[frozenset[str], list[dict[str, Any]]] = {}
        for clean in merged.values():
            groups.setdefault(frozenset(clean), []).append(clean)

        now = utcnow()
        try:
            with self._write() as session:
                for fields, group in groups.items():
                    update_fields = sorted((fields - {"zoho_id"}) | {"updated_at"})
                    stmt = self._upsert(LINKS, ["org", "entity", "zoho_id"], update_fields)
                    params = [
                        {
                            **{name: None for name in LINK_FIELDS},
                            "state": LinkState.SYNCED.value,
                            **row,
                            "org": org,
                            "entity": entity,
                            "created_at": now,
                            "updated_at": now,
                        }
                        for row in group
                    ]
                    for chunk in chunked(params):
                        session.execute(stmt, chunk)
        except IntegrityError as exc:
            conflicts = self._xero_conflicts(org, entity, merged.values())
            if conflicts:
                raise LinkConflict(org, entity, conflicts) from exc
            raise
        return len(merged)

    def _xero_conflicts(
        self, org: str, entity: str, rows: Iterable[dict[str, Any]]
    ) -> list[tuple[str, str, str]]:
        # Diagnosis after a failed write: a fresh session, outside any (now aborted) atomic unit.
        wanted = {row["xero_id"]: row["zoho_id"] for row in rows if row.get("xero_id")}
        found: list[tuple[str, str, str]] = []
        with self._read_sessions() as session:
            for chunk in chunked(wanted):
                stmt = select(LINKS.c.xero_id, LINKS.c.zoho_id).where(
                    LINKS.c.org == org, LINKS.c.entity == entity, LINKS.c.xero_id.in_(chunk)
                )
                for xero_id, zoho_id in session.execute(stmt):
                    if wanted[xero_id] != zoho_id:
                        found.append((xero_id, zoho_id, wanted[xero_id]))
        return found

    def links_by_zoho(
        self, org: str, entity: str, zoho_ids: Iterable[str] | None = None
    ) -> dict[str, LinkRow]:
        """Links of ``entity`` by Zoho id (all of them when ``zoho_ids`` is None); missing ids are absent."""
        return {row.zoho_id: row for row in self._links(org, entity, "zoho_id", zoho_ids)}

    def links_by_xero(
        self, org: str, entity: str, xero_ids: Iterable[str] | None = None
    ) -> dict[str, LinkRow]:
        """Links of ``entity`` by Xero id (all linked ones when ``xero_ids`` is None)."""
        return {row.xero_id: row for row in self._links(org, entity, "xero_id", xero_ids) if row.xero_id}

    def zoho_ids_in_state(self, org: str, entity: str, states: Iterable[str]) -> list[str]:
        """Zoho ids of ``entity`` whose link is in one of ``states`` (e.g. rejected, deferred), sorted."""
        stmt = (select(LINKS.c.zoho_id)
                .where(LINKS.c.org == org, LINKS.c.entity == entity_name(entity), LINKS.c.state.in_(list(states)))
                .order_by(LINKS.c.zoho_id))
        with self._read() as session:
            return list(session.execute(stmt).scalars())

    def _links(self, org: str, entity: str, key: str, ids: Iterable[str] | None) -> list[LinkRow]:
        entity = entity_name(entity)
        base = select(*_READ_COLUMNS).where(LINKS.c.org == org, LINKS.c.entity == entity)
        rows: list[Row[Any]] = []
        with self._read() as session:
            if ids is None:
                rows.extend(session.execute(base))
            else:
                for chunk in chunked(dict.fromkeys(ids)):  # dedupe, keep order
                    rows.extend(session.execute(base.where(LINKS.c[key].in_(chunk))))
        return [LinkRow.model_validate(dict(row._mapping)) for row in rows]

    def links_frame(self, org: str, entity: str) -> pd.DataFrame:
        """All links of ``entity`` as a DataFrame (one row per link, UTC datetime columns)."""
        import pandas as pd  # imported here: the CLI and workers that never need frames start faster

        entity = entity_name(entity)
        stmt = select(*_READ_COLUMNS).where(LINKS.c.org == org, LINKS.c.entity == entity).order_by(LINKS.c.id)
        with self._read() as session:
            rows = session.execute(stmt).all()
        frame = pd.DataFrame.from_records(
            [tuple(row) for row in rows], columns=[c.name for c in _READ_COLUMNS]
        )
        for name in ("xero_updated_at", "zoho_modified_at", "created_at", "updated_at"):
            frame[name] = pd.to_datetime(frame[name], utc=True).astype("datetime64[us, UTC]")
        return frame

    def delete_link(self, org: str, entity: str, zoho_id: str) -> bool:
        """Remove one link (a record unlinked on purpose); True if it existed."""
        entity = entity_name(entity)
        with self._write() as session:
            result = session.execute(
                delete(LINKS).where(LINKS.c.org == org, LINKS.c.entity == entity, LINKS.c.zoho_id == zoho_id)
            )
            return result.rowcount == 1
