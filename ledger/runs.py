"""Sync runs: when each started and finished, how it ended, what it did."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from ledger.base import LedgerBase
from ledger.clock import to_utc, utcnow
from ledger.models import RunRecord
from ledger.schemas import RunRow, RunState

RUNS = RunRecord.__table__


class RunsMixin(LedgerBase):
    """start / finish runs, and the last successful one (the lower bound of "since last run" windows)."""

    def start_run(
        self,
        org: str,
        run_id: str | None = None,
        *,
        window: str | None = None,
        started_at: datetime | None = None,
    ) -> str:
        """Record a run as running; returns its id (a new uuid when none is given).

        Starting a run id that exists already (a retried flow run) keeps the original record.
        """
        run_id = run_id or str(uuid.uuid4())
        started = to_utc(started_at, what="started_at") if started_at else utcnow()
        stmt = self._insert(RUNS).on_conflict_do_nothing(index_elements=["run_id"])
        with self._write() as session:
            session.execute(
                stmt,
                [
                    {
                        "run_id": run_id,
                        "org": org,
                        "started_at": started,
                        "finished_at": None,
                        "state": RunState.RUNNING.value,
                        "window": window,
                        "counts": None,
                    }
                ],
            )
            owner = session.execute(select(RUNS.c.org).where(RUNS.c.run_id == run_id)).scalar_one()
        if owner != org:
            raise ValueError(f"run {run_id} belongs to organisation {owner!r}, not {org!r}")
        return run_id

    def finish_run(
        self, run_id: str, state: str = RunState.COMPLETED.value, counts: dict[str, Any] | None = None
    ) -> None:
        """Record how a run ended (``completed``, ``failed``, ``crashed``, ``cancelled``) and its counts."""
        final = RunState(state)
        if final is RunState.RUNNING:
            raise ValueError("finish_run needs a final state")
        with self._write() as session:
            changed = session.execute(
                update(RUNS)
                .where(RUNS.c.run_id == run_id)
                .values(state=final.value, finished_at=utcnow(), counts=counts)
            ).rowcount
        if changed != 1:
            raise KeyError(f"no run {run_id}")

    def get_run(self, run_id: str) -> RunRow | None:
        """One run by id."""
        with self._read() as session:
            row = session.execute(select(RUNS).where(RUNS.c.run_id == run_id)).one_or_none()
        return None if row is None else RunRow.model_validate(dict(row._mapping))

    def last_successful_run(self, org: str) -> RunRow | None:
        """The most recently *started* completed run of ``org`` (its start bounds the next window)."""
        stmt = (
            select(RUNS)
            .where(RUNS.c.org == org, RUNS.c.state == RunState.COMPLETED.value)
            .order_by(RUNS.c.started_at.desc())
            .limit(1)
        )
        with self._read() as session:
            row = session.execute(stmt).one_or_none()
        return None if row is None else RunRow.model_validate(dict(row._mapping))
