"""More of the Xero sandbox over real HTTP: purchase-order statuses incl. DELETED, probabilistic and
commit-boundary faults on a real write route, and invoice numbering from the organisation's settings.

Facts from ../shared/docs/xero-api-notes.md (§5.5 numbering, §8.3 purchase orders, §10 messages).
The notes list the PO statuses (DRAFT, SUBMITTED, AUTHORISED, BILLED, DELETED) but give no PO
transition table; where a test pins a transition, it pins the sandbox's documented choice.
"""

# ruff: noqa: F811  (the sandbox fixtures are imported by name)
from __future__ import annotations

import pytest
import requests
from test_sandbox_xero_support import (  # noqa: F401  (fixtures are requested by their names)
    XeroCaller,
    errors_of,
    running,
    url,
    x,
)

from sandbox.server import RunningSandbox
from sandbox.xero.app import XeroSandbox

PO_MSG = "Purchase Order not of valid status for modification"
API = "/api.xro/2.0"


@pytest.fixture()
def acme(x: XeroCaller) -> dict:
    return x.contact("Acme Ltd", ContactNumber="ZOHO-1001")


# --- purchase orders: statuses and DELETED --------------------------------------------------------
def _po(x: XeroCaller, contact_id: str, **fields: object) -> requests.Response:
    body = {"Contact": {"ContactID": contact_id}, "Date": "2025-07-01",
            "LineItems": [{"Description": "Widgets", "Quantity": 10, "UnitAmount": 2, "AccountCode": "300",
                           "TaxType": "INPUT2"}], **fields}
    return x.put("/PurchaseOrders", {"PurchaseOrders": [body]})


def _move(x: XeroCaller, po: dict, status: str, **fields: object) -> requests.Response:
    return x.post(f"/PurchaseOrders/{po['PurchaseOrderID']}", {"PurchaseOrders": [{"Status": status, **fields}]})


def _walk(x: XeroCaller, po: dict, *statuses: str) -> dict:
    for status in statuses:
        po = x.ok(_move(x, po, status))["PurchaseOrders"][0]
        assert po["Status"] == status
    return po


def test_po_can_be_deleted_from_draft_submitted_and_authorised(x: XeroCaller, acme: dict) -> None:
    for path in ((), ("SUBMITTED",), ("AUTHORISED",), ("SUBMITTED", "AUTHORISED")):
        po = _walk(x, x.ok(_po(x, acme["ContactID"]))["PurchaseOrders"][0], *path)
        deleted = x.ok(_move(x, po, "DELETED"))["PurchaseOrders"][0]
        assert deleted["Status"] == "DELETED" and deleted["PurchaseOrderID"] == po["PurchaseOrderID"]
        assert x.ok(x.get(f"/PurchaseOrders/{po['PurchaseOrderID']}"))["PurchaseOrders"][0]["Status"] == "DELETED"


def test_a_billed_po_cannot_be_deleted_until_it_is_unbilled(x: XeroCaller, acme: dict) -> None:
    po = _walk(x, x.ok(_po(x, acme["ContactID"]))["PurchaseOrders"][0], "AUTHORISED", "BILLED")
    refused = _move(x, po, "DELETED")
    assert refused.status_code == 400 and errors_of(refused) == [PO_MSG]
    assert x.ok(x.get(f"/PurchaseOrders/{po['PurchaseOrderID']}"))["PurchaseOrders"][0]["Status"] == "BILLED"
    # BILLED only goes back to AUTHORISED; from there DELETED is allowed.
    for status in ("DRAFT", "SUBMITTED"):
        assert errors_of(_move(x, po, status)) == [PO_MSG]
    _walk(x, po, "AUTHORISED", "DELETED")


def test_po_cannot_be_created_deleted_or_billed(x: XeroCaller, acme: dict) -> None:
    for status in ("DELETED", "BILLED"):
        answer = _po(x, acme["ContactID"], Status=status)
        assert answer.status_code == 400 and errors_of(answer) == [PO_MSG]
    assert x.ok(x.get("/PurchaseOrders"))["PurchaseOrders"] == []


def test_a_deleted_po_is_final_and_not_editable(x: XeroCaller, acme: dict) -> None:
    po = x.ok(_po(x, acme["ContactID"], Reference="R1"))["PurchaseOrders"][0]
    _walk(x, po, "DELETED")
    for status in ("DRAFT", "SUBMITTED", "AUTHORISED", "BILLED"):
        answer = _move(x, po, status)
        assert answer.status_code == 400 and errors_of(answer) == [PO_MSG], status
    # Field edits are refused too, with or without restating the status.
    for body in ({"Reference": "R2"}, {"Status": "DELETED", "Reference": "R2"},
                 {"LineItems": [{"Description": "More", "Quantity": 1, "UnitAmount": 1, "AccountCode": "300"}]}):
        answer = x.post(f"/PurchaseOrders/{po['PurchaseOrderID']}", {"PurchaseOrders": [body]})
        assert answer.status_code == 400 and errors_of(answer) == [PO_MSG], body
    kept = x.ok(x.get(f"/PurchaseOrders/{po['PurchaseOrderID']}"))["PurchaseOrders"][0]
    assert (kept["Status"], kept["Reference"], len(kept["LineItems"])) == ("DELETED", "R1", 1)
    # Status filter finds it under DELETED only.
    def ids(status: str) -> list[str]:
        return [p["PurchaseOrderID"] for p in x.ok(x.get("/PurchaseOrders", Status=status))["PurchaseOrders"]]

    assert ids("DELETED") == [po["PurchaseOrderID"]]
    assert ids("DRAFT") == [] and ids("AUTHORISED") == []


def test_a_deleted_po_frees_its_number_for_a_live_one(x: XeroCaller, acme: dict) -> None:
    """Sandbox decision (README: deleted documents free their number; uniqueness is among live ones)."""
    first = x.ok(_po(x, acme["ContactID"]))["PurchaseOrders"][0]
    assert first["PurchaseOrderNumber"] == "PO-0001"
    assert errors_of(_po(x, acme["ContactID"], PurchaseOrderNumber="PO-0001")) == ["Order number must be unique"]
    _walk(x, first, "DELETED")
    again = x.ok(_po(x, acme["ContactID"], PurchaseOrderNumber="PO-0001"))["PurchaseOrders"][0]
    assert again["PurchaseOrderID"] != first["PurchaseOrderID"]
    # Lookup by number prefers the live order.
    assert x.ok(x.get("/PurchaseOrders/PO-0001"))["PurchaseOrders"][0]["PurchaseOrderID"] == again["PurchaseOrderID"]


# --- faults: probability and the commit boundary -------------------------------------------------
def _roomy_limits(url: str) -> None:
    requests.put(f"{url}/_sandbox/limits", json={"per_window": 100000, "per_day": 1000000,
                                                 "app_per_window": 1000000}, timeout=10).raise_for_status()


def _injected(url: str, kind: str) -> int:
    return int(requests.get(f"{url}/_sandbox/faults", timeout=10).json()["injected"].get(kind, 0))


def _probability_run(x: XeroCaller, url: str, seed: int, p: float, n: int) -> list[int]:
    rule = {"method": "GET", "path": f"{API}/Organisation", "kind": "500", "probability": p}
    requests.put(f"{url}/_sandbox/faults", json={"rules": [rule], "seed": seed}, timeout=10).raise_for_status()
    return [x.get("/Organisation").status_code for _ in range(n)]


def test_a_probability_rule_fires_for_about_that_share_and_a_seed_replays_it(x: XeroCaller, url: str) -> None:
    _roomy_limits(url)
    before = _injected(url, "500")
    first = _probability_run(x, url, seed=1234, p=0.5, n=200)
    assert set(first) <= {200, 500}
    fired = first.count(500)
    assert 60 <= fired <= 140, fired
    # GET /_sandbox/faults counts what was injected (cumulative since the sandbox started).
    assert _injected(url, "500") - before == fired
    # The same seed gives the same sequence; only matching calls draw (other routes are untouched).
    assert x.get("/Accounts").status_code == 200
    assert _probability_run(x, url, seed=1234, p=0.5, n=200) == first
    # The extremes.
    assert set(_probability_run(x, url, seed=1, p=0.0, n=30)) == {200}
    assert set(_probability_run(x, url, seed=1, p=1.0, n=30)) == {500}
    # A low share stays low.
    low = _probability_run(x, url, seed=99, p=0.1, n=200).count(500)
    assert 2 <= low <= 50, low


def test_probability_applies_after_the_skipped_matches(x: XeroCaller, url: str) -> None:
    _roomy_limits(url)
    rule = {"method": "GET", "path": f"{API}/Organisation", "kind": "503", "probability": 1.0, "after": 3}
    requests.put(f"{url}/_sandbox/faults", json={"rules": [rule], "seed": 5}, timeout=10).raise_for_status()
    assert [x.get("/Organisation").status_code for _ in range(5)] == [200, 200, 200, 503, 503]


def _names(x: XeroCaller, name: str) -> list[str]:
    return [c["ContactID"] for c in x.ok(x.get("/Contacts", where=f'Name=="{name}"'))["Contacts"]]


def test_drop_before_commit_on_put_contacts_writes_nothing(x: XeroCaller, url: str) -> None:
    requests.put(f"{url}/_sandbox/faults", json={"rules": [
        {"method": "PUT", "path": f"{API}/Contacts", "kind": "drop_before_commit", "count": 1}]}).raise_for_status()
    writes_before = requests.get(f"{url}/_sandbox/stats", timeout=10).json()["writes"]
    with pytest.raises(requests.exceptions.RequestException):
        x.put("/Contacts", {"Contacts": [{"Name": "Dropped Before Ltd", "ContactNumber": "DB-1"}]})
    assert _names(x, "Dropped Before Ltd") == []
    assert x.get("/Contacts/DB-1").status_code == 404
    assert requests.get(f"{url}/_sandbox/stats", timeout=10).json()["writes"] == writes_before
    journal = [j for j in requests.get(f"{url}/_sandbox/journal", timeout=10).json()
               if j["method"] == "PUT" and j["path"] == f"{API}/Contacts"]
    assert [(j["fault"], j["status"]) for j in journal] == [("drop_before_commit", 0)]
    # The plain retry creates it once (the name is free: nothing had been written).
    made = x.contact("Dropped Before Ltd", ContactNumber="DB-1")
    assert _names(x, "Dropped Before Ltd") == [made["ContactID"]]


def test_drop_after_commit_on_put_contacts_writes_it(x: XeroCaller, url: str) -> None:
    requests.put(f"{url}/_sandbox/faults", json={"rules": [
        {"method": "PUT", "path": f"{API}/Contacts", "kind": "drop_after_commit", "count": 1}]}).raise_for_status()
    writes_before = requests.get(f"{url}/_sandbox/stats", timeout=10).json()["writes"]
    with pytest.raises(requests.exceptions.RequestException):
        x.put("/Contacts", {"Contacts": [{"Name": "Dropped After Ltd", "ContactNumber": "DA-1"}]})
    written = _names(x, "Dropped After Ltd")
    assert len(written) == 1
    assert x.ok(x.get("/Contacts/DA-1"))["Contacts"][0]["ContactID"] == written[0]
    assert requests.get(f"{url}/_sandbox/stats", timeout=10).json()["writes"] == writes_before + 1
    journal = [j for j in requests.get(f"{url}/_sandbox/journal", timeout=10).json()
               if j["method"] == "PUT" and j["path"] == f"{API}/Contacts"]
    assert [(j["fault"], j["status"], j["keys"]) for j in journal] == [("drop_after_commit", 0, journal[0]["keys"])]
    # A blind retry (no Idempotency-Key) hits the committed contact: Xero's exact duplicate-name error.
    dup = x.put("/Contacts", {"Contacts": [{"Name": "Dropped After Ltd"}]})
    assert dup.status_code == 400 and errors_of(dup) == [(
        "The contact name Dropped After Ltd is already assigned to another contact. "
        "The contact name must be unique across all active contacts.")]
    assert _names(x, "Dropped After Ltd") == written


# --- invoice numbering from the organisation's settings -----------------------------------------
def _set_numbering(running: RunningSandbox, tenant_id: str, **settings: object) -> None:
    """Edit the org's invoice settings in-process (the /_sandbox/orgs contract takes no numbering;
    a new org starts from the documented default INV-0001)."""
    sandbox = running.sandbox
    assert isinstance(sandbox, XeroSandbox)
    with sandbox.store.lock:
        books = sandbox.books(tenant_id)
        books.settings.update(settings)
        books.save_settings()
        sandbox.store.flush()


def _bill(y: XeroCaller, contact_id: str, **fields: object) -> dict:
    return y.invoice(contact_id, Type="ACCPAY", lines=[
        {"Description": "Parts", "Quantity": 1, "UnitAmount": 50, "AccountCode": "300"}], **fields)


def test_new_org_numbers_from_the_documented_default(url: str) -> None:
    org = requests.post(f"{url}/_sandbox/orgs", json={"name": "Default Numbers", "seed": "empty"}, timeout=30).json()
    y = XeroCaller(url, org["client_id"], org["client_secret"], org["refresh_token"], org["tenant_id"])
    y.refresh()
    c = y.contact("Buyer")
    assert [y.invoice(c["ContactID"])["InvoiceNumber"] for _ in range(2)] == ["INV-0001", "INV-0002"]
    assert _bill(y, c["ContactID"]).get("InvoiceNumber") is None


def test_accrec_takes_the_orgs_prefix_and_next_number_and_accpay_none(running: RunningSandbox, url: str) -> None:
    org = requests.post(f"{url}/_sandbox/orgs", json={"name": "Own Numbers", "seed": "empty"}, timeout=30).json()
    _set_numbering(running, org["tenant_id"], invoice_prefix="SI-", invoice_next=41)
    y = XeroCaller(url, org["client_id"], org["client_secret"], org["refresh_token"], org["tenant_id"])
    y.refresh()
    c = y.contact("Buyer")
    assert y.invoice(c["ContactID"])["InvoiceNumber"] == "SI-0041"
    # ACCPAY bills get no number and do not consume one.
    bill = _bill(y, c["ContactID"])
    assert bill.get("InvoiceNumber") is None
    assert y.ok(y.get(f"/Invoices/{bill['InvoiceID']}"))["Invoices"][0].get("InvoiceNumber") is None
    assert y.invoice(c["ContactID"])["InvoiceNumber"] == "SI-0042"
    # A number the client chose is kept; the sequence skips numbers already taken.
    assert y.invoice(c["ContactID"], InvoiceNumber="SI-0043")["InvoiceNumber"] == "SI-0043"
    assert y.invoice(c["ContactID"])["InvoiceNumber"] == "SI-0044"
    # A bill may carry any (non-unique) number, even one an ACCREC invoice already has.
    assert _bill(y, c["ContactID"], InvoiceNumber="SI-0041")["InvoiceNumber"] == "SI-0041"
    assert y.invoice(c["ContactID"])["InvoiceNumber"] == "SI-0045"
    numbers = sorted(i["InvoiceNumber"] for i in y.ok(y.get("/Invoices", where='Type=="ACCREC"'))["Invoices"])
    assert numbers == ["SI-0041", "SI-0042", "SI-0043", "SI-0044", "SI-0045"]


def test_numbering_settings_are_per_org(running: RunningSandbox, url: str, x: XeroCaller, acme: dict) -> None:
    org = requests.post(f"{url}/_sandbox/orgs", json={"name": "Other Numbers", "seed": "3"}, timeout=30).json()
    _set_numbering(running, org["tenant_id"], invoice_prefix="OT/")
    y = XeroCaller(url, org["client_id"], org["client_secret"], org["refresh_token"], org["tenant_id"])
    y.refresh()
    other = y.ok(y.get("/Invoices", page=1))["Invoices"][0]["Contact"]["ContactID"]
    assert y.invoice(other)["InvoiceNumber"] == "OT/0004"  # seeded with 3 invoices: next is 4
    assert x.invoice(acme["ContactID"])["InvoiceNumber"] == "INV-0001"  # the demo org keeps its own
