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
def running_sandboxes(state_dir: Path, monkeypatch: pytest.MonkeyPatch, seed: str = "demo",
                      onboard: str | None = "demo") -> Iterator[Sandboxes]:
    """Start both sandboxes and point the endpoint overrides at them.

    ``onboard`` (default the demo org) is then onboarded as a real org would be: connected, and its
    Xero_* fields created in Zoho (the sandbox seeds have none) — ``zxsync.onboarding.onboard_sandbox_org``.
    ``None`` leaves the sandboxes untouched (onboarding tests).
    """
    from zxsync.onboarding import onboard_sandbox_org
    from zxsync.settings import get_settings

    xero, zoho = start_both(state_dir, seed=seed)
    monkeypatch.setenv("ZX_XERO_LOGIN_URL", xero.url)
    monkeypatch.setenv("ZX_XERO_IDENTITY_URL", xero.url)
    monkeypatch.setenv("ZX_XERO_API_URL", xero.url)
    monkeypatch.setenv("ZX_ZOHO_ACCOUNTS_URL", zoho.url)
    monkeypatch.setenv("ZX_ZOHO_API_URL", zoho.url)
    get_settings.cache_clear()
    try:
        if onboard is not None:
            onboard_sandbox_org(onboard)
        yield Sandboxes(xero=xero, zoho=zoho)
    finally:
        from tasks import runtime

        runtime.reset()
        xero.stop()
        zoho.stop()


class XeroReader:
    """Reads a Xero sandbox tenant with its own fresh consent (independent of the product's tokens)."""

    def __init__(self, base: str, tenant: str | None = None) -> None:
        creds = requests.get(f"{base}/_sandbox/credentials", params={"org": tenant} if tenant else None,
                             timeout=30).json()
        token = requests.post(f"{base}/connect/token", data={"grant_type": "refresh_token",
                                                              "refresh_token": creds["refresh_token"]},
                              auth=(creds["client_id"], creds["client_secret"]), timeout=30).json()
        self.base = base
        self.tenant = creds["tenant_id"]
        self.headers = {"Authorization": f"Bearer {token['access_token']}", "xero-tenant-id": self.tenant,
                        "Accept": "application/json"}

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        answer = requests.get(f"{self.base}/api.xro/2.0/{path}", params=params, headers=self.headers, timeout=60)
        answer.raise_for_status()
        return answer.json()

    def all(self, entity: str, **params: Any) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        page = 1
        while True:
            chunk = self.get(entity, page=page, pageSize=1000, **params)[entity]
            out += chunk
            if len(chunk) < 1000:
                return out
            page += 1

    def put(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = requests.put(f"{self.base}/api.xro/2.0/{path}", json=body, headers=self.headers, timeout=60)
        answer.raise_for_status()
        return answer.json()


class ZohoReader:
    """Reads and edits a Zoho sandbox org as a CRM user would (its own token)."""

    def __init__(self, base: str, org: str | None = None) -> None:
        creds = requests.get(f"{base}/_sandbox/credentials", params={"org": org} if org else None, timeout=30).json()
        token = requests.post(f"{base}/oauth/v2/token", data={
            "grant_type": "refresh_token", "refresh_token": creds["refresh_token"],
            "client_id": creds["client_id"], "client_secret": creds["client_secret"]}, timeout=30).json()
        self.base = base
        self.headers = {"Authorization": f"Zoho-oauthtoken {token['access_token']}"}

    def records(self, module: str, fields: list[str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {"fields": ",".join(fields), "per_page": 200}
        while True:
            answer = requests.get(f"{self.base}/crm/v8/{module}", params=params, headers=self.headers, timeout=60)
            if answer.status_code == 204:
                return out
            answer.raise_for_status()
            body = answer.json()
            out += body["data"]
            if not body["info"].get("more_records"):
                return out
            params["page_token"] = body["info"]["next_page_token"]

    def record(self, module: str, record_id: str) -> dict[str, Any]:
        answer = requests.get(f"{self.base}/crm/v8/{module}/{record_id}", headers=self.headers, timeout=60)
        answer.raise_for_status()
        return answer.json()["data"][0]

    def update(self, module: str, record: dict[str, Any]) -> dict[str, Any]:
        answer = requests.put(f"{self.base}/crm/v8/{module}", json={"data": [record], "trigger": []},
                              headers=self.headers, timeout=60)
        answer.raise_for_status()
        return answer.json()["data"][0]
