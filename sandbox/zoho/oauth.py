"""Zoho Accounts as the sandbox emulates it: clients, grant codes, refresh and access tokens.

Rules (zoho-api-notes.md §2.2-2.3): access tokens live 1 hour; at most 10 access tokens are minted
per refresh token in any 10 minutes ("Access Denied" after that) and at most 15 are valid at once
(the 16th invalidates the oldest); a client holds at most 20 refresh tokens per user (the 21st deletes
the oldest and its access tokens); grant codes are single use and live 3 minutes; refresh tokens do
not rotate. Failures are HTTP 200 bodies with an ``error`` key, as Zoho answers them.
All times are on the sandbox's virtual clock. State is persisted in the frame's store (scope ``_oauth``).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sandbox.common.clock import VirtualClock
from sandbox.common.store import DocStore

SCOPE = "_oauth"
ACCESS_LIFETIME = 3600
MINT_WINDOW = 600.0
MINTS_PER_WINDOW = 10
MAX_ACTIVE_ACCESS = 15
MAX_REFRESH_PER_CLIENT = 20
GRANT_LIFETIME = 180.0
FULL_SCOPE = ("ZohoCRM.modules.ALL ZohoCRM.settings.ALL ZohoCRM.org.ALL ZohoCRM.users.ALL "
              "ZohoCRM.coql.READ ZohoCRM.bulk.ALL ZohoCRM.notifications.ALL")
ACCESS_DENIED = {"error_description": "You have made too many requests continuously. Please try again after some time.",
                 "error": "Access Denied", "status": "failure"}


def _token() -> str:
    return f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"


def stable_client_id(seed: str) -> str:
    """A Zoho-looking client id (``1000.`` + 30 upper-case alphanumerics), deterministic per seed."""
    digest = hashlib.sha256(seed.encode()).hexdigest().upper()
    return f"1000.{digest[:30]}"


def stable_secret(seed: str) -> str:
    return hashlib.sha256(f"secret:{seed}".encode()).hexdigest()[:42]


@dataclass(frozen=True)
class Caller:
    """Who an access token speaks for."""

    org_id: str
    client_id: str
    scope: frozenset[str]
    expires: float
    token: str


class Accounts:
    """Clients and tokens; callers hold the sandbox lock."""

    def __init__(self, store: DocStore, clock: VirtualClock) -> None:
        self.store = store
        self.clock = clock

    def _t(self, kind: str) -> dict[str, dict[str, Any]]:
        return self.store.table(SCOPE, kind)

    # --- clients ---------------------------------------------------------------------------------
    def add_client(self, org_id: str, client_id: str | None = None, secret: str | None = None) -> dict[str, Any]:
        doc = {"client_id": client_id or f"1000.{secrets.token_hex(15).upper()}",
               "client_secret": secret or secrets.token_hex(21), "org_id": org_id, "refresh_tokens": []}
        self.store.put(SCOPE, "client", doc["client_id"], doc)
        return doc

    def client(self, client_id: str | None) -> dict[str, Any] | None:
        return self._t("client").get(client_id or "")

    def client_for_org(self, org_id: str) -> dict[str, Any] | None:
        for doc in self._t("client").values():
            if doc["org_id"] == org_id:
                return doc
        return None

    # --- refresh tokens --------------------------------------------------------------------------
    def new_refresh_token(self, client_id: str, scope: str = FULL_SCOPE) -> str:
        client = self._t("client")[client_id]
        token = _token()
        self.store.put(SCOPE, "refresh", token, {"token": token, "client_id": client_id, "org_id": client["org_id"],
                                                 "scope": scope, "created": self.clock.time(), "mints": [],
                                                 "access": []})
        client["refresh_tokens"].append(token)
        while len(client["refresh_tokens"]) > MAX_REFRESH_PER_CLIENT:
            self._drop_refresh(client["refresh_tokens"].pop(0))
        self.store.touch(SCOPE, "client", client_id)
        return token

    def _drop_refresh(self, token: str) -> None:
        doc = self._t("refresh").get(token)
        if doc is None:
            return
        for access in doc["access"]:
            self.store.delete(SCOPE, "access", access)
        self.store.delete(SCOPE, "refresh", token)

    # --- access tokens ---------------------------------------------------------------------------
    def _mint(self, refresh: dict[str, Any]) -> dict[str, Any] | None:
        """A new access token for a refresh token, or None when the mint limit is reached."""
        now = self.clock.time()
        refresh["mints"] = [t for t in refresh["mints"] if now - t < MINT_WINDOW]
        if len(refresh["mints"]) >= MINTS_PER_WINDOW:
            self.store.touch(SCOPE, "refresh", refresh["token"])
            return None
        refresh["mints"].append(now)
        access_table = self._t("access")
        live = [a for a in refresh["access"] if a in access_table and access_table[a]["expires"] > now]
        for stale in set(refresh["access"]) - set(live):
            self.store.delete(SCOPE, "access", stale)
        while len(live) >= MAX_ACTIVE_ACCESS:
            self.store.delete(SCOPE, "access", live.pop(0))
        token = _token()
        doc = {"token": token, "refresh": refresh["token"], "client_id": refresh["client_id"],
               "org_id": refresh["org_id"], "scope": refresh["scope"], "expires": now + ACCESS_LIFETIME}
        self.store.put(SCOPE, "access", token, doc)
        live.append(token)
        refresh["access"] = live
        self.store.touch(SCOPE, "refresh", refresh["token"])
        return doc

    def caller(self, token: str) -> Caller | None:
        doc = self._t("access").get(token)
        if doc is None or doc["expires"] <= self.clock.time():
            return None
        return Caller(doc["org_id"], doc["client_id"], frozenset(doc["scope"].split()), doc["expires"], token)

    # --- grant flow ------------------------------------------------------------------------------
    def authorize(self, client_id: str, redirect_uri: str, scope: str, access_type: str) -> str:
        code = f"1000.{secrets.token_hex(16)}.{secrets.token_hex(16)}"
        self.store.put(SCOPE, "grant", code, {"code": code, "client_id": client_id, "redirect_uri": redirect_uri,
                                              "scope": scope, "access_type": access_type,
                                              "expires": self.clock.time() + GRANT_LIFETIME})
        return code

    def token(self, params: dict[str, str], api_domain: str) -> dict[str, Any]:
        """``POST /oauth/v2/token``: the JSON body Zoho answers (always HTTP 200)."""
        grant_type = params.get("grant_type")
        client = self.client(params.get("client_id"))
        if grant_type not in ("authorization_code", "refresh_token"):
            return {"error": "unsupported_grant_type"}
        if client is None:
            return {"error": "invalid_client"}
        if params.get("client_secret") != client["client_secret"]:
            return {"error": "invalid_client_secret"}
        if grant_type == "authorization_code":
            grant = self._t("grant").get(params.get("code") or "")
            if grant is None or grant["client_id"] != client["client_id"] or grant["expires"] <= self.clock.time():
                return {"error": "invalid_code"}
            if params.get("redirect_uri") and params["redirect_uri"] != grant["redirect_uri"]:
                return {"error": "invalid_redirect_uri"}
            self.store.delete(SCOPE, "grant", grant["code"])  # single use
            refresh_token = self.new_refresh_token(client["client_id"], grant["scope"])
            access = self._mint(self._t("refresh")[refresh_token])
            assert access is not None
            body: dict[str, Any] = {"access_token": access["token"]}
            if grant["access_type"] == "offline":
                # An online grant returns no refresh token; it is kept only to account its access token.
                body["refresh_token"] = refresh_token
            body.update({"scope": grant["scope"], "api_domain": api_domain, "token_type": "Bearer",
                         "expires_in": ACCESS_LIFETIME})
            return body
        refresh = self._t("refresh").get(params.get("refresh_token") or "")
        if refresh is None or refresh["client_id"] != client["client_id"]:
            return {"error": "invalid_code"}
        access = self._mint(refresh)
        if access is None:
            return dict(ACCESS_DENIED)
        return {"access_token": access["token"], "scope": refresh["scope"], "api_domain": api_domain,
                "token_type": "Bearer", "expires_in": ACCESS_LIFETIME}

    def revoke(self, token: str) -> bool:
        """Revoke a refresh token (and every access token it minted) or one access token."""
        if token in self._t("refresh"):
            refresh = self._t("refresh")[token]
            client = self._t("client").get(refresh["client_id"])
            if client is not None and token in client["refresh_tokens"]:
                client["refresh_tokens"].remove(token)
                self.store.touch(SCOPE, "client", client["client_id"])
            self._drop_refresh(token)
            return True
        if token in self._t("access"):
            self.store.delete(SCOPE, "access", token)
            return True
        return False

    def prune(self) -> None:
        """Forget expired access tokens and grant codes (keeps the store small on long runs)."""
        now = self.clock.time()
        for kind, key in (("access", "expires"), ("grant", "expires")):
            for token in [t for t, d in self._t(kind).items() if d[key] <= now]:
                self.store.delete(SCOPE, kind, token)
