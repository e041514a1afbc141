"""Onboarding an organisation: its org file, its own OAuth consent to Xero and Zoho CRM, the Xero_*
fields in Zoho — no vendor login, no support ticket.

- :func:`write_org_file` — ``zxsync org add``: a starter ``orgs/<slug>.yaml``, valid for ``OrgConfig``.
- :func:`connect_xero` — authorization code with PKCE and a loopback redirect
  (``http://127.0.0.1:PORT/callback``), the tenant chosen from ``/connections``;
  :func:`connect_xero_custom` — a Xero custom connection (client credentials).
- :func:`connect_zoho` — Zoho's authorization code flow (or a self-client grant code), keeping the
  accounts server and ``api_domain`` of the user's data centre.
- :func:`ensure_zoho_fields` — ``zxsync setup zoho-fields``: the Xero_* fields of architecture.md,
  created through the fields API when missing (idempotent).
- :func:`connect_sandbox` / :func:`onboard_sandbox_org` — the sandboxes' shortcut (the demo and tests).

Connections are saved encrypted in the ledger under the org's lock (every writer of an org takes it
first). Nothing here prints or logs a secret: the caller's ``echo`` only ever receives URLs, names
and ids.
"""

from __future__ import annotations

import base64
import hashlib
import html
import threading
import webbrowser
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
import yaml
from pydantic import SecretStr

from connectors.credentials import Connection, MemoryCredentialStore
from connectors.xero import XeroClient
from connectors.zoho import XERO_SYNC_FIELDS, EnsureFieldsResult, FieldSpec, ZohoClient
from connectors.zoho_auth import (
    DEFAULT_SCOPES as ZOHO_SCOPES,
)
from connectors.zoho_auth import (
    accounts_server_for_dc,
    authorize_url,
    data_centre,
    dc_for_accounts_server,
    exchange_grant_code,
    parse_auth_redirect,
)
from ledger import Ledger, LedgerCredentialStore, default_holder
from mappings.config import ConfigError, OrgConfig, load_org, parse_org
from zxsync.settings import Settings, get_settings, random_token

__all__ = [
    "XERO_BROAD_SCOPES", "XERO_SCOPES", "ZOHO_SCOPES", "LoopbackRedirect", "OnboardingError",
    "connect_sandbox", "connect_xero", "connect_xero_custom", "connect_zoho", "ensure_zoho_fields",
    "onboard_sandbox_org", "org_file_text", "pkce_pair", "required_zoho_fields", "write_org_file",
    "xero_authorize_url",
]

#: Granular scopes (every Xero app since March 2026): invoices, payments, contacts, settings.
XERO_SCOPES: tuple[str, ...] = ("offline_access", "accounting.invoices", "accounting.payments",
                                "accounting.contacts", "accounting.settings")
#: Broad scopes for apps created before March 2026 (valid for their existing users until Sep 2027).
XERO_BROAD_SCOPES: tuple[str, ...] = ("offline_access", "accounting.transactions", "accounting.contacts",
                                      "accounting.settings")
#: The loopback port registered with the apps' redirect URI (http://127.0.0.1:8765/callback).
DEFAULT_PORT = 8765
CALLBACK_PATH = "/callback"
#: How long we wait for the user to consent in the browser.
CONSENT_TIMEOUT = 300.0

Echo = Callable[[str], None]


class OnboardingError(RuntimeError):
    """Onboarding cannot go on; the message says why and what to do (and never holds a secret)."""


# --- the org file ---------------------------------------------------------------------------------
#: Product modules and whether ``org add`` enables them by default.
MODULES: dict[str, bool] = {"contacts": True, "vendors": True, "products": True, "invoices": True,
                            "purchase_orders": True, "sales_orders": False, "quotes": False, "payments": True}
_DIRECTIONS = {"contacts": "both", "invoices": "both", "payments": "to-zoho"}


def org_file_text(slug: str, *, name: str, timezone: str, data_centre_code: str = "com",
                  modules: Sequence[str] | None = None, purchase_target: str = "bill") -> str:
    """A starter ``orgs/<slug>.yaml``: connections by name, schedules, modules; the mapping comes from
    ``zxsync mappings discover``."""
    dc = data_centre(data_centre_code).code
    enabled = set(MODULES if modules is None else modules)
    unknown = enabled - set(MODULES)
    if unknown:
        raise OnboardingError(f"unknown module(s) {', '.join(sorted(unknown))}; choose from {', '.join(MODULES)}")
    lines = []
    for module, default_on in MODULES.items():
        on = module in enabled if modules is not None else default_on
        direction = _DIRECTIONS.get(module, "to-xero")
        extra = f", target: {purchase_target}" if module == "purchase_orders" else ""
        lines.append(f"  {module + ':':<16} {{enabled: {str(on).lower()}, direction: {direction}{extra}}}")
    return "\n".join([
        f"# {name}: written by `zxsync org add {slug}`.",
        f"# Next: `zxsync connect xero {slug}`, `zxsync connect zoho {slug}`, `zxsync setup zoho-fields {slug}`,",
        f"# `zxsync mappings discover {slug}` (the mapping from your real codes), `zxsync mappings check {slug}`.",
        f"slug: {slug}",
        f"name: {_yaml_scalar(name)}",
        f"timezone: {timezone}",
        "",
        "xero:",
        "  tenant_id: null            # recorded by `zxsync connect xero`",
        f"  connection: {slug}-xero     # name of the stored connection, never a secret",
        "zoho:",
        f"  data_centre: {dc}",
        f"  connection: {slug}-zoho",
        "  org_id: null               # recorded by `zxsync connect zoho`",
        "",
        'schedules: ["0 7 * * *", "0 19 * * *"]   # in the org\'s timezone',
        "",
        "modules:",
        *lines,
        "",
    ])


def _yaml_scalar(text: str) -> str:
    return yaml.safe_dump(text, default_style=None, width=1000).removesuffix("\n...\n").strip()


def write_org_file(slug: str, *, name: str, timezone: str, data_centre_code: str = "com",
                   modules: Sequence[str] | None = None, purchase_target: str = "bill",
                   overwrite: bool = False, orgs_dir: Path | None = None) -> Path:
    """Write ``<orgs_dir>/<slug>.yaml`` after validating it as an :class:`OrgConfig`; returns the path."""
    folder = orgs_dir or get_settings().orgs_dir
    path = folder / f"{slug}.yaml"
    if path.exists() and not overwrite:
        raise OnboardingError(f"{path} exists already (use --force to replace it)")
    try:
        text = org_file_text(slug, name=name, timezone=timezone, data_centre_code=data_centre_code,
                             modules=modules, purchase_target=purchase_target)
    except ValueError as exc:
        raise OnboardingError(str(exc)) from None
    try:
        parse_org(yaml.safe_load(text), str(path))
    except ConfigError as exc:
        raise OnboardingError(str(exc)) from None
    folder.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def _org_config(org: str) -> OrgConfig | None:
    try:
        return load_org(org)
    except ConfigError:
        return None


def record_ids_in_org_file(org: str, *, xero_tenant_id: str | None = None, zoho_org_id: str | None = None,
                           zoho_dc: str | None = None) -> bool:
    """Write the connected tenant / Zoho org id / data centre into ``orgs/<org>.yaml`` (comments kept).

    Returns False when the org has no file (the ledger's connection is what the sync uses anyway).
    """
    from ruamel.yaml import YAML

    path = get_settings().orgs_dir / f"{org}.yaml"
    if not path.exists():
        return False
    rt = YAML()
    rt.preserve_quotes = True
    data = rt.load(path.read_text(encoding="utf-8"))
    changed = False
    for section, key, value in (("xero", "tenant_id", xero_tenant_id), ("zoho", "org_id", zoho_org_id),
                                ("zoho", "data_centre", zoho_dc)):
        if value is not None and isinstance(data.get(section), Mapping) and data[section].get(key) != value:
            data[section][key] = value
            changed = True
    if changed:
        with path.open("w", encoding="utf-8") as fh:
            rt.dump(data, fh)
    return changed


# --- saving connections ---------------------------------------------------------------------------
@contextmanager
def _ledger(ledger: Ledger | None) -> Iterator[Ledger]:
    if ledger is not None:
        yield ledger
        return
    opened = Ledger.open()
    try:
        yield opened
    finally:
        opened.close()


#: How long onboarding waits for a running sync of the org to release its lock.
LOCK_WAIT_SECONDS = 30.0


def save_connections(ledger: Ledger, *connections: Connection, lock_wait: float = LOCK_WAIT_SECONDS) -> None:
    """Store connections under their org's lock (a running sync must not see them change mid-run)."""
    from ledger import OrgBusy

    for org in sorted({c.org for c in connections}):
        try:
            with ledger.org_lock(org, default_holder(f"zxsync connect {org}"), timeout=lock_wait):
                for conn in connections:
                    if conn.org == org:
                        ledger.save_connection(conn)
        except OrgBusy as exc:
            raise OnboardingError(f"{exc}; connect again once it has finished") from None


# --- the loopback redirect ------------------------------------------------------------------------
class LoopbackRedirect:
    """A one-shot HTTP server on 127.0.0.1 that receives the OAuth redirect (RFC 8252 §7.3).

    ``with LoopbackRedirect(port) as rx: ...; url = rx.wait(timeout)`` — ``rx.redirect_uri`` is what
    the app registered (``http://127.0.0.1:PORT/callback``; ``redirect_host="localhost"`` for
    portals that only accept that name). Port 0 picks a free port. The query (code, state) is never
    logged.
    """

    def __init__(self, port: int = DEFAULT_PORT, *, redirect_host: str = "127.0.0.1",
                 path: str = CALLBACK_PATH) -> None:
        self._requested_port = port
        self.redirect_host = redirect_host
        self.path = path
        self._received: str | None = None
        self._event = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        assert self._server is not None, "use LoopbackRedirect as a context manager"
        return int(self._server.server_address[1])

    @property
    def redirect_uri(self) -> str:
        return f"http://{self.redirect_host}:{self.port}{self.path}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if urlsplit(self.path).path != receiver.path:
                    self.send_error(404)
                    return
                query = parse_qs(urlsplit(self.path).query)
                if "error" in query:
                    message = f"Authorisation refused: {html.escape(query['error'][0])}. You can close this tab."
                else:
                    message = "zxsync received the authorisation. You can close this tab."
                body = f"<!doctype html><html><body><p>{message}</p></body></html>".encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                if not receiver._event.is_set():
                    receiver._received = f"http://{receiver.redirect_host}:{receiver.port}{self.path}"
                    receiver._event.set()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the request line carries the authorization code: never log it

        return Handler

    def __enter__(self) -> Self:
        try:
            self._server = ThreadingHTTPServer(("127.0.0.1", self._requested_port), self._handler())
        except OSError as exc:
            raise OnboardingError(f"cannot listen on 127.0.0.1:{self._requested_port} for the redirect "
                                  f"({exc.strerror}); pass another --port and register its redirect URI") from None
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="oauth-loopback", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def wait(self, timeout: float = CONSENT_TIMEOUT) -> str:
        """The redirect URL the browser was sent to (with its query), or :class:`OnboardingError`."""
        if not self._event.wait(timeout):
            raise OnboardingError(f"no authorisation arrived at {self.redirect_uri} within {timeout:.0f} s")
        assert self._received is not None
        return self._received


def _consent(url: str, receiver: LoopbackRedirect, *, echo: Echo, open_browser: bool, timeout: float) -> str:
    """Show the authorize URL, open a browser when we can, and wait for the redirect."""
    echo(f"Open this address in a browser to authorise (waiting on {receiver.redirect_uri}):\n  {url}")
    if open_browser:
        try:
            webbrowser.open(url)
        except webbrowser.Error:  # no browser here: the printed address is enough
            echo("(no browser could be opened: open the address yourself)")
    return receiver.wait(timeout)


# --- Xero -----------------------------------------------------------------------------------------
def pkce_pair() -> tuple[str, str]:
    """A PKCE code verifier (43-128 url-safe characters) and its S256 challenge (RFC 7636)."""
    verifier = random_token(64)[:128]
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def xero_authorize_url(login_url: str, *, client_id: str, redirect_uri: str, scopes: Sequence[str], state: str,
                       code_challenge: str) -> str:
    """``{login}/identity/connect/authorize?...`` with a PKCE S256 challenge (scopes space-separated)."""
    query = {"response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
             "scope": " ".join(scopes), "state": state, "code_challenge": code_challenge,
             "code_challenge_method": "S256"}
    return f"{login_url.rstrip('/')}/identity/connect/authorize?{urlencode(query)}"


def _xero_token(identity_url: str, form: dict[str, str], client_id: str, client_secret: str | None,
                what: str, timeout: float) -> dict[str, Any]:
    url = f"{identity_url.rstrip('/')}/connect/token"
    auth = (client_id, client_secret) if client_secret else None
    if auth is None:
        form = {**form, "client_id": client_id}
    try:
        answer = requests.post(url, data=form, auth=auth, headers={"Accept": "application/json"}, timeout=timeout)
    except requests.RequestException as exc:
        raise OnboardingError(f"cannot reach Xero's token endpoint ({type(exc).__name__})") from None
    try:
        body = answer.json()
    except ValueError:
        body = {}
    if answer.status_code != 200 or not isinstance(body, dict) or not body.get("access_token"):
        error = body.get("error") if isinstance(body, dict) else None
        hint = {"invalid_client": "check the client id and secret",
                "invalid_grant": "the code expired or was used already; connect again",
                "unauthorized_client": "this app cannot use that grant (a custom connection needs "
                                       "--custom-connection; a web app needs the browser flow)",
                "invalid_scope": "the app is not allowed these scopes; try --broad-scopes for an app "
                                 "created before March 2026"}.get(str(error), "")
        raise OnboardingError(f"Xero refused {what}: {error or f'HTTP {answer.status_code}'}"
                              + (f" — {hint}" if hint else ""))
    return body


def _xero_connection(org: str, body: dict[str, Any], *, client_id: str, client_secret: str,
                     grant: str, scopes: Sequence[str], settings: Settings, now: datetime) -> Connection:
    granted = str(body.get("scope") or "").split() or list(scopes)
    return Connection(
        org=org, system="xero", grant=grant, client_id=client_id,  # type: ignore[arg-type]
        client_secret=SecretStr(client_secret),
        refresh_token=SecretStr(body["refresh_token"]) if body.get("refresh_token") else None,
        access_token=SecretStr(body["access_token"]),
        access_expires_at=now + timedelta(seconds=int(body.get("expires_in") or 1800)),
        scopes=granted, urls=settings.xero_urls())


def _choose_tenant(tenants: list[dict[str, Any]], wanted: str | None,
                   ask: Callable[[list[dict[str, Any]]], dict[str, Any]] | None) -> dict[str, Any]:
    orgs = [t for t in tenants if str(t.get("tenantType", "ORGANISATION")).upper() == "ORGANISATION"]
    if not orgs:
        raise OnboardingError("the consent connected no Xero organisation; tick one on Xero's consent page")
    if wanted:
        key = wanted.strip().lower()
        for t in orgs:
            if key in (str(t.get("tenantId", "")).lower(), str(t.get("tenantName", "")).lower()):
                return t
        raise OnboardingError(f"--tenant {wanted!r} is none of the connected organisations: "
                              + "; ".join(f"{t.get('tenantName')} ({t.get('tenantId')})" for t in orgs))
    if len(orgs) == 1:
        return orgs[0]
    if ask is None:
        raise OnboardingError("several Xero organisations are connected; choose one with --tenant: "
                              + "; ".join(f"{t.get('tenantName')} ({t.get('tenantId')})" for t in orgs))
    return ask(orgs)


def _finish_xero(org: str, conn: Connection, *, tenant: str | None,
                 ask_tenant: Callable[[list[dict[str, Any]]], dict[str, Any]] | None,
                 ledger: Ledger | None, settings: Settings) -> tuple[Connection, dict[str, Any]]:
    """Choose the tenant from /connections, check it answers, store the connection."""
    store = MemoryCredentialStore()
    store.save(conn)
    client = XeroClient(store, org, settings=settings)
    try:
        tenants = client.connections()
    finally:
        client.session.close()
    chosen = _choose_tenant(tenants, tenant, ask_tenant)
    store.save(store.load(org, "xero").model_copy(update={"tenant_id": str(chosen["tenantId"])}))
    client = XeroClient(store, org, settings=settings)  # now bound to the chosen tenant
    try:
        organisation = client.organisation()
    finally:
        client.session.close()
    conn = store.load(org, "xero")  # the newest tokens, should the call have refreshed them
    with _ledger(ledger) as led:
        save_connections(led, conn)
    record_ids_in_org_file(org, xero_tenant_id=conn.tenant_id)
    return conn, organisation


def connect_xero(org: str, *, client_id: str, client_secret: str, scopes: Sequence[str] = XERO_SCOPES,
                 tenant: str | None = None, port: int = DEFAULT_PORT, redirect_host: str = "127.0.0.1",
                 open_browser: bool = True, echo: Echo = print, timeout: float = CONSENT_TIMEOUT,
                 ask_tenant: Callable[[list[dict[str, Any]]], dict[str, Any]] | None = None,
                 ledger: Ledger | None = None) -> tuple[Connection, dict[str, Any]]:
    """Connect ``org`` to Xero with the authorization code flow, PKCE (S256) and a loopback redirect.

    The consent page lets the user tick organisations; the tenant is ``tenant`` (id or name), the
    only one, or ``ask_tenant``'s choice. Returns the stored connection and Xero's Organisation.
    """
    settings = get_settings()
    urls = settings.xero_urls()
    verifier, challenge = pkce_pair()
    state = random_token(24)
    with LoopbackRedirect(port, redirect_host=redirect_host) as receiver:
        url = xero_authorize_url(urls["login"], client_id=client_id, redirect_uri=receiver.redirect_uri,
                                 scopes=scopes, state=state, code_challenge=challenge)
        redirect = _consent(url, receiver, echo=echo, open_browser=open_browser, timeout=timeout)
        redirect_uri = receiver.redirect_uri
    query = {k: v[0] for k, v in parse_qs(urlsplit(redirect).query).items()}
    if query.get("error"):
        raise OnboardingError(f"Xero refused the authorisation: {query['error']}")
    if query.get("state") != state:
        raise OnboardingError("the redirect's state does not match the one we sent (possible CSRF); try again")
    if not query.get("code"):
        raise OnboardingError("the redirect carries no authorization code")
    now = datetime.now(UTC)
    body = _xero_token(urls["identity"], {"grant_type": "authorization_code", "code": query["code"],
                                          "redirect_uri": redirect_uri, "code_verifier": verifier},
                       client_id, client_secret, "the authorization code", settings.http_timeout_seconds)
    if not body.get("refresh_token"):
        raise OnboardingError("Xero issued no refresh token: the scopes must include offline_access")
    conn = _xero_connection(org, body, client_id=client_id, client_secret=client_secret,
                            grant="authorization_code", scopes=scopes, settings=settings, now=now)
    return _finish_xero(org, conn, tenant=tenant, ask_tenant=ask_tenant, ledger=ledger, settings=settings)


def connect_xero_custom(org: str, *, client_id: str, client_secret: str,
                        scopes: Sequence[str] = XERO_SCOPES, tenant: str | None = None,
                        ledger: Ledger | None = None) -> tuple[Connection, dict[str, Any]]:
    """Connect ``org`` through a Xero custom connection (client credentials; bound to one organisation)."""
    settings = get_settings()
    wanted = [s for s in scopes if s != "offline_access"]  # client credentials issue no refresh token
    now = datetime.now(UTC)
    body = _xero_token(settings.xero_urls()["identity"], {"grant_type": "client_credentials",
                                                          "scope": " ".join(wanted)},
                       client_id, client_secret, "the client credentials", settings.http_timeout_seconds)
    conn = _xero_connection(org, body, client_id=client_id, client_secret=client_secret,
                            grant="client_credentials", scopes=wanted, settings=settings, now=now)
    return _finish_xero(org, conn, tenant=tenant, ask_tenant=None, ledger=ledger, settings=settings)


# --- Zoho -----------------------------------------------------------------------------------------
def connect_zoho(org: str, *, client_id: str, client_secret: str, dc: str = "com",
                 scopes: Sequence[str] = ZOHO_SCOPES, grant_code: str | None = None,
                 port: int = DEFAULT_PORT, redirect_host: str = "127.0.0.1", open_browser: bool = True,
                 echo: Echo = print, timeout: float = CONSENT_TIMEOUT,
                 ledger: Ledger | None = None) -> tuple[Connection, dict[str, Any]]:
    """Connect ``org`` to Zoho CRM: the consent flow in the browser, or a self-client ``grant_code``.

    The accounts server is the one of ``dc`` (or the redirect's ``accounts-server``, which names the
    user's real data centre); the API domain is the token response's ``api_domain``. The
    ``ZX_ZOHO_ACCOUNTS_URL`` / ``ZX_ZOHO_API_URL`` overrides (sandboxes) are trusted as well.
    Returns the stored connection and Zoho's organisation record.
    """
    settings = get_settings()
    override = settings.zoho_accounts_url
    try:
        accounts = override or accounts_server_for_dc(dc)
    except ValueError as exc:
        raise OnboardingError(str(exc)) from None
    common = {"org": org, "client_id": client_id, "client_secret": client_secret, "token_url_base": override,
              "allowed_api_domains": [settings.zoho_api_url], "timeout": settings.http_timeout_seconds}
    if grant_code:
        conn = exchange_grant_code(code=grant_code.strip(), accounts_url=accounts, **common)  # type: ignore[arg-type]
    else:
        state = random_token(24)
        with LoopbackRedirect(port, redirect_host=redirect_host) as receiver:
            url = authorize_url(accounts, client_id=client_id, redirect_uri=receiver.redirect_uri, state=state,
                                scopes=scopes)
            redirect = _consent(url, receiver, echo=echo, open_browser=open_browser, timeout=timeout)
            redirect_uri = receiver.redirect_uri
        try:
            parsed = parse_auth_redirect(redirect, expected_state=state, also_allow=[override])
        except ValueError as exc:
            raise OnboardingError(str(exc)) from None
        conn = exchange_grant_code(code=parsed.code, accounts_url=parsed.accounts_server, redirect_uri=redirect_uri,
                                   **common)  # type: ignore[arg-type]
    store = MemoryCredentialStore()
    store.save(conn)
    client = ZohoClient(store, org, settings=settings)
    try:
        zoho_org = client.org()
    finally:
        client.session.close()
    # The org id (``zgid``) names the org in record links (crm.zoho.<dc>/crm/org<zgid>/...).
    org_id = str(zoho_org.get("zgid") or zoho_org.get("id") or "") or None
    conn = store.load(org, "zoho").model_copy(update={"tenant_id": org_id})
    with _ledger(ledger) as led:
        save_connections(led, conn)
    known = dc_for_accounts_server(conn.accounts_url or "")
    record_ids_in_org_file(org, zoho_org_id=conn.tenant_id, zoho_dc=known.code if known else None)
    return conn, zoho_org


# --- Zoho fields ----------------------------------------------------------------------------------
#: Product module -> the Zoho modules whose Xero_* fields it writes (sales orders and quotes carry
#: the invoice fields, architecture.md "Zoho CRM fields the sync writes").
_FIELD_MODULES: dict[str, tuple[str, ...]] = {
    "contacts": ("Accounts", "Contacts"), "vendors": ("Vendors",), "products": ("Products",),
    "invoices": ("Invoices",), "payments": ("Invoices",), "purchase_orders": ("Purchase_Orders",),
    "sales_orders": ("Sales_Orders",), "quotes": ("Quotes",),
}


def required_zoho_fields(config: OrgConfig | None) -> dict[str, list[FieldSpec]]:
    """The Xero_* fields each Zoho module needs for the org's enabled modules (all, without a config)."""
    enabled = [name for name in _FIELD_MODULES
               if config is None or getattr(config.modules, name).enabled]
    out: dict[str, list[FieldSpec]] = {}
    for name in enabled:
        for module in _FIELD_MODULES[name]:
            out.setdefault(module, list(XERO_SYNC_FIELDS.get(module) or XERO_SYNC_FIELDS["Invoices"]))
    return out


def ensure_zoho_fields(org: str, *, config: OrgConfig | None = None, ledger: Ledger | None = None,
                       lock_wait: float = LOCK_WAIT_SECONDS) -> list[EnsureFieldsResult]:
    """Create the missing Xero_* fields of ``org``'s enabled modules in its Zoho CRM (idempotent).

    ``config`` defaults to ``orgs/<org>.yaml`` (every module when the org has no file).
    """
    from ledger import OrgBusy

    config = config if config is not None else _org_config(org)
    results: list[EnsureFieldsResult] = []
    with _ledger(ledger) as led:
        client = ZohoClient(LedgerCredentialStore(led), org)
        try:
            with led.org_lock(org, default_holder(f"zxsync setup zoho-fields {org}"), timeout=lock_wait):
                for module, specs in required_zoho_fields(config).items():
                    results.append(client.ensure_fields(module, specs))
        except OrgBusy as exc:
            raise OnboardingError(f"{exc}; run the setup again once it has finished") from None
        finally:
            client.session.close()
    return results


# --- the sandboxes' shortcut ----------------------------------------------------------------------
def _sandbox_credentials(base_url: str | None, what: str, org_id: str | None = None) -> dict[str, Any]:
    if not base_url:
        raise SystemExit(f"Set {what} to the sandbox URL printed by `zxsync sandbox` to connect to it.")
    params = {"org": org_id} if org_id else None
    answer = requests.get(f"{base_url.rstrip('/')}/_sandbox/credentials", params=params, timeout=30)
    answer.raise_for_status()
    return answer.json()


def xero_connection_from_sandbox(org: str, creds: dict[str, Any], settings: Settings) -> Connection:
    """A Xero connection from a sandbox's ``/_sandbox/credentials`` (or ``/_sandbox/orgs``) answer."""
    urls = settings.xero_urls()
    return Connection(org=org, system="xero", client_id=creds["client_id"],
                      client_secret=SecretStr(creds["client_secret"]),
                      refresh_token=SecretStr(creds["refresh_token"]), tenant_id=creds["tenant_id"],
                      scopes=list(XERO_SCOPES), urls=urls)


def zoho_connection_from_sandbox(org: str, creds: dict[str, Any]) -> Connection:
    """A Zoho connection from a sandbox's ``/_sandbox/credentials`` (or ``/_sandbox/orgs``) answer."""
    return Connection(org=org, system="zoho", client_id=creds["client_id"],
                      client_secret=SecretStr(creds["client_secret"]),
                      refresh_token=SecretStr(creds["refresh_token"]), tenant_id=creds.get("org_id"),
                      accounts_url=creds["accounts_url"], api_domain=creds["api_domain"],
                      scopes=list(ZOHO_SCOPES))


def connect_sandbox(org: str, ledger: Ledger | None = None, *, xero_org: str | None = None,
                    zoho_org: str | None = None) -> tuple[Connection, Connection]:
    """Store ``org``'s Xero and Zoho connections from the sandboxes the endpoint overrides point at."""
    settings = get_settings()
    xero = xero_connection_from_sandbox(
        org, _sandbox_credentials(settings.xero_identity_url or settings.xero_api_url,
                                  "ZX_XERO_API_URL", xero_org), settings)
    zoho = zoho_connection_from_sandbox(
        org, _sandbox_credentials(settings.zoho_accounts_url or settings.zoho_api_url,
                                  "ZX_ZOHO_ACCOUNTS_URL", zoho_org))
    with _ledger(ledger) as led:
        led.save_connection(xero)
        led.save_connection(zoho)
    return xero, zoho


def onboard_sandbox_org(org: str, ledger: Ledger | None = None, *, xero_org: str | None = None,
                        zoho_org: str | None = None) -> tuple[Connection, Connection, list[EnsureFieldsResult]]:
    """Connect ``org`` to the sandboxes and create its Xero_* fields in Zoho, as a real org's
    onboarding would (the sandbox seeds have none): what the demo and the end-to-end tests call."""
    with _ledger(ledger) as led:
        xero, zoho = connect_sandbox(org, led, xero_org=xero_org, zoho_org=zoho_org)
        fields = ensure_zoho_fields(org, ledger=led)
    return xero, zoho, fields
