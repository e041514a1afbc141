"""The journal: every action with its outcome and snapshots; restore reads it, purge trims it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select

from ledger.base import CHUNK, LedgerBase
from ledger.clock import to_utc, utcnow
from ledger.models import IntentRecord, JournalRecord
from ledger.schemas import IntentState, JournalEntry, JournalRow, entity_name

JOURNAL = JournalRecord.__table__
INTENTS = IntentRecord.__table__

#: Outcomes whose ``after`` snapshot is a state that really stood in Xero/Zoho (restore points).
SNAPSHOT_OUTCOMES = ("ok", "unchanged")


class JournalMixin(LedgerBase):
    """Record, query, restore from, and purge the journal."""

    def record(self, entries: Iterable[JournalEntry]) -> int:
        """Append journal entries (one executemany per chunk); returns how many were written."""
        rows = [entry.model_dump() for entry in entries]
        with self._write() as session:
            for start in range(0, len(rows), CHUNK):
                session.execute(JOURNAL.insert(), rows[start : start + CHUNK])
        return len(rows)

    def journal_for(
        self,
        org: str,
        zoho_id: str | None = None,
        entity: str | None = None,
        since: datetime | None = None,
        run_id: str | None = None,
        *,
        outcomes: Iterable[str] | None = None,
        limit: int | None = None,
    ) -> list[JournalRow]:
        """Journal entries of ``org``, oldest first, filtered by record, entity, time, run and outcome."""
        stmt = select(JOURNAL).where(JOURNAL.c.org == org)
        if outcomes is not None:
            stmt = stmt.where(JOURNAL.c.outcome.in_(list(outcomes)))
        if zoho_id is not None:
            stmt = stmt.where(JOURNAL.c.zoho_id == zoho_id)
        if entity is not None:
            stmt = stmt.where(JOURNAL.c.entity == entity_name(entity))
        if since is not None:
            stmt = stmt.where(JOURNAL.c.time >= to_utc(since, what="since"))
        if run_id is not None:
            stmt = stmt.where(JOURNAL.c.run_id == run_id)
        stmt = stmt.order_by(JOURNAL.c.time, JOURNAL.c.id)
        if limit is not None:
            stmt = stmt.limit(limit)
        with self._read() as session:
            rows = session.execute(stmt).all()
        return [JournalRow.model_validate(dict(row._mapping)) for row in rows]

    def snapshot_at(self, org: str, entity: str, zoho_id: str, when: datetime) -> dict[str, Any] | None:
        """The record's ``after`` snapshot as it stood at ``when`` (None if none was recorded by then).

        That is the ``after`` of the latest entry at or before ``when`` that carries one and whose
        outcome is ``ok`` or ``unchanged``: rejected or failed attempts never became the record's state.
        """
        stmt = (
            select(JOURNAL.c.after)
            .where(
                JOURNAL.c.org == org,
                JOURNAL.c.entity == entity_name(entity),
                JOURNAL.c.zoho_id == zoho_id,
                JOURNAL.c.time <= to_utc(when, what="when"),
                JOURNAL.c.after.is_not(None),
                JOURNAL.c.outcome.in_(SNAPSHOT_OUTCOMES),
            )
            .order_by(JOURNAL.c.time.desc(), JOURNAL.c.id.desc())
            .limit(1)
        )
        with self._read() as session:
            return session.execute(stmt).scalar_one_or_none()

    def purge(self, older_than_days: int | None = None, *, by_org: Mapping[str, int | None] | None = None) -> int:
        """Delete journal entries and settled/abandoned intents older than the retention.

        ``older_than_days`` given: that retention for every org. Otherwise each org keeps its own
        ``retention_days`` (``by_org``; by default read from the org registry, see
        :func:`org_retention`) and orgs that set none keep ``ZX_RETENTION_DAYS``. An org mapped to
        ``None`` (its file could not be read) is not purged at all: better keep too much than
        delete what its owner asked to keep. Links, watermarks, connections, runs and pending
        intents are never purged. Deletes in chunks so SQLite's write lock is held briefly.
        Returns the number of rows removed.
        """
        if older_than_days is not None:
            if older_than_days < 0:
                raise ValueError("older_than_days must be >= 0")
            return self._purge_before({}, utcnow() - timedelta(days=older_than_days))
        from zxsync.settings import get_settings

        default = get_settings().retention_days
        if default < 0:
            raise ValueError("ZX_RETENTION_DAYS must be >= 0")
        per_org = org_retention() if by_org is None else dict(by_org)
        if any(days is not None and days < 0 for days in per_org.values()):
            raise ValueError("retention days must be >= 0")
        now = utcnow()
        cutoffs = {org: (None if days is None else now - timedelta(days=days)) for org, days in per_org.items()}
        return self._purge_before(cutoffs, now - timedelta(days=default))

    def _purge_before(self, cutoffs: Mapping[str, datetime | None], default: datetime) -> int:
        """Purge rows older than the org's cutoff (``None``: keep all of that org) or ``default``."""
        removed = 0
        for table, stamp, extra in (
            (JOURNAL, JOURNAL.c.time, None),
            (INTENTS, INTENTS.c.settled_at,
             INTENTS.c.state.in_([IntentState.SETTLED.value, IntentState.ABANDONED.value])),
        ):
            clauses = [and_(table.c.org == org, stamp < cutoff)
                       for org, cutoff in cutoffs.items() if cutoff is not None]
            if cutoffs:
                clauses.append(and_(table.c.org.not_in(list(cutoffs)), stamp < default))
            else:
                clauses.append(stamp < default)
            old = or_(*clauses)
            if extra is not None:
                old = and_(extra, old)
            while True:
                with self._write() as session:
                    ids = session.execute(select(table.c.id).where(old).limit(CHUNK)).scalars().all()
                    if ids:
                        session.execute(delete(table).where(table.c.id.in_(ids)))
                removed += len(ids)
                if len(ids) < CHUNK:
                    break
        return removed


def org_retention() -> dict[str, int | None]:
    """Each registered org's own ``retention_days`` (only orgs whose file sets it; the others keep
    ``ZX_RETENTION_DAYS``). An org whose file cannot be read maps to ``None``: it is not purged."""
    import logging

    from mappings.config import ConfigError, load_org_file
    from zxsync.settings import get_settings

    out: dict[str, int | None] = {}
    folder = get_settings().orgs_dir
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            org = load_org_file(path)
        except ConfigError as exc:
            logging.getLogger(__name__).warning("purge: %s is kept whole, its org file is invalid: %s", path.stem, exc)
            out[path.stem] = None
            continue
        if "retention_days" in org.model_fields_set:
            out[org.slug] = org.retention_days
    return out
