"""Onboarding commands: connect an org to Xero and Zoho CRM (the sandboxes' shortcut for now)."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from zxsync.cli_app import app


@app.command()
def connect(
    target: Annotated[str, typer.Argument(help="ORG (with --sandbox), or 'xero' / 'zoho'")],
    org: Annotated[Optional[str], typer.Argument(help="ORG when TARGET is xero or zoho")] = None,
    use_sandbox: Annotated[bool, typer.Option("--sandbox", help="connect to the sandboxes")] = False,
) -> None:
    """Store an org's connections (encrypted in the ledger). `zxsync connect ORG --sandbox`."""
    from zxsync.onboarding import connect_sandbox

    if use_sandbox and target not in ("xero", "zoho"):
        xero, zoho = connect_sandbox(target)
        typer.echo(f"Connected {target} to the Xero sandbox (tenant {xero.tenant_id}) and the Zoho CRM "
                   f"sandbox ({zoho.api_domain}).")
        return
    raise typer.BadParameter("only `zxsync connect ORG --sandbox` is available in this build")
