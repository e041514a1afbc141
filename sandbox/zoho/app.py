"""The Zoho CRM sandbox: Zoho Accounts (``/oauth/v2/...``) and the CRM v8 API (``/crm/v8/...``) on one port.

Built on the shared frame (:class:`sandbox.common.base.Sandbox`): faults, one commit per request,
stats and journal come from there; this module adds Zoho's routes, auth, limits and admin routes
(``/_sandbox/credentials``, ``/_sandbox/orgs``, ``/_sandbox/limits``, ``/_sandbox/locks``).
Facts and sources: ../shared/docs/zoho-api-notes.md, the v8 OpenAPI files, and README.md beside
this file ("Fidelity notes").
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, MutableMapping
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import Body, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandbox.common.base import Sandbox
from sandbox.common.faults import Fault
from sandbox.zoho import coql
from sandbox.zoho.limits import Limits, coql_cost, write_cost
from sandbox.zoho.notifications import ZohoNotifications
from sandbox.zoho.oauth import FULL_SCOPE, Accounts, Caller
from sandbox.zoho.org import Org, norm_key
from sandbox.zoho.records import (
    RECYCLE_DAYS,
    SORT_FIELDS,
    RecordError,
    RowView,
    apply,
    coerce,
    delete_record,
    invalid,
    iterate,
    locked_error,
    mandatory,
    parse_datetime,
    prepare,
    render,
    render_subform_record,
    sort_key,
    success,
)
from sandbox.zoho.schema import (
    CREATABLE_TYPES,
    DUPLICATE_CHECK_TYPES,
    INVENTORY,
    MODULES,
    MODULES_CI,
    SUBFORM_PARENT,
    FieldDef,
    module_id,
    render_field,
)
from sandbox.zoho.seed import (
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_ORG_ID,
    seed_demo,
    seed_empty,
    seed_generated,
)

Scope = MutableMapping[str, Any]

API = "/crm/v8"
MAX_WRITE = 100
MAX_FIELDS_PARAM = 50
MAX_PER_PAGE = 200
DISCRETE_LIMIT = 2000
TOKEN_REACH = 100_000
PAGE_TOKEN_LIFETIME = 86400
TRIGGERS = ("workflow", "approval", "blueprint", "pathfinder", "orchestration")
REGISTRY = "_sandbox"
#: Paths under /crm/v8/ that are not module names.
RESERVED = frozenset({"settings", "org", "users", "coql"})
THROTTLE_MESSAGES = {
    "credits": "Number of API requests for the 24 hour period is exceeded",
    "concurrency": "The concurrency limit of the user for the app is exceeded",
    "sub_concurrency": "The sub-concurrency limit of the user for the app is exceeded for complex APIs",
}


class ZohoError(Exception):
    """An answer other than success, in Zoho's shape (``body`` None for 204/304)."""

    def __init__(self, status: int, body: Any = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"code": code, "details": details or {}, "message": message, "status": "error"}


def bad(code: str, message: str, details: dict[str, Any] | None = None, status: int = 400) -> ZohoError:
    return ZohoError(status, error_body(code, message, details))


def invalid_module(wrapped: bool = False) -> ZohoError:
    body = error_body("INVALID_MODULE", "the module name given seems to be invalid", {"resource_path_index": 0})
    return ZohoError(400, {"data": [body]} if wrapped else body)


def scope_allows(granted: frozenset[str], group: str, resource: str | None, op: str) -> bool:
    """``ZohoCRM.<group>[.<resource>].<op|ALL>`` grants; ``ZohoCRM.modules.ALL`` covers every module."""
    for scope in granted:
        parts = scope.split(".")
        if len(parts) < 3 or parts[0].lower() != "zohocrm" or parts[1].lower() != group:
            continue
        if len(parts) == 3 and parts[2].upper() in ("ALL", op):
            return True
        if len(parts) == 4 and resource and parts[2].lower() == resource and parts[3].upper() in ("ALL", op):
            return True
    return False


class Ctx:
    """One API call: the request, its caller and org, and what it costs."""

    def __init__(self, sandbox: ZohoSandbox, request: Request, raw: bytes) -> None:
        self.sandbox = sandbox
        self.request = request
        self.raw = raw
        self.caller: Caller | None = None
        self.org: Org | None = None
        self.charged = False
        self.keys: list[str] = []

    @property
    def query(self) -> Any:
        return self.request.query_params

    def now(self) -> int:
        return int(self.sandbox.clock.time())

    def auth(self, *needs: tuple[str, str | None, str], cost: int | None = 1) -> Org:
        """Authenticate (401), admit (429 when throttled), check scopes (401), then charge ``cost``."""
        header = self.request.headers.get("authorization")
        if not header:
            raise bad("AUTHENTICATION_FAILURE", "Authentication failed", status=401)
        scheme, _, token = header.partition(" ")
        caller = self.sandbox.accounts.caller(token.strip()) if scheme.lower() == "zoho-oauthtoken" else None
        if caller is None:
            raise bad("INVALID_TOKEN", "invalid oauth token", status=401)
        self.caller = caller
        self.org = self.sandbox.org(caller.org_id)
        self.request.state.sandbox_tenant = caller.org_id
        throttled = self.request.scope.get("state", {}).get("zoho_throttle")
        if throttled:
            raise bad("TOO_MANY_REQUESTS", THROTTLE_MESSAGES[throttled], status=429)
        for group, resource, op in needs:
            alternatives = [(group, resource, op)]
            if group == "org" and resource in ("taxes", "currencies"):
                alternatives.append(("settings", resource, op))
            if not any(scope_allows(caller.scope, g, r, o) for g, r, o in alternatives):
                raise bad("OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL", status=401)
        if cost is not None:
            self.charge(cost)
        return self.org

    def charge(self, cost: int) -> None:
        assert self.org is not None
        if self.charged:
            return
        if not self.sandbox.limits.try_charge(self.org.id, cost, self.sandbox.clock.time()):
            raise bad("TOO_MANY_REQUESTS", THROTTLE_MESSAGES["credits"], status=429)
        self.charged = True

    def json_body(self) -> Any:
        try:
            return json.loads(self.raw or b"null")
        except ValueError:
            raise bad("INVALID_DATA", "body", {"expected_data_type": "jsonobject"}) from None

    def headers(self) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.org is not None:
            out.update(self.sandbox.limits.remaining_header(self.org.id, self.sandbox.clock.time()))
            if self.caller is not None:
                out["X-ACCESSTOKEN-RESET"] = self.org.iso(self.caller.expires) or ""
        return out


def _module_name(name: str) -> str | None:
    return MODULES_CI.get(name.lower())


class ZohoSandbox(Sandbox):
    """Zoho CRM v8 + Zoho Accounts. The seeds have none of the Xero_* custom fields (onboarding creates
    them through the fields API, as with a real org); ``xero_fields=True`` pre-seeds them."""

    name = "zoho"
    read_only_posts = frozenset({f"{API}/coql"})
    token_routes = frozenset({"/oauth/v2/token", "/oauth/v2/token/revoke", "/oauth/v2/auth"})

    def __init__(self, state_dir: Path | None = None, seed: str = "demo", *, xero_fields: bool = False) -> None:
        self.xero_fields = xero_fields
        self.limits = Limits()
        self._orgs: dict[str, Org] = {}
        self.page_tokens: dict[str, dict[str, Any]] = {}
        self._row_views: dict[tuple[str, str], RowView] = {}
        self._accounts: Accounts | None = None
        super().__init__(state_dir, seed)
        self.asgi = _LimitsLayer(self, self.asgi)  # type: ignore[assignment]

    # --- state -----------------------------------------------------------------------------------
    @property
    def accounts(self) -> Accounts:
        if self._accounts is None:
            self._accounts = Accounts(self.store, self.clock)
        return self._accounts

    def org(self, org_id: str) -> Org:
        org = self._orgs.get(org_id)
        if org is None:
            org = Org(self.store, org_id)
            self._orgs[org_id] = org
        return org

    def org_ids(self) -> list[str]:
        return sorted(self.store.table(REGISTRY, "orgs"))

    def row_view(self, org: Org, sub: str) -> RowView:
        key = (org.id, sub)
        view = self._row_views.get(key)
        if view is None or view.version != org.index(SUBFORM_PARENT[sub]).version:
            view = RowView(org, sub)
            self._row_views[key] = view
        return view

    def _register(self, org_id: str, name: str, seed: str) -> None:
        self.store.put(REGISTRY, "orgs", org_id, {"id": org_id, "name": name, "seed": seed})

    def _new_org_id(self) -> str:
        taken = set(self.org_ids())
        n = len(taken) + 1
        while f"81{n:07d}" in taken:
            n += 1
        return f"81{n:07d}"

    def seed(self, seed: str) -> None:
        self._seed_org(DEMO_ORG_ID, seed, "Harbour Demo Ltd", self.xero_fields, stable_client=True)

    def _seed_org(self, org_id: str, seed: str, name: str, xero_fields: bool, stable_client: bool) -> None:
        org = self.org(org_id)
        now = int(self.clock.time())
        if seed == "demo":
            seed_demo(org, self.accounts, now=now, xero_fields=xero_fields, stable_client=stable_client)
            if not stable_client:
                self.accounts.add_client(org_id)
        elif seed == "empty" or (seed.isdigit() and int(seed) == 0):
            seed_empty(org, now=now, name=name, xero_fields=xero_fields)
            self._client(org_id, stable_client)
        elif seed.isdigit():
            seed_generated(org, int(seed), now=now, name=name, xero_fields=xero_fields)
            self._client(org_id, stable_client)
        else:
            raise ValueError(f"unknown seed {seed!r}: demo, empty or a number of invoices")
        self._register(org_id, org.doc["name"], seed)

    def _client(self, org_id: str, stable: bool) -> None:
        if stable:
            self.accounts.add_client(org_id, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)
        else:
            self.accounts.add_client(org_id)

    def reset(self, seed: str = "demo") -> None:
        with self.store.lock:
            self.notifications.clear()
            self._orgs.clear()
            self.page_tokens.clear()
            self._row_views.clear()
            super().reset(seed)

    def reset_limits(self) -> None:
        self.limits.reset()

    def tenant_of(self, headers: dict[str, str]) -> str | None:
        scheme, _, token = (headers.get("authorization") or "").partition(" ")
        caller = self.accounts.caller(token.strip()) if scheme.lower() == "zoho-oauthtoken" else None
        return caller.org_id if caller else None

    def fault_response(self, fault: Fault) -> Response:
        if fault.kind == "429":
            return JSONResponse(error_body("TOO_MANY_REQUESTS", THROTTLE_MESSAGES["concurrency"],
                                           {"retry_after": fault.retry_after}), status_code=429)
        if fault.kind == "503":
            return HTMLResponse("<html><head><title>503 Service Temporarily Unavailable</title></head><body>"
                                "<h1>Service Temporarily Unavailable</h1></body></html>", status_code=503)
        return JSONResponse(error_body("INTERNAL_ERROR", "Internal server error occurred."), status_code=500)

    def credentials(self, org_id: str, base_url: str) -> dict[str, Any]:
        client = self.accounts.client_for_org(org_id)
        if client is None:
            client = self.accounts.add_client(org_id)
        return {"client_id": client["client_id"], "client_secret": client["client_secret"],
                "refresh_token": self.accounts.new_refresh_token(client["client_id"], FULL_SCOPE),
                "org_id": org_id, "api_domain": base_url, "accounts_url": base_url}

    # --- plumbing --------------------------------------------------------------------------------
    async def _run(self, request: Request, handler: Callable[..., Any], *args: Any, body: bool = False) -> Response:
        raw = await request.body() if body else b""
        return await run_in_threadpool(self._call, request, handler, raw, args)

    def _call(self, request: Request, handler: Callable[..., Any], raw: bytes, args: tuple[Any, ...]) -> Response:
        ctx = Ctx(self, request, raw)
        with self.store.lock:
            try:
                result = handler(ctx, *args)
            except ZohoError as exc:
                result = exc
            except RecordError as exc:
                result = ZohoError(400, exc.result())
            except coql.CoqlError as exc:
                result = ZohoError(400, exc.body)
            if ctx.org is not None and not ctx.charged and isinstance(result, ZohoError) and result.status not in (
                    401, 429):
                # An admitted call that failed its checks still costs its credit.
                self.limits.try_charge(ctx.org.id, 1, self.clock.time())
                ctx.charged = True
            if ctx.keys:
                request.state.journal_keys = ctx.keys
            headers = ctx.headers()
        if isinstance(result, ZohoError):
            status, payload = result.status, result.body
        elif isinstance(result, Response):
            for k, v in headers.items():
                result.headers[k] = v
            return result
        else:
            status, payload = result
        if payload is None:
            return Response(status_code=status, headers=headers)
        return JSONResponse(payload, status_code=status, headers=headers)

    def _module(self, name: str, *, wrapped: bool = False, records_only: bool = False) -> str:
        module = _module_name(name)
        if module is None or (records_only and module in SUBFORM_PARENT):
            raise invalid_module(wrapped)
        return module

    # --- routes ----------------------------------------------------------------------------------
    def add_routes(self, app: FastAPI) -> None:
        self._add_admin_routes(app)
        self._add_oauth_routes(app)
        r = self._run
        # /crm/v8/actions/watch before /{module}/{id} catches it; callbacks follow every record write.
        self.notifications = ZohoNotifications(self)
        self.notifications.register(app, r)

        @app.exception_handler(StarletteHTTPException)
        async def not_found(request: Request, exc: StarletteHTTPException) -> Response:
            if request.url.path.startswith("/_sandbox"):
                return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
            if exc.status_code == 405:
                return JSONResponse(error_body("INVALID_REQUEST_METHOD",
                                               "The http request method type is not a valid one"), status_code=405)
            return JSONResponse(error_body("INVALID_URL_PATTERN",
                                           "Please check if the URL trying to access is a correct one"),
                                status_code=404)

        @app.get(f"{API}/org")
        async def get_org(request: Request) -> Response:
            return await r(request, self.h_org)

        @app.get(f"{API}/org/taxes")
        async def get_taxes(request: Request) -> Response:
            return await r(request, self.h_taxes)

        @app.get(f"{API}/org/currencies")
        async def get_currencies(request: Request) -> Response:
            return await r(request, self.h_currencies)

        @app.get(f"{API}/users")
        async def get_users(request: Request) -> Response:
            return await r(request, self.h_users, None)

        @app.get(f"{API}/users/{{user_id}}")
        async def get_user(user_id: str, request: Request) -> Response:
            return await r(request, self.h_users, user_id)

        @app.get(f"{API}/settings/modules")
        async def get_modules(request: Request) -> Response:
            return await r(request, self.h_modules, None)

        @app.get(f"{API}/settings/modules/{{module_api_name}}")
        async def get_module(module_api_name: str, request: Request) -> Response:
            return await r(request, self.h_modules, module_api_name)

        @app.get(f"{API}/settings/fields")
        async def get_fields(request: Request) -> Response:
            return await r(request, self.h_fields, None)

        @app.get(f"{API}/settings/fields/{{field_id}}")
        async def get_field(field_id: str, request: Request) -> Response:
            return await r(request, self.h_fields, field_id)

        @app.post(f"{API}/settings/fields")
        async def create_fields(request: Request) -> Response:
            return await r(request, self.h_create_fields, body=True)

        @app.post(f"{API}/coql")
        async def run_coql(request: Request) -> Response:
            return await r(request, self.h_coql, body=True)

        @app.get(f"{API}/{{module_api_name}}/deleted")
        async def deleted(module_api_name: str, request: Request) -> Response:
            return await r(request, self.h_deleted, module_api_name)

        @app.get(f"{API}/{{module_api_name}}/actions/count")
        async def count(module_api_name: str, request: Request) -> Response:
            return await r(request, self.h_count, module_api_name)

        @app.post(f"{API}/{{module_api_name}}/upsert")
        async def upsert(module_api_name: str, request: Request) -> Response:
            return await r(request, self.h_write, module_api_name, "upsert", None, body=True)

        @app.get(f"{API}/{{module_api_name}}/{{record_id}}")
        async def get_record(module_api_name: str, record_id: str, request: Request) -> Response:
            return await r(request, self.h_get, module_api_name, record_id)

        @app.put(f"{API}/{{module_api_name}}/{{record_id}}")
        async def update_record(module_api_name: str, record_id: str, request: Request) -> Response:
            return await r(request, self.h_write, module_api_name, "update", record_id, body=True)

        @app.delete(f"{API}/{{module_api_name}}/{{record_id}}")
        async def delete_one(module_api_name: str, record_id: str, request: Request) -> Response:
            return await r(request, self.h_delete, module_api_name, record_id)

        @app.get(f"{API}/{{module_api_name}}")
        async def list_records(module_api_name: str, request: Request) -> Response:
            return await r(request, self.h_list, module_api_name)

        @app.post(f"{API}/{{module_api_name}}")
        async def insert(module_api_name: str, request: Request) -> Response:
            return await r(request, self.h_write, module_api_name, "insert", None, body=True)

        @app.put(f"{API}/{{module_api_name}}")
        async def update(module_api_name: str, request: Request) -> Response:
            return await r(request, self.h_write, module_api_name, "update", None, body=True)

        @app.delete(f"{API}/{{module_api_name}}")
        async def delete_many(module_api_name: str, request: Request) -> Response:
            return await r(request, self.h_delete, module_api_name, None)

    # --- Zoho Accounts ---------------------------------------------------------------------------
    def _add_oauth_routes(self, app: FastAPI) -> None:
        @app.get("/oauth/v2/auth")
        def authorize(request: Request) -> Response:
            q = request.query_params
            base = str(request.base_url).rstrip("/")
            with self.store.lock:
                client = self.accounts.client(q.get("client_id"))
                redirect_uri = q.get("redirect_uri")
                if client is None:
                    return HTMLResponse("<html><body><h2>Invalid Client</h2><p>The client_id is invalid.</p>"
                                        "</body></html>", status_code=400)
                if not redirect_uri:
                    return HTMLResponse("<html><body><h2>Invalid Redirect Uri</h2></body></html>", status_code=400)
                request.state.sandbox_tenant = client["org_id"]
                params: dict[str, str] = {}
                if q.get("response_type") != "code":
                    params["error"] = "unsupported_response_type"
                elif not q.get("scope"):
                    params["error"] = "invalid_scope"
                else:
                    # Zoho's authorization request lists scopes comma-separated; tokens report them
                    # space-separated (spaces are accepted as well).
                    scope = " ".join(s for s in q["scope"].replace(",", " ").split() if s)
                    params["code"] = self.accounts.authorize(client["client_id"], redirect_uri, scope,
                                                             q.get("access_type", "online"))
                params.update({"location": "us", "accounts-server": base})
                if q.get("state") is not None:
                    params["state"] = q["state"]
            sep = "&" if "?" in redirect_uri else "?"
            return RedirectResponse(f"{redirect_uri}{sep}{urlencode(params)}", status_code=302)

        @app.post("/oauth/v2/token")
        async def token(request: Request) -> Response:
            raw = await request.body()
            base = str(request.base_url).rstrip("/")

            def work() -> Response:
                params = dict(request.query_params)
                if raw and "json" not in (request.headers.get("content-type") or ""):
                    params.update(dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True)))
                with self.store.lock:
                    client = self.accounts.client(params.get("client_id"))
                    if client is not None:
                        request.state.sandbox_tenant = client["org_id"]
                    body = self.accounts.token(params, base)
                return JSONResponse(body, status_code=200)
            return await run_in_threadpool(work)

        @app.post("/oauth/v2/token/revoke")
        async def revoke(request: Request) -> Response:
            raw = await request.body()

            def work() -> Response:
                params = dict(request.query_params)
                if raw:
                    params.update(dict(parse_qsl(raw.decode("utf-8", "replace"))))
                with self.store.lock:
                    ok = self.accounts.revoke(params.get("token") or "")
                if ok:
                    return JSONResponse({"status": "success"})
                return JSONResponse({"status": "failure", "error": "invalid_token"}, status_code=400)
            return await run_in_threadpool(work)

    # --- metadata --------------------------------------------------------------------------------
    def h_org(self, ctx: Ctx) -> Any:
        org = ctx.auth(("org", None, "READ"))
        return 200, {"org": [self.org_view(org)]}

    def org_view(self, org: Org) -> dict[str, Any]:
        d = org.doc
        user = org.user
        base = next((c for c in org.currencies if c.get("is_base")), {"iso_code": d.get("currency"), "symbol": "$"})
        return {
            "id": f"{org.id}0000000000", "zgid": org.id, "ezgid": org.id,
            "zia_zgid": int(org.id), "zia_portal_id": None, "domain_name": f"org{org.id}", "alias": None,
            "company_name": d["name"], "type": "production", "description": None, "photo_id": None,
            "primary_email": user["email"], "primary_zuid": user["zuid"], "phone": None, "mobile": None,
            "fax": None, "website": None, "street": None, "city": None, "state": None, "zip": None,
            "country": "New Zealand", "country_code": "NZ", "time_zone": d["time_zone"],
            "currency": base.get("name", base["iso_code"]), "iso_code": base["iso_code"],
            "currency_symbol": base.get("symbol", "$"), "currency_locale": "en_NZ", "mc_status": True,
            "gapps_enabled": False, "translation_enabled": False, "privacy_settings": False,
            "hipaa_compliance_enabled": False, "lite_users_enabled": False, "deletable_org_account": False,
            "oauth_presence": True, "call_icon": None, "max_per_page": MAX_PER_PAGE,
            "license_details": {"paid_expiry": org.iso(d["created_time"] + 365 * 86400),
                                "users_license_purchased": self.limits.settings.users, "trial_type": None,
                                "trial_expiry": None, "paid": True, "paid_type": self.limits.settings.edition,
                                "trial_action": "none"},
            "hierarchy_preferences": {"type": "Role_Hierarchy", "strictly_reporting": False},
            "checkin_preferences": {"restricted_event_types": None},
            "employee_count": None, "created_time": org.iso(d["created_time"]),
        }

    def h_taxes(self, ctx: Ctx) -> Any:
        org = ctx.auth(("org", "taxes", "READ"))
        taxes = [{"id": t["id"], "name": t["name"], "display_label": t["display_label"], "value": t["value"],
                  "sequence_number": t["sequence_number"]} for t in org.taxes]
        return 200, {"taxes": taxes, "preference": {"auto_populate_tax": False, "modify_tax_rates": False}}

    def h_currencies(self, ctx: Ctx) -> Any:
        org = ctx.auth(("org", "currencies", "READ"))
        user = org.user_ref(with_email=False)
        out = [{"id": c["id"], "iso_code": c["iso_code"], "name": c["name"], "symbol": c["symbol"],
                "exchange_rate": c["exchange_rate"], "is_active": c["is_active"], "is_base": c["is_base"],
                "prefix_symbol": True, "created_time": org.iso(c["created_time"]), "created_by": user,
                "modified_time": org.iso(c["created_time"]), "modified_by": user,
                "format": {"decimal_separator": "Period", "thousand_separator": "Comma", "decimal_places": "2"}}
               for c in org.currencies]
        return 200, {"currencies": out}

    def h_users(self, ctx: Ctx, user_id: str | None) -> Any:
        org = ctx.auth(("users", None, "READ"))
        kind = ctx.query.get("type", "AllUsers")
        kinds = ("AllUsers", "ActiveUsers", "DeactiveUsers", "ConfirmedUsers", "NotConfirmedUsers",
                 "DeletedUsers", "ActiveConfirmedUsers", "AdminUsers", "ActiveConfirmedAdmins", "CurrentUser")
        if kind not in kinds:
            raise bad("INVALID_DATA", "invalid data", {"param_name": "type", "supported_values": list(kinds)})
        user = org.user
        if (user_id is not None and user_id != user["id"]) or kind in ("DeactiveUsers", "NotConfirmedUsers",
                                                                        "DeletedUsers"):
            raise ZohoError(204)
        view = {
            "id": user["id"], "zuid": user["zuid"], "first_name": user["first_name"], "last_name": user["last_name"],
            "full_name": user["full_name"], "email": user["email"], "status": "active", "confirm": True,
            "role": {"name": "CEO", "id": f"{org.id}5000000001"},
            "profile": {"name": "Administrator", "id": f"{org.id}7000000001"},
            "time_zone": org.doc["time_zone"], "locale": "en_NZ", "country_locale": "en_NZ", "language": "en_NZ",
            "country": "NZ", "date_format": "dd/MM/yyyy", "time_format": "hh:mm a", "Currency": org.doc["currency"],
            "Isonline": False, "alias": None, "phone": None, "mobile": None, "sandboxDeveloper": False,
            "created_time": org.iso(org.doc["created_time"]), "Modified_Time": org.iso(org.doc["created_time"]),
            "created_by": org.user_ref(with_email=False), "Modified_By": org.user_ref(with_email=False),
        }
        return 200, {"users": [view], "info": {"per_page": 200, "count": 1, "page": 1, "more_records": False}}

    def h_modules(self, ctx: Ctx, name: str | None) -> Any:
        org = ctx.auth(("settings", "modules", "READ"))
        if name is None:
            return 200, {"modules": [self.module_view(org, m, i) for i, m in enumerate(MODULES, start=1)]}
        module = _module_name(name)
        if module is None:
            raise bad("INVALID_MODULE", "the module name given seems to be invalid", {"api_name": name})
        view = self.module_view(org, module, list(MODULES).index(module) + 1)
        view["fields"] = [{"api_name": f.api_name, "id": f.id} for f in org.fields(module)]
        return 200, {"modules": [view]}

    def module_view(self, org: Org, module: str, seq: int) -> dict[str, Any]:
        mdef = MODULES[module]
        sub = mdef.generated_type == "subform"
        return {
            "has_more_profiles": False, "sub_menu_available": False, "common.search_supported": not sub,
            "deletable": False, "description": None, "creatable": not sub, "recycle_bin_on_delete": True,
            "inventory_template_supported": module in INVENTORY, "modified_time": None,
            "plural_label": mdef.plural, "presence_sub_menu": False, "triggers_supported": not sub,
            "id": module_id(org.id, module), "chart_view": False, "isBlueprintSupported": not sub,
            "visibility": 1, "visible": not sub, "convertable": False, "editable": not sub,
            "emailTemplate_support": not sub, "email_parser_supported": False, "filter_supported": True,
            "show_as_tab": not sub, "web_link": None, "sequence_number": seq, "singular_label": mdef.singular,
            "viewable": True, "api_supported": True, "api_name": module, "quick_create": not sub,
            "generated_type": mdef.generated_type, "feeds_required": False, "scoring_supported": False,
            "webform_supported": False, "arguments": [], "module_name": mdef.module_name,
            "chart_view_supported": False, "profile_count": 2, "business_card_field_limit": 5,
            "track_current_data": False, "modified_by": org.user_ref(with_email=False),
            "profiles": [{"name": "Administrator", "id": f"{org.id}7000000001"},
                         {"name": "Standard", "id": f"{org.id}7000000002"}],
            "parent_module": {"api_name": mdef.parent, "id": module_id(org.id, mdef.parent)} if mdef.parent else {},
            "activity_badge": None, "$field_states": [], "business_card_fields": [], "per_page": MAX_PER_PAGE,
            "$properties": [], "$on_demand_properties": [], "search_layout_fields": [],
            "kanban_view_supported": False, "lookup_field_properties": {}, "kanban_view": False,
            "related_lists": [], "filter_status": True, "related_list_properties": {},
            "display_field": {"api_name": mdef.display_field, "id": None}, "layouts": [], "fields": [],
            "custom_view": None, "zia_view": False, "default_mapping_fields": [], "status": "visible",
            "static_subform_properties": {}, "layout_associations": [],
        }

    def h_fields(self, ctx: Ctx, field_id: str | None) -> Any:
        org = ctx.auth(("settings", "fields", "READ"))
        name = ctx.query.get("module")
        if not name:
            raise bad("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {"param_name": "module"})
        module = _module_name(name)
        if module is None:
            raise bad("INVALID_MODULE", "the module name given seems to be invalid", {"api_name": "module"})
        kind = ctx.query.get("type", "all")
        if kind not in ("all", "used", "unused"):
            raise bad("INVALID_DATA", "invalid data", {"api_name": "type", "json_path": "$.type"})
        fields = [] if kind == "unused" else list(org.fields(module))
        if field_id is not None:
            fields = [f for f in fields if f.id == field_id]
        if not fields:
            raise ZohoError(204)
        out = [render_field(f, org.id, module, org.iso, org.picklist(module, f) if f.data_type in (
            "picklist", "multiselectpicklist") else None, i) for i, f in enumerate(fields, start=1)]
        return 200, {"fields": out}

    def h_create_fields(self, ctx: Ctx) -> Any:
        org = ctx.auth(("settings", "fields", "CREATE"))
        name = ctx.query.get("module")
        if not name:
            raise bad("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {"param_name": "module"})
        module = _module_name(name)
        if module is None or module in SUBFORM_PARENT:
            raise bad("INVALID_MODULE", "the module name given seems to be invalid", {"api_name": "module"})
        body = ctx.json_body()
        items = body.get("fields") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise ZohoError(400, {"fields": [error_body("MANDATORY_NOT_FOUND", "required field not found",
                                                        {"api_name": "fields", "json_path": "$.fields"})]})
        results, ok = [], 0
        for i, item in enumerate(items):
            try:
                f = self._new_field(org, module, item, i)
            except RecordError as exc:
                results.append(exc.result())
                continue
            org.add_custom_field(module, f)
            ok += 1
            ctx.keys.append(f"{module}.{f.api_name}")
            results.append({"code": "SUCCESS", "details": {"id": f.id}, "message": "field created",
                            "status": "success"})
        status = 201 if ok == len(items) else 207 if ok else 400
        return status, {"fields": results}

    def _new_field(self, org: Org, module: str, item: Any, i: int) -> FieldDef:
        base = f"$.fields[{i}]"
        if not isinstance(item, dict):
            raise invalid("fields", base, expected_data_type="jsonobject")
        label = item.get("field_label")
        if not isinstance(label, str) or not label.strip():
            raise mandatory("field_label", f"{base}.field_label")
        dtype = item.get("data_type")
        if not dtype:
            raise mandatory("data_type", f"{base}.data_type")
        if dtype not in CREATABLE_TYPES:
            raise invalid("data_type", f"{base}.data_type")
        if len(label) > 50:
            raise invalid("field_label", f"{base}.field_label", maximum_length=50)
        api_name = item.get("api_name")
        derived = api_name is None
        if derived:
            api_name = "_".join(part for part in "".join(c if c.isalnum() else " " for c in label).split())
        if not isinstance(api_name, str) or not api_name or not api_name[0].isalpha() or not all(
                c.isalnum() or c == "_" for c in api_name) or len(api_name) > 50:
            raise invalid("api_name", f"{base}.api_name")
        taken = {f.api_name.lower() for f in org.fields(module)}
        labels = {f.display_label.lower() for f in org.fields(module)}
        if api_name.lower() in taken:
            raise RecordError("DUPLICATE_DATA", "duplicate data",
                              {"api_name": "field_label" if derived else "api_name",
                               "json_path": f"{base}.{'field_label' if derived else 'api_name'}"})
        if label.lower() in labels:
            raise RecordError("DUPLICATE_DATA", "duplicate data",
                              {"api_name": "field_label", "json_path": f"{base}.field_label"})
        length = item.get("length")
        if length is not None:
            limit = 255 if dtype in ("text", "email", "phone", "website") else 32000 if dtype == "textarea" else 18
            if isinstance(length, bool) or not isinstance(length, int) or not 1 <= length <= limit:
                raise invalid("length", f"{base}.length", expected_data_type="integer")
        decimals = item.get("decimal_place")
        if decimals is not None and (isinstance(decimals, bool) or not isinstance(decimals, int)
                                     or not 0 <= decimals <= 9):
            raise invalid("decimal_place", f"{base}.decimal_place", expected_data_type="integer")
        picklist: tuple[str, ...] = ()
        if dtype in ("picklist", "multiselectpicklist"):
            values = item.get("pick_list_values")
            if not isinstance(values, list) or not values:
                raise mandatory("pick_list_values", f"{base}.pick_list_values")
            out = []
            for k, v in enumerate(values):
                text = v.get("actual_value") or v.get("display_value") if isinstance(v, dict) else None
                if not isinstance(text, str) or not text:
                    raise mandatory("display_value", f"{base}.pick_list_values[{k}].display_value")
                out.append(text)
            picklist = tuple(out)
        lookup = None
        if dtype == "lookup":
            target = ((item.get("lookup") or {}).get("module") or {}).get("api_name") if isinstance(
                item.get("lookup"), dict) else None
            if not target:
                raise mandatory("lookup", f"{base}.lookup")
            lookup = _module_name(str(target))
            if lookup is None or lookup in SUBFORM_PARENT:
                raise invalid("api_name", f"{base}.lookup.module.api_name")
        unique = item.get("unique")
        case_sensitive = False
        if isinstance(unique, dict):
            flag = unique.get("casesensitive", unique.get("case_sensitive", False))
            case_sensitive = flag is True or str(flag).lower() == "true"
        elif unique not in (None, False):
            raise invalid("unique", f"{base}.unique", expected_data_type="jsonobject")
        return FieldDef(api_name=api_name, data_type=dtype, label=label, length=length, custom=True,
                        unique=isinstance(unique, dict), case_sensitive=case_sensitive, picklist=picklist,
                        lookup=lookup,
                        decimal_place=decimals if decimals is not None else (
                            2 if dtype in ("double", "currency", "percent") else None),
                        id=org.next_id(), created_time=int(self.clock.time()))

    # --- COQL ------------------------------------------------------------------------------------
    def h_coql(self, ctx: Ctx) -> Any:
        org = ctx.auth(("coql", None, "READ"), ("modules", None, "READ"), cost=None)
        body = ctx.json_body()
        text = body.get("select_query") if isinstance(body, dict) else None
        query = coql.parse(text)
        needed = MODULES[query.module].scope_name
        if not scope_allows(ctx.caller.scope if ctx.caller else frozenset(), "modules", needed, "READ"):
            raise bad("OAUTH_SCOPE_MISMATCH", "invalid oauth scope to access this URL", status=401)
        ctx.charge(coql_cost(query.limit))
        rows, more = coql.run(org, query, lambda sub: self.row_view(org, sub))
        if not rows:
            raise ZohoError(204)
        return 200, {"data": rows, "info": {"count": len(rows), "more_records": more}}

    # --- reads -----------------------------------------------------------------------------------
    def _ims(self, ctx: Ctx) -> int | None:
        value = ctx.request.headers.get("if-modified-since")
        if not value:
            return None
        stamp = parse_datetime(value)
        if stamp is None:
            try:
                stamp = int(parsedate_to_datetime(value).timestamp())
            except (TypeError, ValueError):
                raise bad("INVALID_DATA", "invalid data", {"api_name": "If-Modified-Since",
                                                           "json_path": "$.headers.If-Modified-Since"}) from None
        return stamp

    def _names(self, ctx: Ctx, org: Org, module: str, required: bool) -> list[str] | None:
        raw = ctx.query.get("fields")
        if raw is None or not raw.strip():
            if required:
                raise bad("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing",
                          {"param_name": "fields"})
            return None
        names = list(dict.fromkeys(n.strip() for n in raw.split(",") if n.strip()))
        if len(names) > MAX_FIELDS_PARAM:
            raise bad("LIMIT_EXCEEDED", "limit exceeded", {"limit": MAX_FIELDS_PARAM, "param_name": "fields"})
        for n in names:
            if n != "id" and org.field(module, n) is None:
                raise bad("INVALID_DATA", "invalid data", {"param_name": "fields", "api_name": n})
        return names

    def _int_param(self, ctx: Ctx, name: str, default: int, low: int = 1) -> int:
        raw = ctx.query.get(name)
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            raise bad("INVALID_DATA", "invalid data", {"param_name": name, "expected_data_type": "integer"}) from None
        if value < low:
            raise bad("INVALID_DATA", "invalid data", {"param_name": name})
        return value

    def h_list(self, ctx: Ctx, name: str) -> Any:
        module = self._module(name)
        org = ctx.auth(("modules", MODULES[module].scope_name, "READ"))
        names = self._names(ctx, org, module, required=True)
        q = ctx.query
        sort_by = q.get("sort_by", "id")
        if sort_by not in SORT_FIELDS:
            raise bad("INVALID_DATA", "invalid data", {"param_name": "sort_by", "supported_values": list(SORT_FIELDS)})
        sort_order = q.get("sort_order", "desc")
        if sort_order not in ("asc", "desc"):
            raise bad("INVALID_DATA", "invalid data", {"param_name": "sort_order", "supported_values": ["asc", "desc"]})
        if q.get("cvid"):
            raise bad("INVALID_DATA", "invalid data", {"param_name": "cvid"})
        per_page = min(self._int_param(ctx, "per_page", MAX_PER_PAGE), MAX_PER_PAGE)
        ims = self._ims(ctx)
        ids = None
        if q.get("ids"):
            ids = {i.strip() for i in q["ids"].split(",") if i.strip()}
        token = q.get("page_token")
        signature = [module, sorted((k, v) for k, v in q.multi_items() if k not in ("page_token", "page")), ims]
        now = ctx.now()
        cursor, skip, page, before, previous = None, 0, 1, 0, None
        if token:
            if "page" in q:
                raise bad("AMBIGUITY_DURING_PROCESSING", "ambiguity while processing the request",
                          {"ambiguity_due_to": [{"param_name": "page"}, {"param_name": "page_token"}]})
            state = self.page_tokens.get(token)
            if state is None or state["org"] != org.id:
                raise bad("INVALID_DATA", "invalid data", {"param_name": "page_token"})
            if state["expires"] <= now:
                raise bad("EXPIRED_VALUE", "Page token expired",
                          {"api_name": "page_token", "json_path": "$.query.page_token"})
            if state["signature"] != signature:
                raise bad("TOKEN_BOUND_DATA_MISMATCH",
                          "The page_token given seems to be invalid or input param is added or altered or deleted",
                          {"param_name": "page_token"})
            if state["served"] >= TOKEN_REACH:
                raise bad("PAGINATION_LIMIT_EXCEEDED", "You can only get upto 100000 records using page_token param",
                          {"param_name": "page_token"})
            cursor, page, before, previous = state["cursor"], state["page"], state["served"], state["previous"]
        else:
            page = self._int_param(ctx, "page", 1)
            if page * per_page > DISCRETE_LIMIT:
                raise bad("DISCRETE_PAGINATION_LIMIT_EXCEEDED",
                          "You can only get the first 2000 records without using page_token param",
                          {"limit": DISCRETE_LIMIT})
            skip = before = (page - 1) * per_page
        view = self.row_view(org, module) if module in SUBFORM_PARENT else org.index(module)
        take = min(per_page, TOKEN_REACH - before)
        records = iterate(view, sort_by, sort_order == "asc", cursor, ims, ids)
        found = []
        for rec in records:
            if skip:
                skip -= 1
                continue
            found.append(rec)
            if len(found) == take:
                break
        more = bool(found) and next(records, None) is not None
        if not found:
            raise ZohoError(304 if ims is not None else 204)
        if module in SUBFORM_PARENT:
            data = [render_subform_record(org, module, rec, names) for rec in found]
        else:
            data = [render(org, module, rec, names) for rec in found]
        next_token, expiry = None, None
        if more:
            next_token = secrets.token_hex(24)
            expiry = now + PAGE_TOKEN_LIFETIME
            self._prune_tokens(now)
            self.page_tokens[next_token] = {
                "org": org.id, "signature": signature, "cursor": sort_key(found[-1], sort_by), "page": page + 1,
                "served": before + len(found), "expires": expiry, "previous": token,
            }
        info = {"per_page": per_page, "count": len(data), "page": page, "sort_by": sort_by,
                "sort_order": sort_order, "more_records": more, "next_page_token": next_token,
                "previous_page_token": previous, "page_token_expiry": org.iso(expiry), "call": False,
                "email": False}
        return 200, {"data": data, "info": info}

    def _prune_tokens(self, now: int) -> None:
        if len(self.page_tokens) > 20000:
            for key in [k for k, v in self.page_tokens.items() if v["expires"] <= now][:10000]:
                del self.page_tokens[key]
            while len(self.page_tokens) > 20000:
                del self.page_tokens[next(iter(self.page_tokens))]

    def h_get(self, ctx: Ctx, name: str, record_id: str) -> Any:
        module = self._module(name)
        org = ctx.auth(("modules", MODULES[module].scope_name, "READ"))
        names = self._names(ctx, org, module, required=False)
        if not record_id.isdigit():
            raise bad("INVALID_DATA", "the id given seems to be invalid", {"api_name": "id", "resource_path_index": 1})
        if module in SUBFORM_PARENT:
            rec = self.row_view(org, module).table.get(record_id)
            if rec is None:
                raise ZohoError(204)
            return 200, {"data": [render_subform_record(org, module, rec, names)]}
        rec = org.get(module, record_id)
        if rec is None:
            raise ZohoError(204)
        ims = self._ims(ctx)
        if ims is not None and rec.get("Modified_Time", 0) <= ims:
            raise ZohoError(304)
        return 200, {"data": [render(org, module, rec, names)]}

    def h_count(self, ctx: Ctx, name: str) -> Any:
        module = self._module(name, records_only=True)
        org = ctx.auth(("modules", MODULES[module].scope_name, "READ"))
        return 200, {"count": str(len(org.table(module)))}

    def h_deleted(self, ctx: Ctx, name: str) -> Any:
        module = self._module(name, wrapped=True, records_only=True)
        org = ctx.auth(("modules", MODULES[module].scope_name, "READ"))
        kind = ctx.query.get("type", "all")
        if kind not in ("all", "recycle", "permanent"):
            raise ZohoError(400, {"data": [error_body("PATTERN_NOT_MATCHED", "Please check whether the input values "
                                                      "are correct", {"param_name": "type"})]})
        per_page = min(self._int_param(ctx, "per_page", MAX_PER_PAGE), MAX_PER_PAGE)
        page = self._int_param(ctx, "page", 1)
        ims = self._ims(ctx)
        now = ctx.now()
        cutoff = now - RECYCLE_DAYS * 86400
        entries = sorted(org.deleted_table(module).values(), key=lambda e: (e["deleted_time"], e["id"]), reverse=True)
        chosen = []
        for e in entries:
            etype = "permanent" if e["deleted_time"] <= cutoff else "recycle"
            if kind != "all" and etype != kind:
                continue
            if ims is not None and e["deleted_time"] <= ims:
                continue
            chosen.append((e, etype))
        window = chosen[(page - 1) * per_page: page * per_page]
        if not window:
            raise ZohoError(304 if ims is not None and not chosen else 204)
        data = []
        for e, etype in window:
            recycle = etype == "recycle"
            data.append({
                "deleted_by": org.user_ref(e.get("deleted_by"), with_email=False) if recycle else None,
                "id": e["id"], "display_name": e.get("display_name") if recycle else None, "type": etype,
                "created_by": org.user_ref(e.get("created_by"), with_email=False) if recycle else None,
                "deleted_time": org.iso(e["deleted_time"]),
            })
        return 200, {"data": data, "info": {"per_page": per_page, "count": len(data), "page": page,
                                            "more_records": len(chosen) > page * per_page}}

    # --- writes ----------------------------------------------------------------------------------
    def h_write(self, ctx: Ctx, name: str, kind: str, record_id: str | None) -> Any:
        module = _module_name(name)
        if module is None:
            raise invalid_module(wrapped=True)
        scope = MODULES[module].scope_name
        ops = {"insert": ["CREATE"], "update": ["UPDATE"], "upsert": ["CREATE", "UPDATE"]}[kind]
        org = ctx.auth(*[("modules", scope, op) for op in ops], cost=None)
        if module in SUBFORM_PARENT:
            raise ZohoError(400, {"data": [error_body("NOT_SUPPORTED", "the module is not supported for this "
                                                      "operation; write rows through the parent record",
                                                      {"resource_path_index": 0})]})
        body = ctx.json_body()
        if not isinstance(body, dict):
            raise bad("INVALID_DATA", "body", {"expected_data_type": "jsonobject"})
        if "data" not in body:
            raise bad("MANDATORY_NOT_FOUND", "required field not found", {"api_name": "data", "json_path": "$.data"})
        items = body["data"]
        if not isinstance(items, list) or not items:
            raise bad("INVALID_DATA", "invalid data", {"api_name": "data", "json_path": "$.data",
                                                       "expected_data_type": "jsonarray"})
        limit = 1 if record_id is not None else MAX_WRITE
        if len(items) > limit:
            raise ZohoError(400, {"data": [error_body("LIMIT_EXCEEDED", "count of records in your request exceeds "
                                                      "the limit", {"maximum_length": limit, "api_name": "data"})]})
        self._check_trigger(body)
        dup_fields = self._duplicate_check_fields(org, module, body) if kind == "upsert" else []
        ctx.charge(write_cost(len(items)))
        ius = None
        if kind == "update" and ctx.request.headers.get("if-unmodified-since"):
            ius = parse_datetime(ctx.request.headers["if-unmodified-since"])
            if ius is None:
                raise bad("INVALID_DATA", "invalid data", {"api_name": "If-Unmodified-Since",
                                                           "json_path": "$.headers.If-Unmodified-Since"})
        now = ctx.now()
        results: list[dict[str, Any]] = []
        codes: list[str] = []
        for i, item in enumerate(items):
            try:
                if kind == "insert":
                    result = self._insert_one(org, module, item, i, now)
                elif kind == "update":
                    target = record_id if record_id is not None else (item.get("id") if isinstance(item, dict)
                                                                      else None)
                    result = self._update_one(org, module, item, i, target, now, ius)
                else:
                    result = self._upsert_one(org, module, item, i, now, dup_fields)
                ctx.keys.append(result["details"]["id"])
            except RecordError as exc:
                result = exc.result()
            results.append(result)
            codes.append(result["code"])
        self.notifications.record_write(org.id, module, kind, results)
        ok = sum(1 for c in codes if c == "SUCCESS")
        if ok == len(codes):
            status = 201 if kind == "insert" else 200
        elif ok:
            status = 207
        elif all(c == "ALREADY_MODIFIED" for c in codes):
            status = 412
        else:
            status = 400
        return status, {"data": results}

    def _check_trigger(self, body: dict[str, Any]) -> None:
        trigger = body.get("trigger")
        if trigger is None:
            return
        if not isinstance(trigger, list):
            raise ZohoError(400, {"data": [error_body("INVALID_DATA", "invalid data", {
                "api_name": "trigger", "json_path": "$.trigger", "expected_data_type": "jsonarray"})]})
        for k, value in enumerate(trigger):
            if value not in TRIGGERS:
                raise ZohoError(400, {"data": [error_body("INVALID_DATA", "invalid data", {
                    "api_name": "trigger", "json_path": f"$.trigger[{k}]", "supported_values": list(TRIGGERS)})]})

    def _duplicate_check_fields(self, org: Org, module: str, body: dict[str, Any]) -> list[str]:
        given = body.get("duplicate_check_fields")
        if given is None:
            default = [MODULES[module].duplicate_field] if MODULES[module].duplicate_field else []
            return default + [f.api_name for f in org.fields(module) if f.unique and f.api_name not in default]
        if not isinstance(given, list) or not given:
            raise ZohoError(400, {"data": [error_body("INVALID_DATA", "invalid data", {
                "api_name": "duplicate_check_fields", "json_path": "$.duplicate_check_fields",
                "expected_data_type": "jsonarray"})]})
        for k, name in enumerate(given):
            f = org.field(module, name) if isinstance(name, str) else None
            if f is None or (f.data_type not in DUPLICATE_CHECK_TYPES and not f.unique) or f.read_only:
                raise ZohoError(400, {"data": [error_body("INVALID_DATA", "invalid data", {
                    "api_name": "duplicate_check_fields", "json_path": f"$.duplicate_check_fields[{k}]"})]})
        return list(dict.fromkeys(given))

    def _insert_one(self, org: Org, module: str, item: Any, i: int, now: int) -> dict[str, Any]:
        if isinstance(item, dict) and item.get("id") is not None:
            raise invalid("id", f"$.data[{i}].id", "the id given seems to be invalid")
        plan = prepare(org, module, item, i, None)
        rec: dict[str, Any] = {"id": org.next_id()}
        apply(org, module, rec, plan, now, insert=True)
        org.save()
        return success(org, rec, "record added")

    def _update_one(self, org: Org, module: str, item: Any, i: int, target: Any, now: int,
                    ius: int | None) -> dict[str, Any]:
        if target is None:
            raise mandatory("id", f"$.data[{i}].id")
        rec = org.get(module, str(target))
        if rec is None:
            raise invalid("id", f"$.data[{i}].id", "the id given seems to be invalid")
        if rec.get("Locked__s"):
            raise locked_error(i)
        if ius is not None and rec["Modified_Time"] > ius:
            raise RecordError("ALREADY_MODIFIED", "record updated time has already passed if-unmodified-since time",
                              {"Modified_Time": org.iso(rec["Modified_Time"]), "Created_Time": org.iso(rec["Created_Time"]),
                               "id": rec["id"], "Modified_By": org.user_ref(rec.get("Modified_By"), with_email=False),
                               "Created_By": org.user_ref(rec.get("Created_By"), with_email=False)})
        plan = prepare(org, module, item, i, rec)
        apply(org, module, rec, plan, now, insert=False)
        org.save()
        return success(org, rec, "record updated")

    def _upsert_one(self, org: Org, module: str, item: Any, i: int, now: int, dup_fields: list[str]) -> dict[str, Any]:
        if not isinstance(item, dict):
            raise invalid("data", f"$.data[{i}]", expected_data_type="jsonobject")
        if item.get("id") is not None:
            result = self._update_one(org, module, item, i, item["id"], now, None)
            result["action"] = "update"
            return result
        match, matched_on, checked = None, None, None
        for name in dup_fields:
            value = item.get(name)
            if value is None or value == "":
                continue
            checked = checked or name
            f = org.field(module, name)
            assert f is not None
            stored = coerce(org, module, f, value, f"$.data[{i}].{name}")
            holders = org.index(module).field_index(name, f.case_sensitive).get(norm_key(stored, f.case_sensitive))
            if holders:
                match, matched_on = min(holders), name
                break
        if match is not None:
            rec = org.get(module, match)
            assert rec is not None
            if rec.get("Locked__s"):
                raise locked_error(i)
            plan = prepare(org, module, item, i, rec)
            apply(org, module, rec, plan, now, insert=False)
            org.save()
            result = success(org, rec, "record updated")
            result.update(action="update", duplicate_field=matched_on)
            return result
        result = self._insert_one(org, module, item, i, now)
        result["action"] = "insert"
        if checked:
            result["duplicate_field"] = checked
        return result

    def h_delete(self, ctx: Ctx, name: str, record_id: str | None) -> Any:
        module = _module_name(name)
        if module is None or module in SUBFORM_PARENT:
            raise invalid_module(wrapped=True)
        org = ctx.auth(("modules", MODULES[module].scope_name, "DELETE"), cost=None)
        if record_id is not None:
            ids = [record_id]
        else:
            raw = ctx.query.get("ids")
            if not raw:
                raise bad("REQUIRED_PARAM_MISSING", "One of the expected parameter is missing", {"param_name": "ids"})
            ids = [i.strip() for i in raw.split(",") if i.strip()]
            if len(ids) > MAX_WRITE:
                raise ZohoError(400, {"data": [error_body("LIMIT_EXCEEDED", "count of records in your request "
                                                          "exceeds the limit", {"maximum_length": MAX_WRITE,
                                                                                "api_name": "ids"})]})
        ctx.charge(write_cost(len(ids)))
        now = ctx.now()
        results = []
        for i, rid in enumerate(ids):
            rec = org.get(module, rid)
            if rec is None:
                results.append(error_body("INVALID_DATA", "record not deleted", {"id": rid}))
                continue
            if rec.get("Locked__s"):
                results.append(locked_error(i).result())
                continue
            delete_record(org, module, rec, now)
            ctx.keys.append(rid)
            results.append({"code": "SUCCESS", "details": {"id": rid}, "message": "record deleted",
                            "status": "success"})
        self.notifications.record_changes(org.id, module, "delete", [r["details"]["id"] for r in results
                                                                    if r["code"] == "SUCCESS"])
        ok = sum(1 for r in results if r["code"] == "SUCCESS")
        status = 200 if ok == len(results) else 207 if ok else 400
        return status, {"data": results}

    # --- admin -----------------------------------------------------------------------------------
    def _add_admin_routes(self, app: FastAPI) -> None:
        @app.get("/_sandbox/credentials")
        def credentials(request: Request, org: str | None = Query(None)) -> Response:
            with self.store.lock:
                org_id = org or (DEMO_ORG_ID if DEMO_ORG_ID in self.org_ids() else (self.org_ids() or [None])[0])
                if org_id is None or org_id not in self.org_ids():
                    return JSONResponse({"error": f"unknown org {org!r}"}, status_code=404)
                out = self.credentials(org_id, str(request.base_url).rstrip("/"))
                self.store.flush()
            return JSONResponse(out)

        @app.get("/_sandbox/orgs")
        def list_orgs() -> list[dict[str, Any]]:
            with self.store.lock:
                return [dict(doc) for doc in self.store.table(REGISTRY, "orgs").values()]

        @app.post("/_sandbox/orgs")
        def create_org(request: Request, body: dict[str, Any] = Body(...)) -> Response:
            name = body.get("name") or "New Org Ltd"
            seed = str(body.get("seed", "empty"))
            xero_fields = bool(body.get("xero_fields", self.xero_fields))
            if not (seed in ("demo", "empty") or seed.isdigit()):
                return JSONResponse({"error": "seed must be demo, empty or a number of invoices"}, status_code=400)
            with self.store.lock:
                org_id = self._new_org_id()
                self._seed_org(org_id, seed, name, xero_fields, stable_client=False)
                if seed == "demo":
                    self.org(org_id).doc["name"] = name
                    self.org(org_id).save()
                    self._register(org_id, name, seed)
                out = {"name": name, "seed": seed, **self.credentials(org_id, str(request.base_url).rstrip("/"))}
                self.store.flush()
            return JSONResponse(out, status_code=201)

        @app.get("/_sandbox/limits")
        def get_limits() -> dict[str, Any]:
            return self.limits.snapshot(self.org_ids(), self.clock.time())

        @app.put("/_sandbox/limits")
        def put_limits(body: dict[str, Any] = Body(...)) -> Response:
            try:
                self.limits.update(body)
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(self.limits.snapshot(self.org_ids(), self.clock.time()))

        @app.delete("/_sandbox/limits")
        def delete_limits() -> dict[str, Any]:
            self.limits.restore_defaults()
            return self.limits.snapshot(self.org_ids(), self.clock.time())

        @app.put("/_sandbox/locks")
        def put_locks(body: dict[str, Any] = Body(...)) -> Response:
            """Lock or unlock records (Zoho's record locking: updates and deletes answer RECORD_LOCKED)."""
            with self.store.lock:
                org_id = body.get("org") or DEMO_ORG_ID
                module = _module_name(str(body.get("module", "")))
                if org_id not in self.org_ids() or module is None:
                    return JSONResponse({"error": "unknown org or module"}, status_code=404)
                org = self.org(org_id)
                changed = []
                for rid in body.get("ids", []):
                    rec = org.get(module, str(rid))
                    if rec is None:
                        continue
                    if body.get("locked", True):
                        rec["Locked__s"] = True
                    else:
                        rec.pop("Locked__s", None)
                    org.touch(module, rec["id"])
                    changed.append(rec["id"])
                self.store.flush()
            return JSONResponse({"locked" if body.get("locked", True) else "unlocked": changed})


class _LimitsLayer:
    """Counts calls in flight per org around the frame's layer (so slow faults hold their slot) and
    marks calls over the concurrency or sub-concurrency limit; the handler answers them 429."""

    def __init__(self, sandbox: ZohoSandbox, inner: Any) -> None:
        self.sandbox = sandbox
        self.inner = inner

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(f"{API}/"):
            await self.inner(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        org = self.sandbox.tenant_of(headers)
        if org is None:
            await self.inner(scope, receive, send)
            return
        heavy, receive = await self._classify(scope, receive)
        scope.setdefault("state", {})
        refused = self.sandbox.limits.enter(org, heavy)
        if refused:
            scope["state"]["zoho_throttle"] = refused
            await self.inner(scope, receive, send)
            return
        try:
            await self.inner(scope, receive, send)
        finally:
            self.sandbox.limits.leave(org, heavy)

    async def _classify(self, scope: Scope, receive: Any) -> tuple[bool, Any]:
        """Complex calls (sub-concurrency): COQL, record lists with ``sort_by``/``cvid``, and inserts,
        updates or upserts of more than 10 records."""
        method = scope["method"].upper()
        parts = scope["path"][len(API) + 1:].strip("/").split("/")
        if method == "POST" and parts == ["coql"]:
            return True, receive
        if parts[0] in RESERVED:
            return False, receive
        query = scope.get("query_string", b"").decode("latin-1")
        if method == "GET" and len(parts) == 1:
            keys = {k for k, _ in parse_qsl(query)}
            return bool(keys & {"sort_by", "cvid"}), receive
        if method in ("POST", "PUT") and (len(parts) == 1 or parts[-1] == "upsert"):
            chunks, more = [], True
            while more:
                message = await receive()
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
                if message["type"] != "http.request":
                    break
            body = b"".join(chunks)
            replayed = False

            async def replay() -> Any:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            try:
                data = json.loads(body or b"{}").get("data")
                count = len(data) if isinstance(data, list) else 0
            except (ValueError, AttributeError):
                count = 0
            return count > 10, replay
        return False, receive


__all__ = ["ZohoSandbox", "scope_allows"]
