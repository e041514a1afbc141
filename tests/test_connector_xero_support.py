"""Fixtures shared by the Xero connector tests: one sandbox per module on a free port, reset per test.

Holds no tests. The sandbox is reached only over HTTP (its admin routes and the emulated API),
like a real Xero; settings come from ``ZX_*`` environment variables.
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
from connectors.xero import XeroClient
from connectors.xero_limits import forget_limiters
from zxsync.settings import get_settings


@dataclass
class XeroSandboxHandle:
    """Admin access to a running Xero sandbox."""

    url: str
    running: Any
    http: requests.Session = field(default_factory=requests.Session)

    def admin(self, method: str, path: str, body: Any = None, **params: Any) -> Any:
        response = self.http.request(method, f"{self.url}/_sandbox/{path}", json=body, params=params or None,
                                     timeout=30)
        response.raise_for_status()
        return response.json() if response.content else None

    def reset(self, seed: str = "demo") -> None:
        self.admin("POST", "reset", seed=seed)

    def credentials(self) -> dict[str, Any]:
        return self.admin("GET", "credentials")

    def journal(self, since: int = 0) -> list[dict[str, Any]]:
        return self.admin("GET", "journal", since=since)

    def stats(self) -> dict[str, Any]:
        return self.admin("GET", "stats")

    def faults(self, *rules: dict[str, Any]) -> None:
        self.admin("PUT", "faults", {"rules": list(rules)})

    def limits(self, **limits: Any) -> None:
        self.admin("PUT", "limits", limits)

    def advance(self, seconds: float) -> dict[str, Any]:
        return self.admin("PUT", "clock", {"advance_seconds": seconds})

    def now(self) -> str:
        return self.admin("GET", "clock")["now"]

    def calls(self, route: str) -> int:
        return int(self.stats()["calls"].get(route, 0))


def start_xero_sandbox(state_dir: Path) -> XeroSandboxHandle:
    from sandbox.server import start
    from sandbox.xero.app import XeroSandbox

    running = start(XeroSandbox(state_dir))
    return XeroSandboxHandle(url=running.url, running=running)


@pytest.fixture(scope="module")
def xero_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[XeroSandboxHandle]:
    """A Xero sandbox for the module (starting one per test would cost seconds each)."""
    pytest.importorskip("sandbox.xero.app", reason="the Xero sandbox has not landed yet")
    handle = start_xero_sandbox(tmp_path_factory.mktemp("xero-sandbox"))
    yield handle
    handle.running.stop()


@pytest.fixture()
def xero(xero_sandbox: XeroSandboxHandle, monkeypatch: pytest.MonkeyPatch) -> XeroSandboxHandle:
    """The module's sandbox, reset to the demo seed, with the ZX_XERO_* URLs pointing at it."""
    xero_sandbox.reset()
    for name in ("LOGIN", "IDENTITY", "API"):
        monkeypatch.setenv(f"ZX_XERO_{name}_URL", xero_sandbox.url)
    get_settings.cache_clear()
    forget_limiters()
    return xero_sandbox


def connection_from(creds: dict[str, Any], org: str = "demo", **update: Any) -> Connection:
    """A stored Xero connection made from ``/_sandbox/credentials``."""
    conn = Connection(org=org, system="xero", client_id=creds["client_id"],
                      client_secret=SecretStr(creds["client_secret"]),
                      refresh_token=SecretStr(creds["refresh_token"]), tenant_id=creds.get("tenant_id"))
    return conn.model_copy(update=update)


def store_for(xero: XeroSandboxHandle, org: str = "demo", **update: Any) -> MemoryCredentialStore:
    store = MemoryCredentialStore()
    store.save(connection_from(xero.credentials(), org, **update))
    return store


def client_for(xero: XeroSandboxHandle, store: MemoryCredentialStore | None = None, **kw: Any) -> XeroClient:
    store = store or store_for(xero)
    return XeroClient(store, "demo", **kw)


class Recorder:
    """A requests response hook keeping every (request, response) pair the connector exchanged."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.exchanges: list[tuple[requests.PreparedRequest, requests.Response]] = []

    def __call__(self, response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        _ = response.content  # keep the body
        with self.lock:
            self.exchanges.append((response.request, response))
        return response

    def session(self) -> requests.Session:
        session = requests.Session()
        session.hooks["response"].append(self)
        return session


def contact(number: str, name: str | None = None, **extra: Any) -> dict[str, Any]:
    """A contact element keyed by its ContactNumber (the Zoho id in production)."""
    return {"ContactNumber": number, "Name": name or f"Contact {number}", **extra}
