"""The ``zxsync`` Typer application and its command groups (commands live in ``zxsync/cli_*.py``).

Prefect is imported lazily inside commands: ``PREFECT_HOME`` must point under ``ZX_HOME`` before
Prefect reads its settings (ephemeral runs never touch the user's ~/.prefect).
"""

from __future__ import annotations

import os

import typer

from zxsync.settings import get_settings

app = typer.Typer(help="Keep Zoho CRM and Xero in sync, for any number of organisations.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_show_locals=False)
deployments_app = typer.Typer(help="Deployments built from the org registry.", no_args_is_help=True)
ledger_app = typer.Typer(help="The sync ledger: purge old journal entries, restore a record.", no_args_is_help=True)
mappings_app = typer.Typer(help="An org's mapping: discover a starter one, check it against live data.",
                           no_args_is_help=True)
setup_app = typer.Typer(help="One-off setup in the connected systems.", no_args_is_help=True)
org_app = typer.Typer(help="The org registry (orgs/<slug>.yaml).", no_args_is_help=True)
app.add_typer(deployments_app, name="deployments")
app.add_typer(ledger_app, name="ledger")
app.add_typer(mappings_app, name="mappings")
app.add_typer(setup_app, name="setup")
app.add_typer(org_app, name="org")


def prepare_prefect_env() -> None:
    """Point Prefect at ZX_HOME for ephemeral runs (unless a Prefect API or home is configured)."""
    settings = get_settings()
    if not os.environ.get("PREFECT_API_URL") and not os.environ.get("PREFECT_HOME"):
        os.environ["PREFECT_HOME"] = str(settings.prefect_home)
        settings.prefect_home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
