"""Zoho notification channels: one per org that turns ``webhooks.zoho_notifications`` on, created
and renewed before it expires (Zoho keeps a channel a week at most; notes §7).

The channel watches ``create`` and ``edit`` of the Zoho modules the org pushes to Xero and calls
``<public_url>/webhooks/zoho/<org>`` with a random token; the token is stored encrypted in the
ledger *before* the channel is enabled, so the first callback already verifies. A channel the org
no longer wants is deleted in Zoho and forgotten.

Who runs it: the ``zoho-channels/hourly`` Prefect deployment (``flows.channels``, served by
``zxsync serve`` and rendered into prefect.yaml) checks every org each hour; ``zxsync webhooks``
also checks at start and hourly (a fallback, so a fresh server's channels exist at once), and
``zxsync webhooks channels`` does it by hand. :meth:`ChannelKeeper.ensure_all` holds a ledger lease
(:data:`CHANNELS_LEASE`), so these never work on the channels at the same time (two creators
would leave Zoho with an orphan channel whose token the ledger no longer has).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.errors import ApiError
from ledger import LeaseBusy, Ledger, default_holder
from mappings import load_org, load_registry
from mappings.config import OrgConfig
from zxsync.webhooks.intake import ZOHO_CHANNEL, ZOHO_MODULES
from zxsync.webhooks.settings import WebhookSettings

log = logging.getLogger("zxsync.webhooks")

WATCH = "/actions/watch"
#: Ledger lease serialising passes over the channels (deployment, webhook server, CLI).
CHANNELS_LEASE = "zoho-channels"
#: Product module -> Zoho module, in the order channels list them.
WATCHED = {module: zoho for zoho, module in ZOHO_MODULES.items()}


@dataclass(frozen=True)
class ChannelStatus:
    """What :meth:`ChannelKeeper.ensure` found or did for one org."""

    org: str
    action: str  # created | renewed | kept | removed | off | failed
    channel_id: str | None = None
    expires_at: datetime | None = None
    detail: str = ""


def watched_events(config: OrgConfig) -> list[str]:
    """``create`` and ``edit`` of every Zoho module the org pushes to Xero."""
    events: list[str] = []
    for module, zoho in WATCHED.items():
        setting = getattr(config.modules, module)
        if setting.enabled and setting.direction in ("to-xero", "both"):
            events += [f"{zoho}.create", f"{zoho}.edit"]
    return events


def _expiry_of(body: Any) -> datetime | None:
    try:
        value = body["watch"][0]["details"]["events"][0]["channel_expiry"]
        return datetime.fromisoformat(value).astimezone(UTC)
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _code_of(error: ApiError) -> str | None:
    body = getattr(error, "body", None)
    try:
        return body["watch"][0]["code"]  # type: ignore[index]
    except (KeyError, IndexError, TypeError):
        return getattr(error, "code", None)


class ChannelKeeper:
    """Creates, renews and removes the orgs' Zoho notification channels."""

    def __init__(self, ledger: Callable[[], Ledger], zoho: Callable[[str], Any], settings: WebhookSettings,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.ledger = ledger
        self.zoho = zoho
        self.settings = settings
        self.now = now

    def notify_url(self, org: str) -> str:
        base = (self.settings.public_url or "").rstrip("/")
        return f"{base}/webhooks/zoho/{org}"

    def ensure_all(self, *, force: bool = False, orgs: list[str] | None = None,
                   wait: float = 120.0, holder: str = "zoho-channels") -> list[ChannelStatus]:
        """Every org of the registry (or of ``orgs``) with a channel wanted or still stored.

        Holds the :data:`CHANNELS_LEASE` meanwhile (waiting up to ``wait`` seconds for another pass
        to finish; :class:`ledger.LeaseBusy` after that).
        """
        ledger = self.ledger()
        with ledger.lease(CHANNELS_LEASE, default_holder(holder), timeout=wait, ttl=120):
            stored = {s.org for s in ledger.webhook_secrets(kind="zoho_channel") if s.org}
            out = []
            for config in load_registry():
                if orgs is not None and config.slug not in orgs:
                    continue
                if config.webhooks.zoho_notifications or config.slug in stored:
                    out.append(self.ensure(config.slug, force=force))
            return out

    def ensure(self, org: str, *, force: bool = False) -> ChannelStatus:
        """Make the org's channel match its config and last at least ``renew_before_hours`` more."""
        config = load_org(org)
        name = ZOHO_CHANNEL.format(org=org)
        ledger = self.ledger()
        try:
            stored = ledger.load_webhook_secret(name)
        except KeyError:
            stored = None
        try:
            if not config.webhooks.zoho_notifications:
                if stored is None:
                    return ChannelStatus(org, "off")
                self._delete(org, str(stored.meta.get("channel_id")))
                ledger.delete_webhook_secret(name)
                return ChannelStatus(org, "removed", str(stored.meta.get("channel_id")))
            if not self.settings.public_url:
                return ChannelStatus(org, "failed", detail="ZX_WEBHOOKS_PUBLIC_URL is not set: Zoho needs an "
                                     "address to call")
            events = watched_events(config)
            notify_url = self.notify_url(org)
            now = self.now()
            if stored is not None:
                meta = stored.meta
                expires = datetime.fromisoformat(meta["expires_at"]) if meta.get("expires_at") else None
                fresh = expires is not None and expires - now > timedelta(hours=self.settings.renew_before_hours)
                if fresh and not force and meta.get("events") == events and meta.get("notify_url") == notify_url:
                    return ChannelStatus(org, "kept", str(meta["channel_id"]), expires)
                channel_id, token, action = str(meta["channel_id"]), stored.secret.get_secret_value(), "renewed"
            else:
                channel_id = str(10**12 + secrets.randbelow(9 * 10**12))
                token = secrets.token_urlsafe(30)  # 40 characters; Zoho allows 50
                action = "created"
            meta = {"channel_id": channel_id, "events": events, "notify_url": notify_url, "expires_at": None}
            # Stored first: a callback arriving right after the channel is enabled already verifies.
            ledger.save_webhook_secret(name, "zoho_channel", token, org=org, meta=meta)
            wanted = now + timedelta(days=self.settings.channel_days)
            item = {"channel_id": channel_id, "events": events, "notify_url": notify_url, "token": token,
                    "channel_expiry": wanted.replace(microsecond=0).isoformat()}
            body = self._put_or_post(org, item, replace=action == "renewed")
            expires = _expiry_of(body) or wanted
            meta["expires_at"] = expires.isoformat()
            ledger.update_webhook_meta(name, meta)
            log.info("%s: Zoho channel %s %s until %s (%s)", org, channel_id, action, expires.isoformat(),
                     ", ".join(events))
            return ChannelStatus(org, action, channel_id, expires)
        except ApiError as exc:
            log.warning("%s: Zoho channel not set up: %s", org, exc)
            return ChannelStatus(org, "failed", detail=str(exc))

    def _put_or_post(self, org: str, item: dict[str, Any], *, replace: bool) -> Any:
        client = self.zoho(org)
        if replace:
            try:
                return client.call("PUT", WATCH, json_body={"watch": [item]}, idempotent=True,
                                   what="renewing the notification channel").body
            except ApiError as exc:
                if _code_of(exc) != "NOT_SUBSCRIBED":
                    raise  # anything but "gone" (it expired): report it
        return client.call("POST", WATCH, json_body={"watch": [item]}, idempotent=True,
                           what="enabling the notification channel").body

    def _delete(self, org: str, channel_id: str) -> None:
        try:
            self.zoho(org).call("DELETE", WATCH, params={"channel_ids": channel_id}, idempotent=True,
                                what="removing the notification channel")
        except ApiError as exc:
            if _code_of(exc) != "NOT_SUBSCRIBED":
                raise

    def run_forever(self, stop: threading.Event) -> None:
        """Check every org's channel now and every ``renew_check_seconds`` until ``stop``.

        The fallback of ``zxsync webhooks`` next to the ``zoho-channels/hourly`` deployment: a pass
        the deployment (or the CLI) is making already is skipped, not repeated.
        """
        while not stop.is_set():
            try:
                for status in self.ensure_all(wait=0, holder="webhooks-channels"):
                    if status.action == "failed":
                        log.warning("%s: notification channel: %s", status.org, status.detail)
            except LeaseBusy as exc:
                log.info("Zoho channels are being checked elsewhere (%s); next check in %.0f s", exc,
                         self.settings.renew_check_seconds)
            except Exception:  # keep renewing the others next time
                log.exception("checking the Zoho notification channels failed")
            stop.wait(self.settings.renew_check_seconds)
