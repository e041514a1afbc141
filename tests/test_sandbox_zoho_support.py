"""Helpers for the Zoho sandbox tests: a connected caller over real HTTP (plain ``requests``)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from sandbox.server import RunningSandbox, start
from sandbox.zoho.app import ZohoSandbox

API = "/crm/v8"


@dataclass
class ZohoCaller:
    """A connected client of one org of a running Zoho sandbox."""

    url: str
    client_id: str
    client_secret: str
    refresh_token: str
    org_id: str
    access_token: str = ""
    session: requests.Session = field(default_factory=requests.Session)

    @classmethod
    def connect(cls, url: str, org: str | None = None) -> ZohoCaller:
        creds = requests.get(f"{url}/_sandbox/credentials", params={"org": org} if org else {}, timeout=10).json()
        caller = cls(url, creds["client_id"], creds["client_secret"], creds["refresh_token"], creds["org_id"])
        caller.refresh()
        return caller

    def token(self, **form: str) -> requests.Response:
        return self.session.post(f"{self.url}/oauth/v2/token", data=form, timeout=10)

    def refresh(self) -> dict[str, Any]:
        answer = self.token(grant_type="refresh_token", client_id=self.client_id, client_secret=self.client_secret,
                            refresh_token=self.refresh_token)
        body = answer.json()
        assert answer.status_code == 200 and "access_token" in body, answer.text
        self.access_token = body["access_token"]
        return body

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Zoho-oauthtoken {self.access_token}", **extra}

    def call(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None,
             headers: dict[str, str] | None = None) -> requests.Response:
        return self.session.request(method, f"{self.url}{API}{path}", params=params, json=json,
                                    headers={**self.headers(), **(headers or {})}, timeout=60)

    def get(self, path: str, headers: dict[str, str] | None = None, **params: Any) -> requests.Response:
        return self.call("GET", path, params=params or None, headers=headers)

    def post(self, path: str, body: Any, **params: Any) -> requests.Response:
        return self.call("POST", path, params=params or None, json=body)

    def put(self, path: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
        return self.call("PUT", path, json=body, headers=headers)

    def delete(self, path: str, **params: Any) -> requests.Response:
        return self.call("DELETE", path, params=params or None)

    def coql(self, query: str) -> requests.Response:
        return self.post("/coql", {"select_query": query})

    def ok(self, answer: requests.Response, status: int = 200) -> Any:
        assert answer.status_code == status, f"{answer.status_code}: {answer.text[:2000]}"
        return answer.json()

    # --- shortcuts -------------------------------------------------------------------------------
    def first(self, module: str, fields: str = "id") -> dict[str, Any]:
        return self.ok(self.get(f"/{module}", fields=fields, per_page=1, sort_by="id", sort_order="asc"))["data"][0]

    def record(self, module: str, record_id: str) -> dict[str, Any]:
        return self.ok(self.get(f"/{module}/{record_id}"))["data"][0]

    def new_invoice(self, lines: list[dict[str, Any]] | None = None, **fields: Any) -> str:
        account = self.first("Accounts")["id"]
        product = self.first("Products")["id"]
        body = {"Subject": f"Test invoice {time.monotonic_ns()}", "Account_Name": {"id": account},
                "Invoiced_Items": lines or [{"Product_Name": {"id": product}, "Quantity": 2, "List_Price": 10.0,
                                             "Line_Tax": [{"name": "GST 15%"}]}], **fields}
        answer = self.ok(self.post("/Invoices", {"data": [body], "trigger": []}), 201)
        return answer["data"][0]["details"]["id"]

    # --- admin -----------------------------------------------------------------------------------
    def admin(self, method: str, path: str, **kw: Any) -> Any:
        answer = requests.request(method, f"{self.url}/_sandbox/{path}", timeout=60, **kw)
        assert answer.status_code < 300, answer.text
        return answer.json()

    def advance(self, seconds: float) -> None:
        self.admin("PUT", "clock", json={"advance_seconds": seconds})


def running_zoho(tmp_path: Path, **kw: Any) -> Iterator[RunningSandbox]:
    kw.setdefault("xero_fields", True)  # these tests exercise the Xero_* fields; onboarding's own tests create them
    running = start(ZohoSandbox(tmp_path / "zoho-state", **kw))
    try:
        yield running
    finally:
        running.stop()


def connected(state_dir: Path, **kw: Any) -> Iterator[ZohoCaller]:
    """A fresh demo sandbox and a caller connected to its demo org (use with ``yield from``)."""
    for running in running_zoho(state_dir, **kw):
        yield ZohoCaller.connect(running.url)
