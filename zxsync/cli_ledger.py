"""Ledger commands: purge old journal entries; restore a record's earlier snapshot to Xero."""

from __future__ import annotations

from typing import Annotated

import typer

from zxsync.cli_app import ledger_app


@ledger_app.command("purge")
def purge(
    days: Annotated[int | None, typer.Option(help="retention in days for every org (default: each org's "
                                                  "retention_days, else ZX_RETENTION_DAYS)")] = None,
) -> None:
    """Remove journal entries older than the retention (links, watermarks and connections stay).

    Each org keeps its own ``retention_days``; an org that sets none keeps ``ZX_RETENTION_DAYS``;
    ``--days`` applies one retention to every org."""
    from zxsync.restore import purge as run_purge

    removed = run_purge(days)
    typer.echo(f"purged {removed['journal_and_intents']} journal entries and settled intents, "
               f"{removed['stages']} stale stages")


@ledger_app.command("restore")
def restore(
    org: Annotated[str, typer.Argument(help="org slug")],
    record: Annotated[str, typer.Argument(help="Zoho id, Xero id or document number")],
    to: Annotated[str | None, typer.Option("--to", help="ISO time: restore the payload pushed by then "
                                                           "(default: the one before the last push)")] = None,
) -> None:
    """Push a record's earlier snapshot back to Xero (sync-back after a bad edit or mapping)."""
    from zxsync.restore import parse_time
    from zxsync.restore import restore as run_restore

    try:
        result = run_restore(org, record, to=parse_time(to) if to else None)
    except LookupError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    typer.echo(result.message)
    raise typer.Exit(0 if result.outcome == "ok" else 1)
