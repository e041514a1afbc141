"""Conformance: every request the connector sends and every answer the sandbox gives, against the
official Xero OpenAPI spec (``ZX_SPECS_DIR``/xero_accounting.yaml, xero-identity.yaml).

The test drives every operation the product uses through the connector, captures the exchanges
with a requests response hook, and validates each with openapi-core. Statuses the spec does not
document for an operation (401, 404, 429, 5xx) are checked against the small schemas below,
written from the API notes (xero-api-notes.md §3, §10) since Xero publishes none.
"""

# ruff: noqa: F811  (the sandbox fixtures are imported by name)
from __future__ import annotations

import re
import warnings
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit, urlunsplit

import jsonschema
import pytest
import requests
import yaml
from pydantic import SecretStr

from connectors.errors import BudgetExhausted, NotFoundError, RateLimitError, ServerError
from connectors.xero import BillRef, XeroClient
from tests.test_connector_xero_support import (  # noqa: F401  (fixtures)
    Recorder,
    XeroSandboxHandle,
    contact,
    store_for,
    xero,
    xero_sandbox,
)

SPEC_SERVER = "https://api.xero.com"

#: Schemas for answers the spec leaves undocumented (from the notes, not from the sandbox).
UNDOCUMENTED: dict[int, dict[str, Any]] = {
    # 429: X-Rate-Limit-Problem names the limit; Retry-After (seconds) for minute/day breaches.
    429: {"type": "object", "required": ["X-Rate-Limit-Problem"],
          "properties": {"X-Rate-Limit-Problem": {"type": "string", "minLength": 1},
                         "Retry-After": {"type": "string", "pattern": r"^\d+$"}}},
    # 401: an RFC 7807-style problem object ({"Title": "Unauthorized", "Detail": ...}) or nothing.
    401: {"type": ["object", "null"]},
    # 404: the plain sentence "The resource you're looking for cannot be found" (notes §10).
    404: {"type": ["string", "object", "null"]},
    500: {"type": ["object", "null"]},
    503: {"type": ["object", "null"]},
}
#: Token endpoint (IDSPEC AccessToken, plus the OAuth 2 error form for refusals).
TOKEN_ERROR = {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}}


def _load(path: Path) -> dict[str, Any]:
    with path.open() as fh:
        return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


@pytest.fixture()
def specs(specs_dir: Path) -> dict[str, Any]:
    from openapi_core import Config, OpenAPI

    config = Config(spec_validator_cls=None)  # the file has string defaults on a few booleans
    accounting = _load(specs_dir / "xero_accounting.yaml")
    identity = _load(specs_dir / "xero-identity.yaml")
    # The identity spec declares createdDateUtc/updatedDateUtc as date-time, yet its own example
    # (GET /Connections) shows Xero's real form "2019-12-07T18:46:19.5165400": UTC without an
    # offset, 7 fractional digits. Accept exactly that form besides RFC 3339 there.
    identity_config = Config(spec_validator_cls=None, extra_format_validators={"date-time": _identity_date_time})
    return {"accounting": OpenAPI.from_dict(accounting, config=config), "accounting_raw": accounting,
            "identity": OpenAPI.from_dict(identity, config=identity_config), "identity_raw": identity}


_NET_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?$")


def _identity_date_time(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    if _NET_UTC.match(value):
        return True
    from rfc3339_validator import validate_rfc3339

    return bool(validate_rfc3339(value))


def _as_spec_request(request: requests.PreparedRequest, base: str, spec_path: str | None = None) -> Any:
    from openapi_core.contrib.requests import RequestsOpenAPIRequest

    parts = urlsplit(request.url or "")
    path = spec_path or parts.path
    copy = request.copy()
    copy.url = urlunsplit(urlsplit(SPEC_SERVER)[:2] + (path, parts.query, ""))
    assert (request.url or "").startswith(base)
    return RequestsOpenAPIRequest(copy)


def _operation(raw: dict[str, Any], method: str, path: str) -> tuple[str, dict[str, Any]] | None:
    """The spec operation for a concrete path (templates like /Invoices/{InvoiceID} included)."""
    segments = path.strip("/").split("/")
    for template, item in raw["paths"].items():
        tsegs = template.strip("/").split("/")
        if len(tsegs) != len(segments):
            continue
        if all(t == s or (t.startswith("{") and t.endswith("}")) for t, s in zip(tsegs, segments, strict=True)):
            op = item.get(method.lower())
            # A literal segment beats a template (/Contacts/{ContactNumber} vs /Contacts/{ContactID}).
            if op:
                return template, op
    return None


def drive_every_operation(xero: XeroSandboxHandle, client: XeroClient) -> None:
    """Use every Xero operation the product uses, including answers with per-element errors."""
    since = datetime.fromisoformat(xero.now()) - timedelta(minutes=1)
    client.organisation()
    client.accounts()
    client.tax_rates()
    client.branding_themes()
    client.tracking_categories(include_archived=True)
    client.currencies()
    client.connections()

    contacts = client.write_all("Contacts", {"c1": contact("c1"), "c2": contact("c2"),
                                             "bad": contact("bad", "Walk-in Customer")}, method="PUT")
    c1 = contacts["c1"].xero_id
    client.write_all("Contacts", {"c1": {"ContactID": c1, "EmailAddress": "ap@example.com"}}, method="POST")
    list(client.contacts(modified_since=since, include_archived=True))
    list(client.contacts(ids=[c1], summary_only=True))
    list(client.contacts(search_term="Contact c2"))
    client.find_contacts_by_number(["c1"], since=since)

    client.write_all("Items", {"i1": {"Code": "HW-001", "Name": "Cable", "SalesDetails": {"UnitPrice": 0.1234}}},
                     method="PUT")
    client.write_all("Items", {"i1": {"Code": "HW-001", "Name": "Cable 2m"}}, method="POST")
    client.items(modified_since=since)

    line = {"Description": "Widget", "Quantity": 2, "UnitAmount": 10.1234, "AccountCode": "200", "TaxType": "OUTPUT2"}
    invoices = client.write_all("Invoices", {
        "inv": {"Type": "ACCREC", "Contact": {"ContactID": c1}, "Date": "2025-07-01", "DueDate": "2025-07-31",
                "InvoiceNumber": "ZC-1", "Status": "AUTHORISED", "LineItems": [line]},
        "draft": {"Type": "ACCREC", "Contact": {"ContactID": c1}, "Date": "2025-07-01", "DueDate": "2025-07-31",
                  "InvoiceNumber": "ZC-2", "Status": "DRAFT", "LineItems": [line]},
        "locked": {"Type": "ACCREC", "Contact": {"ContactID": c1}, "Date": "2025-02-14", "DueDate": "2025-03-01",
                   "InvoiceNumber": "ZC-3", "Status": "AUTHORISED", "LineItems": [line]},
        "bill": {"Type": "ACCPAY", "Contact": {"ContactID": c1}, "Date": "2025-07-01", "DueDate": "2025-07-31",
                 "InvoiceNumber": "B-1", "Url": "https://crm.zoho.com/crm/tab/PurchaseOrders/1", "Status": "AUTHORISED",
                 "LineItems": [{**line, "AccountCode": "300", "TaxType": "INPUT2"}]}}, method="PUT")
    inv = invoices["inv"].xero_id
    client.write_all("Invoices", {"inv": {"InvoiceID": inv, "Reference": "PO 1", "Status": "AUTHORISED"}}, method="POST")
    list(client.invoices(modified_since=since, statuses=["AUTHORISED", "DRAFT"]))
    client.find_invoices_by_number(["ZC-1"])
    client.find_bills([BillRef("b", "https://crm.zoho.com/crm/tab/PurchaseOrders/1", c1, "B-1")], since=since)

    orders = client.write_all("PurchaseOrders", {"po": {
        "Contact": {"ContactID": c1}, "Date": "2025-07-01", "PurchaseOrderNumber": "ZPO-1",
        "LineItems": [{"Description": "Stock", "Quantity": 1, "UnitAmount": 3.0, "AccountCode": "300"}]}},
        method="PUT")
    client.write_all("PurchaseOrders", {"po": {"PurchaseOrderID": orders["po"].xero_id, "Reference": "R1"}},
                     method="POST")
    client.find_purchase_orders_by_number(["ZPO-1"], since=since)

    payments = client.write_all("Payments", {"p": {"Invoice": {"InvoiceID": inv}, "Account": {"Code": "090"},
                                                   "Date": "2025-07-05", "Amount": 5.0}}, method="PUT")
    list(client.payments(modified_since=since))
    client.delete_payment(payments["p"].xero_id)

    credit = client.write_all("CreditNotes", {"cn": {
        "Type": "ACCRECCREDIT", "Contact": {"ContactID": c1}, "Date": "2025-07-06", "Status": "AUTHORISED",
        "CreditNoteNumber": "ZCN-1", "LineItems": [{**line, "UnitAmount": 2.0}]}}, method="PUT")
    client.write_all("CreditNotes", {"cn": {"CreditNoteID": credit["cn"].xero_id, "Reference": "refund"}},
                     method="POST")
    list(client.credit_notes(modified_since=since))
    list(client.allocate_credit_note(credit["cn"].xero_id, {
        "a": {"Invoice": {"InvoiceID": inv}, "Amount": 1.0, "Date": "2025-07-06"}}))
    list(client.set_status("Invoices", {"d": (invoices["draft"].xero_id, "DELETED")}))

    # Answers the spec does not document: 401 (a refused token), 429, 500, 503.
    forged = client.store.load("demo", "xero").model_copy(update={
        "access_token": SecretStr("forged"), "access_expires_at": datetime.now(UTC) + timedelta(hours=1)})
    client.store.save(forged)
    XeroClient(client.store, "demo", session=client.session).currencies()
    client.http.retry.max_retries = 0
    for kind, error in (("429", RateLimitError), ("500", ServerError), ("503", ServerError)):
        xero.faults({"method": "GET", "path": "/api.xro/2.0/Currencies", "kind": kind, "count": 1})
        with pytest.raises(error):
            client.currencies()
    xero.admin("DELETE", "faults")
    with pytest.raises(NotFoundError):
        client.delete_payment("00000000-0000-0000-0000-0000000000ff")
    # A genuine 429 from the sandbox's own limits (the day's budget), not an injected one.
    xero.limits(per_day=1)
    with pytest.raises(BudgetExhausted):
        client.currencies()
    xero.admin("DELETE", "limits")


def test_every_request_and_answer_conforms_to_the_spec(xero: XeroSandboxHandle, specs: dict[str, Any]) -> None:
    recorder = Recorder()
    store = store_for(xero)
    client = XeroClient(store, "demo", session=recorder.session())
    drive_every_operation(xero, client)

    failures: list[str] = []
    covered: dict[str, set[int]] = defaultdict(set)
    base = xero.url
    accounting_prefix = "/api.xro/2.0"
    for request, response in recorder.exchanges:
        path = urlsplit(request.url or "").path
        status = response.status_code
        label = f"{request.method} {path} -> {status}"
        try:
            body = response.json() if response.content else None
        except ValueError:
            if status in UNDOCUMENTED:
                body = response.text
            else:
                failures.append(f"{label}: answer is not JSON")
                continue
        if path == "/connect/token":
            form = parse_qs(request.body if isinstance(request.body, str) else (request.body or b"").decode())
            if form.get("grant_type") not in (["refresh_token"], ["client_credentials"]):
                failures.append(f"{label}: grant_type {form.get('grant_type')}")
            if not (request.headers.get("Authorization") or "").startswith("Basic "):
                failures.append(f"{label}: client authentication is not HTTP Basic")
            schema = dict(specs["identity_raw"]["components"]["schemas"]["AccessToken"])
            schema = {**schema, "required": ["access_token", "expires_in", "token_type"]}
            try:
                jsonschema.validate(body, schema if status == 200 else TOKEN_ERROR)
            except jsonschema.ValidationError as exc:
                failures.append(f"{label}: {exc.message}")
            covered["POST /connect/token (identity)"].add(status)
            continue
        if path.lower() == "/connections":
            api, raw, spec_path = specs["identity"], specs["identity_raw"], "/Connections"
            found = _operation(raw, request.method or "GET", spec_path)
            server_path = spec_path
        else:
            assert path.startswith(accounting_prefix), path
            api, raw = specs["accounting"], specs["accounting_raw"]
            spec_path = path[len(accounting_prefix):]
            found = _operation(raw, request.method or "GET", spec_path)
            server_path = path
        if found is None:
            failures.append(f"{label}: no such operation in the spec")
            continue
        template, op = found
        covered[f"{op['operationId']} ({request.method} {template})"].add(status)
        spec_request = _as_spec_request(request, base, server_path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openapi-core does not check OAuth2 security: fine here
            try:
                api.validate_request(spec_request)
            except Exception as exc:  # noqa: BLE001 - report every kind of validation error
                failures.append(f"{label}: request: {exc} {getattr(exc, '__cause__', '')}")
            if str(status) in op["responses"]:
                from openapi_core.contrib.requests import RequestsOpenAPIResponse

                try:
                    api.validate_response(spec_request, RequestsOpenAPIResponse(response))
                except Exception as exc:  # noqa: BLE001
                    cause = getattr(exc, "__cause__", None)
                    detail = getattr(cause, "schema_errors", None) or cause or ""
                    failures.append(f"{label}: answer: {exc} {detail}"[:2000])
            elif status in UNDOCUMENTED:
                # Header names are case-insensitive (the wire may carry them lower-cased).
                instance = ({name: response.headers[name] for name in ("X-Rate-Limit-Problem", "Retry-After")
                             if name in response.headers} if status == 429 else body)
                try:
                    jsonschema.validate(instance, UNDOCUMENTED[status])
                except jsonschema.ValidationError as exc:
                    failures.append(f"{label}: undocumented-status check: {exc.message}")
            else:
                failures.append(f"{label}: status neither in the spec nor in the notes")

    # The validators are live: a broken answer and a broken request are caught.
    request, response = next((q, r) for q, r in recorder.exchanges
                             if q.method == "GET" and (q.url or "").split("?")[0].endswith("/Contacts"))
    broken = requests.Response()
    broken.status_code, broken.headers, broken._content = 200, response.headers, b'{"Contacts": "none"}'
    broken.request = request
    from openapi_core.contrib.requests import RequestsOpenAPIResponse

    spec_request = _as_spec_request(request, base)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Exception, match="Contacts|schema|InvalidData"):
            specs["accounting"].validate_response(spec_request, RequestsOpenAPIResponse(broken))
        bad = request.copy()
        bad.prepare_url((request.url or "").split("?")[0], {"IDs": "not-a-guid"})
        with pytest.raises(Exception, match="IDs"):
            specs["accounting"].validate_request(_as_spec_request(bad, base))

    print("\nXero operations covered (status codes seen):")
    for name in sorted(covered):
        print(f"  {name}: {sorted(covered[name])}")
    expected = {"getOrganisations", "getAccounts", "getTaxRates", "getBrandingThemes", "getTrackingCategories",
                "getCurrencies", "getItems", "createItems", "updateOrCreateItems", "getContacts", "createContacts",
                "updateOrCreateContacts", "getInvoices", "createInvoices", "updateOrCreateInvoices",
                "getPurchaseOrders", "createPurchaseOrders", "updateOrCreatePurchaseOrders", "getPayments",
                "createPayments", "deletePayment", "getCreditNotes", "createCreditNotes",
                "updateOrCreateCreditNotes", "createCreditNoteAllocation", "getConnections"}
    seen_ops = {name.split(" ")[0] for name in covered}
    assert expected <= seen_ops, f"not exercised: {sorted(expected - seen_ops)}"
    statuses = {s for v in covered.values() for s in v}
    assert {200, 401, 404, 429, 500, 503} <= statuses
    assert not failures, "\n".join(failures)
