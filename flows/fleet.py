"""Sync every organisation: one run per org's deployment, spread over the work pool's workers.

``sync_all`` does no syncing itself. It starts each org's deployment (``sync-organisation/<slug>``)
with ``run_deployment`` and waits for them, so every org keeps its own run, logs, artifacts,
concurrency limit (one run per org) and Retry button, and the runs land on whichever worker of
the pool is free. A Retry of a sync-all run finds the same org runs again (idempotency keys) and
retries, as the UI's Retry would, the ones that failed; completed ones are left alone.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact
from prefect.client.orchestration import get_client
from prefect.deployments import run_deployment
from prefect.runtime import flow_run
from prefect.states import Scheduled

from flows.options import RunOptions

#: The org deployments are named after their org: ``sync-organisation/<slug>`` (deployments/).
SYNC_DEPLOYMENT = "sync-organisation/{slug}"

#: Key of the table artifact listing each org run of the latest sync-all.
ARTIFACT_KEY = "sync-all"


def fleet_run_name() -> str:
    """``all orgs · manual · both · since-last`` (or ``3 orgs · ...``)."""
    params = flow_run.parameters
    orgs = params.get("orgs") or []
    options = params.get("options") or {}
    if isinstance(options, RunOptions):
        options = options.model_dump()
    opts = RunOptions.model_validate(options)
    who = f"{len(orgs)} orgs" if orgs else "all orgs"
    return f"{who} · {opts.trigger} · {opts.label()}"


@flow(name="sync-all", flow_run_name=fleet_run_name)
def sync_all(
    orgs: list[str] | None = None,
    options: RunOptions | None = None,
    poll_seconds: float = 5.0,
    timeout_seconds: float = 6 * 3600,
) -> dict[str, str]:
    """Start one run of each org's deployment (``orgs``, default every org of the registry) with
    ``options`` and wait for all of them; fails, naming them, when some org run did not complete."""
    from mappings import load_registry

    log = get_run_logger()
    slugs = list(orgs or [o.slug for o in load_registry()])
    opts = (options or RunOptions()).model_dump(mode="json")
    parent = flow_run.get_id()
    runs: dict[str, UUID] = {}
    with get_client(sync_client=True) as client:
        for slug in slugs:
            run = run_deployment(
                SYNC_DEPLOYMENT.format(slug=slug),
                parameters={"org": slug, "options": opts},
                timeout=0,
                idempotency_key=f"sync-all:{parent}:{slug}",
                tags=["fleet"],
                as_subflow=True,
            )
            if run.state is not None and run.state.is_final() and not run.state.is_completed():
                # This is a Retry of the sync-all run: resume the org run that failed, exactly as
                # the UI's Retry does (its completed batches are skipped from persisted results).
                client.set_flow_run_state(
                    run.id, Scheduled(name="AwaitingRetry", message="Retry from sync-all"), force=False
                )
                log.info("Retrying the run of %s that ended %s", slug, run.state.name)
            runs[slug] = run.id
        log.info("Started %d org runs: %s", len(runs), ", ".join(slugs))
        final = _wait(client, runs, poll_seconds, timeout_seconds)
    rows = [
        {
            "org": slug,
            "state": run.state.name if run.state else "?",
            "run": run.name,
            "message": (run.state.message or "")[:200] if run.state and not run.state.is_completed() else "",
        }
        for slug, run in final.items()
    ]
    create_table_artifact(key=ARTIFACT_KEY, table=rows, description=f"# Sync of {len(rows)} organisations")
    failed = [r["org"] for r in rows if r["state"] != "Completed"]
    if failed:
        raise RuntimeError(
            f"{len(failed)} of {len(rows)} organisation runs did not complete: {', '.join(failed)} "
            "(open each org's run for its error; Retry this run to retry them)"
        )
    return {r["org"]: r["state"] for r in rows}


def _wait(client: Any, runs: dict[str, UUID], poll_seconds: float, timeout_seconds: float) -> dict[str, Any]:
    """Poll (one API call per poll) until every run is final, or the timeout passes: the unfinished
    ones are then reported as they are."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    deadline = time.monotonic() + timeout_seconds
    wanted = FlowRunFilter(id=FlowRunFilterId(any_=list(runs.values())))
    while True:
        by_id = {run.id: run for run in client.read_flow_runs(flow_run_filter=wanted, limit=len(runs))}
        if all(r.state is not None and r.state.is_final() for r in by_id.values()) and len(by_id) == len(
            runs
        ):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(poll_seconds)
    return {slug: by_id.get(run_id) or client.read_flow_run(run_id) for slug, run_id in runs.items()}
