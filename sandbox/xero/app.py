"""The Xero sandbox: login/identity/API hosts on one port, over the shared sandbox frame.

``XeroSandbox(state_dir, seed="demo")`` serves:
- ``GET /identity/connect/authorize`` (auto-consent), ``POST /connect/token``, ``POST /connect/revocation``;
- ``GET /connections``, ``DELETE /connections/{id}``;
- ``/api.xro/2.0/...`` (see :mod:`sandbox.xero.api`);
- admin: ``/_sandbox/credentials``, ``/_sandbox/orgs``, ``/_sandbox/limits`` plus the frame's routes.
"""

from __future__ import annotations

import json
import re
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from sandbox.common.base import ADMIN_PREFIX, Sandbox
from sandbox.common.faults import Fault
from sandbox.xero import api
from sandbox.xero import seed as seeds
from sandbox.xero.auth import Identity, OAuthError, basic_credentials
from sandbox.xero.books import Books
from sandbox.xero.formats import error_500, error_503, json_response, not_found
from sandbox.xero.gate import IdempotencyCache, XeroGate
from sandbox.xero.limits import RateLimiter
from sandbox.xero.webhooks import XeroWebhooks

DEFAULT_SCOPE = ("openid profile email offline_access accounting.invoices accounting.payments "
                 "accounting.contacts accounting.settings")


class XeroSandbox(Sandbox):
    """A faithful local Xero: OAuth 2.0, tenants, the Accounting API, Xero's limits."""

    name = "xero"
    token_routes = frozenset({"/connect/token", "/connect/revocation", "/identity/connect/authorize"})

    def __init__(self, state_dir: Path | None = None, seed: str = "demo") -> None:
        self.limiter = RateLimiter()
        self.idempotency = IdempotencyCache()
        self._books: dict[str, Books] = {}
        self._identity: Identity | None = None
        super().__init__(state_dir, seed)

    # --- state -----------------------------------------------------------------------------------
    @property
    def identity(self) -> Identity:
        if self._identity is None:
            self._identity = Identity(self.store, self.clock)
        return self._identity

    def books(self, tenant_id: str) -> Books:
        """The books of one tenant (opened, and indexed, on first use)."""
        books = self._books.get(tenant_id)
        if books is None:
            with self.store.lock:
                books = self._books.get(tenant_id)
                if books is None:
                    books = Books(tenant_id, self.store, self.clock)
                    self._books[tenant_id] = books
        return books

    def reset(self, seed: str = "demo") -> None:
        with self.store.lock:
            self.webhooks.clear()
            self._books.clear()
            self.idempotency.clear()
            self.limiter.reset()
            super().reset(seed)

    def reset_limits(self) -> None:
        self.limiter.restore_defaults()

    def seed(self, seed: str) -> None:
        """``demo`` (docs/demo-universe.md), ``empty`` (reference data only) or ``<n>`` invoices."""
        self._books.clear()
        ident = self.identity
        ident.add_client(seeds.DEMO_CLIENT_ID, seeds.DEMO_CLIENT_SECRET, seeds.DEMO_APP_NAME)
        self.create_org(seeds.DEMO_TENANT_NAME, seed, tenant_id=seeds.DEMO_TENANT_ID)

    def create_org(self, name: str, seed: str, tenant_id: str | None = None) -> str:
        """A new tenant with its reference data and the seed's records."""
        seed = (seed or "empty").strip().lower()
        if seed not in ("demo", "empty") and not seed.isdigit():
            raise ValueError(f"unknown seed {seed!r}: demo, empty or a number of invoices")
        tenant_id = tenant_id or seeds.stable_id(seeds.DEMO_TENANT_ID, "tenant", name, secrets.token_hex(4))
        self.identity.add_tenant(tenant_id, name)
        books = self.books(tenant_id)
        seeds.reference_data(books, name, int(self.clock.time() * 1000))
        if seed == "demo":
            seeds.demo_extras(books)
        elif seed.isdigit():
            seeds.generate_invoices(books, int(seed))
        return tenant_id

    def credentials(self, request: Request, tenant_id: str) -> dict[str, Any]:
        """Client id/secret and a fresh refresh token bound to ``tenant_id``."""
        client = self.identity.client(seeds.DEMO_CLIENT_ID)
        assert client is not None
        grant = self.identity.grant(client["client_id"], [tenant_id], DEFAULT_SCOPE)
        token = self.identity.issue(client["client_id"], grant["id"], DEFAULT_SCOPE)["refresh_token"]
        base = str(request.base_url).rstrip("/")
        return {"client_id": client["client_id"], "client_secret": client["client_secret"],
                "refresh_token": token, "tenant_id": tenant_id, "api_domain": base, "accounts_url": base,
                "scope": DEFAULT_SCOPE}

    # --- frame hooks -----------------------------------------------------------------------------
    def tenant_of(self, headers: dict[str, str]) -> str | None:
        value = headers.get("xero-tenant-id", "").strip().lower()
        return value or None

    def fault_response(self, fault: Fault) -> Response:
        if fault.kind == "429":
            return Response(b"", status_code=429, media_type="application/json", headers={
                "Retry-After": str(fault.retry_after), "X-Rate-Limit-Problem": "minute"})
        body = error_500() if fault.kind == "500" else error_503()
        return json_response(body, int(fault.kind))

    # --- routes ----------------------------------------------------------------------------------
    def add_routes(self, app: FastAPI) -> None:
        app.add_middleware(XeroGate, sandbox=self)

        @app.exception_handler(StarletteHTTPException)
        async def http_errors(request: Request, exc: StarletteHTTPException) -> Response:
            if exc.status_code == 404 and not request.url.path.startswith(ADMIN_PREFIX):
                return not_found()
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

        self._add_identity_routes(app)
        self._add_admin_routes(app)
        # Webhooks see every write of a contact or invoice, whichever route made it.
        self.webhooks = XeroWebhooks(self)
        self.store.observe(self.webhooks.on_change)
        self.webhooks.register(app)
        api.register(app, self)

    def _client_from(self, request: Request, form: dict[str, str]) -> dict[str, Any]:
        creds = basic_credentials(request.headers.get("authorization"))
        cid, secret = creds if creds else (form.get("client_id", ""), form.get("client_secret"))
        client = self.identity.client(cid) if cid else None
        if client is None:
            raise OAuthError("invalid_client")
        # PKCE apps have no secret; when a secret is sent it must match.
        if secret is not None and secret != client["client_secret"]:
            raise OAuthError("invalid_client")
        if secret is None and form.get("grant_type") != "authorization_code":
            raise OAuthError("invalid_client")
        return client

    def _add_identity_routes(self, app: FastAPI) -> None:
        @app.get("/identity/connect/authorize")
        def authorize(request: Request) -> Response:
            q = request.query_params
            client = self.identity.client(q.get("client_id", ""))
            redirect = q.get("redirect_uri", "")
            if client is None or client["kind"] != "app" or not redirect:
                return JSONResponse({"error": "invalid_request"}, status_code=400)
            if q.get("response_type", "code") != "code":
                return JSONResponse({"error": "unsupported_response_type"}, status_code=400)
            with self.store.lock:
                # Auto-consent: the user ticks every organisation this sandbox hosts.
                tenants = list(self.identity.tenants())
                code = self.identity.new_code(client["client_id"], redirect, q.get("scope", DEFAULT_SCOPE),
                                              q.get("code_challenge"), q.get("code_challenge_method"), tenants)
            params = {"code": code, "scope": q.get("scope", DEFAULT_SCOPE)}
            if q.get("state") is not None:
                params["state"] = q["state"]
            sep = "&" if "?" in redirect else "?"
            return RedirectResponse(f"{redirect}{sep}{urlencode(params)}", status_code=302)

        @app.post("/connect/token")
        async def token(request: Request) -> Response:
            form = await _form(request)
            try:
                with self.store.lock:
                    client = self._client_from(request, form)
                    grant = form.get("grant_type", "")
                    if grant == "authorization_code":
                        body = self.identity.redeem_code(client["client_id"], form.get("code", ""),
                                                         form.get("redirect_uri"), form.get("code_verifier"))
                    elif grant == "refresh_token":
                        body = self.identity.refresh(client["client_id"], form.get("refresh_token", ""))
                    elif grant == "client_credentials":
                        body = self.identity.client_credentials(client, form.get("scope", DEFAULT_SCOPE))
                    else:
                        raise OAuthError("unsupported_grant_type")
            except OAuthError as exc:
                return JSONResponse({"error": exc.error}, status_code=exc.status)
            return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

        @app.post("/connect/revocation")
        async def revocation(request: Request) -> Response:
            form = await _form(request)
            try:
                with self.store.lock:
                    client = self._client_from(request, {**form, "grant_type": "revocation"})
                    self.identity.revoke(client["client_id"], form.get("token", ""))
            except OAuthError as exc:
                return JSONResponse({"error": exc.error}, status_code=exc.status)
            return Response(status_code=200)

        @app.get("/connections")
        @app.get("/Connections")
        def connections(request: Request) -> Response:
            caller = request.state.xero_caller
            rows = self.identity.connections(caller)
            event = request.query_params.get("authEventId")
            if event:
                rows = [r for r in rows if r["authEventId"] == event]
            return json_response(rows)

        @app.delete("/connections/{connection_id}")
        @app.delete("/Connections/{connection_id}")
        def disconnect(connection_id: str, request: Request) -> Response:
            with self.store.lock:
                done = self.identity.disconnect(request.state.xero_caller, connection_id)
            return Response(status_code=204) if done else not_found()

    def _add_admin_routes(self, app: FastAPI) -> None:
        @app.get(f"{ADMIN_PREFIX}/credentials")
        def credentials(request: Request) -> Response:
            org = (request.query_params.get("org") or seeds.DEMO_TENANT_ID).lower()
            with self.store.lock:
                if org not in self.identity.tenants():
                    return JSONResponse({"error": f"unknown org {org}"}, status_code=404)
                if request.query_params.get("grant") == "client_credentials":
                    client = self.identity.custom_client_for(org)
                    body = {"client_id": client["client_id"], "client_secret": client["client_secret"],
                            "grant": "client_credentials", "refresh_token": None, "tenant_id": org,
                            "api_domain": str(request.base_url).rstrip("/"),
                            "accounts_url": str(request.base_url).rstrip("/")}
                else:
                    body = self.credentials(request, org)
                self.store.flush()
            return JSONResponse(body)

        @app.get(f"{ADMIN_PREFIX}/orgs")
        def list_orgs() -> Response:
            return JSONResponse([{"tenant_id": t, "name": d["tenantName"]}
                                 for t, d in self.identity.tenants().items()])

        @app.post(f"{ADMIN_PREFIX}/orgs")
        async def create_org(request: Request) -> Response:
            body = await _json_object(request)
            name = str(body.get("name") or "").strip()
            if not name:
                return JSONResponse({"error": "name is required"}, status_code=400)
            seed_name = str(body.get("seed", "empty"))
            if not re.fullmatch(r"demo|empty|\d{1,7}", seed_name.strip().lower()):
                return JSONResponse({"error": "seed must be demo, empty or a number of invoices"}, status_code=400)
            def work() -> dict[str, Any]:
                # On a worker thread: a 50,000-invoice seed must not stall the event loop.
                with self.store.lock:
                    tenant_id = self.create_org(name, seed_name)
                    out = self.credentials(request, tenant_id)
                    out["name"] = name
                    self.store.flush()
                    return out
            return JSONResponse(await run_in_threadpool(work), status_code=201)

        def limits_view() -> dict[str, Any]:
            return {**self.limiter.settings.model_dump(), "in_flight": self.limiter.in_flight_by_tenant()}

        @app.get(f"{ADMIN_PREFIX}/limits")
        def get_limits() -> dict[str, Any]:
            return limits_view()

        @app.put(f"{ADMIN_PREFIX}/limits")
        async def put_limits(request: Request) -> Response:
            body = await _json_object(request)
            try:
                self.limiter.configure({k: v for k, v in body.items() if k != "in_flight"})
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse(limits_view())

        @app.delete(f"{ADMIN_PREFIX}/limits")
        def delete_limits() -> dict[str, Any]:
            self.limiter.restore_defaults()
            return limits_view()


async def _form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body (stdlib: no multipart dependency)."""
    raw = (await request.body()).decode("utf-8", "replace")
    return dict(parse_qsl(raw, keep_blank_values=True))


async def _json_object(request: Request) -> dict[str, Any]:
    """An admin route's JSON body (an object; anything else reads as empty)."""
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
