"""Zoho OAuth: data centres, the authorize URL, grant exchange and access-token refresh.

Zoho runs one accounts server and one API domain per data centre; a connection stores both (the
accounts server from the auth redirect's ``accounts-server``, the API domain from the token
response's ``api_domain``) and never guesses ``.com``. Token failures come back as HTTP 200 with
an ``error`` key. Access tokens are minted at most 10 times per refresh token per 10 minutes, so
every mint is recorded on the stored connection (``Connection.recent_mints``) before it is
requested, and refused locally once the window is full.

Sources: zoho-api-notes.md §2 (SDK8 ``dc/*_data_center.py``, ``oauth_token.py``, Zoho docs
multi-dc.html and token-validity.html).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from pydantic import BaseModel, SecretStr

from connectors.credentials import Connection, CredentialStore
from connectors.errors import TokenRefreshError

SYSTEM = "zoho"

#: Zoho's mint limit: access tokens per refresh token per window.
MINT_LIMIT = 10
MINT_WINDOW = timedelta(minutes=10)
#: We stop one short of the limit: a mint whose answer we lost still counts on Zoho's side.
MINT_BUDGET = MINT_LIMIT - 1

#: Scopes the sync needs: records, metadata incl. creating fields, COQL, org/taxes/currencies, users.
DEFAULT_SCOPES: tuple[str, ...] = (
    "ZohoCRM.modules.ALL",
    "ZohoCRM.settings.ALL",
    "ZohoCRM.coql.READ",
    "ZohoCRM.org.READ",
    "ZohoCRM.users.READ",
    # Notification channels (zxsync webhooks: changes reach Xero within a minute).
    "ZohoCRM.notifications.ALL",
)

#: Token errors after which only a new consent helps (HTTP 200 with an ``error`` key).
PERMANENT_TOKEN_ERRORS = frozenset({"invalid_code", "invalid_client", "invalid_grant",
                                    "unauthorized_client", "invalid_client_secret"})


@dataclass(frozen=True)
class DataCentre:
    """One Zoho data centre: its accounts server and production API domain."""

    code: str
    location: str
    accounts_url: str
    api_domain: str

    @property
    def api_hosts(self) -> frozenset[str]:
        """API hosts Zoho serves in this DC (production, sandbox and developer editions)."""
        suffix = urlsplit(self.api_domain).hostname.removeprefix("www.")  # type: ignore[union-attr]
        return frozenset({f"www.{suffix}", f"sandbox.{suffix}", f"developer.{suffix}"})


#: The DC table (SDK8 ``dc/*_data_center.py``; note Canada's accounts server is zohocloud.ca).
DATA_CENTRES: dict[str, DataCentre] = {
    dc.code: dc
    for dc in (
        DataCentre("com", "us", "https://accounts.zoho.com", "https://www.zohoapis.com"),
        DataCentre("eu", "eu", "https://accounts.zoho.eu", "https://www.zohoapis.eu"),
        DataCentre("in", "in", "https://accounts.zoho.in", "https://www.zohoapis.in"),
        DataCentre("com.au", "au", "https://accounts.zoho.com.au", "https://www.zohoapis.com.au"),
        DataCentre("jp", "jp", "https://accounts.zoho.jp", "https://www.zohoapis.jp"),
        DataCentre("zohocloud.ca", "ca", "https://accounts.zohocloud.ca", "https://www.zohoapis.ca"),
        DataCentre("sa", "sa", "https://accounts.zoho.sa", "https://www.zohoapis.sa"),
        DataCentre("com.cn", "cn", "https://accounts.zoho.com.cn", "https://www.zohoapis.com.cn"),
    )
}

#: ``--dc`` spellings people use: the domain suffix, the ``location`` code, common names.
_DC_ALIASES: dict[str, str] = {
    **{dc.code: dc.code for dc in DATA_CENTRES.values()},
    **{dc.location: dc.code for dc in DATA_CENTRES.values()},
    "au": "com.au", "ca": "zohocloud.ca", "cn": "com.cn", "us": "com",
}


def data_centre(dc: str) -> DataCentre:
    """The data centre for a ``--dc`` value (``eu``, ``com.au``/``au``, ``ca``, ``us``/``com``, ...)."""
    code = _DC_ALIASES.get(dc.strip().lower().lstrip("."))
    if code is None:
        known = ", ".join(sorted(_DC_ALIASES))
        raise ValueError(f"unknown Zoho data centre {dc!r}; use one of: {known}")
    return DATA_CENTRES[code]


def accounts_server_for_dc(dc: str) -> str:
    """``--dc eu`` -> ``https://accounts.zoho.eu``."""
    return data_centre(dc).accounts_url


def _normalise_url(url: str) -> str:
    return url.strip().rstrip("/")


def _origin(url: str) -> str:
    parts = urlsplit(_normalise_url(url))
    return f"{parts.scheme}://{parts.netloc}".lower()


def validate_accounts_server(url: str, *, also_allow: Iterable[str | None] = ()) -> str:
    """Check an ``accounts-server`` (from an auth redirect) against Zoho's known list.

    Returns the normalised URL. ``also_allow`` names extra origins that are trusted (the
    ``ZX_ZOHO_ACCOUNTS_URL`` override of a development sandbox). Anything else raises
    ``ValueError``: a forged redirect must not make us send the client secret elsewhere.
    """
    candidate = _origin(url)
    known = {dc.accounts_url for dc in DATA_CENTRES.values()}
    extra = {_origin(a) for a in also_allow if a}
    if candidate in known or candidate in extra:
        return candidate
    raise ValueError(f"{url!r} is not a Zoho accounts server (expected one of: {', '.join(sorted(known))})")


def validate_api_domain(url: str, *, also_allow: Iterable[str | None] = ()) -> str:
    """Check the token response's ``api_domain`` against Zoho's API hosts; returns it normalised."""
    candidate = _origin(url)
    parts = urlsplit(candidate)
    hosts = set().union(*(dc.api_hosts for dc in DATA_CENTRES.values()))
    extra = {_origin(a) for a in also_allow if a}
    if (parts.scheme == "https" and parts.hostname in hosts) or candidate in extra:
        return candidate
    raise ValueError(f"{url!r} is not a Zoho API domain")


def dc_for_accounts_server(url: str) -> DataCentre | None:
    """The data centre an accounts server belongs to (None for a sandbox/override)."""
    origin = _origin(url)
    return next((dc for dc in DATA_CENTRES.values() if dc.accounts_url == origin), None)


# --- authorization ------------------------------------------------------------------------------
def authorize_url(accounts_url: str, *, client_id: str, redirect_uri: str, state: str,
                  scopes: Iterable[str] = DEFAULT_SCOPES, access_type: str = "offline",
                  prompt: str = "consent") -> str:
    """The consent URL: ``access_type=offline`` yields a refresh token, ``prompt=consent`` makes
    Zoho issue a new one even for an app the user approved before. Zoho separates scopes with
    commas."""
    query = {
        "response_type": "code",
        "client_id": client_id,
        "scope": ",".join(scopes),
        "redirect_uri": redirect_uri,
        "access_type": access_type,
        "prompt": prompt,
        "state": state,
    }
    return f"{_normalise_url(accounts_url)}/oauth/v2/auth?{urlencode(query)}"


class AuthRedirect(BaseModel):
    """What Zoho's consent redirect carried back."""

    code: str
    state: str | None = None
    location: str | None = None
    accounts_server: str


def parse_auth_redirect(url: str, *, expected_state: str | None = None,
                        also_allow: Iterable[str | None] = ()) -> AuthRedirect:
    """Read ``?code=…&location=…&accounts-server=…&state=…`` from the redirect URL.

    Raises ``ValueError`` on ``error=…`` (consent refused), a state mismatch, a missing code, or
    an accounts server that is not Zoho's (nor an allowed override).
    """
    query = parse_qs(urlsplit(url).query)

    def one(name: str) -> str | None:
        values = query.get(name)
        return values[0] if values else None

    if one("error"):
        raise ValueError(f"Zoho refused the authorization: {one('error')}")
    code = one("code")
    if not code:
        raise ValueError("the redirect carries no authorization code")
    state = one("state")
    if expected_state is not None and state != expected_state:
        raise ValueError("the redirect's state does not match the one we sent (possible CSRF)")
    server = one("accounts-server")
    location = one("location")
    if server is None:
        if location is None:
            raise ValueError("the redirect names neither accounts-server nor location")
        server = accounts_server_for_dc(location)
    return AuthRedirect(code=code, state=state, location=location,
                        accounts_server=validate_accounts_server(server, also_allow=also_allow))


# --- token responses -----------------------------------------------------------------------------
class TokenGrant(BaseModel):
    """A parsed successful token response."""

    access_token: SecretStr
    expires_in_seconds: float
    api_domain: str | None = None
    refresh_token: SecretStr | None = None
    scopes: list[str] = []


def token_expiry_seconds(body: Mapping[str, Any]) -> float:
    """Lifetime of the access token in seconds.

    Old responses carried ``expires_in_sec`` (seconds) and ``expires_in`` in *milliseconds*; SDK8
    still reads ``expires_in_sec`` first. A bare ``expires_in`` far beyond a day is taken as ms.
    """
    if body.get("expires_in_sec") is not None:
        return float(body["expires_in_sec"])
    raw = body.get("expires_in")
    if raw is None:
        return 3600.0
    value = float(raw)
    return value / 1000.0 if value > 86_400 * 2 else value


def parse_token_response(status: int, body: Any) -> TokenGrant:
    """A :class:`TokenGrant`, or :class:`TokenRefreshError` (permanent for a dead grant/client).

    Zoho answers failures with HTTP 200 and ``{"error": "invalid_code"}`` (or "Access Denied"
    with "too many requests" when the mint limit is hit): check for ``access_token``, not the status.
    """
    if not isinstance(body, Mapping):
        raise TokenRefreshError(SYSTEM, "unreadable token response", permanent=False, status=status,
                                code=UNAVAILABLE)
    if body.get("access_token"):
        scope = body.get("scope") or ""
        return TokenGrant(
            access_token=SecretStr(str(body["access_token"])),
            expires_in_seconds=token_expiry_seconds(body),
            api_domain=body.get("api_domain"),
            refresh_token=SecretStr(str(body["refresh_token"])) if body.get("refresh_token") else None,
            scopes=[s for s in scope.replace(",", " ").split() if s],
        )
    error = str(body.get("error") or f"HTTP {status} without access_token")
    description = str(body.get("error_description") or "")
    text = f"{error}: {description}" if description else error
    if error.strip().lower() in PERMANENT_TOKEN_ERRORS:
        raise TokenRefreshError(SYSTEM, f"Zoho refused the token request ({text}); the refresh token or "
                                "client is no longer valid (revoked, replaced by a newer one, or another data "
                                "centre): reconnect with `zxsync connect zoho`", permanent=True,
                                status=status, code=error, body=dict(body))
    if "access denied" in text.lower() or "too many requests" in text.lower():
        raise TokenRefreshError(SYSTEM, f"Zoho is refusing new access tokens for now ({text}): at most "
                                f"{MINT_LIMIT} per refresh token per 10 minutes; retry after the window",
                                permanent=False, status=status, code=error, body=dict(body))
    raise TokenRefreshError(SYSTEM, f"token request failed ({text})", permanent=status in (400, 401),
                            status=status, code=error, body=dict(body))


#: ``TokenRefreshError.code`` of a token endpoint that did not answer usefully (unreachable, 5xx,
#: an unreadable body): worth another attempt, unlike a refusal.
UNAVAILABLE = "token_endpoint_unavailable"


def _post_token(session: requests.Session, accounts_url: str, form: Mapping[str, str],
                timeout: float) -> TokenGrant:
    # One attempt per call: the caller decides whether another mint is affordable.
    url = f"{_normalise_url(accounts_url)}/oauth/v2/token"
    try:
        response = session.post(url, data=dict(form), timeout=timeout)
        _ = response.content  # a broken read is part of the call
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
        raise TokenRefreshError(SYSTEM, f"token endpoint unreachable ({type(exc).__name__})",
                                permanent=False, code=UNAVAILABLE) from exc
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code >= 500:
        raise TokenRefreshError(SYSTEM, f"token endpoint failed ({response.reason or 'server error'})",
                                permanent=False, status=response.status_code, code=UNAVAILABLE)
    return parse_token_response(response.status_code, body)


# --- grant exchange (onboarding) --------------------------------------------------------------------
def exchange_grant_code(*, org: str, client_id: str, client_secret: str, code: str, accounts_url: str,
                        redirect_uri: str | None = None, token_url_base: str | None = None,
                        allowed_api_domains: Iterable[str | None] = (),
                        session: requests.Session | None = None, timeout: float = 60.0,
                        now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Connection:
    """Exchange a grant code (from the consent redirect or a self-client) for tokens.

    Returns the :class:`Connection` to store: client id/secret, refresh token, the first access
    token and its expiry, the accounts server (``accounts_url``, already validated) and the
    ``api_domain`` of the token response. ``token_url_base`` overrides where the token request
    goes (``ZX_ZOHO_ACCOUNTS_URL``); the stored accounts server stays ``accounts_url``.
    Grant codes are single-use and live ~3 minutes: a failure is permanent.
    """
    form = {"grant_type": "authorization_code", "client_id": client_id, "client_secret": client_secret,
            "code": code}
    if redirect_uri:
        form["redirect_uri"] = redirect_uri
    minted_at = now()
    grant = _post_token(session or requests.Session(), token_url_base or accounts_url, form, timeout)
    if grant.refresh_token is None:
        raise TokenRefreshError(SYSTEM, "Zoho returned no refresh token: authorize with access_type=offline "
                                "and prompt=consent", permanent=True)
    if not grant.api_domain:
        raise TokenRefreshError(SYSTEM, "Zoho's token response carries no api_domain", permanent=True)
    api_domain = validate_api_domain(grant.api_domain, also_allow=allowed_api_domains)
    return Connection(
        org=org, system="zoho", client_id=client_id, client_secret=SecretStr(client_secret),
        refresh_token=grant.refresh_token, access_token=grant.access_token,
        access_expires_at=minted_at + timedelta(seconds=grant.expires_in_seconds),
        scopes=grant.scopes, accounts_url=_normalise_url(accounts_url), api_domain=api_domain,
        recent_mints=[minted_at],
    )


# --- refresh with the mint guard ------------------------------------------------------------------
class ZohoRefresher:
    """The ``Refresher`` a :class:`~connectors.oauth.TokenManager` calls under the store's lock.

    Before asking Zoho for a token it records the attempt on the stored connection; if the last
    10 minutes already hold :data:`MINT_BUDGET` attempts it refuses (non-permanent) and says when
    the next mint is possible, so no process can trip Zoho's block.
    """

    def __init__(self, store: CredentialStore, *, token_url_base: Callable[[Connection], str],
                 session: requests.Session, timeout: float = 60.0, budget: int = MINT_BUDGET,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC), attempts: int = 3,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.store = store
        self._token_url_base = token_url_base
        self.session = session
        self.timeout = timeout
        self.budget = budget
        self._now = now
        #: Tries when the endpoint is unavailable (5xx, unreachable, unreadable), each one counted
        #: against the mint budget: a gateway hiccup must not fail a run, nor trip Zoho's block.
        self.attempts = attempts
        self._sleep = sleep

    def __call__(self, conn: Connection) -> Connection:
        for attempt in range(1, self.attempts + 1):
            try:
                return self._mint(conn)
            except TokenRefreshError as exc:
                if exc.code != UNAVAILABLE or attempt == self.attempts:
                    raise
                self._sleep(0.5 * attempt)
                conn = self.store.load(conn.org, "zoho")  # with the attempt just recorded
        raise AssertionError("unreachable")

    def _mint(self, conn: Connection) -> Connection:
        if conn.refresh_token is None or conn.client_secret is None:
            raise TokenRefreshError(SYSTEM, f"the Zoho connection of {conn.org} has no refresh token or client "
                                    "secret: connect it with `zxsync connect zoho`", permanent=True)
        now = self._now()
        recent = sorted(t if t.tzinfo else t.replace(tzinfo=UTC) for t in conn.recent_mints)
        recent = [t for t in recent if now - t < MINT_WINDOW]
        if len(recent) >= self.budget:
            wait = math.ceil((recent[-self.budget] + MINT_WINDOW - now).total_seconds())
            raise TokenRefreshError(
                SYSTEM, f"{len(recent)} Zoho access tokens were requested for {conn.org} in the last 10 minutes "
                f"(Zoho allows {MINT_LIMIT} per refresh token); not asking for another for {max(wait, 1)} s",
                permanent=False)
        attempt = conn.model_copy(update={"recent_mints": [*recent, now]})
        self.store.save(attempt)  # counted before sending: a lost answer still used up a mint
        grant = _post_token(self.session, self._token_url_base(conn), {
            "grant_type": "refresh_token", "client_id": conn.client_id,
            "client_secret": conn.client_secret.get_secret_value(),
            "refresh_token": conn.refresh_token.get_secret_value(),
        }, self.timeout)
        update: dict[str, Any] = {
            "access_token": grant.access_token,
            "access_expires_at": now + timedelta(seconds=grant.expires_in_seconds),
        }
        if grant.api_domain:
            update["api_domain"] = _normalise_url(grant.api_domain)
        if grant.refresh_token is not None:  # Zoho keeps the refresh token; accept a rotation anyway
            update["previous_refresh_token"] = conn.refresh_token
            update["refresh_token"] = grant.refresh_token
            update["refresh_rotated_at"] = now
            update["recent_mints"] = []
        return attempt.model_copy(update=update)
