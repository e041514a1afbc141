"""Helpers for end-to-end tests: both sandboxes on free ports, the demo org connected to them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from sandbox.server import RunningSandbox, start_both


@dataclass
class Sandboxes:
    xero: RunningSandbox
    zoho: RunningSandbox

    def stats(self, which: str) -> dict[str, Any]:
        return requests.get(f"{getattr(self, which).url}/_sandbox/stats", timeout=30).json()

    def journal(self, which: str, since: int = 0) -> list[dict[str, Any]]:
        return requests.get(f"{getattr(self, which).url}/_sandbox/journal", params={"since": since},
                            timeout=30).json()

    def writes(self) -> int:
        return self.stats("xero")["writes"] + self.stats("zoho")["writes"]


@contextmanager
def running_sandboxes(state_dir: Path, monkeypatch: pytest.MonkeyPatch, seed: str = "demo") -> Iterator[Sandboxes]:
    """Start both sandboxes and point the endpoint overrides at them."""
    from zxsync.settings import get_settings

    xero, zoho = start_both(state_dir, seed=seed)
    monkeypatch.setenv("ZX_XERO_LOGIN_URL", xero.url)
    monkeypatch.setenv("ZX_XERO_IDENTITY_URL", xero.url)
    monkeypatch.setenv("ZX_XERO_API_URL", xero.url)
    monkeypatch.setenv("ZX_ZOHO_ACCOUNTS_URL", zoho.url)
    monkeypatch.setenv("ZX_ZOHO_API_URL", zoho.url)
    get_settings.cache_clear()
    try:
        yield Sandboxes(xero=xero, zoho=zoho)
    finally:
        from tasks import runtime

        runtime.reset()
        xero.stop()
        zoho.stop()
