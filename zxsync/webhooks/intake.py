"""Intake: a verified callback becomes pending record ids in the ledger, and nothing else.

Xero wants an answer within 5 seconds, so no sync work happens here: the signature (or token) is
checked, the ids are written to the ledger's event queue (duplicates and replays coalesce there),
and the dispatcher starts runs from the queue. An event the ledger could not store is answered
500, so the sender retries it.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from ledger import Ledger
from mappings import load_org, load_org_file
from mappings.config import ConfigError, OrgConfig
from zxsync.settings import get_settings
from zxsync.webhooks.payloads import XeroWebhookPayload, ZohoNotification
from zxsync.webhooks.signing import verify_trigger, verify_xero

log = logging.getLogger("zxsync.webhooks")

#: Ledger secret names (kinds in brackets): a Xero app's webhook key [xero_key], an org's trigger
#: signing key [trigger_key], an org's Zoho notification channel token [zoho_channel].
XERO_KEY = "xero-key:{name}"
TRIGGER_KEY = "trigger-key:{name}"
ZOHO_CHANNEL = "zoho-channel:{org}"

#: Zoho module -> the product module a run limited to it syncs.
ZOHO_MODULES = {"Accounts": "contacts", "Vendors": "vendors", "Products": "products", "Invoices": "invoices",
                "Purchase_Orders": "purchase_orders", "Sales_Orders": "sales_orders", "Quotes": "quotes"}
#: Xero event category -> the ledger entities its ids are linked under, and the modules to run.
XERO_ENTITIES = {"CONTACT": ("contact",), "INVOICE": ("invoice", "bill", "sales_order", "quote")}
XERO_MODULES = {"CONTACT": ("contacts", "vendors"),
                "INVOICE": ("invoices", "payments", "purchase_orders", "sales_orders", "quotes")}
#: Zoho callback operations that can be synced by record id (deletes are left to the scheduled runs).
ZOHO_OPERATIONS = ("insert", "update")


@dataclass(frozen=True)
class Outcome:
    """What a callback led to: the HTTP status to answer and how many ids were queued."""

    status: int
    queued: int = 0
    reason: str = ""


def new_secret() -> str:
    """A fresh random key (48 bytes of entropy, URL-safe text)."""
    return secrets.token_urlsafe(48)


def store_xero_key(ledger: Ledger, name: str, key: str) -> None:
    """Store a Xero app's webhook key (from the developer portal) under ``name``."""
    ledger.save_webhook_secret(XERO_KEY.format(name=name), "xero_key", key)


def rotate_trigger_key(ledger: Ledger, name: str, org: str | None = None) -> str:
    """Generate (or replace) the trigger signing key ``name``; returns it (shown once, to paste into Zoho)."""
    key = new_secret()
    ledger.save_webhook_secret(TRIGGER_KEY.format(name=name), "trigger_key", key, org=org)
    return key


class Directory:
    """Which orgs the webhooks serve, from the org registry, re-read every few seconds."""

    def __init__(self, ledger: Callable[[], Ledger], ttl: float = 5.0) -> None:
        self.ledger = ledger
        self.ttl = ttl
        self._lock = threading.Lock()
        self._loaded = 0.0
        self._orgs: dict[str, OrgConfig] = {}
        self._tenants: dict[str, str] = {}

    def _refresh(self) -> None:
        with self._lock:
            if time.monotonic() - self._loaded < self.ttl:
                return
            orgs = _readable_orgs()
            tenants: dict[str, str] = {}
            for slug, org in orgs.items():
                tenant = org.xero.tenant_id
                if not tenant:
                    try:
                        tenant = self.ledger().load_connection(slug, "xero").tenant_id
                    except KeyError:
                        tenant = None
                if tenant:
                    tenants[slug] = tenant.lower()
            self._orgs, self._tenants, self._loaded = orgs, tenants, time.monotonic()

    def org(self, slug: str) -> OrgConfig | None:
        self._refresh()
        found = self._orgs.get(slug)
        if found is None:
            try:  # an org added since the last refresh
                found = load_org(slug)
            except ConfigError:
                return None
        return found

    def orgs_for_xero(self, key_name: str, tenant_id: str) -> list[str]:
        """The orgs of Xero tenant ``tenant_id`` whose webhooks name the key ``key_name``."""
        self._refresh()
        tenant = tenant_id.lower()
        return sorted(slug for slug, org in self._orgs.items()
                      if org.webhooks.xero_key == key_name and self._tenants.get(slug) == tenant)

    def xero_key_in_use(self, key_name: str) -> bool:
        self._refresh()
        return any(org.webhooks.xero_key == key_name for org in self._orgs.values())


class Intake:
    """Verifies callbacks and queues their record ids."""

    def __init__(self, ledger: Callable[[], Ledger], directory: Directory | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.ledger = ledger
        self.directory = directory or Directory(ledger)
        self.clock = clock
        self.counts: dict[str, int] = {}

    def _count(self, what: str, n: int = 1) -> None:
        self.counts[what] = self.counts.get(what, 0) + n

    def _secret(self, name: str) -> str | None:
        try:
            return self.ledger().load_webhook_secret(name).secret.get_secret_value()
        except KeyError:
            return None

    def _enqueue(self, org: str, items: list[tuple[str, str]]) -> Outcome:
        try:
            added = self.ledger().enqueue_events(org, items)
        except Exception:  # the sender must retry whatever went wrong here
            log.exception("could not queue %d id(s) for %s", len(items), org)
            self._count("store_failed")
            return Outcome(500, reason="not stored")
        self._count("queued", added)
        self._count("duplicates", len(items) - added)
        return Outcome(200, added)

    # --- Xero ------------------------------------------------------------------------------------
    def xero(self, key_name: str, body: bytes, signature: str | None) -> Outcome:
        """``POST /webhooks/xero/{key_name}``: 401 unless signed with that key; 200 otherwise."""
        key = self._secret(XERO_KEY.format(name=key_name)) if _safe_name(key_name) else None
        if key is None or not verify_xero(body, signature, key):
            self._count("xero_refused")
            return Outcome(401, reason="bad signature")
        try:
            payload = XeroWebhookPayload.model_validate(json.loads(body))
        except (ValueError, ValidationError):
            self._count("xero_unreadable")
            return Outcome(200, reason="signed but unreadable: nothing to do")
        if not payload.events:
            self._count("xero_intent")
            return Outcome(200, reason="intent to receive")
        per_org: dict[str, list[tuple[str, str]]] = {}
        for event in payload.events:
            category = event.event_category.upper()
            if category not in XERO_ENTITIES:
                self._count("xero_ignored")
                continue
            orgs = self.directory.orgs_for_xero(key_name, event.tenant_id)
            if not orgs:
                self._count("xero_unknown_tenant")
                continue
            for org in orgs:
                per_org.setdefault(org, []).append((event.resource_id, f"xero:{category}"))
        queued = 0
        for org, items in per_org.items():
            outcome = self._enqueue(org, items)
            if outcome.status != 200:
                return outcome
            queued += outcome.queued
        return Outcome(200, queued)

    # --- Zoho ------------------------------------------------------------------------------------
    def zoho(self, org: str, body: bytes) -> Outcome:
        """``POST /webhooks/zoho/{org}``: the callback must carry the org's channel id and token."""
        config = self.directory.org(org) if _safe_name(org) else None
        if config is None or not config.webhooks.zoho_notifications:
            self._count("zoho_refused")
            return Outcome(401, reason="unknown org")
        try:
            note = ZohoNotification.model_validate(json.loads(body))
        except (ValueError, ValidationError):
            self._count("zoho_refused")
            return Outcome(400, reason="unreadable")
        try:
            stored = self.ledger().load_webhook_secret(ZOHO_CHANNEL.format(org=org))
        except KeyError:
            self._count("zoho_refused")
            return Outcome(401, reason="no channel")
        token_ok = secrets.compare_digest((note.token or "").encode(), stored.secret.get_secret_value().encode())
        if not token_ok or str(stored.meta.get("channel_id")) != note.channel_id:
            self._count("zoho_refused")
            return Outcome(401, reason="bad token")
        if note.module not in ZOHO_MODULES or note.operation not in ZOHO_OPERATIONS:
            self._count("zoho_ignored")
            return Outcome(200, reason=f"{note.module} {note.operation}: left to the scheduled runs")
        return self._enqueue(org, [(i, f"zoho:{note.module}") for i in note.ids])

    # --- a record's trigger link -----------------------------------------------------------------
    def trigger(self, org: str, params: dict[str, Any]) -> Outcome:
        """``/webhooks/trigger/{org}?module=&id=&exp=&sig=``: one record, signed with the org's key."""
        config = self.directory.org(org) if _safe_name(org) else None
        key_name = config.webhooks.trigger_key if config is not None else None
        key = self._secret(TRIGGER_KEY.format(name=key_name)) if key_name else None
        module = str(params.get("module") or "")
        record_id = str(params.get("id") or "")
        try:
            expires = int(str(params.get("exp") or ""))
        except ValueError:
            expires = -1
        if key is None or module not in ZOHO_MODULES or not record_id or not verify_trigger(
                key, org, module, record_id, expires, str(params.get("sig") or ""), self.clock()):
            self._count("trigger_refused")
            return Outcome(401, reason="bad or expired link")
        return self._enqueue(org, [(record_id, f"trigger:{module}")])


def _readable_orgs() -> dict[str, OrgConfig]:
    """Every org file that loads; a broken one is logged and skipped (it must not stop the others' events)."""
    orgs: dict[str, OrgConfig] = {}
    for path in sorted(get_settings().orgs_dir.glob("*.yaml")):
        try:
            org = load_org_file(path)
        except ConfigError as exc:
            log.warning("webhooks ignore %s until it is fixed: %s", path.name, exc)
            continue
        orgs[org.slug] = org
    return orgs


def _safe_name(value: str) -> bool:
    """Names in paths are registry slugs or secret names: letters, digits and - _ . only."""
    return 0 < len(value) <= 100 and all(c.isalnum() or c in "-_." for c in value)
