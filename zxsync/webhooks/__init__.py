"""Event-driven sync: Xero webhooks, Zoho notifications and per-record trigger links start runs of
an org's deployment for just the records that changed, within a minute, on top of the schedules.

    Xero / Zoho / a Zoho button --> intake (verify, queue ids in the ledger) --> 200
    dispatcher: pending ids --(coalesced per org, one run at a time)--> run_deployment(record-ids)

Public API: :class:`WebhookServer` (``zxsync webhooks``), :func:`create_app`, :class:`Intake`,
:class:`Dispatcher` with :class:`PrefectLauncher`, :class:`ChannelKeeper`, the signing helpers in
:mod:`zxsync.webhooks.signing`. docs/events.md explains the set-up in Xero and Zoho.
"""

from zxsync.webhooks.app import create_app
from zxsync.webhooks.channels import ChannelKeeper, ChannelStatus, watched_events
from zxsync.webhooks.dispatch import DeploymentMissing, Dispatcher, Launcher, PrefectLauncher, event_options
from zxsync.webhooks.intake import Directory, Intake, Outcome, rotate_trigger_key, store_xero_key
from zxsync.webhooks.server import WebhookServer
from zxsync.webhooks.settings import WebhookSettings, get_webhook_settings
from zxsync.webhooks.signing import sign_trigger, verify_trigger, verify_xero, xero_signature

__all__ = [
    "ChannelKeeper",
    "ChannelStatus",
    "DeploymentMissing",
    "Directory",
    "Dispatcher",
    "Intake",
    "Launcher",
    "Outcome",
    "PrefectLauncher",
    "WebhookServer",
    "WebhookSettings",
    "create_app",
    "event_options",
    "get_webhook_settings",
    "rotate_trigger_key",
    "sign_trigger",
    "store_xero_key",
    "verify_trigger",
    "verify_xero",
    "watched_events",
    "xero_signature",
]
