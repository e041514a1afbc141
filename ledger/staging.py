"""The stage: pages and batches passed between a run's tasks by name, not by value.

Prefect persists task results so a UI Retry can resume a run; keeping those results to a stage
name (instead of hundreds of records) keeps them tiny, keeps the flow's memory flat however many
pages a run has, and leaves no customer data in Prefect's result storage.
"""

from __future__ import annotations

import zlib
from datetime import UTC, timedelta
from typing import Any

import orjson
from sqlalchemy import delete, select

from ledger.base import LedgerBase
from ledger.clock import utcnow
from ledger.models import StageRecord

STAGE = StageRecord.__table__


class StagingMixin(LedgerBase):
    """put / get / drop staged lists of JSON documents."""

    def stage_put(self, org: str, run_id: str, name: str, items: list[dict[str, Any]]) -> str:
        """Store ``items`` under ``name`` for this run (replacing an earlier attempt's); returns ``name``."""
        body = zlib.compress(orjson.dumps(items, default=str), 3)
        stmt = self._upsert(STAGE, ["org", "run_id", "name"], ["items", "body", "created_at"])
        with self._write() as session:
            session.execute(stmt, [{"org": org, "run_id": run_id, "name": name, "items": len(items),
                                    "body": body, "created_at": utcnow()}])
        return name

    def stage_get(self, org: str, run_id: str, name: str) -> list[dict[str, Any]]:
        """The items staged under ``name``; ``KeyError`` when the stage is gone."""
        with self._read() as session:
            body = session.execute(select(STAGE.c.body).where(
                STAGE.c.org == org, STAGE.c.run_id == run_id, STAGE.c.name == name)).scalar_one_or_none()
        if body is None:
            raise KeyError(f"no stage {name!r} for run {run_id} of {org}")
        return orjson.loads(zlib.decompress(body))

    def stage_get_fresh(self, org: str, run_id: str, name: str, max_age_seconds: float) -> list[dict[str, Any]] | None:
        """The items staged under ``name`` if staged within ``max_age_seconds``, else None."""
        with self._read() as session:
            row = session.execute(select(STAGE.c.body, STAGE.c.created_at).where(
                STAGE.c.org == org, STAGE.c.run_id == run_id, STAGE.c.name == name)).one_or_none()
        if row is None or row.created_at is None:
            return None
        created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
        if (utcnow() - created).total_seconds() > max_age_seconds:
            return None
        return orjson.loads(zlib.decompress(row.body))

    def stage_drop(self, org: str, run_id: str) -> int:
        """Drop a run's stages (after it completed)."""
        with self._write() as session:
            return session.execute(delete(STAGE).where(STAGE.c.org == org, STAGE.c.run_id == run_id)).rowcount

    def stage_purge(self, older_than_days: float = 7) -> int:
        """Drop stages older than ``older_than_days`` (failed runs nobody retried)."""
        cutoff = utcnow() - timedelta(days=older_than_days)
        with self._write() as session:
            return session.execute(delete(STAGE).where(STAGE.c.created_at < cutoff)).rowcount
