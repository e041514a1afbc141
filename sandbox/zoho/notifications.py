"""Zoho CRM notifications: ``/crm/v8/actions/watch`` channels and the callbacks they produce.

Sources: ../shared/docs/zoho-api-notes.md §7, ../shared/specs/zoho/notifications.json (OAS), the v7
"Enable Notifications" page and the v8 operation examples quoted there (OAS-Y).

- ``POST`` enables channels: ``{"watch": [{channel_id, events: ["Invoices.create", "Accounts.all",
  ...], notify_url, token (<= 50 chars), channel_expiry, return_affected_field_values,
  notify_on_related_action, notification_condition}]}`` -> 201, per item ``SUCCESS`` with
  ``details.events`` = one ``{channel_expiry, resource_uri, resource_id, resource_name, channel_id}``
  per module. ``channel_expiry`` is at most one week ahead; omitted or further -> one hour.
- ``GET [?channel_id=&module=&page=&per_page=]`` one entry per (channel, module); 204 when none.
- ``PUT`` replaces a channel's details; ``PATCH`` updates some of them, or with
  ``"_delete_events": true`` removes the listed events (a channel left without events is gone);
  ``DELETE ?channel_ids=a,b`` removes channels.
- Scope ``ZohoCRM.notifications.ALL`` or the operation's (CREATE, READ, UPDATE, DELETE); a credit per call.
- Every insert, update (also through upsert) and delete of a watched module, by the UI or the API
  (our own write-backs included), posts ``{"server_time", "query_params", "module",
  "resource_uri", "ids", "affected_fields", "operation": "insert|update|delete", "channel_id",
  "token"}`` to ``notify_url``, one callback per channel and API call, ids only.

Choices where the docs are silent (see README "Notifications"): callbacks are posted in order on
a background thread and retried (0.5 s doubling to 30 s, for 10 minutes: Zoho documents no
retries, notifications are best effort); a 2xx answer is success. ``notification_condition`` and
``notify_on_related_action`` are stored and shown but do not filter; ``affected_fields`` is always
empty. Channels live per org, persist in the store, and vanish at expiry (virtual clock). An
unknown channel id in PUT/PATCH/DELETE answers ``NOT_SUBSCRIBED``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import Response

from sandbox.common.delivery import Deliverer, Delivery, RetryPolicy
from sandbox.zoho.schema import MODULES, MODULES_CI, SUBFORM_PARENT, module_id

if TYPE_CHECKING:
    from sandbox.zoho.app import Ctx, ZohoSandbox

WATCH = "/crm/v8/actions/watch"
#: Store kind of the channels, in the org's scope.
KIND = "_watch"
OPERATIONS = ("create", "edit", "delete", "all")
#: Write kind (or upsert action) -> the callback's ``operation`` and the event it matches.
CALLBACK_OPERATION = {"insert": ("insert", "create"), "update": ("update", "edit"), "delete": ("delete", "delete")}
MAX_EXPIRY = 7 * 86400
DEFAULT_EXPIRY = 3600
MAX_TOKEN = 50
MAX_WATCH = 50


def _error(code: str, message: str, details: dict[str, Any]) -> dict[str, Any]:
    return {"code": code, "details": details, "message": message, "status": "error"}


class _ItemError(Exception):
    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body.get("code"))
        self.body = body


def _mandatory(name: str, i: int) -> _ItemError:
    return _ItemError(_error("MANDATORY_NOT_FOUND", "required field not found",
                             {"api_name": name, "json_path": f"$.watch[{i}].{name}"}))


def _invalid(name: str, i: int, **extra: Any) -> _ItemError:
    return _ItemError(_error("INVALID_DATA", "invalid data",
                             {"api_name": name, "json_path": f"$.watch[{i}].{name}", **extra}))


def _not_subscribed(channel_id: str, i: int | None = None) -> dict[str, Any]:
    details: dict[str, Any] = {"channel_id": channel_id}
    if i is not None:
        details["json_path"] = f"$.watch[{i}].channel_id"
    return _error("NOT_SUBSCRIBED", "the given channel is not subscribed for actions-watch", details)


class ZohoNotifications:
    """Channels of every org and the delivery of their callbacks."""

    def __init__(self, sandbox: ZohoSandbox) -> None:
        self.sandbox = sandbox
        self.deliverer = Deliverer("zoho-notifications",
                                   policy=RetryPolicy(initial=0.5, maximum=30.0, give_up_after=600.0, timeout=10.0))
        self.sent = 0

    # --- channels --------------------------------------------------------------------------------
    def channels(self, org_id: str) -> dict[str, dict[str, Any]]:
        """The org's live channels (expired ones are dropped on the way)."""
        table = self.sandbox.store.table(org_id, KIND)
        now = self.sandbox.clock.time()
        for channel_id in [c for c, doc in table.items() if doc["channel_expiry"] <= now]:
            self.sandbox.store.delete(org_id, KIND, channel_id)
        return table

    def _expiry(self, value: Any, i: int) -> int:
        now = self.sandbox.clock.time()
        if value is None:
            return int(now + DEFAULT_EXPIRY)
        if not isinstance(value, str):
            raise _invalid("channel_expiry", i, expected_data_type="datetime")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise _invalid("channel_expiry", i, expected_data_type="datetime") from None
        if moment.tzinfo is None:
            raise _invalid("channel_expiry", i, expected_data_type="datetime")
        at = moment.timestamp()
        if at > now + MAX_EXPIRY or at <= now:
            return int(now + DEFAULT_EXPIRY)  # "set for more than a week": one hour
        return int(at)

    def _events(self, value: Any, i: int) -> list[str]:
        if value is None:
            raise _mandatory("events", i)
        if not isinstance(value, list) or not value:
            raise _invalid("events", i, expected_data_type="jsonarray")
        out: list[str] = []
        for k, event in enumerate(value):
            module_name, _, op = str(event).rpartition(".") if isinstance(event, str) else ("", "", "")
            module = MODULES_CI.get(module_name.lower())
            if module is None or module in SUBFORM_PARENT or op.lower() not in OPERATIONS:
                raise _ItemError(_error("INVALID_DATA", "invalid data",
                                        {"api_name": "events", "json_path": f"$.watch[{i}].events[{k}]"}))
            name = f"{module}.{op.lower()}"
            if name not in out:
                out.append(name)
        return out

    def _details(self, item: Any, i: int, existing: dict[str, Any] | None, *, partial: bool) -> dict[str, Any]:
        """Validate one watch object into a channel document (merged over ``existing`` when partial)."""
        if not isinstance(item, dict):
            raise _ItemError(_error("INVALID_DATA", "invalid data",
                                    {"json_path": f"$.watch[{i}]", "expected_data_type": "jsonobject"}))
        channel_id = item.get("channel_id")
        if channel_id is None or channel_id == "":
            raise _mandatory("channel_id", i)
        if isinstance(channel_id, bool) or not str(channel_id).isdigit():
            raise _invalid("channel_id", i, expected_data_type="long")
        doc: dict[str, Any] = dict(existing) if (existing and partial) else {}
        doc["channel_id"] = str(channel_id)
        if not partial or "events" in item:
            events = self._events(item.get("events"), i)
            doc["events"] = list(dict.fromkeys((doc.get("events") or []) + events)) if partial else events
        if not partial or "notify_url" in item:
            url = item.get("notify_url")
            if url is None or url == "":
                raise _mandatory("notify_url", i)
            if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
                raise _invalid("notify_url", i)
            doc["notify_url"] = url
        if not partial or "token" in item:
            token = item.get("token")
            if token is not None and (not isinstance(token, str) or len(token) > MAX_TOKEN):
                raise _invalid("token", i, maximum_length=MAX_TOKEN)
            doc["token"] = token
        if not partial or "channel_expiry" in item:
            doc["channel_expiry"] = self._expiry(item.get("channel_expiry"), i)
        for flag, default in (("return_affected_field_values", False), ("notify_on_related_action", True)):
            if flag in item:
                if not isinstance(item[flag], bool):
                    raise _invalid(flag, i, expected_data_type="boolean")
                doc[flag] = item[flag]
            elif not partial or flag not in doc:
                doc[flag] = default
        if "notification_condition" in item:
            if not isinstance(item["notification_condition"], list):
                raise _invalid("notification_condition", i, expected_data_type="jsonarray")
            doc["notification_condition"] = item["notification_condition"]
        elif not partial:
            doc.pop("notification_condition", None)
        return doc

    def _module_entries(self, ctx: Ctx, doc: dict[str, Any], *, expiry: bool = True,
                        events: list[str] | None = None) -> list[dict[str, Any]]:
        org = ctx.org
        assert org is not None
        base = str(ctx.request.base_url).rstrip("/")
        modules = list(dict.fromkeys(e.split(".")[0] for e in (events if events is not None else doc["events"])))
        out = []
        for module in modules:
            entry: dict[str, Any] = {}
            if expiry:
                entry["channel_expiry"] = org.iso(doc["channel_expiry"])
            entry.update({"resource_uri": f"{base}/crm/v8/{module}", "resource_id": module_id(org.id, module),
                          "resource_name": module, "channel_id": doc["channel_id"]})
            out.append(entry)
        return out

    @staticmethod
    def _answer(results: list[dict[str, Any]], ok_status: int) -> tuple[int, dict[str, Any]]:
        ok = sum(1 for r in results if r.get("code") == "SUCCESS")
        status = ok_status if ok == len(results) else 207 if ok else 400
        return status, {"watch": results}

    def _items(self, ctx: Ctx) -> list[Any]:
        from sandbox.zoho.app import ZohoError, bad

        body = ctx.json_body()
        if not isinstance(body, dict):
            raise bad("INVALID_DATA", "body", {"expected_data_type": "jsonobject"})
        items = body.get("watch")
        if items is None:
            raise bad("MANDATORY_NOT_FOUND", "required field not found", {"api_name": "watch", "json_path": "$.watch"})
        if not isinstance(items, list) or not items:
            raise bad("INVALID_DATA", "invalid data", {"api_name": "watch", "json_path": "$.watch",
                                                       "expected_data_type": "jsonarray"})
        if len(items) > MAX_WATCH:
            raise ZohoError(400, _error("LIMIT_EXCEEDED", "count of watch objects exceeds the limit",
                                        {"api_name": "watch", "maximum_length": MAX_WATCH}))
        return items

    # --- handlers (run by ZohoSandbox._call: auth, credits, one store lock) ----------------------------
    def h_enable(self, ctx: Ctx) -> Any:
        org = ctx.auth(("notifications", None, "CREATE"))
        items = self._items(ctx)
        results = []
        for i, item in enumerate(items):
            try:
                doc = self._details(item, i, None, partial=False)
            except _ItemError as exc:
                results.append(exc.body)
                continue
            existing = self.channels(org.id).get(doc["channel_id"])
            if existing is not None:  # enabling a known channel adds its events
                doc["events"] = list(dict.fromkeys(existing["events"] + doc["events"]))
            doc["api_base"] = str(ctx.request.base_url).rstrip("/")
            doc["created_time"] = (existing or {}).get("created_time", int(self.sandbox.clock.time()))
            self.sandbox.store.put(org.id, KIND, doc["channel_id"], doc)
            ctx.keys.append(doc["channel_id"])
            results.append({"code": "SUCCESS", "details": {"events": self._module_entries(ctx, doc)},
                            "message": "Successfully subscribed for actions-watch of the given module",
                            "status": "success"})
        return self._answer(results, 201)

    def h_list(self, ctx: Ctx) -> Any:
        from sandbox.zoho.app import bad

        org = ctx.auth(("notifications", None, "READ"))
        q = ctx.query
        wanted_module = q.get("module")
        module = MODULES_CI.get(wanted_module.lower()) if wanted_module else None
        if wanted_module and module is None:
            raise bad("INVALID_DATA", "invalid data", {"param_name": "module"})
        try:
            page = max(1, int(q.get("page", 1)))
            per_page = min(200, max(1, int(q.get("per_page", 200))))
        except ValueError:
            raise bad("INVALID_DATA", "invalid data", {"param_name": "page"}) from None
        rows: list[dict[str, Any]] = []
        for channel_id, doc in sorted(self.channels(org.id).items()):
            if q.get("channel_id") and q["channel_id"] != channel_id:
                continue
            for entry in self._module_entries(ctx, doc):
                if module and entry["resource_name"] != module:
                    continue
                events = [e for e in doc["events"] if e.split(".")[0] == entry["resource_name"]]
                row = {"notify_on_related_action": doc["notify_on_related_action"], **entry,
                       "notify_url": doc["notify_url"], "events": events, "token": doc.get("token"),
                       "return_affected_field_values": doc["return_affected_field_values"]}
                if doc.get("notification_condition") is not None:
                    row["notification_condition"] = doc["notification_condition"]
                rows.append(row)
        chosen = rows[(page - 1) * per_page: page * per_page]
        if not chosen:
            return 204, None
        return 200, {"watch": chosen, "info": {"per_page": per_page, "count": len(chosen), "page": page,
                                               "more_records": len(rows) > page * per_page}}

    def h_update(self, ctx: Ctx, partial: bool) -> Any:
        org = ctx.auth(("notifications", None, "UPDATE"))
        items = self._items(ctx)
        results = []
        for i, item in enumerate(items):
            channel_id = str(item.get("channel_id")) if isinstance(item, dict) and item.get("channel_id") else None
            existing = self.channels(org.id).get(channel_id) if channel_id else None
            try:
                if channel_id is None:
                    raise _mandatory("channel_id", i)
                if existing is None:
                    raise _ItemError(_not_subscribed(channel_id, i))
                if partial and item.get("_delete_events") is not None:
                    results.append(self._delete_events(ctx, existing, item, i))
                    continue
                doc = self._details(item, i, existing, partial=partial)
            except _ItemError as exc:
                results.append(exc.body)
                continue
            doc["api_base"] = existing.get("api_base")
            doc["created_time"] = existing.get("created_time")
            self.sandbox.store.put(org.id, KIND, doc["channel_id"], doc)
            ctx.keys.append(doc["channel_id"])
            results.append({"code": "SUCCESS", "details": {"events": self._module_entries(ctx, doc)},
                            "message": "Successfully updated the subscribe details", "status": "success"})
        return self._answer(results, 200)

    def _delete_events(self, ctx: Ctx, existing: dict[str, Any], item: dict[str, Any], i: int) -> dict[str, Any]:
        if item["_delete_events"] is not True:
            raise _invalid("_delete_events", i, expected_data_type="boolean")
        removed = self._events(item.get("events"), i)
        org = ctx.org
        assert org is not None
        doc = dict(existing)
        doc["events"] = [e for e in existing["events"] if e not in removed]
        if doc["events"]:
            self.sandbox.store.put(org.id, KIND, doc["channel_id"], doc)
        else:
            self.sandbox.store.delete(org.id, KIND, doc["channel_id"])
        ctx.keys.append(doc["channel_id"])
        return {"code": "SUCCESS",
                "details": {"events": self._module_entries(ctx, existing, expiry=False, events=removed)},
                "message": "Successfully removed the subscribe details", "status": "success"}

    def h_delete(self, ctx: Ctx) -> Any:
        from sandbox.zoho.app import bad

        org = ctx.auth(("notifications", None, "DELETE"))
        raw = ctx.query.get("channel_ids")
        if not raw:
            raise bad("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing",
                      {"param_name": "channel_ids"})
        results = []
        for channel_id in [c.strip() for c in raw.split(",") if c.strip()]:
            doc = self.channels(org.id).get(channel_id)
            if doc is None:
                results.append(_not_subscribed(channel_id))
                continue
            self.sandbox.store.delete(org.id, KIND, channel_id)
            ctx.keys.append(channel_id)
            for entry in self._module_entries(ctx, doc, expiry=False):
                entry.pop("resource_name", None)
                results.append({"code": "SUCCESS", "details": entry,
                                "message": "Successfully un-subscribed from actions-watch", "status": "success"})
        return self._answer(results, 200)

    # --- callbacks -------------------------------------------------------------------------------
    def record_changes(self, org_id: str, module: str, operation: str, ids: list[str]) -> None:
        """Records of ``module`` were inserted/updated/deleted by one call: notify matching channels."""
        if not ids or module not in MODULES or operation not in CALLBACK_OPERATION:
            return
        table = self.sandbox.store.table(org_id, KIND)
        if not table:
            return
        callback_op, event_op = CALLBACK_OPERATION[operation]
        now = self.sandbox.clock.time()
        for channel_id, doc in sorted(table.items()):
            if doc["channel_expiry"] <= now:
                continue
            if f"{module}.{event_op}" not in doc["events"] and f"{module}.all" not in doc["events"]:
                continue
            url = doc["notify_url"]
            body = {"server_time": int(now * 1000), "query_params": dict(parse_qsl(urlsplit(url).query)),
                    "module": module, "resource_uri": f"{doc.get('api_base') or ''}/crm/v8/{module}",
                    "ids": list(ids), "affected_fields": [], "operation": callback_op,
                    "channel_id": channel_id, "token": doc.get("token")}
            self.sent += 1
            self.deliverer.submit(Delivery(url=url, body=json.dumps(body).encode(),
                                           headers={"Content-Type": "application/json"},
                                           label=f"{module}.{callback_op}",
                                           meta={"org": org_id, "channel_id": channel_id, "ids": len(ids)}))

    def record_write(self, org_id: str, module: str, kind: str, results: list[dict[str, Any]]) -> None:
        """After a write call: successful results grouped by what they did (upserts say per record)."""
        grouped: dict[str, list[str]] = {}
        for result in results:
            if result.get("code") != "SUCCESS":
                continue
            action = result.get("action") or kind
            grouped.setdefault(action, []).append(str(result["details"]["id"]))
        for action, ids in grouped.items():
            self.record_changes(org_id, module, action, ids)

    def view(self) -> dict[str, Any]:
        return {"sent": self.sent, "pending_deliveries": self.deliverer.pending(),
                "delivered": self.deliverer.delivered, "failed_attempts": self.deliverer.failed_attempts,
                "given_up": self.deliverer.given_up, "attempts": list(self.deliverer.log)[-50:]}

    def clear(self) -> None:
        self.sent = 0
        self.deliverer.clear()

    # --- routes ----------------------------------------------------------------------------------
    def register(self, app: FastAPI, run: Callable[..., Any]) -> None:
        """Add the watch routes (before the ``/{module}/{id}`` routes would catch ``actions/watch``)."""

        @app.post(WATCH)
        async def enable(request: Request) -> Response:
            return await run(request, self.h_enable, body=True)

        @app.get(WATCH)
        async def list_channels(request: Request) -> Response:
            return await run(request, self.h_list)

        @app.put(WATCH)
        async def replace(request: Request) -> Response:
            return await run(request, self.h_update, False, body=True)

        @app.patch(WATCH)
        async def patch(request: Request) -> Response:
            return await run(request, self.h_update, True, body=True)

        @app.delete(WATCH)
        async def delete(request: Request) -> Response:
            return await run(request, self.h_delete)

        @app.get("/_sandbox/notifications")
        def deliveries() -> dict[str, Any]:
            return self.view()

