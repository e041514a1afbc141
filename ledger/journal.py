"""The journal: every action with its outcome and snapshots; restore reads it, purge trims it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select

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

    def purge(self, older_than_days: int | None = None) -> int:
        """Delete journal entries and settled/abandoned intents older than the retention.

        Default retention is ``ZX_RETENTION_DAYS``. Links, watermarks, connections, runs and
        pending intents are never purged. Deletes in chunks so SQLite's write lock is held briefly.
        Returns the number of rows removed.
        """
        if older_than_days is None:
            from zxsync.settings import get_settings

            older_than_days = get_settings().retention_days
        if older_than_days < 0:
            raise ValueError("older_than_days must be >= 0")
        cutoff = utcnow() - timedelta(days=older_than_days)
        removed = 0
        targets = [
            (JOURNAL, JOURNAL.c.time < cutoff),
            (
                INTENTS,
                INTENTS.c.state.in_([IntentState.SETTLED.value, IntentState.ABANDONED.value])
                & (INTENTS.c.settled_at < cutoff),
            ),
        ]
        for table, old in targets:
            while True:
                with self._write() as session:
                    ids = session.execute(select(table.c.id).where(old).limit(CHUNK)).scalars().all()
                    if ids:
                        session.execute(delete(table).where(table.c.id.in_(ids)))
                removed += len(ids)
                if len(ids) < CHUNK:
                    break
        return removed
