"""The ``zxsync`` command: sandboxes, connections, sync runs, the demo, serving deployments.

Prefect is imported lazily inside commands: ``PREFECT_HOME`` must point under ``ZX_HOME`` before
Prefect reads its settings (ephemeral runs never touch the user's ~/.prefect).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from zxsync.settings import get_settings

app = typer.Typer(help="Keep Zoho CRM and Xero in sync, for any number of organisations.",
                  no_args_is_help=True, add_completion=False)
deployments_app = typer.Typer(help="Deployments built from the org registry.", no_args_is_help=True)
ledger_app = typer.Typer(help="The sync ledger: purge old journal entries, restore a record.", no_args_is_help=True)
app.add_typer(deployments_app, name="deployments")
app.add_typer(ledger_app, name="ledger")


def prepare_prefect_env() -> None:
    """Point Prefect at ZX_HOME for ephemeral runs (unless a Prefect API or home is configured)."""
    settings = get_settings()
    if not os.environ.get("PREFECT_API_URL") and not os.environ.get("PREFECT_HOME"):
        os.environ["PREFECT_HOME"] = str(settings.prefect_home)
        settings.prefect_home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@app.command()
def sandbox(
    xero_port: Annotated[int, typer.Option(help="Xero sandbox port (0 = any free port)")] = 8701,
    zoho_port: Annotated[int, typer.Option(help="Zoho CRM sandbox port (0 = any free port)")] = 8702,
) -> None:
    """Run the Xero and Zoho CRM sandboxes on 127.0.0.1 (state under ZX_HOME/sandbox)."""
    from sandbox.server import serve_forever

    serve_forever(get_settings().sandbox_dir, xero_port, zoho_port)


@app.command()
def connect(
    target: Annotated[str, typer.Argument(help="ORG (with --sandbox), or 'xero' / 'zoho'")],
    org: Annotated[Optional[str], typer.Argument(help="ORG when TARGET is xero or zoho")] = None,
    use_sandbox: Annotated[bool, typer.Option("--sandbox", help="connect to the sandboxes")] = False,
) -> None:
    """Store an org's connections (encrypted in the ledger). `zxsync connect ORG --sandbox`."""
    from zxsync.onboarding import connect_sandbox

    if target in ("xero", "zoho") and org is None:
        raise typer.BadParameter("name the org: zxsync connect xero ORG")
    if use_sandbox and target not in ("xero", "zoho"):
        xero, zoho = connect_sandbox(target)
        typer.echo(f"Connected {target} to the Xero sandbox (tenant {xero.tenant_id}) and the Zoho CRM "
                   f"sandbox ({zoho.api_domain}).")
        return
    raise typer.BadParameter("only --sandbox connections are available in this build")


@app.command()
def sync(
    org: Annotated[str, typer.Argument(help="org slug (orgs/<slug>.yaml)")],
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
    modules: Annotated[Optional[list[str]], typer.Option("--module", help="limit to these modules")] = None,
    direction: Annotated[str, typer.Option(help="to-xero, to-zoho or both")] = "both",
    days: Annotated[Optional[int], typer.Option(help="window: records modified in the last N days")] = None,
    ids: Annotated[Optional[list[str]], typer.Option("--id", help="window: only these record ids")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="map and validate, write nothing")] = False,
) -> None:
    """Run one sync of ORG now and print a summary (exit 1 when the run did not complete)."""
    prepare_prefect_env()
    from flows.options import RunOptions, Window
    from zxsync.runs import run_sync

    window = (Window(kind="record-ids", record_ids=ids) if ids else
              Window(kind="last-days", days=days) if days else Window())
    options = RunOptions(modules=modules or [], direction=direction, window=window, dry_run=dry_run,
                         trigger="cli")
    summary = run_sync(org, options)
    if as_json:
        typer.echo(json.dumps(summary, default=str))
    else:
        from zxsync.runs import format_summary

        typer.echo(format_summary(summary))
    raise typer.Exit(0 if summary.get("state") == "COMPLETED" else 1)


@app.command()
def serve(limit: Annotated[int, typer.Option(help="most concurrent runs in this process")] = 4) -> None:
    """Serve every org's deployment (schedules, manual runs, Retry) against PREFECT_API_URL."""
    prepare_prefect_env()
    from deployments.serve import serve_registry

    serve_registry(limit=limit)


@app.command()
def demo(
    once: Annotated[bool, typer.Option("--once", help="exit after the first run (0 if it completed)")] = False,
    ui_port: Annotated[int, typer.Option(help="Prefect UI port (0 = any free port)")] = 4200,
) -> None:
    """The whole product on this machine: sandboxes, Prefect server + UI, served deployments, a first sync."""
    from zxsync.demo import run_demo

    raise typer.Exit(run_demo(once=once, ui_port=ui_port))


@deployments_app.command("render")
def deployments_render(
    output: Annotated[Path, typer.Option(help="where to write prefect.yaml")] = Path("prefect.yaml"),
    check: Annotated[bool, typer.Option("--check", help="fail if the file is out of date")] = False,
) -> None:
    """Render prefect.yaml (for `prefect deploy --all` on a process work pool) from the org registry."""
    from deployments.render import render_prefect_yaml

    text = render_prefect_yaml()
    if check:
        current = output.read_text() if output.exists() else ""
        if current != text:
            typer.echo(f"{output} is out of date: run `zxsync deployments render`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{output} is up to date")
        return
    output.write_text(text)
    typer.echo(f"wrote {output}")


def main() -> None:  # pragma: no cover - console entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
