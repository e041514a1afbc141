"""Helpers for the Xero sandbox tests: a connected client over real HTTP (plain ``requests``)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from sandbox.server import RunningSandbox, start
from sandbox.xero.app import XeroSandbox

API = "/api.xro/2.0"


@dataclass
class XeroCaller:
    """A connected app for one tenant of a running sandbox."""

    url: str
    client_id: str
    client_secret: str
    refresh_token: str
    tenant_id: str
    access_token: str = ""
    session: requests.Session = field(default_factory=requests.Session)

    @classmethod
    def connect(cls, url: str, org: str | None = None) -> XeroCaller:
        params = {"org": org} if org else {}
        creds = requests.get(f"{url}/_sandbox/credentials", params=params, timeout=10).json()
        caller = cls(url, creds["client_id"], creds["client_secret"], creds["refresh_token"], creds["tenant_id"])
        caller.refresh()
        return caller

    def token(self, **form: str) -> requests.Response:
        return self.session.post(f"{self.url}/connect/token", data=form, auth=(self.client_id, self.client_secret),
                                 timeout=10)

    def refresh(self) -> dict[str, Any]:
        answer = self.token(grant_type="refresh_token", refresh_token=self.refresh_token)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        self.refresh_token = body["refresh_token"]
        self.access_token = body["access_token"]
        return body

    def headers(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}", "xero-tenant-id": self.tenant_id,
                "Accept": "application/json", **extra}

    def call(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None,
             headers: dict[str, str] | None = None) -> requests.Response:
        url = path if path.startswith("http") else f"{self.url}{API}{path}" if not path.startswith("/connections") \
            else f"{self.url}{path}"
        return self.session.request(method, url, params=params, json=json,
                                    headers={**self.headers(), **(headers or {})}, timeout=30)

    def get(self, path: str, **params: Any) -> requests.Response:
        return self.call("GET", path, params=params or None)

    def put(self, path: str, body: Any, **params: Any) -> requests.Response:
        return self.call("PUT", path, params=params or None, json=body)

    def post(self, path: str, body: Any, **params: Any) -> requests.Response:
        return self.call("POST", path, params=params or None, json=body)

    def ok(self, answer: requests.Response) -> dict[str, Any]:
        assert answer.status_code == 200, f"{answer.status_code}: {answer.text[:2000]}"
        return answer.json()

    # --- shortcuts -------------------------------------------------------------------------------
    def contact(self, name: str, **fields: Any) -> dict[str, Any]:
        return self.ok(self.put("/Contacts", {"Contacts": [{"Name": name, **fields}]}))["Contacts"][0]

    def invoice(self, contact_id: str, *, lines: list[dict[str, Any]] | None = None, **fields: Any) -> dict[str, Any]:
        body = {"Type": "ACCREC", "Contact": {"ContactID": contact_id}, "Date": "2025-07-01",
                "DueDate": "2025-07-31", "LineItems": lines or [
                    {"Description": "Consulting", "Quantity": 1, "UnitAmount": 100, "AccountCode": "200",
                     "TaxType": "OUTPUT2"}], **fields}
        return self.ok(self.put("/Invoices", {"Invoices": [body]}))["Invoices"][0]

    def pay(self, invoice_id: str, amount: float, **fields: Any) -> requests.Response:
        return self.put("/Payments", {"Payments": [{"Invoice": {"InvoiceID": invoice_id}, "Account": {"Code": "090"},
                                                    "Date": "2025-08-01", "Amount": amount, **fields}]})


def errors_of(answer: requests.Response) -> list[str]:
    """Every ValidationErrors message of a 400 ValidationException or a summarizeErrors=false answer."""
    body = answer.json()
    elements = body.get("Elements")
    if elements is None:
        elements = next((v for k, v in body.items() if isinstance(v, list) and k not in ("Warnings",)), [])
    return [e["Message"] for el in elements for e in el.get("ValidationErrors", [])]


def advance(url: str, seconds: float) -> None:
    requests.put(f"{url}/_sandbox/clock", json={"advance_seconds": seconds}, timeout=10).raise_for_status()


# --- fixtures: one sandbox per test module, reset to the demo seed before each test ------------------
@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    server = start(XeroSandbox(tmp_path_factory.mktemp("xero")))
    yield server
    server.stop()


@pytest.fixture()
def url(running: RunningSandbox) -> str:
    requests.post(f"{running.url}/_sandbox/reset", params={"seed": "demo"}, timeout=30).raise_for_status()
    return running.url


@pytest.fixture()
def x(url: str) -> XeroCaller:
    return XeroCaller.connect(url)
