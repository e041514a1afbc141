"""Housekeeping: the ledger's daily retention purge (its own deployment, ``housekeeping/daily``).

Journal entries and settled or abandoned write-ahead intents older than the retention go;
links, watermarks, connections, runs and pending intents never do. Staged pages of runs that
completed are dropped at once by the run itself; those of failed runs stay for a UI Retry and are
purged after ``stage_days``.
"""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from tasks import runtime

#: Key of the table artifact each housekeeping run publishes (its history is the purge log).
ARTIFACT_KEY = "ledger-housekeeping"


@flow(name="housekeeping", flow_run_name="housekeeping · ledger retention")
def housekeeping(retention_days: int | None = None, stage_days: float = 7.0) -> dict[str, int]:
    """Purge journal entries and settled intents older than ``retention_days`` (default
    ``ZX_RETENTION_DAYS``) and staged pages older than ``stage_days``; returns the counts."""
    ledger = runtime.ledger()
    purged = ledger.purge(retention_days)
    stages = ledger.stage_purge(stage_days)
    counts = {"journal_and_intents": purged, "staged_pages": stages}
    get_run_logger().info(
        "Ledger housekeeping: %s journal entries/intents and %s staged pages removed", purged, stages
    )
    create_table_artifact(
        key=ARTIFACT_KEY,
        table=[counts],
        description="# Ledger housekeeping\nRows removed by the retention purge.",
    )
    return counts
