"""Zoho notification channels kept alive by a deployment (``zoho-channels/hourly``).

Every org that turns ``webhooks.zoho_notifications`` on gets its ``/actions/watch`` channel
created when missing and renewed when it expires within ``ZX_WEBHOOKS_RENEW_BEFORE_HOURS``
(default 24; Zoho keeps a channel a week at most and we ask for ``ZX_WEBHOOKS_CHANNEL_DAYS``, 6);
a channel of an org that no longer wants notifications is removed. The work is
:class:`zxsync.webhooks.channels.ChannelKeeper` (the same code as ``zxsync webhooks channels``);
this flow runs it on a schedule, publishes what it did, and fails when an org's channel could not
be set up (so the run shows red in the UI and automations can alert on it).
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_table_artifact

from tasks import runtime

#: Key of the table artifact each run publishes (one row per org checked).
ARTIFACT_KEY = "zoho-channels"


@flow(name="zoho-channels", flow_run_name="zoho-channels · renewal")
def zoho_channels(orgs: list[str] | None = None, force: bool = False) -> list[dict[str, Any]]:
    """Create, renew or remove the Zoho notification channel of every org of the registry (or of
    ``orgs``); ``force`` renews every channel however long it has left. Returns one row per org."""
    from zxsync.webhooks.channels import ChannelKeeper
    from zxsync.webhooks.settings import get_webhook_settings

    logger = get_run_logger()
    keeper = ChannelKeeper(runtime.ledger, runtime.zoho, get_webhook_settings())
    statuses = keeper.ensure_all(force=force, orgs=orgs, holder="zoho-channels flow")
    rows = [
        {
            "org": s.org,
            "action": s.action,
            "channel_id": s.channel_id or "",
            "expires_at": s.expires_at.isoformat() if s.expires_at else "",
            "detail": s.detail,
        }
        for s in statuses
    ]
    for row in rows:
        log = logger.warning if row["action"] == "failed" else logger.info
        log("%s: Zoho channel %s %s %s %s", row["org"], row["channel_id"] or "-", row["action"],
            f"until {row['expires_at']}" if row["expires_at"] else "", row["detail"])
    if not rows:
        logger.info("No org turns on webhooks.zoho_notifications: nothing to do")
    create_table_artifact(
        key=ARTIFACT_KEY,
        table=rows or [{"org": "", "action": "none", "channel_id": "", "expires_at": "", "detail": ""}],
        description="# Zoho notification channels\nWhat the hourly check did for each org.",
    )
    failed = [r["org"] for r in rows if r["action"] == "failed"]
    if failed:
        raise RuntimeError(f"Zoho notification channel not set up for {', '.join(failed)}: "
                           + "; ".join(r["detail"] for r in rows if r["action"] == "failed"))
    return rows
