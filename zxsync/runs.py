"""Running a sync from the command line: in this process, reporting to Prefect, with a summary."""

from __future__ import annotations

from typing import Any

from flows.options import RunOptions


def run_sync(org: str, options: RunOptions) -> dict[str, Any]:
    """Run the flow once here (Prefect API from PREFECT_API_URL, else ephemeral) and summarise it."""
    from prefect import tags

    from flows.sync import sync_organisation
    from tasks import runtime
    from tasks.report import SyncStopped

    try:
        with tags(f"org:{org}", options.trigger):
            state = sync_organisation(org, options, return_state=True)
        if state.is_completed():
            summary = dict(state.result())
        else:
            summary = {"org": org, "state": state.type.value, "message": state.message}
            try:
                state.result()
            except SyncStopped as exc:  # a clean stop (the Zoho credit reserve): its message says it all
                summary.update(_done_before_stop(state))
                summary["error"] = str(exc)
            except Exception as exc:  # noqa: BLE001 - the run's own error, shown in the summary
                summary["error"] = f"{type(exc).__name__}: {exc}"
    finally:
        runtime.reset()
    summary["state"] = summary.get("state") or "COMPLETED"
    return summary


def _done_before_stop(state: Any) -> dict[str, Any]:
    """A run that stopped before its end (credit reserve): its run id and per-entity counts so far,
    as the ledger recorded them ({} when it recorded none)."""
    from tasks import runtime

    run_id = str(state.state_details.flow_run_id or "")
    try:
        run = runtime.ledger().get_run(run_id) if run_id else None
    except Exception:  # noqa: BLE001 - the counts are a nicety; the error is what matters
        return {}
    if run is None or not run.counts:
        return {}
    return {"run_id": run_id, **{k: v for k, v in run.counts.items() if isinstance(v, dict)}}


def format_summary(summary: dict[str, Any]) -> str:
    """Plain text: one line per entity, then the reject count and where to read them."""
    lines = [f"{summary.get('org')}: {summary.get('state')}" + (" (dry run)" if summary.get("dry_run") else "")]
    for entity, row in summary.items():
        if not isinstance(row, dict):
            continue
        parts = [f"{k.replace('_', ' ')} {v}" for k, v in row.items() if v]
        lines.append(f"  {entity:<16} " + (", ".join(parts) if parts else "nothing to do"))
    if summary.get("rejects"):
        lines.append(f"  {summary['rejects']} record(s) rejected: see the run's 'sync-rejects-{summary.get('org')}' "
                     "artifact in the Prefect UI (or the ledger journal)")
    if summary.get("error"):
        lines.append(f"  error: {summary['error']}")
    return "\n".join(lines)
