"""Core commands: the sandboxes, and one sync run now."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from zxsync.cli_app import app, prepare_prefect_env
from zxsync.settings import get_settings


@app.command()
def sandbox(
    xero_port: Annotated[int, typer.Option(help="Xero sandbox port (0 = any free port)")] = 8701,
    zoho_port: Annotated[int, typer.Option(help="Zoho CRM sandbox port (0 = any free port)")] = 8702,
) -> None:
    """Run the Xero and Zoho CRM sandboxes on 127.0.0.1 (state under ZX_HOME/sandbox)."""
    from sandbox.server import serve_forever

    serve_forever(get_settings().sandbox_dir, xero_port, zoho_port)


@app.command()
def sync(
    org: Annotated[str, typer.Argument(help="org slug (orgs/<slug>.yaml)")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    modules: Annotated[list[str] | None, typer.Option("--module", help="limit to these modules")] = None,
    direction: Annotated[str, typer.Option(help="to-xero, to-zoho or both")] = "both",
    days: Annotated[int | None, typer.Option(help="window: records modified in the last N days")] = None,
    ids: Annotated[list[str] | None, typer.Option("--id", help="window: only these record ids")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="map and validate, write nothing")] = False,
) -> None:
    """Run one sync of ORG now and print a summary (exit 1 when the run did not complete)."""
    prepare_prefect_env()
    from flows.options import RunOptions, Window
    from zxsync.runs import format_summary, run_sync

    window = (Window(kind="record-ids", record_ids=ids) if ids else
              Window(kind="last-days", days=days) if days else Window())
    options = RunOptions(modules=modules or [], direction=direction, window=window, dry_run=dry_run,
                         trigger="cli")
    summary = run_sync(org, options)
    typer.echo(json.dumps(summary, default=str) if as_json else format_summary(summary))
    raise typer.Exit(0 if summary.get("state") == "COMPLETED" else 1)
