"""Operations commands: the demo, serving the deployments, prefect.yaml, the failure automation."""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Annotated

import typer

from zxsync.cli_app import app, deployments_app
from zxsync.settings import REPO_ROOT

automation_app = typer.Typer(
    help="Prefect automations: notify a webhook when a sync run fails.", no_args_is_help=True
)
app.add_typer(automation_app, name="automation")


def _needs_api() -> None:
    if not os.environ.get("PREFECT_API_URL"):
        raise typer.BadParameter(
            "set PREFECT_API_URL to your Prefect server (e.g. http://127.0.0.1:4200/api)"
        )
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")


@app.command()
def demo(
    once: Annotated[
        bool, typer.Option("--once", help="exit after the first run (0 if it completed)")
    ] = False,
    ui_port: Annotated[int, typer.Option(help="Prefect UI/API port (0 = any free port)")] = 4200,
) -> None:
    """Sandboxes, a Prefect server with its UI, the served deployments and a first sync of the demo org."""
    from zxsync.demo import run_demo

    raise typer.Exit(run_demo(once=once, ui_port=ui_port, say=typer.echo))


@app.command()
def serve(
    limit: Annotated[int | None, typer.Option(help="most flow runs at once in this process")] = None,
    org: Annotated[
        list[str] | None, typer.Option(help="serve only this org's deployment (repeatable)")
    ] = None,
) -> None:
    """Serve the deployments of every org in the registry (one process, no work pool; needs PREFECT_API_URL)."""
    _needs_api()
    from deployments.registry import registry_specs, serve_registry

    for spec in registry_specs(only=org):
        when = ", ".join(f"{s.cron} ({s.timezone})" for s in spec.schedules) or "no schedule"
        typer.echo(f"serving {spec.full_name}: {when}")
    serve_registry(limit=limit, only=org)


@deployments_app.command("list")
def list_deployments() -> None:
    """Print the deployments the registry defines (name, schedules, tags)."""
    from deployments.registry import registry_specs

    for spec in registry_specs():
        when = ", ".join(f"{s.cron} ({s.timezone})" for s in spec.schedules) or "no schedule"
        typer.echo(f"{spec.full_name:<34} {when}   tags: {', '.join(spec.tags)}")


@deployments_app.command("render")
def render(
    output: Annotated[Path, typer.Option(help="where to write prefect.yaml")] = REPO_ROOT / "prefect.yaml",
    work_pool: Annotated[str, typer.Option(help="process work pool the deployments run on")] = "zxsync",
    check: Annotated[
        bool, typer.Option("--check", help="only compare; exit 1 when the file is out of date")
    ] = False,
) -> None:
    """Write prefect.yaml (for `prefect deploy --all` on a process work pool) from the org registry."""
    from deployments.registry import render_prefect_yaml

    text = render_prefect_yaml(work_pool=work_pool)
    current = output.read_text(encoding="utf-8") if output.exists() else ""
    if check:
        if current == text:
            typer.echo(f"{output} is up to date")
            return
        typer.echo(
            "".join(
                difflib.unified_diff(current.splitlines(True), text.splitlines(True), str(output), "rendered")
            ),
            err=True,
        )
        typer.echo(f"{output} is out of date: run `zxsync deployments render`", err=True)
        raise typer.Exit(1)
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {output} ({text.count('- name: ')} deployments)")


@automation_app.command("create")
def automation_create(
    webhook: Annotated[str, typer.Option(help="URL that receives a POST when a sync run fails or crashes")],
) -> None:
    """Create (or replace) the automation that notifies WEBHOOK of failed or crashed sync runs."""
    _needs_api()
    from deployments.automations import AUTOMATION_NAME, create_failure_automation

    automation_id = create_failure_automation(webhook)
    typer.echo(f"automation '{AUTOMATION_NAME}' ({automation_id}) notifies {webhook}")
