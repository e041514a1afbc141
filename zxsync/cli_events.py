"""``zxsync webhooks``: serve the event receivers, and set up their secrets and Zoho channels.

``zxsync webhooks`` alone serves (needs ``PREFECT_API_URL``: event runs are runs of the served
deployments). Sub-commands: ``xero-key NAME`` stores a Xero app's webhook key, ``trigger-key ORG``
makes an org's trigger signing key, ``sign ORG MODULE ID`` prints a signed trigger link,
``channels`` creates or renews the Zoho notification channels, ``pending`` shows the queue.
"""

from __future__ import annotations

import os
import time
from typing import Annotated
from urllib.parse import urlencode

import typer

from zxsync.cli_app import app

webhooks_app = typer.Typer(
    help="Event-driven sync: Xero webhooks, Zoho notifications and per-record trigger links (docs/events.md).",
    invoke_without_command=True,
)
app.add_typer(webhooks_app, name="webhooks")


def _settings(host: str | None = None, port: int | None = None, public_url: str | None = None):  # type: ignore[no-untyped-def]
    from zxsync.webhooks.settings import get_webhook_settings

    settings = get_webhook_settings()
    updates = {k: v for k, v in {"host": host, "port": port, "public_url": public_url}.items() if v is not None}
    return settings.model_copy(update=updates) if updates else settings


@webhooks_app.callback()
def webhooks(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="address to listen on (ZX_WEBHOOKS_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on, 0 = any (ZX_WEBHOOKS_PORT)")] = None,
    public_url: Annotated[
        str | None, typer.Option(help="HTTPS address Xero and Zoho call (ZX_WEBHOOKS_PUBLIC_URL)")
    ] = None,
) -> None:
    """Serve the receivers: verify, queue the record ids, start one run per org at a time."""
    if ctx.invoked_subcommand is not None:
        return
    if not os.environ.get("PREFECT_API_URL"):
        raise typer.BadParameter("set PREFECT_API_URL to the Prefect server whose deployments `zxsync serve` "
                                 "serves (e.g. http://127.0.0.1:4200/api)")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from zxsync.webhooks.server import WebhookServer

    WebhookServer(settings=_settings(host, port, public_url)).serve_forever(say=typer.echo)


def _check_name(name: str) -> None:
    if not (0 < len(name) <= 100 and all(c.isalnum() or c in "-_." for c in name)):
        raise typer.BadParameter(f"expected letters, digits, '-', '_' or '.', got {name!r}")


@webhooks_app.command("xero-key")
def xero_key(
    name: Annotated[str, typer.Argument(help="a name for the Xero app's key (orgs refer to it)")],
    key: Annotated[str, typer.Option(prompt="Webhook key (Xero developer portal > your app > Webhooks)",
                                     hide_input=True, envvar="ZX_XERO_WEBHOOK_KEY",
                                     help="the key; prompted (hidden) when not given")],
) -> None:
    """Store the webhook key of a Xero app, encrypted in the ledger, under NAME."""
    _check_name(name)
    from ledger import Ledger
    from zxsync.webhooks.intake import store_xero_key

    with Ledger.open() as ledger:
        store_xero_key(ledger, name, key.strip())
    base = (_settings().public_url or "https://<your server>").rstrip("/")
    typer.echo(f"stored the Xero webhook key {name!r}.\n"
               f"  Xero's delivery URL: {base}/webhooks/xero/{name}\n"
               f"  in each org file of this app: webhooks: {{xero_key: {name}}}")


@webhooks_app.command("trigger-key")
def trigger_key(
    org: Annotated[str, typer.Argument(help="the org's slug")],
    name: Annotated[str | None, typer.Option(help="the key's name (default <org>-trigger)")] = None,
) -> None:
    """Make (or rotate) ORG's trigger signing key; it is printed once, to paste into the Zoho function."""
    from ledger import Ledger
    from mappings import load_org
    from zxsync.webhooks.intake import rotate_trigger_key

    load_org(org)
    name = name or f"{org}-trigger"
    _check_name(name)
    with Ledger.open() as ledger:
        key = rotate_trigger_key(ledger, name, org)
    typer.echo(f"trigger key {name!r} for {org} (shown once; links signed with an older key stop working):\n"
               f"  {key}\n"
               f"  in orgs/{org}.yaml: webhooks: {{trigger_key: {name}}}")


@webhooks_app.command("sign")
def sign(
    org: Annotated[str, typer.Argument(help="the org's slug")],
    module: Annotated[str, typer.Argument(help="Zoho module, e.g. Invoices")],
    record_id: Annotated[str, typer.Argument(help="the Zoho record id")],
    ttl: Annotated[int | None, typer.Option(help="seconds the link stays valid (ZX_WEBHOOKS_TRIGGER_TTL_SECONDS)")]
    = None,
) -> None:
    """Print a signed link that syncs one record (what the Zoho function builds)."""
    from ledger import Ledger
    from mappings import load_org
    from zxsync.webhooks.intake import TRIGGER_KEY, ZOHO_MODULES
    from zxsync.webhooks.signing import sign_trigger

    if module not in ZOHO_MODULES:
        raise typer.BadParameter(f"expected one of {', '.join(ZOHO_MODULES)}, got {module!r}")
    config = load_org(org)
    if not config.webhooks.trigger_key:
        raise typer.BadParameter(f"{org} has no webhooks.trigger_key: run `zxsync webhooks trigger-key {org}`")
    with Ledger.open() as ledger:
        key = ledger.load_webhook_secret(TRIGGER_KEY.format(name=config.webhooks.trigger_key)).secret
    settings = _settings()
    expires = int(time.time()) + (ttl if ttl is not None else settings.trigger_ttl_seconds)
    sig = sign_trigger(key.get_secret_value(), org, module, record_id, expires)
    base = (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")
    query = urlencode({"module": module, "id": record_id, "exp": expires, "sig": sig})
    typer.echo(f"{base}/webhooks/trigger/{org}?{query}")


@webhooks_app.command("channels")
def channels(
    renew: Annotated[bool, typer.Option("--renew", help="renew every channel now, however long it has left")]
    = False,
) -> None:
    """Create, renew or remove the orgs' Zoho notification channels (zoho-channels/hourly does it too)."""
    from tasks import runtime
    from zxsync.webhooks.channels import ChannelKeeper

    keeper = ChannelKeeper(runtime.ledger, runtime.zoho, _settings())
    failed = False
    try:
        statuses = keeper.ensure_all(force=renew)
        if not statuses:
            typer.echo("no org turns on webhooks.zoho_notifications")
        for status in statuses:
            until = f" until {status.expires_at:%Y-%m-%d %H:%M %Z}" if status.expires_at else ""
            typer.echo(f"{status.org:<20} {status.action:<8} {status.channel_id or '':<14}{until} {status.detail}")
            failed = failed or status.action == "failed"
    finally:
        runtime.reset()
    if failed:
        raise typer.Exit(1)


@webhooks_app.command("pending")
def pending() -> None:
    """Record ids waiting for a run, and the batches runs are working on."""
    from ledger import Ledger

    with Ledger.open() as ledger:
        waiting = ledger.pending_events()
        batches = ledger.event_batches()
    for p in waiting:
        typer.echo(f"{p.org:<20} {p.count:>6} pending since {p.first_received:%Y-%m-%d %H:%M:%S} UTC")
    for b in batches:
        typer.echo(f"{b.org:<20} {len(b.record_ids):>6} in run {b.flow_run_id or '(starting)'}"
                   f" (attempt {b.attempts + 1})")
    if not waiting and not batches:
        typer.echo("nothing waiting")
