"""Fixtures and helpers for the Zoho connector tests (imported by tests/test_connector_zoho*.py;
holds no tests itself).

Each test gets a fresh Zoho CRM sandbox on a free loopback port with its state in a tmp dir, the
endpoint overrides pointing at it, and a :class:`MemoryCredentialStore` connected with the
sandbox's credentials (the organisation's token is minted on first use, then shared).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from pydantic import SecretStr

from connectors.credentials import Connection, MemoryCredentialStore
from connectors.zoho import ZohoClient
from zxsync.settings import get_settings

TOKEN_ROUTE = "POST /oauth/v2/token"


@dataclass
class Sandbox:
    """A running Zoho sandbox and its admin routes."""

    url: str
    tmp: Path

    def admin(self, method: str, route: str, **kw: Any) -> Any:
        response = requests.request(method, f"{self.url}/_sandbox/{route}", timeout=30, **kw)
        response.raise_for_status()
        return response.json() if response.content else None

    def credentials(self, org_id: str | None = None) -> dict[str, Any]:
        return self.admin("GET", "credentials", params={"org": org_id} if org_id else None)

    def new_org(self, name: str, seed: str = "empty") -> dict[str, Any]:
        return self.admin("POST", "orgs", json={"name": name, "seed": seed})

    def stats(self) -> dict[str, Any]:
        return self.admin("GET", "stats")

    def journal(self, since: int = 0) -> list[dict[str, Any]]:
        return self.admin("GET", "journal", params={"since": since})

    def token_calls(self) -> int:
        return int(self.stats()["calls"].get(TOKEN_ROUTE, 0))

    def faults(self, *rules: dict[str, Any]) -> None:
        self.admin("PUT", "faults", json={"rules": list(rules)})

    def limits(self, **limits: Any) -> None:
        self.admin("PUT", "limits", json=limits)

    def advance_clock(self, seconds: float) -> None:
        self.admin("PUT", "clock", json={"advance_seconds": seconds})


@pytest.fixture(name="zoho_sandbox")
def zoho_sandbox_fixture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Sandbox]:
    """A fresh demo-seeded Zoho CRM sandbox; ZX_ZOHO_ACCOUNTS_URL/ZX_ZOHO_API_URL point at it."""
    from sandbox.server import start
    from sandbox.zoho.app import ZohoSandbox

    running = start(ZohoSandbox(tmp_path / "zoho-sandbox"))
    monkeypatch.setenv("ZX_ZOHO_ACCOUNTS_URL", running.url)
    monkeypatch.setenv("ZX_ZOHO_API_URL", running.url)
    get_settings.cache_clear()
    try:
        yield Sandbox(url=running.url, tmp=tmp_path)
    finally:
        running.stop()
        get_settings.cache_clear()


def set_env(monkeypatch: pytest.MonkeyPatch, **values: Any) -> None:
    """Set ``ZX_*`` settings for this test and re-read them."""
    for name, value in values.items():
        monkeypatch.setenv(f"ZX_{name.upper()}", str(value))
    get_settings.cache_clear()


def connect(sandbox: Sandbox, store: MemoryCredentialStore, org: str = "acme",
            creds: dict[str, Any] | None = None) -> Connection:
    """Store a Zoho connection for ``org`` from the sandbox's credentials (no access token yet)."""
    creds = creds or sandbox.credentials()
    conn = Connection(org=org, system="zoho", client_id=creds["client_id"],
                      client_secret=SecretStr(creds["client_secret"]),
                      refresh_token=SecretStr(creds["refresh_token"]),
                      accounts_url=creds.get("accounts_url") or sandbox.url,
                      api_domain=creds.get("api_domain") or sandbox.url)
    store.save(conn)
    return conn


@dataclass
class Traffic:
    """Every request a session sent and the response it got (a requests response hook)."""

    exchanges: list[requests.Response] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        _ = response.content  # keep the body readable after the client consumed it
        with self.lock:
            self.exchanges.append(response)
        return response

    def session(self) -> requests.Session:
        session = requests.Session()
        session.hooks["response"].append(self.hook)
        return session

    def api_calls(self, path_part: str = "/crm/") -> list[requests.Response]:
        with self.lock:
            return [r for r in self.exchanges if path_part in r.request.url]


def client(store: MemoryCredentialStore, org: str = "acme", traffic: Traffic | None = None,
           sleeps: list[float] | None = None, **kw: Any) -> ZohoClient:
    """A client over ``store``; records traffic and (instead of sleeping) backoff waits if asked."""
    zc = ZohoClient(store, org, session=traffic.session() if traffic else None, **kw)
    if sleeps is not None:
        zc.retry.sleep = sleeps.append
    return zc
