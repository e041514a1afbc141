"""Xero's token endpoint: refresh (rotating refresh tokens) and client credentials.

``POST {identity}/connect/token`` with HTTP Basic client authentication, form encoded:
``grant_type=refresh_token&refresh_token=...`` for a user's connection, ``grant_type=client_credentials``
for a custom connection. Every refresh returns a new refresh token and retires the old one; the
old one stays usable for a 30-minute grace period, which is what makes a lost answer
recoverable: the refresh is retried with the same (old) token. ``invalid_grant`` means the
connection is gone (expired after 60 days unused, revoked, disconnected): a permanent
:class:`TokenRefreshError`, never retried. The :class:`~connectors.oauth.TokenManager` calls the
refresher under the store's lock and persists what it returns, so the newest refresh token is
saved before anyone uses the new access token.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import requests
from pydantic import SecretStr

from connectors.credentials import Connection
from connectors.errors import ApiError, RateLimitError, ServerError, TokenRefreshError, TransportError
from connectors.http import HttpClient, RetryPolicy, parse_json, retry_after_seconds

#: Xero access tokens last 30 minutes; used when an answer omits ``expires_in``.
DEFAULT_EXPIRES_IN = 1800
#: Token endpoint errors after which only a new consent (or new client credentials) helps.
PERMANENT_ERRORS = frozenset({"invalid_grant", "invalid_client", "unauthorized_client",
                              "unsupported_grant_type", "invalid_scope", "access_denied"})


def _utcnow() -> datetime:
    return datetime.now(UTC)


class XeroTokenEndpoint(HttpClient):
    """The identity host's token endpoint; its errors become :class:`TokenRefreshError`."""

    system = "xero"

    def error_for(self, response: requests.Response) -> ApiError:
        if response.status_code == 429:
            return RateLimitError(self.system, "token endpoint rate limited", status=429,
                                  retry_after=retry_after_seconds(response.headers))
        if response.status_code >= 500:
            return ServerError(self.system, f"token endpoint failed: {response.reason}", status=response.status_code)
        code, description = None, None
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            code = body.get("error")
            description = body.get("error_description")
        message = f"token refresh refused: {code or response.reason}" + (f" ({description})" if description else "")
        return TokenRefreshError(self.system, message, status=response.status_code, code=code, body=body,
                                 permanent=(code in PERMANENT_ERRORS) or response.status_code in (400, 401))


class XeroRefresher:
    """A :data:`~connectors.oauth.Refresher` for Xero connections."""

    def __init__(self, identity_url: Callable[[Connection], str], *, session: requests.Session | None = None,
                 timeout: float = 60.0, retry: RetryPolicy | None = None,
                 clock: Callable[[], datetime] = _utcnow) -> None:
        self._identity_url = identity_url
        self._endpoint = XeroTokenEndpoint(timeout=timeout, session=session, retry=retry)
        self._clock = clock

    def __call__(self, conn: Connection) -> Connection:
        if conn.client_secret is None:
            raise TokenRefreshError("xero", f"the Xero connection of {conn.org} has no client secret",
                                    permanent=True)
        url = f"{self._identity_url(conn).rstrip('/')}/connect/token"
        data: dict[str, str]
        if conn.grant == "client_credentials":
            data = {"grant_type": "client_credentials"}
            if conn.scopes:
                data["scope"] = " ".join(conn.scopes)
        else:
            if conn.refresh_token is None:
                raise TokenRefreshError("xero", f"the Xero connection of {conn.org} has no refresh token",
                                        permanent=True)
            data = {"grant_type": "refresh_token", "refresh_token": conn.refresh_token.get_secret_value()}
        try:
            # idempotent=True: resending the same refresh token is Xero's documented recovery
            # when an answer is lost (the old token is honoured for 30 minutes after rotation).
            answer = self._endpoint.send("POST", url, idempotent=True, data=data,
                                         auth=(conn.client_id, conn.client_secret.get_secret_value()),
                                         headers={"Accept": "application/json"})
        except TokenRefreshError:
            raise
        except (TransportError, ServerError, RateLimitError) as exc:
            raise TokenRefreshError("xero", f"could not reach Xero's token endpoint ({exc.message}); the "
                                    "stored refresh token stays valid, try again", permanent=False,
                                    status=exc.status) from exc
        except ApiError as exc:
            raise TokenRefreshError("xero", f"token refresh failed: {exc.message}", permanent=False,
                                    status=exc.status) from exc
        body = answer.body if isinstance(answer.body, dict) else parse_json("xero", answer.response)
        access = body.get("access_token")
        if not access:
            raise TokenRefreshError("xero", "the token endpoint answered without an access_token", permanent=False)
        now = self._clock()
        expires_in = int(body.get("expires_in") or DEFAULT_EXPIRES_IN)
        update: dict[str, object] = {
            "access_token": SecretStr(access),
            "access_expires_at": now + timedelta(seconds=expires_in),
            "broken_reason": None,
        }
        new_refresh = body.get("refresh_token")
        if new_refresh and (conn.refresh_token is None or new_refresh != conn.refresh_token.get_secret_value()):
            update.update(refresh_token=SecretStr(new_refresh), previous_refresh_token=conn.refresh_token,
                          refresh_rotated_at=now)
        if body.get("scope"):
            update["scopes"] = str(body["scope"]).split()
        return conn.model_copy(update=update)
