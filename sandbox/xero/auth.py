"""OAuth 2.0 as Xero's identity service does it: apps, consents, rotating refresh tokens, tenants.

State lives in the DocStore under the global scope ``_xero`` so a connection survives a restart:
- ``clients``: apps (``kind`` "app") and custom connections (``kind`` "custom", bound to one tenant);
- ``tenants``: the organisations this sandbox hosts;
- ``grants``: one consent (an auth event): client, tenants, connection ids;
- ``refresh`` / ``access`` / ``codes``: tokens and authorisation codes.

Rules (xero-api-notes.md §2): access tokens live 30 minutes (``expires_in: 1800``); refresh tokens
rotate on every use, the replaced one stays usable for a 30-minute grace period and then answers
``400 {"error":"invalid_grant"}``; unused refresh tokens expire after 60 days; codes are single-use
and live 5 minutes; PKCE ``S256``; client_credentials only for custom connections.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sandbox.common.clock import VirtualClock
from sandbox.common.store import DocStore

SCOPE = "_xero"
ACCESS_SECONDS = 1800
GRACE_SECONDS = 1800
REFRESH_IDLE_SECONDS = 60 * 24 * 3600
CODE_SECONDS = 300


class OAuthError(Exception):
    """An OAuth error answer: ``{"error": code}`` with an HTTP status."""

    def __init__(self, error: str, status: int = 400) -> None:
        super().__init__(error)
        self.error = error
        self.status = status


@dataclass(frozen=True)
class Caller:
    """Who an access token belongs to."""

    client_id: str
    tenants: tuple[str, ...]
    grant_id: str | None
    custom: bool


def _token(n: int = 32) -> str:
    return secrets.token_urlsafe(n)


def utc_text(ts: float) -> str:
    """Xero's identity timestamps: ``2019-12-07T18:46:19.5165400`` (UTC, no zone)."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond:06d}0"


class Identity:
    """Apps, tenants, consents and tokens."""

    def __init__(self, store: DocStore, clock: VirtualClock) -> None:
        self.store = store
        self.clock = clock

    # --- registry --------------------------------------------------------------------------------
    def _t(self, kind: str) -> dict[str, dict[str, Any]]:
        return self.store.table(SCOPE, kind)

    def add_tenant(self, tenant_id: str, name: str) -> dict[str, Any]:
        doc = {"tenantId": tenant_id, "tenantName": name, "tenantType": "ORGANISATION",
               "created": self.clock.time()}
        self.store.put(SCOPE, "tenants", tenant_id, doc)
        return doc

    def tenants(self) -> dict[str, dict[str, Any]]:
        return self._t("tenants")

    def add_client(self, client_id: str, secret: str, name: str, *, kind: str = "app",
                   tenant_id: str | None = None) -> dict[str, Any]:
        doc = {"client_id": client_id, "client_secret": secret, "name": name, "kind": kind,
               "tenant_id": tenant_id}
        self.store.put(SCOPE, "clients", client_id, doc)
        return doc

    def client(self, client_id: str) -> dict[str, Any] | None:
        return self.store.get(SCOPE, "clients", client_id)

    def custom_client_for(self, tenant_id: str) -> dict[str, Any]:
        """The tenant's custom connection (created on first ask)."""
        for doc in self._t("clients").values():
            if doc["kind"] == "custom" and doc["tenant_id"] == tenant_id:
                return doc
        client_id = secrets.token_hex(16).upper()
        return self.add_client(client_id, _token(36), "Custom connection", kind="custom", tenant_id=tenant_id)

    # --- consents and tokens ---------------------------------------------------------------------
    def grant(self, client_id: str, tenants: list[str], scope: str) -> dict[str, Any]:
        """A consent (auth event) for ``tenants``; each tenant gets a connection id."""
        now = self.clock.time()
        grant_id = str(_uuid())
        doc = {"id": grant_id, "client_id": client_id, "scope": scope, "created": now, "revoked": False,
               "connections": {t: {"id": str(_uuid()), "created": now, "updated": now} for t in tenants}}
        self.store.put(SCOPE, "grants", grant_id, doc)
        return doc

    def issue(self, client_id: str, grant_id: str | None, scope: str, *, with_refresh: bool = True,
              tenants: list[str] | None = None, refresh_token: str | None = None) -> dict[str, Any]:
        """A token response; ``refresh_token`` reuses an existing one instead of minting."""
        now = self.clock.time()
        access = _token()
        self.store.put(SCOPE, "access", access, {"client_id": client_id, "grant": grant_id,
                                                "tenants": tenants, "expires": now + ACCESS_SECONDS})
        self._prune_access(now)
        body: dict[str, Any] = {"access_token": access, "expires_in": ACCESS_SECONDS, "token_type": "Bearer",
                                "scope": scope}
        if with_refresh:
            if refresh_token is None:
                refresh_token = _token()
                self.store.put(SCOPE, "refresh", refresh_token, {
                    "client_id": client_id, "grant": grant_id, "issued": now, "last_used": now,
                    "rotated_at": None, "successor": None, "revoked": False, "scope": scope})
            body["refresh_token"] = refresh_token
        if "openid" in scope.split():
            body["id_token"] = _fake_jwt({"iss": "https://identity.xero.com", "aud": client_id,
                                          "iat": int(now), "exp": int(now) + 300})
        return body

    def _prune_access(self, now: float) -> None:
        table = self._t("access")
        if len(table) < 2000:
            return
        for token in [t for t, d in table.items() if d["expires"] < now - 3600]:
            self.store.delete(SCOPE, "access", token)

    def refresh(self, client_id: str, token: str) -> dict[str, Any]:
        """Rotate: a new refresh token each time; the old one works for 30 minutes more."""
        now = self.clock.time()
        doc = self.store.get(SCOPE, "refresh", token)
        if doc is None or doc["client_id"] != client_id or doc["revoked"]:
            raise OAuthError("invalid_grant")
        grant = self.store.get(SCOPE, "grants", doc["grant"]) if doc["grant"] else None
        if grant is None or grant["revoked"] or not grant["connections"]:
            raise OAuthError("invalid_grant")
        if doc["rotated_at"] is not None:
            if now - doc["rotated_at"] > GRACE_SECONDS:
                raise OAuthError("invalid_grant")
            # A lost answer retried inside the grace period: same successor, fresh access token.
            return self.issue(client_id, doc["grant"], doc["scope"], refresh_token=doc["successor"])
        if now - doc["last_used"] > REFRESH_IDLE_SECONDS:
            raise OAuthError("invalid_grant")
        body = self.issue(client_id, doc["grant"], doc["scope"])
        doc["rotated_at"] = now
        doc["successor"] = body["refresh_token"]
        self.store.touch(SCOPE, "refresh", token)
        return body

    def revoke(self, client_id: str, token: str) -> None:
        """``/connect/revocation``: the token's consent ends and its connections go."""
        doc = self.store.get(SCOPE, "refresh", token)
        if doc is None or doc["client_id"] != client_id:
            return
        grant = self.store.get(SCOPE, "grants", doc["grant"]) if doc["grant"] else None
        if grant is not None:
            grant["revoked"] = True
            grant["connections"] = {}
            self.store.touch(SCOPE, "grants", grant["id"])
        for t, d in list(self._t("refresh").items()):
            if d["grant"] == doc["grant"] and not d["revoked"]:
                d["revoked"] = True
                self.store.touch(SCOPE, "refresh", t)

    def new_code(self, client_id: str, redirect_uri: str, scope: str, challenge: str | None,
                 method: str | None, tenants: list[str]) -> str:
        code = _token(24)
        self.store.put(SCOPE, "codes", code, {
            "client_id": client_id, "redirect_uri": redirect_uri, "scope": scope, "challenge": challenge,
            "method": method or ("plain" if challenge else None), "expires": self.clock.time() + CODE_SECONDS,
            "tenants": tenants})
        return code

    def redeem_code(self, client_id: str, code: str, redirect_uri: str | None,
                    verifier: str | None) -> dict[str, Any]:
        doc = self.store.get(SCOPE, "codes", code)
        if doc is None or doc["client_id"] != client_id:
            raise OAuthError("invalid_grant")
        self.store.delete(SCOPE, "codes", code)  # single use, even when the rest fails
        if doc["expires"] < self.clock.time():
            raise OAuthError("invalid_grant")
        if redirect_uri is not None and redirect_uri != doc["redirect_uri"]:
            raise OAuthError("invalid_grant")
        if doc["challenge"]:
            if not verifier:
                raise OAuthError("invalid_grant")
            if doc["method"] == "S256":
                digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            else:
                digest = verifier
            if digest != doc["challenge"]:
                raise OAuthError("invalid_grant")
        grant = self.grant(client_id, doc["tenants"], doc["scope"])
        return self.issue(client_id, grant["id"], doc["scope"])

    def client_credentials(self, client: dict[str, Any], scope: str) -> dict[str, Any]:
        if client["kind"] != "custom":
            raise OAuthError("unauthorized_client")
        return self.issue(client["client_id"], None, scope, with_refresh=False, tenants=[client["tenant_id"]])

    # --- checking calls --------------------------------------------------------------------------
    def caller(self, token: str) -> tuple[Caller | None, str | None]:
        """The caller of an access token, or (None, reason) with Xero's 401 detail."""
        doc = self.store.get(SCOPE, "access", token)
        if doc is None:
            return None, "AuthenticationUnsuccessful"
        if doc["expires"] <= self.clock.time():
            at = datetime.fromtimestamp(doc["expires"], tz=UTC).strftime("%m/%d/%Y %H:%M:%S")
            return None, f"TokenExpired: token expired at {at}"
        client = self.client(doc["client_id"])
        if client is None:
            return None, "AuthenticationUnsuccessful"
        if doc["grant"] is None:
            return Caller(doc["client_id"], tuple(doc["tenants"] or ()), None, True), None
        grant = self.store.get(SCOPE, "grants", doc["grant"])
        if grant is None or grant["revoked"]:
            return None, "AuthenticationUnsuccessful"
        return Caller(doc["client_id"], tuple(grant["connections"]), grant["id"], False), None

    def connections(self, caller: Caller) -> list[dict[str, Any]]:
        """``GET /connections`` rows for the caller's consent."""
        tenants = self.tenants()
        if caller.grant_id is None:
            rows = []
            for t in caller.tenants:
                ten = tenants.get(t)
                if ten:
                    rows.append(self._row(t, ten, {"id": _stable_uuid(caller.client_id + t),
                                                    "created": ten["created"], "updated": ten["created"]},
                                          None))
            return rows
        grant = self.store.get(SCOPE, "grants", caller.grant_id) or {"connections": {}}
        return [self._row(t, tenants[t], conn, caller.grant_id)
                for t, conn in grant["connections"].items() if t in tenants]

    @staticmethod
    def _row(tenant_id: str, tenant: dict[str, Any], conn: dict[str, Any], grant_id: str | None) -> dict[str, Any]:
        row = {"id": conn["id"], "authEventId": grant_id or conn["id"], "tenantId": tenant_id,
               "tenantType": tenant["tenantType"], "tenantName": tenant["tenantName"],
               "createdDateUtc": utc_text(conn["created"]), "updatedDateUtc": utc_text(conn["updated"])}
        return row

    def disconnect(self, caller: Caller, connection_id: str) -> bool:
        """``DELETE /connections/{id}``: that tenant leaves the consent."""
        if caller.grant_id is None:
            return False
        grant = self.store.get(SCOPE, "grants", caller.grant_id)
        if grant is None:
            return False
        for tenant, conn in list(grant["connections"].items()):
            if conn["id"] == connection_id:
                del grant["connections"][tenant]
                self.store.touch(SCOPE, "grants", grant["id"])
                return True
        return False


def _uuid() -> str:
    return str(uuid.uuid4())


def _stable_uuid(text: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, text))


def _fake_jwt(claims: dict[str, Any]) -> str:
    """An unsigned-looking JWT for ``id_token`` (clients here never verify it)."""
    def part(obj: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part(claims)}.{secrets.token_urlsafe(32)}"


def basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``Authorization: Basic base64(id:secret)`` -> (id, secret)."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        raw = base64.b64decode(header.split(None, 1)[1]).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    if ":" not in raw:
        return None
    cid, secret = raw.split(":", 1)
    return cid, secret
