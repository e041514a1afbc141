"""Xero webhooks: signed events for contact and invoice changes, and the intent-to-receive probes.

What Xero does (../shared/docs/xero-api-notes.md §9, WH, WHSPEC):
- a webhook belongs to an app and sees every tenant connected to it; categories CONTACT and
  INVOICE (CREDITNOTE, SUBSCRIPTION are not emulated), ``eventType`` CREATE or UPDATE;
- payload ``{"events": [{resourceUrl, resourceId, eventDateUtc, eventType, eventCategory, tenantId,
  tenantType}], "firstEventSequence", "lastEventSequence", "entropy"}``: ids only;
- header ``x-xero-signature`` = base64(HMAC-SHA256(raw body, webhook key));
- the receiver must answer 200 with no body within 5 seconds; anything else is retried "with
  decreasing frequency for up to 24 hours", then the webhook is disabled (events are kept and
  replayed in order once it is enabled again);
- intent to receive: when a webhook is saved Xero posts empty payloads, some signed correctly and
  some not; the receiver must answer 200 to the first and 401 to the second kind, else no event
  is delivered.

Admin routes (never part of the emulated API):
- ``PUT /_sandbox/webhooks {"url", "key"?, "intent": true, "retry": {...}?}`` saves the webhook (a
  key is generated when none is given) and runs intent to receive; events flow only once it passed.
- ``GET /_sandbox/webhooks`` status, counters, the latest delivery attempts.
- ``POST /_sandbox/webhooks/intent`` runs intent to receive again (re-enables a disabled webhook).
- ``DELETE /_sandbox/webhooks`` removes the webhook and what was queued for it.

Decision (notes §13.5, undocumented by Xero): a payment, a deleted payment or a credit-note
allocation changes the invoice's AmountDue/Status and moves its UpdatedDateUTC, so it raises an
INVOICE UPDATE. Changes that do not move UpdatedDateUTC (a contact becoming IsCustomer) raise none.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
import string
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from sandbox.common.base import ADMIN_PREFIX
from sandbox.common.delivery import Deliverer, Delivery, RetryPolicy

if TYPE_CHECKING:
    from sandbox.xero.app import XeroSandbox

#: Internal kind -> (eventCategory, API collection).
CATEGORIES = {"contacts": ("CONTACT", "Contacts"), "invoices": ("INVOICE", "Invoices")}
#: Events per payload (Xero batches; the number is not documented).
MAX_EVENTS_PER_PAYLOAD = 100
#: How long changes are collected before a payload leaves (Xero sends in batches, not per change).
BATCH_WINDOW = 0.1

STATUS_REQUIRED = "Intent to receive required"
STATUS_OK = "OK"
STATUS_FAILED = "Intent to receive failed"
STATUS_DISABLED = "Disabled"


def sign(body: bytes, key: str) -> str:
    """Xero's ``x-xero-signature``: base64(HMAC-SHA256(raw body, key))."""
    return base64.b64encode(hmac.new(key.encode(), body, hashlib.sha256).digest()).decode()


def _entropy() -> str:
    return "".join(random.choices(string.ascii_uppercase, k=20))


class XeroWebhooks:
    """The sandbox app's webhook: subscription, event collection and delivery."""

    def __init__(self, sandbox: XeroSandbox) -> None:
        self.sandbox = sandbox
        self.url: str | None = None
        self.key: str | None = None
        self.status = STATUS_REQUIRED
        self.api_base = "https://api.xero.com"
        self.intent: list[dict[str, Any]] = []
        self._sequence = 0
        self._events: list[dict[str, Any]] = []
        self._last_emitted: dict[tuple[str, str, str], Any] = {}
        self._cond = threading.Condition()
        self._batcher: threading.Thread | None = None
        self.events_raised = 0
        self.deliverer = Deliverer("xero-webhooks", accept=lambda r: r.status_code == 200,
                                   on_give_up=self._gave_up)

    # --- collecting ------------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """Events are collected once intent to receive passed (and kept while disabled, for replay)."""
        return self.url is not None and self.status in (STATUS_OK, STATUS_DISABLED)

    def on_change(self, scope: str, kind: str, doc_id: str, created: bool) -> None:
        """Store observer: a contact or invoice of tenant ``scope`` was written."""
        if kind not in CATEGORIES or not self.active:
            return
        doc = self.sandbox.store.get(scope, kind, doc_id)
        if doc is None:
            return
        updated = doc.get("UpdatedDateUTC")
        key = (scope, kind, doc_id)
        if self._last_emitted.get(key) == updated:
            return  # the same change seen twice (put, then touch)
        if not created and updated != self.sandbox.books(scope)._last_ms:
            return  # touched without a new UpdatedDateUTC (IsCustomer/IsSupplier flags): no event
        self._last_emitted[key] = updated
        category, collection = CATEGORIES[kind]
        moment = datetime.fromtimestamp((updated or 0) / 1000, tz=UTC) if updated else self.sandbox.clock.now()
        event = {
            "resourceUrl": f"{self.api_base}/api.xro/2.0/{collection}/{doc_id}",
            "resourceId": doc_id,
            "eventDateUtc": moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}",
            "eventType": "CREATE" if created else "UPDATE",
            "eventCategory": category,
            "tenantId": scope,
            "tenantType": "ORGANISATION",
        }
        with self._cond:
            self._events.append(event)
            self.events_raised += 1
            self._ensure_batcher()
            self._cond.notify_all()

    def _ensure_batcher(self) -> None:
        if self._batcher is None or not self._batcher.is_alive():
            self._batcher = threading.Thread(target=self._batch_loop, name="xero-webhook-batcher", daemon=True)
            self._batcher.start()

    def _batch_loop(self) -> None:
        while True:
            with self._cond:
                while not self._events:
                    if not self._cond.wait(30.0) and not self._events:
                        self._batcher = None
                        return  # idle: a new event starts another thread
            time.sleep(BATCH_WINDOW)
            with self._cond:
                taken, self._events = self._events[:MAX_EVENTS_PER_PAYLOAD], self._events[MAX_EVENTS_PER_PAYLOAD:]
                url, key = self.url, self.key
            if taken and url and key:
                self._submit(url, key, taken)

    def _submit(self, url: str, key: str, events: list[dict[str, Any]]) -> None:
        first = self._sequence + 1
        self._sequence += len(events)
        payload = {"events": events, "firstEventSequence": first, "lastEventSequence": self._sequence,
                   "entropy": _entropy()}
        body = json.dumps(payload, separators=(",", ":")).encode()
        self.deliverer.submit(Delivery(url=url, body=body, label=f"events {first}-{self._sequence}",
                                       headers={"Content-Type": "application/json",
                                                "x-xero-signature": sign(body, key)},
                                       meta={"events": len(events), "first": first, "last": self._sequence}))

    def _gave_up(self, delivery: Delivery) -> None:
        # After retrying for the policy's whole window Xero disables the webhook; what is still
        # queued waits for it to be enabled again (intent to receive), then goes out in order.
        self.status = STATUS_DISABLED
        self.deliverer.pause(True)
        self.deliverer.submit(delivery)  # keep it (at the back: Xero keeps 31 days of events)

    # --- intent to receive -----------------------------------------------------------------------
    def intent_to_receive(self) -> bool:
        """Post correctly and incorrectly signed empty payloads; pass when each gets its answer."""
        assert self.url is not None and self.key is not None
        probes = [True, False, True, False]
        random.shuffle(probes)
        results = []
        for signed_correctly in probes:
            body = json.dumps({"events": [], "firstEventSequence": 0, "lastEventSequence": 0,
                               "entropy": _entropy()}, separators=(",", ":")).encode()
            signature = sign(body, self.key if signed_correctly else secrets.token_urlsafe(32))
            started = time.monotonic()
            response = self.deliverer.post_now(self.url, body, {"Content-Type": "application/json",
                                                                 "x-xero-signature": signature})
            status = response.status_code if response is not None else None
            empty = response is not None and not response.content
            ok = (status == 200 and empty) if signed_correctly else status == 401
            results.append({"signed_correctly": signed_correctly, "status": status, "empty_body": empty,
                            "seconds": round(time.monotonic() - started, 3), "ok": ok})
        self.intent = results
        passed = all(r["ok"] for r in results)
        self.status = STATUS_OK if passed else STATUS_FAILED
        self.deliverer.pause(not passed)
        return passed

    # --- admin -----------------------------------------------------------------------------------
    def view(self) -> dict[str, Any]:
        return {"url": self.url, "key": self.key, "status": self.status, "intent": self.intent,
                "events_raised": self.events_raised, "sequence": self._sequence,
                "pending_deliveries": self.deliverer.pending(), "delivered": self.deliverer.delivered,
                "failed_attempts": self.deliverer.failed_attempts, "given_up": self.deliverer.given_up,
                "attempts": list(self.deliverer.log)[-50:]}

    def clear(self) -> None:
        """Forget the webhook and everything queued (``DELETE``, ``/_sandbox/reset``)."""
        with self._cond:
            self.url = self.key = None
            self.status = STATUS_REQUIRED
            self.intent = []
            self._events.clear()
            self._last_emitted.clear()
            self._sequence = 0
            self.events_raised = 0
        self.deliverer.clear()

    def register(self, app: FastAPI) -> None:
        @app.get(f"{ADMIN_PREFIX}/webhooks")
        def get_webhooks() -> dict[str, Any]:
            return self.view()

        @app.put(f"{ADMIN_PREFIX}/webhooks")
        async def put_webhooks(request: Request) -> Response:
            try:
                body = json.loads(await request.body() or b"{}")
            except ValueError:
                body = None
            if not isinstance(body, dict) or not isinstance(body.get("url"), str) or not body["url"]:
                return JSONResponse({"error": "url is required"}, status_code=400)
            retry = body.get("retry") or {}
            try:
                policy = RetryPolicy(**{k: float(v) for k, v in retry.items()
                                        if k in ("initial", "maximum", "give_up_after", "timeout")})
            except (TypeError, ValueError):
                return JSONResponse({"error": "retry takes initial, maximum, give_up_after, timeout (seconds)"},
                                    status_code=400)
            with self._cond:
                self.url = body["url"]
                self.key = str(body.get("key") or base64.b64encode(secrets.token_bytes(48)).decode())
                self.api_base = str(request.base_url).rstrip("/")
                self.status = STATUS_REQUIRED
            self.deliverer.policy = policy
            if body.get("intent", True):
                await run_in_threadpool(self.intent_to_receive)
            return JSONResponse(self.view())

        @app.post(f"{ADMIN_PREFIX}/webhooks/intent")
        async def post_intent() -> Response:
            if self.url is None:
                return JSONResponse({"error": "no webhook: PUT /_sandbox/webhooks first"}, status_code=404)
            await run_in_threadpool(self.intent_to_receive)
            return JSONResponse(self.view())

        @app.delete(f"{ADMIN_PREFIX}/webhooks")
        def delete_webhooks() -> dict[str, Any]:
            self.clear()
            return self.view()
