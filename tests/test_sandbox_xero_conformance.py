"""Conformance: the Xero sandbox's answers against the official spec (xero_accounting.yaml).

Every operation the sandbox emulates is exercised over HTTP; each request and each answer whose
status the spec documents is validated with openapi-core (spec validation off: the file has a few
string defaults on booleans). Statuses the spec leaves out (401, 403, 404, 429, 5xx) are checked
against small schemas written from ../shared/docs/xero-api-notes.md (§2.2, §3, §10). The spec's
server is https://api.xero.com/api.xro/2.0, so sandbox URLs are mapped onto it before validating.
Prints the operations covered.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import requests
import yaml
from test_sandbox_xero_support import XeroCaller

from sandbox.server import RunningSandbox, start
from sandbox.xero.app import XeroSandbox

SPEC_API = "https://api.xero.com/api.xro/2.0"

#: Answers the spec does not document, as the notes describe them.
PROBLEM = {"type": "object", "required": ["Title", "Status", "Detail"],
           "properties": {"Type": {"type": ["string", "null"]}, "Title": {"type": "string"},
                          "Status": {"type": "integer"}, "Detail": {"type": "string"},
                          "Instance": {"type": "string"}}}
UNDOCUMENTED_BODIES = {401: PROBLEM, 403: PROBLEM, 500: PROBLEM, 503: PROBLEM}
RATE_HEADERS = {"type": "object", "required": ["X-Rate-Limit-Problem"],
                "properties": {"X-Rate-Limit-Problem": {"enum": ["minute", "day", "concurrent", "appminute"]},
                               "Retry-After": {"type": "string", "pattern": r"^\d+$"}}}
NOT_FOUND_TEXT = "The resource you're looking for cannot be found"
TOKEN = {"type": "object", "required": ["access_token", "expires_in", "token_type"],
         "properties": {"access_token": {"type": "string"}, "expires_in": {"const": 1800},
                        "token_type": {"const": "Bearer"}, "refresh_token": {"type": "string"}}}


def _specs_dir() -> Path | None:
    root = Path(__file__).resolve().parents[1]
    path = Path(os.environ.get("ZX_SPECS_DIR") or root.parent / "shared" / "specs")
    if path.is_dir():
        return path
    if os.environ.get("CI"):
        pytest.fail(f"the API specs folder {path} is missing (set ZX_SPECS_DIR)")
    return None


@pytest.fixture(scope="module")
def spec() -> tuple[Any, dict[str, Any]]:
    from openapi_core import Config, OpenAPI

    folder = _specs_dir()
    if folder is None:
        pytest.skip("API specs not found (set ZX_SPECS_DIR)")
    with (folder / "xero_accounting.yaml").open() as fh:
        raw = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    return OpenAPI.from_dict(raw, config=Config(spec_validator_cls=None)), raw


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningSandbox]:
    server = start(XeroSandbox(tmp_path_factory.mktemp("xero-conformance")))
    yield server
    server.stop()


class Checker:
    """Validates exchanges and remembers the (operationId, status) pairs covered."""

    def __init__(self, openapi: Any, raw: dict[str, Any], base: str) -> None:
        self.openapi = openapi
        self.raw = raw
        self.base = base
        self.covered: set[tuple[str, int]] = set()

    def operation_id(self, method: str, template: str) -> str:
        return self.raw["paths"][template][method.lower()]["operationId"]

    def check(self, answer: requests.Response, template: str) -> requests.Response:
        """Validate ``answer`` (to a call on ``template``, a spec path) and its request."""
        from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

        method = answer.request.method or "GET"
        op = self.raw["paths"][template][method.lower()]
        documented = {int(code) for code in op["responses"] if code.isdigit()}
        prepared = answer.request.copy()
        prepared.url = prepared.url.replace(self.base + "/api.xro/2.0", SPEC_API)
        # The spec types the If-Modified-Since header as date-time; clients also send other forms.
        openapi_request = RequestsOpenAPIRequest(prepared)
        if answer.status_code in documented:
            self.openapi.validate_request(openapi_request)
            self.openapi.validate_response(openapi_request, RequestsOpenAPIResponse(answer))
        elif answer.status_code == 404:
            assert answer.text == NOT_FOUND_TEXT
        elif answer.status_code == 429:
            jsonschema.validate({k.title(): v for k, v in answer.headers.items()}, RATE_HEADERS)
        elif answer.status_code in UNDOCUMENTED_BODIES:
            jsonschema.validate(answer.json(), UNDOCUMENTED_BODIES[answer.status_code])
        else:
            pytest.fail(f"{method} {template} answered {answer.status_code}, which nothing describes")
        self.covered.add((op["operationId"], answer.status_code))
        return answer


@pytest.mark.filterwarnings("ignore:Unsupported scheme type")
def test_sandbox_answers_conform_to_the_spec(spec: tuple[Any, dict[str, Any]], running: RunningSandbox) -> None:
    openapi, raw = spec
    url = running.url
    requests.post(f"{url}/_sandbox/reset", params={"seed": "demo"}).raise_for_status()
    c = Checker(openapi, raw, url)
    # Shapes, not pacing: this test makes more than 60 calls in a minute.
    requests.put(f"{url}/_sandbox/limits", json={"per_window": 10000}).raise_for_status()
    x = XeroCaller.connect(url)
    jsonschema.validate(x.refresh(), TOKEN)

    # Reference data
    for template in ("/Organisation", "/Organisation/Actions", "/Accounts", "/TaxRates", "/BrandingThemes",
                     "/TrackingCategories", "/Currencies", "/Items", "/Contacts", "/Invoices", "/CreditNotes",
                     "/PurchaseOrders", "/Payments"):
        c.check(x.get(template), template)
    accounts = x.ok(x.get("/Accounts"))["Accounts"]
    c.check(x.get(f"/Accounts/{accounts[0]['AccountID']}"), "/Accounts/{AccountID}")
    c.check(x.get("/TaxRates/OUTPUT2"), "/TaxRates/{TaxType}")
    theme = x.ok(x.get("/BrandingThemes"))["BrandingThemes"][0]
    c.check(x.get(f"/BrandingThemes/{theme['BrandingThemeID']}"), "/BrandingThemes/{BrandingThemeID}")
    cat = x.ok(x.get("/TrackingCategories"))["TrackingCategories"][0]
    c.check(x.get(f"/TrackingCategories/{cat['TrackingCategoryID']}"), "/TrackingCategories/{TrackingCategoryID}")
    c.check(x.get("/Accounts", where='Status=="ACTIVE"', order="Code DESC"), "/Accounts")
    c.check(x.get("/TrackingCategories", includeArchived="true"), "/TrackingCategories")
    c.check(x.put("/Currencies", {"Code": "EUR", "Description": "Euro"}), "/Currencies")

    # Contacts
    made = c.check(x.put("/Contacts", {"Contacts": [
        {"Name": "Conformance Ltd", "ContactNumber": "C-1", "EmailAddress": "a@b.example",
         "Addresses": [{"AddressType": "STREET", "City": "Wellington"}],
         "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": "555"}]}]}), "/Contacts").json()["Contacts"][0]
    cid = made["ContactID"]
    c.check(x.put("/Contacts", {"Contacts": [{"Name": "Conformance Ltd"}]}), "/Contacts")  # 400
    c.check(x.put("/Contacts", {"Contacts": [{"Name": "Conformance Ltd"}, {"Name": "Other Ltd"}]},
                  summarizeErrors="false"), "/Contacts")
    c.check(x.post("/Contacts", {"Contacts": [{"ContactNumber": "C-1", "FirstName": "Ann"}]}), "/Contacts")
    c.check(x.get(f"/Contacts/{cid}"), "/Contacts/{ContactID}")
    c.check(x.get("/Contacts/C-1"), "/Contacts/{ContactNumber}")
    c.check(x.post(f"/Contacts/{cid}", {"Contacts": [{"LastName": "Lee"}]}), "/Contacts/{ContactID}")
    c.check(x.get("/Contacts", page=1, pageSize=10, includeArchived="true", summaryOnly="true",
                  searchTerm="conf"), "/Contacts")

    # Items
    item = c.check(x.put("/Items", {"Items": [{"Code": "C-ITEM", "Name": "Thing", "SalesDetails": {
        "UnitPrice": 9.5, "AccountCode": "200", "TaxType": "OUTPUT2"}}]}, unitdp=4), "/Items").json()["Items"][0]
    c.check(x.put("/Items", {"Items": [{"Code": "C-ITEM"}]}), "/Items")  # 400
    c.check(x.post("/Items", {"Items": [{"Code": "C-ITEM", "Name": "Thing 2"}]}), "/Items")
    c.check(x.get(f"/Items/{item['ItemID']}"), "/Items/{ItemID}")
    c.check(x.post(f"/Items/{item['ItemID']}", {"Items": [{"Code": "C-ITEM", "Description": "d"}]}), "/Items/{ItemID}")
    other = x.ok(x.put("/Items", {"Items": [{"Code": "GONE"}]}))["Items"][0]
    c.check(x.call("DELETE", f"/Items/{other['ItemID']}"), "/Items/{ItemID}")

    # Invoices
    region = cat
    line = {"Description": "Work", "Quantity": 2, "UnitAmount": 20, "AccountCode": "200", "TaxType": "OUTPUT2",
            "ItemCode": "C-ITEM", "Tracking": [{"Name": region["Name"], "Option": region["Options"][0]["Name"]}]}
    inv = c.check(x.put("/Invoices", {"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": cid}, "Date": "2025-07-01",
                                                    "DueDate": "2025-07-31", "Status": "AUTHORISED", "Reference": "R1",
                                                    "LineItems": [line]}]}, unitdp=4), "/Invoices").json()["Invoices"][0]
    iid = inv["InvoiceID"]
    c.check(x.put("/Invoices", {"Invoices": [{"Type": "ACCREC", "InvoiceNumber": inv["InvoiceNumber"],
                                              "Contact": {"ContactID": cid}, "LineItems": [line]}]}), "/Invoices")  # 400
    c.check(x.put("/Invoices", {"Invoices": [{"Type": "ACCREC", "InvoiceNumber": inv["InvoiceNumber"],
                                              "Contact": {"ContactID": cid}, "LineItems": [line]},
                                             {"Type": "ACCPAY", "Contact": {"ContactID": cid}, "LineItems": [
                                                 {"Description": "Bill", "Quantity": 1, "UnitAmount": 5,
                                                  "AccountCode": "300"}]}]}, summarizeErrors="false"), "/Invoices")
    c.check(x.post("/Invoices", {"Invoices": [{"Type": "ACCREC", "InvoiceNumber": inv["InvoiceNumber"],
                                               "Reference": "R2"}]}), "/Invoices")
    c.check(x.get(f"/Invoices/{iid}", unitdp=4), "/Invoices/{InvoiceID}")
    c.check(x.post(f"/Invoices/{iid}", {"Invoices": [{"DueDate": "2025-08-31"}]}), "/Invoices/{InvoiceID}")
    c.check(x.get(f"/Invoices/{iid}/OnlineInvoice"), "/Invoices/{InvoiceID}/OnlineInvoice")
    c.check(x.get("/Invoices", page=1, pageSize=50, Statuses="AUTHORISED,DRAFT", ContactIDs=cid,
                  where='Type=="ACCREC"', order="Date DESC", unitdp=4), "/Invoices")
    c.check(x.get("/Invoices", IDs=iid, summaryOnly="true"), "/Invoices")
    c.check(x.get("/Invoices", InvoiceNumbers=inv["InvoiceNumber"], searchTerm="R"), "/Invoices")
    c.check(x.call("GET", "/Invoices", headers={"If-Modified-Since": "2025-01-01T00:00:00Z"}), "/Invoices")

    # Payments
    pay = c.check(x.put("/Payments", {"Payments": [{"Invoice": {"InvoiceID": iid}, "Account": {"Code": "090"},
                                                    "Date": "2025-08-01", "Amount": 10}]}), "/Payments").json()
    pid = pay["Payments"][0]["PaymentID"]
    c.check(x.put("/Payments", {"Payments": [{"Invoice": {"InvoiceID": iid}, "Account": {"Code": "090"},
                                              "Date": "2025-08-01", "Amount": 1000}]}), "/Payments")  # 400
    c.check(x.post("/Payments", {"Payments": [{"Invoice": {"InvoiceID": iid}, "Account": {"Code": "090"},
                                               "Date": "2025-08-02", "Amount": 5}]}), "/Payments")
    c.check(x.get(f"/Payments/{pid}"), "/Payments/{PaymentID}")
    c.check(x.get("/Payments", page=1, where='Status=="AUTHORISED"'), "/Payments")
    c.check(x.post(f"/Payments/{pid}", {"Status": "DELETED"}), "/Payments/{PaymentID}")  # PaymentDelete

    # Credit notes and allocations
    cn = c.check(x.put("/CreditNotes", {"CreditNotes": [{"Type": "ACCRECCREDIT", "Contact": {"ContactID": cid},
                                                         "Date": "2025-07-02", "Status": "AUTHORISED",
                                                         "LineItems": [{"Description": "Refund", "Quantity": 1,
                                                                        "UnitAmount": 10, "AccountCode": "200",
                                                                        "TaxType": "OUTPUT2"}]}]}),
                 "/CreditNotes").json()["CreditNotes"][0]
    cnid = cn["CreditNoteID"]
    c.check(x.post("/CreditNotes", {"CreditNotes": [{"CreditNoteID": cnid, "Reference": "CN ref"}]}), "/CreditNotes")
    c.check(x.get(f"/CreditNotes/{cnid}"), "/CreditNotes/{CreditNoteID}")
    c.check(x.post(f"/CreditNotes/{cnid}", {"CreditNotes": [{"Reference": "CN ref 2"}]}), "/CreditNotes/{CreditNoteID}")
    alloc = c.check(x.put(f"/CreditNotes/{cnid}/Allocations", {"Allocations": [
        {"Amount": 5, "Invoice": {"InvoiceID": iid}, "Date": "2025-07-03"}]}),
        "/CreditNotes/{CreditNoteID}/Allocations").json()["Allocations"][0]
    c.check(x.put(f"/CreditNotes/{cnid}/Allocations", {"Allocations": [
        {"Amount": 500, "Invoice": {"InvoiceID": iid}, "Date": "2025-07-03"}]}), "/CreditNotes/{CreditNoteID}/Allocations")
    c.check(x.call("DELETE", f"/CreditNotes/{cnid}/Allocations/{alloc['AllocationID']}"),
            "/CreditNotes/{CreditNoteID}/Allocations/{AllocationID}")
    c.check(x.get("/CreditNotes", page=1, where='Type=="ACCRECCREDIT"', unitdp=4), "/CreditNotes")

    # Purchase orders
    po = c.check(x.put("/PurchaseOrders", {"PurchaseOrders": [{"Contact": {"ContactID": cid}, "Date": "2025-07-01",
                                                               "DeliveryDate": "2025-07-10", "LineItems": [
                                                                   {"Description": "Parts", "Quantity": 3,
                                                                    "UnitAmount": 4, "AccountCode": "300",
                                                                    "TaxType": "INPUT2"}]}]}),
                 "/PurchaseOrders").json()["PurchaseOrders"][0]
    c.check(x.put("/PurchaseOrders", {"PurchaseOrders": [{"Contact": {"ContactID": cid},
                                                          "PurchaseOrderNumber": po["PurchaseOrderNumber"],
                                                          "LineItems": []}]}), "/PurchaseOrders")  # 400
    c.check(x.post("/PurchaseOrders", {"PurchaseOrders": [{"PurchaseOrderID": po["PurchaseOrderID"],
                                                           "Status": "AUTHORISED"}]}), "/PurchaseOrders")
    c.check(x.get(f"/PurchaseOrders/{po['PurchaseOrderID']}"), "/PurchaseOrders/{PurchaseOrderID}")
    c.check(x.post(f"/PurchaseOrders/{po['PurchaseOrderID']}", {"PurchaseOrders": [{"SentToContact": True}]}),
            "/PurchaseOrders/{PurchaseOrderID}")
    c.check(x.get("/PurchaseOrders", Status="AUTHORISED", DateFrom="2025-01-01", DateTo="2025-12-31", page=1),
            "/PurchaseOrders")

    # 400 for every write the spec gives one to
    other_item = x.ok(x.put("/Items", {"Items": [{"Code": "C-OTHER"}]}))["Items"][0]
    c.check(x.post("/Contacts", {"Contacts": [{"Name": "Other Ltd"}, {"Name": "other ltd"}]}), "/Contacts")
    c.check(x.post(f"/Contacts/{cid}", {"Contacts": [{"Name": "Other Ltd"}]}), "/Contacts/{ContactID}")
    c.check(x.post("/Items", {"Items": [{"Code": "C-NEW", "SalesDetails": {"AccountCode": "999"}}]}), "/Items")
    c.check(x.post(f"/Items/{item['ItemID']}", {"Items": [{"Code": "C-OTHER"}]}), "/Items/{ItemID}")
    assert other_item["Code"] == "C-OTHER"
    c.check(x.post("/Invoices", {"Invoices": [{"Type": "ACCREC", "Contact": {}, "LineItems": []}]}), "/Invoices")
    c.check(x.post(f"/Invoices/{iid}", {"Invoices": [{"Status": "DRAFT"}]}), "/Invoices/{InvoiceID}")
    c.check(x.post("/Payments", {"Invoice": {"InvoiceID": iid}, "Account": {"Code": "090"}, "Date": "2025-08-02",
                                 "Amount": 100000}), "/Payments")
    c.check(x.post(f"/Payments/{pid}", {"Status": "DELETED"}), "/Payments/{PaymentID}")  # already deleted
    cn_bad = {"Type": "ACCRECCREDIT", "Contact": {"ContactID": cid}, "Date": "2025-02-01", "LineItems": []}
    c.check(x.put("/CreditNotes", {"CreditNotes": [cn_bad]}), "/CreditNotes")
    c.check(x.post("/CreditNotes", {"CreditNotes": [cn_bad]}), "/CreditNotes")
    c.check(x.post(f"/CreditNotes/{cnid}", {"CreditNotes": [{"Status": "DRAFT"}]}), "/CreditNotes/{CreditNoteID}")
    c.check(x.post("/PurchaseOrders", {"PurchaseOrders": [{"Contact": {"Name": "Nobody Ltd"}, "LineItems": []}]}),
            "/PurchaseOrders")
    po2 = x.ok(x.put("/PurchaseOrders", {"PurchaseOrders": [{"Contact": {"ContactID": cid}, "LineItems": []}]}))
    c.check(x.post(f"/PurchaseOrders/{po2['PurchaseOrders'][0]['PurchaseOrderID']}", {"PurchaseOrders": [
        {"PurchaseOrderNumber": po["PurchaseOrderNumber"]}]}), "/PurchaseOrders/{PurchaseOrderID}")

    # Statuses the spec leaves out
    c.check(x.get(f"/Invoices/{'0' * 8}-0000-0000-0000-{'0' * 12}"), "/Invoices/{InvoiceID}")
    c.check(x.get("/Invoices", IDs=",".join([iid] * 53)), "/Invoices")
    c.check(x.call("GET", "/Invoices", headers={"Authorization": "Bearer nope"}), "/Invoices")
    c.check(x.call("GET", "/Invoices", headers={"xero-tenant-id": "00000000-0000-0000-0000-000000000000"}),
            "/Invoices")
    requests.put(f"{url}/_sandbox/faults", json={"rules": [
        {"method": "GET", "path": "/api.xro/2.0/Items", "kind": "500", "count": 1},
        {"method": "GET", "path": "/api.xro/2.0/Items", "kind": "503", "count": 1}]}).raise_for_status()
    c.check(x.get("/Items"), "/Items")
    c.check(x.get("/Items"), "/Items")
    requests.delete(f"{url}/_sandbox/faults").raise_for_status()
    requests.put(f"{url}/_sandbox/limits", json={"per_window": 1, "window_seconds": 60}).raise_for_status()
    c.check(x.get("/Items"), "/Items")
    requests.delete(f"{url}/_sandbox/limits").raise_for_status()

    operations = sorted({op for op, _ in c.covered})
    print(f"\nXero sandbox conformance: {len(operations)} operations, {len(c.covered)} (operation, status) pairs")
    for op in operations:
        print(f"  {op}: {sorted(s for o, s in c.covered if o == op)}")
    # Every documented status of every operation exercised was seen (deleteItem's 400 aside: the
    # sandbox never refuses an item delete).
    for op in operations:
        method, template = next((m, t) for t, item in raw["paths"].items() for m, o in item.items()
                                if isinstance(o, dict) and o.get("operationId") == op)
        documented = {int(code) for code in raw["paths"][template][method]["responses"] if code.isdigit()}
        missing = documented - {s for o, s in c.covered if o == op} - ({400} if op == "deleteItem" else set())
        assert not missing, f"{op}: documented {sorted(missing)} never exercised"
    assert {("getInvoices", 404), ("getInvoices", 401), ("getInvoices", 403), ("getItems", 429)} <= c.covered
