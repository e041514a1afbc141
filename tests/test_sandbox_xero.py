"""The Xero sandbox over real HTTP: identity, limits, reads, writes and every entity rule.

One sandbox per module (on a free loopback port), reset to the demo seed before each test.
Exact error strings come from ../shared/docs/xero-api-notes.md §10.
"""

# ruff: noqa: F811  (the sandbox fixtures are imported by name)
from __future__ import annotations

import socket
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_sandbox_xero_support import (  # noqa: F401  (fixtures are requested by their names)
    XeroCaller,
    advance,
    errors_of,
    running,
    url,
    x,
)

from sandbox.server import start
from sandbox.xero.app import XeroSandbox
from sandbox.xero.seed import DEMO_CLIENT_ID, DEMO_TENANT_ID


@pytest.fixture()
def acme(x: XeroCaller) -> dict:
    return x.contact("Acme Ltd", ContactNumber="ZOHO-1001", EmailAddress="ap@acme.example")


def _invoice_lines(amounts: list[float], tax: str = "OUTPUT2") -> list[dict]:
    return [{"Description": f"L{i}", "Quantity": 1, "UnitAmount": a, "AccountCode": "200", "TaxType": tax}
            for i, a in enumerate(amounts)]


# --- identity ------------------------------------------------------------------------------------
def test_authorization_code_with_pkce_then_connections(url: str) -> None:
    import base64
    import hashlib

    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    answer = requests.get(f"{url}/identity/connect/authorize", allow_redirects=False, params={
        "response_type": "code", "client_id": DEMO_CLIENT_ID, "redirect_uri": "http://localhost:9999/cb",
        "scope": "openid offline_access accounting.invoices", "state": "s-42", "code_challenge": challenge,
        "code_challenge_method": "S256"})
    assert answer.status_code == 302
    query = parse_qs(urlparse(answer.headers["Location"]).query)
    assert query["state"] == ["s-42"]
    code = query["code"][0]
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": "http://localhost:9999/cb",
            "client_id": DEMO_CLIENT_ID}
    bad = requests.post(f"{url}/connect/token", data={**form, "code_verifier": "wrong"})
    assert bad.status_code == 400 and bad.json() == {"error": "invalid_grant"}
    # The code was burnt by the failed attempt (single use).
    answer = requests.post(f"{url}/identity/connect/authorize", allow_redirects=False)
    again = requests.get(f"{url}/identity/connect/authorize", allow_redirects=False, params={
        "response_type": "code", "client_id": DEMO_CLIENT_ID, "redirect_uri": "http://localhost:9999/cb",
        "state": "s-43", "code_challenge": challenge, "code_challenge_method": "S256"})
    code = parse_qs(urlparse(again.headers["Location"]).query)["code"][0]
    tokens = requests.post(f"{url}/connect/token", data={**form, "code": code, "code_verifier": verifier})
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["expires_in"] == 1800 and body["token_type"] == "Bearer" and body["refresh_token"]
    assert requests.post(f"{url}/connect/token", data={**form, "code": code, "code_verifier": verifier}
                         ).json() == {"error": "invalid_grant"}
    rows = requests.get(f"{url}/connections", headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert [r["tenantId"] for r in rows] == [DEMO_TENANT_ID]
    assert set(rows[0]) == {"id", "tenantId", "authEventId", "tenantType", "tenantName", "createdDateUtc",
                            "updatedDateUtc"}
    assert rows[0]["tenantType"] == "ORGANISATION" and rows[0]["tenantName"] == "Harbour Demo Ltd"


def test_refresh_rotates_and_the_old_token_has_a_30_minute_grace(x: XeroCaller, url: str) -> None:
    old = x.refresh_token
    first = x.refresh()
    assert first["refresh_token"] != old
    # A lost answer: the previous token still works inside the grace period.
    retry = x.token(grant_type="refresh_token", refresh_token=old)
    assert retry.status_code == 200 and retry.json()["refresh_token"] == first["refresh_token"]
    second = x.refresh()
    assert second["refresh_token"] not in (old, first["refresh_token"])
    advance(url, 1801)
    late = x.token(grant_type="refresh_token", refresh_token=old)
    assert late.status_code == 400 and late.json() == {"error": "invalid_grant"}
    # The newest token is still good, and wrong client credentials are refused.
    assert x.token(grant_type="refresh_token", refresh_token=x.refresh_token).status_code == 200
    wrong = requests.post(f"{url}/connect/token", data={"grant_type": "refresh_token", "refresh_token": "x"},
                          auth=(x.client_id, "nope"))
    assert wrong.status_code == 400 and wrong.json() == {"error": "invalid_client"}
    # Client credentials in the form work as well as HTTP Basic.
    form = requests.post(f"{url}/connect/token", data={"grant_type": "refresh_token", "refresh_token": x.refresh_token,
                                                       "client_id": x.client_id, "client_secret": x.client_secret})
    assert form.status_code == 200 and form.json()["expires_in"] == 1800


def test_an_unused_refresh_token_expires_after_60_days(url: str) -> None:
    creds = requests.get(f"{url}/_sandbox/credentials").json()
    advance(url, 60 * 24 * 3600 + 1)
    answer = requests.post(f"{url}/connect/token", data={"grant_type": "refresh_token",
                                                         "refresh_token": creds["refresh_token"]},
                           auth=(creds["client_id"], creds["client_secret"]))
    assert answer.status_code == 400 and answer.json() == {"error": "invalid_grant"}


def test_access_tokens_expire_after_30_minutes_and_unknown_tokens_get_401(x: XeroCaller, url: str) -> None:
    assert x.get("/Organisation").status_code == 200
    unknown = requests.get(f"{url}/api.xro/2.0/Organisation",
                           headers={"Authorization": "Bearer nope", "xero-tenant-id": x.tenant_id})
    assert unknown.status_code == 401
    assert {k: unknown.json()[k] for k in ("Type", "Title", "Status", "Detail")} == {
        "Type": None, "Title": "Unauthorized", "Status": 401, "Detail": "AuthenticationUnsuccessful"}
    advance(url, 1800)
    expired = x.get("/Organisation")
    assert expired.status_code == 401 and expired.json()["Detail"].startswith("TokenExpired: token expired at ")
    x.refresh()
    assert x.get("/Organisation").status_code == 200


def test_missing_or_foreign_tenant_is_403(x: XeroCaller, url: str) -> None:
    other = requests.post(f"{url}/_sandbox/orgs", json={"name": "Other Ltd", "seed": "empty"}).json()
    for tenant in ("", "00000000-0000-0000-0000-000000000000", other["tenant_id"]):
        answer = x.call("GET", "/Organisation", headers={"xero-tenant-id": tenant})
        assert answer.status_code == 403
        assert {k: answer.json()[k] for k in ("Title", "Status", "Detail")} == {
            "Title": "Forbidden", "Status": 403, "Detail": "AuthenticationUnsuccessful"}


def test_client_credentials_is_bound_to_one_tenant(url: str) -> None:
    creds = requests.get(f"{url}/_sandbox/credentials", params={"grant": "client_credentials"}).json()
    answer = requests.post(f"{url}/connect/token", data={"grant_type": "client_credentials"},
                           auth=(creds["client_id"], creds["client_secret"]))
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "refresh_token" not in body and body["expires_in"] == 1800
    auth = {"Authorization": f"Bearer {body['access_token']}"}
    rows = requests.get(f"{url}/connections", headers=auth).json()
    assert [r["tenantId"] for r in rows] == [DEMO_TENANT_ID]
    # A custom connection may omit xero-tenant-id (Xero's samples send "").
    assert requests.get(f"{url}/api.xro/2.0/Organisation", headers=auth).status_code == 200
    app = requests.post(f"{url}/connect/token", data={"grant_type": "client_credentials"},
                        auth=(DEMO_CLIENT_ID, requests.get(f"{url}/_sandbox/credentials").json()["client_secret"]))
    assert app.status_code == 400 and app.json() == {"error": "unauthorized_client"}


def test_revocation_ends_the_consent(x: XeroCaller, url: str) -> None:
    revoked = requests.post(f"{url}/connect/revocation", data={"token": x.refresh_token},
                            auth=(x.client_id, x.client_secret))
    assert revoked.status_code == 200
    assert x.token(grant_type="refresh_token", refresh_token=x.refresh_token).json() == {"error": "invalid_grant"}
    assert x.get("/Organisation").status_code == 401


def test_disconnecting_a_tenant(x: XeroCaller) -> None:
    rows = x.call("GET", "/connections").json()
    assert x.call("DELETE", f"/connections/{rows[0]['id']}").status_code == 204
    assert x.call("GET", "/connections").json() == []
    assert x.get("/Organisation").status_code == 403


# --- limits --------------------------------------------------------------------------------------
def test_limit_headers_on_tenant_calls_and_only_the_app_one_on_connections(x: XeroCaller) -> None:
    first = x.get("/Organisation")
    second = x.get("/Organisation")
    for name in ("X-DayLimit-Remaining", "X-MinLimit-Remaining", "X-AppMinLimit-Remaining"):
        assert int(first.headers[name]) - 1 == int(second.headers[name])
    assert second.headers["X-MinLimit-Remaining"] == "58" and second.headers["X-DayLimit-Remaining"] == "4998"
    conn = x.call("GET", "/connections")
    assert "X-AppMinLimit-Remaining" in conn.headers
    assert "X-MinLimit-Remaining" not in conn.headers and "X-DayLimit-Remaining" not in conn.headers


def test_minute_limit_429_retry_after_and_rejected_calls_do_not_count(x: XeroCaller, url: str) -> None:
    requests.put(f"{url}/_sandbox/limits", json={"per_window": 3, "window_seconds": 60}).raise_for_status()
    assert [x.get("/Organisation").status_code for _ in range(3)] == [200, 200, 200]
    limited = x.get("/Organisation")
    assert limited.status_code == 429
    assert limited.headers["X-Rate-Limit-Problem"] == "minute"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert x.get("/Organisation").status_code == 429
    advance(url, 61)
    x.refresh()
    # The two 429s did not count: the new window holds a full 3 again.
    assert [x.get("/Organisation").status_code for _ in range(4)] == [200, 200, 200, 429]
    stats = requests.get(f"{url}/_sandbox/stats").json()
    assert stats["rate_limited"] == 3


def test_day_and_app_minute_limits(x: XeroCaller, url: str) -> None:
    requests.put(f"{url}/_sandbox/limits", json={"per_day": 2}).raise_for_status()
    assert [x.get("/Organisation").status_code for _ in range(2)] == [200, 200]
    day = x.get("/Organisation")
    assert day.status_code == 429 and day.headers["X-Rate-Limit-Problem"] == "day"
    assert int(day.headers["Retry-After"]) > 60
    requests.delete(f"{url}/_sandbox/limits").raise_for_status()
    # Two calls of this app are in the window already (the 429 did not count).
    requests.put(f"{url}/_sandbox/limits", json={"app_per_window": 4}).raise_for_status()
    other = requests.post(f"{url}/_sandbox/orgs", json={"name": "Second Co", "seed": "empty"}).json()
    y = XeroCaller(url, other["client_id"], other["client_secret"], other["refresh_token"], other["tenant_id"])
    y.refresh()
    # Same app (client id), two tenants: the app-wide window is shared.
    assert [y.get("/Organisation").status_code for _ in range(2)] == [200, 200]
    limited = x.get("/Organisation")
    assert limited.status_code == 429 and limited.headers["X-Rate-Limit-Problem"] == "appminute"


def test_concurrent_limit_counts_calls_in_flight(x: XeroCaller, url: str) -> None:
    requests.put(f"{url}/_sandbox/limits", json={"concurrent": 2}).raise_for_status()
    host, port = urlparse(url).hostname, urlparse(url).port
    held = []
    for _ in range(2):
        # A PUT whose body never finishes arriving stays in flight.
        s = socket.create_connection((host, port))
        s.sendall((f"PUT /api.xro/2.0/Contacts HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {x.access_token}\r\n"
                   f"xero-tenant-id: {x.tenant_id}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{").encode())
        held.append(s)
    try:
        deadline = time.monotonic() + 10
        while requests.get(f"{url}/_sandbox/limits").json()["in_flight"].get(x.tenant_id, 0) < 2:
            assert time.monotonic() < deadline, "the held calls never arrived"
            time.sleep(0.02)
        answer = x.get("/Organisation")
        assert answer.status_code == 429
        assert answer.headers["X-Rate-Limit-Problem"] == "concurrent"
    finally:
        for s in held:
            s.close()
    deadline = time.monotonic() + 10
    while x.get("/Organisation").status_code != 200:
        assert time.monotonic() < deadline, "in-flight calls were never released"


def test_limits_admin_partial_put_get_and_delete(url: str) -> None:
    defaults = requests.get(f"{url}/_sandbox/limits").json()
    assert defaults.pop("in_flight") == {}
    assert defaults == {"per_window": 60, "window_seconds": 60.0, "concurrent": 5, "per_day": 5000,
                        "app_per_window": 10000}
    changed = requests.put(f"{url}/_sandbox/limits", json={"per_window": 10, "window_seconds": 3}).json()
    assert changed["per_window"] == 10 and changed["window_seconds"] == 3 and changed["per_day"] == 5000
    assert requests.put(f"{url}/_sandbox/limits", json={"per_window": 0}).status_code == 400
    restored = requests.delete(f"{url}/_sandbox/limits").json()
    restored.pop("in_flight")
    assert restored == defaults


def test_injected_faults_have_xero_shapes(x: XeroCaller, url: str) -> None:
    rules = [{"method": "GET", "path": "/api.xro/2.0/Organisation", "kind": k, "count": 1} for k in ("429",)]
    rules += [{"method": "GET", "path": "/api.xro/2.0/Accounts", "kind": "500", "count": 1},
              {"method": "GET", "path": "/api.xro/2.0/Items", "kind": "503", "count": 1}]
    requests.put(f"{url}/_sandbox/faults", json={"rules": rules}).raise_for_status()
    limited = x.get("/Organisation")
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    failed = x.get("/Accounts")
    assert failed.status_code == 500 and failed.json()["Title"] == "An error occurred"
    assert x.get("/Items").status_code == 503
    assert x.get("/Accounts").status_code == 200


# --- reference data ------------------------------------------------------------------------------
def test_organisation_and_reference_data_match_the_demo_universe(x: XeroCaller) -> None:
    org = x.ok(x.get("/Organisation"))
    assert org["Status"] == "OK" and org["DateTimeUTC"].startswith("/Date(")
    o = org["Organisations"][0]
    assert (o["Name"], o["BaseCurrency"], o["Timezone"], o["CountryCode"], o["Version"]) == (
        "Harbour Demo Ltd", "NZD", "NEWZEALANDSTANDARDTIME", "NZ", "NZ")
    assert o["PeriodLockDate"] == o["EndOfYearLockDate"] == "/Date(1743379200000+0000)/"  # 2025-03-31
    accounts = x.ok(x.get("/Accounts"))["Accounts"]
    by_code = {a["Code"]: a for a in accounts}
    assert by_code["860"]["SystemAccount"] == "ROUNDING" and by_code["205"]["Status"] == "ARCHIVED"
    banks = x.ok(x.get("/Accounts", where='Status=="ACTIVE" AND Type=="BANK"'))["Accounts"]
    assert sorted(a["Code"] for a in banks) == ["090", "091"]
    rates = {r["TaxType"]: r for r in x.ok(x.get("/TaxRates"))["TaxRates"]}
    assert rates["OUTPUT2"]["EffectiveRate"] == 15 and rates["TAX001"]["Status"] == "DELETED"
    themes = x.ok(x.get("/BrandingThemes"))["BrandingThemes"]
    assert [(t["Name"], t["SortOrder"]) for t in themes] == [("Standard", 0), ("Special Projects", 1),
                                                             ("Very orange invoice!", 2)]
    dept = next(c for c in x.ok(x.get("/TrackingCategories"))["TrackingCategories"] if c["Name"] == "Department")
    assert [o["Name"] for o in dept["Options"]] == ["Sales", "Services", "Support"]
    dept = next(c for c in x.ok(x.get("/TrackingCategories", includeArchived="true"))["TrackingCategories"]
            if c["Name"] == "Department")
    assert "Legacy" in [o["Name"] for o in dept["Options"]]
    assert [c["Code"] for c in x.ok(x.get("/Currencies"))["Currencies"]] == ["NZD", "AUD", "USD"]
    items = x.ok(x.get("/Items"))["Items"]
    assert [(i["Code"], i["Name"]) for i in items] == [("HW-OLD", "Legacy cable")]
    contacts = x.ok(x.get("/Contacts"))["Contacts"]
    assert [c["Name"] for c in contacts] == ["Walk-in Customer"] and "ContactNumber" not in contacts[0]


# --- contacts and items --------------------------------------------------------------------------
def test_contact_rules(x: XeroCaller, acme: dict) -> None:
    assert x.ok(x.get("/Contacts/ZOHO-1001"))["Contacts"][0]["ContactID"] == acme["ContactID"]
    assert x.ok(x.get(f"/Contacts/{acme['ContactID']}"))["Contacts"][0]["Name"] == "Acme Ltd"
    dup = x.put("/Contacts", {"Contacts": [{"Name": "acme ltd"}]})
    assert dup.status_code == 400
    assert errors_of(dup) == [("The contact name acme ltd is already assigned to another contact. "
                              "The contact name must be unique across all active contacts.")]
    # IsCustomer/IsSupplier belong to Xero: ignored on write, set by AR/AP documents.
    sup = x.contact("Supplies Co", IsSupplier=True, IsCustomer=True, AccountNumber="AC-1")
    assert sup["IsSupplier"] is False and sup["IsCustomer"] is False
    same_acc = x.put("/Contacts", {"Contacts": [{"Name": "Third", "AccountNumber": "ac-1"}]})
    assert errors_of(same_acc) == ["The Account Number already exists. Please enter a different Account Number."]
    before = x.ok(x.get(f"/Contacts/{acme['ContactID']}"))["Contacts"][0]
    x.invoice(acme["ContactID"])
    after = x.ok(x.get(f"/Contacts/{acme['ContactID']}"))["Contacts"][0]
    assert after["IsCustomer"] is True and after["IsSupplier"] is False
    assert after["UpdatedDateUTC"] == before["UpdatedDateUTC"]
    # Archive: hidden unless includeArchived=true; its name is free again.
    x.ok(x.post(f"/Contacts/{acme['ContactID']}", {"Contacts": [{"ContactStatus": "ARCHIVED"}]}))
    names = [c["Name"] for c in x.ok(x.get("/Contacts"))["Contacts"]]
    assert "Acme Ltd" not in names
    assert "Acme Ltd" in [c["Name"] for c in x.ok(x.get("/Contacts", includeArchived="true"))["Contacts"]]
    assert x.contact("Acme Ltd")["ContactID"] != acme["ContactID"]
    # POST upserts by ContactNumber.
    upd = x.ok(x.post("/Contacts", {"Contacts": [{"ContactNumber": "ZOHO-1001", "Name": "Acme Old"}]}))
    assert upd["Contacts"][0]["ContactID"] == acme["ContactID"]
    assert x.get("/Contacts/NO-SUCH").status_code == 404
    light = x.ok(x.get("/Contacts", summaryOnly="true", includeArchived="true"))["Contacts"]
    assert light and all("Addresses" not in c and "Phones" not in c for c in light)
    unknown = x.get("/Quotes")
    assert unknown.status_code == 404 and unknown.text == "The resource you're looking for cannot be found"


def test_item_code_required_and_unique(x: XeroCaller) -> None:
    missing = x.put("/Items", {"Items": [{"Name": "No code"}]})
    assert missing.status_code == 400 and errors_of(missing) == ["Item code must be specified."]
    created = x.ok(x.put("/Items", {"Items": [{"Code": "SW-001", "Name": "Licence", "SalesDetails": {
        "UnitPrice": 0.1234, "AccountCode": "220", "TaxType": "OUTPUT2"}}]}, unitdp=4))["Items"][0]
    assert created["SalesDetails"]["UnitPrice"] == 0.1234
    assert x.ok(x.get("/Items"))["Items"][-1]["SalesDetails"]["UnitPrice"] == 0.12
    dup = x.put("/Items", {"Items": [{"Code": "SW-001", "Name": "Again"}]})
    assert errors_of(dup) == ["Price List Item with Code 'SW-001' already exists"]
    upd = x.ok(x.post("/Items", {"Items": [{"Code": "SW-001", "Name": "Licence v2"}]}))["Items"][0]
    assert upd["ItemID"] == created["ItemID"] and upd["Name"] == "Licence v2"
    assert x.call("DELETE", f"/Items/{created['ItemID']}").status_code == 204
    assert x.get(f"/Items/{created['ItemID']}").status_code == 404


# --- invoices: numbering, arithmetic, validation -------------------------------------------------
def test_accrec_numbers_are_unique_and_auto_numbered_accpay_are_not(x: XeroCaller, acme: dict) -> None:
    first, second = x.invoice(acme["ContactID"]), x.invoice(acme["ContactID"])
    assert (first["InvoiceNumber"], second["InvoiceNumber"]) == ("INV-0001", "INV-0002")
    dup = x.put("/Invoices", {"Invoices": [{"Type": "ACCREC", "InvoiceNumber": "INV-0001",
                                            "Contact": {"ContactID": acme["ContactID"]}, "LineItems": []}]})
    assert dup.status_code == 400 and errors_of(dup) == ["Invoice # must be unique."]
    bills = [x.invoice(acme["ContactID"], Type="ACCPAY", InvoiceNumber="SUP-77",
                       lines=[{"Description": "Parts", "Quantity": 1, "UnitAmount": 50, "AccountCode": "300"}])
             for _ in range(2)]
    assert bills[0]["InvoiceID"] != bills[1]["InvoiceID"]
    assert x.invoice(acme["ContactID"], Type="ACCPAY").get("InvoiceNumber") is None
    # POST updates-or-creates: an existing ACCREC number is an update.
    upd = x.ok(x.post("/Invoices", {"Invoices": [{"Type": "ACCREC", "InvoiceNumber": "INV-0002",
                                                  "Reference": "PO 99"}]}))["Invoices"][0]
    assert upd["InvoiceID"] == second["InvoiceID"] and upd["Reference"] == "PO 99"
    assert x.ok(x.get("/Invoices/INV-0002"))["Invoices"][0]["InvoiceID"] == second["InvoiceID"]
    assert x.invoice(acme["ContactID"])["InvoiceNumber"] == "INV-0003"


def test_tax_is_rounded_per_line_then_summed(x: XeroCaller, acme: dict) -> None:
    # Xero's own example (Rounding in Xero guide, via GH corsairdev/corsair#1675): 3.76 + 3.84 + 3.84 = 11.44,
    # where tax on the subtotal would be 76.30 * 15 % = 11.445 -> 11.45.
    doc = x.invoice(acme["ContactID"], lines=_invoice_lines([25.06, 25.61, 25.63]))
    assert [ln["TaxAmount"] for ln in doc["LineItems"]] == [3.76, 3.84, 3.84]
    assert (doc["SubTotal"], doc["TotalTax"], doc["Total"]) == (76.3, 11.44, 87.74)
    # Three 15 % lines whose unrounded tax is 1.5015 each: per line 1.50 x 3 = 4.50, not round(4.5045) = 4.50
    inv = x.invoice(acme["ContactID"], lines=_invoice_lines([10.01, 10.01, 10.01]))
    assert [ln["TaxAmount"] for ln in inv["LineItems"]] == [1.5, 1.5, 1.5]
    assert (inv["SubTotal"], inv["TotalTax"], inv["Total"]) == (30.03, 4.5, 34.53)
    # 10.03 * 15 % = 1.5045 -> 1.50 per line; on the sum 30.09 * 15 % = 4.5135 -> 4.51.
    inv = x.invoice(acme["ContactID"], lines=_invoice_lines([10.03, 10.03, 10.03]))
    assert inv["TotalTax"] == 4.5 and inv["Total"] == 34.59
    inclusive = x.invoice(acme["ContactID"], LineAmountTypes="Inclusive", lines=_invoice_lines([115, 10]))
    assert [ln["TaxAmount"] for ln in inclusive["LineItems"]] == [15.0, 1.3]
    assert (inclusive["SubTotal"], inclusive["TotalTax"], inclusive["Total"]) == (108.7, 16.3, 125.0)
    notax = x.invoice(acme["ContactID"], LineAmountTypes="NoTax", lines=_invoice_lines([50]))
    assert (notax["TotalTax"], notax["Total"], notax["LineItems"][0]["TaxType"]) == (0.0, 50.0, "NONE")


def test_unitdp_4_keeps_unit_prices_and_totals_stay_2dp(x: XeroCaller, acme: dict) -> None:
    body = {"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": acme["ContactID"]}, "Date": "2025-07-01",
                          "LineItems": [{"Description": "Tiny", "Quantity": 3, "UnitAmount": 0.1234,
                                         "AccountCode": "220", "TaxType": "OUTPUT2"}]}]}
    four = x.ok(x.put("/Invoices", body, unitdp=4))["Invoices"][0]
    assert four["LineItems"][0]["UnitAmount"] == 0.1234 and four["LineItems"][0]["LineAmount"] == 0.37
    assert x.ok(x.get(f"/Invoices/{four['InvoiceID']}"))["Invoices"][0]["LineItems"][0]["UnitAmount"] == 0.12
    two = x.ok(x.put("/Invoices", body))["Invoices"][0]
    assert two["LineItems"][0]["UnitAmount"] == 0.12 and two["LineItems"][0]["LineAmount"] == 0.36


def test_discounts_only_on_accrec(x: XeroCaller, acme: dict) -> None:
    inv = x.invoice(acme["ContactID"], lines=[
        {"Description": "A", "Quantity": 2, "UnitAmount": 50, "DiscountRate": 10, "AccountCode": "200",
         "TaxType": "OUTPUT2"},
        {"Description": "B", "Quantity": 1, "UnitAmount": 20, "DiscountAmount": 5, "AccountCode": "200",
         "TaxType": "OUTPUT2"}])
    assert [ln["LineAmount"] for ln in inv["LineItems"]] == [90.0, 15.0]
    assert inv["SubTotal"] == 105.0 and inv["TotalTax"] == 15.75 and inv["TotalDiscount"] == 15.0
    assert inv["IsDiscounted"] is True
    bill = x.put("/Invoices", {"Invoices": [{"Type": "ACCPAY", "Contact": {"ContactID": acme["ContactID"]},
                                             "LineItems": [{"Description": "A", "Quantity": 1, "UnitAmount": 5,
                                                            "DiscountRate": 10, "AccountCode": "300"}]}]})
    assert errors_of(bill) == ["Discounts are only supported on sales invoices (ACCREC)."]


def test_line_validation_messages(x: XeroCaller, acme: dict) -> None:
    def one(line: dict, **fields: object) -> list[str]:
        body = {"Type": "ACCREC", "Contact": {"ContactID": acme["ContactID"]}, "Date": "2025-07-01",
                "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 10, **line}], **fields}
        return errors_of(x.put("/Invoices", {"Invoices": [body]}))

    assert one({"AccountCode": "999"}) == ["Account code '999' is not a valid code for this document."]
    assert one({"AccountCode": "205"}) == ["Account code '205' is not a valid code for this document."]
    assert one({"AccountCode": "610"}) == ["Account code '610' is not a valid code for this document."]
    assert one({"AccountCode": "200", "TaxType": "TAX001"}) == [
        "The TaxType code TAX001 does not exist or cannot be used for this type of transaction."]
    assert one({"AccountCode": "300", "TaxType": "OUTPUT2"}) == [
        "The TaxType code 'OUTPUT2' cannot be used with account code '300'."]
    assert one({"AccountCode": "200"}, Status="AUTHORISED") == []
    assert one({}, Status="AUTHORISED") == ["Account must be valid."]
    assert one({"AccountCode": "200"}, CurrencyCode="GBP") == ["Organisation is not subscribed to currency GBP"]
    assert one({"AccountCode": "200"}, Date="2025-02-14") == [
        "The document date cannot be before the end of year lock date, currently set at 31-Mar-2025"]
    assert one({"AccountCode": "200", "Tracking": [
        {"Name": "Region", "Option": "North"}, {"Name": "Department", "Option": "Sales"},
        {"Name": "Region", "Option": "South"}]}) == ["A line item can have a maximum of 2 tracking categories."]
    assert one({"AccountCode": "200", "Tracking": [{"Name": "Department", "Option": "Legacy"}]}) == [
        "Tracking option 'Legacy' is not a valid option for tracking category 'Department'."]
    assert one({"AccountCode": "200", "Tracking": [{"Name": "Colour", "Option": "Red"}]}) == [
        "Tracking category 'Colour' does not exist or is not active."]
    assert one({"AccountCode": "860", "TaxType": "NONE"}) == []  # the ROUNDING account takes lines
    no_contact = x.put("/Invoices", {"Invoices": [{"Type": "ACCREC", "Contact": {}, "LineItems": []}]})
    assert errors_of(no_contact) == [("The Contact must contain at least 1 of the following elements to identify "
                                     "the contact: Name, ContactID, ContactNumber")]


def test_tracking_by_name_or_id_and_totals_are_read_only(x: XeroCaller, acme: dict) -> None:
    region = next(c for c in x.ok(x.get("/TrackingCategories"))["TrackingCategories"] if c["Name"] == "Region")
    north = region["Options"][0]
    inv = x.invoice(acme["ContactID"], Total=999, SubTotal=1, AmountDue=5, lines=[
        {"Description": "x", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200", "TaxType": "OUTPUT2",
         "Tracking": [{"TrackingCategoryID": region["TrackingCategoryID"], "TrackingOptionID": north["TrackingOptionID"]},
                      {"Name": "Department", "Option": "sales"}]}])
    assert (inv["Total"], inv["SubTotal"], inv["AmountDue"]) == (11.5, 10.0, 11.5)
    assert [(t["Name"], t["Option"]) for t in inv["LineItems"][0]["Tracking"]] == [("Region", "North"),
                                                                                   ("Department", "Sales")]


def test_contact_fields_sent_with_a_document_update_the_contact(x: XeroCaller, acme: dict) -> None:
    x.ok(x.post(f"/Contacts/{acme['ContactID']}", {"Contacts": [{"ContactPersons": [
        {"FirstName": "Pat", "LastName": "Lee", "EmailAddress": "pat@acme.example"}]}]}))
    x.invoice(acme["ContactID"])  # only the ContactID: the contact is untouched
    assert len(x.ok(x.get(f"/Contacts/{acme['ContactID']}"))["Contacts"][0]["ContactPersons"]) == 1
    x.ok(x.put("/Invoices", {"Invoices": [{"Type": "ACCREC", "LineItems": [], "Contact": {
        "ContactID": acme["ContactID"], "EmailAddress": "billing@acme.example"}}]}))
    after = x.ok(x.get(f"/Contacts/{acme['ContactID']}"))["Contacts"][0]
    assert after["EmailAddress"] == "billing@acme.example" and after["ContactPersons"] == []
    x.contact("Taken Name")
    clash = x.put("/Invoices", {"Invoices": [{"Type": "ACCREC", "Reference": "clash", "LineItems": [], "Contact": {
        "ContactID": acme["ContactID"], "Name": "Taken Name"}}]})
    assert clash.status_code == 400 and "already assigned to another contact" in errors_of(clash)[0]
    assert [i for i in x.ok(x.get("/Invoices"))["Invoices"] if i.get("Reference") == "clash"] == []


def test_inline_contact_by_name_is_created_and_ap_marks_supplier(x: XeroCaller) -> None:
    bill = x.ok(x.put("/Invoices", {"Invoices": [{"Type": "ACCPAY", "Contact": {"Name": "New Vendor"},
                                                  "LineItems": _invoice_lines([10], "INPUT2")[:0]}]}))["Invoices"][0]
    vendor = x.ok(x.get(f"/Contacts/{bill['Contact']['ContactID']}"))["Contacts"][0]
    assert vendor["Name"] == "New Vendor" and vendor["IsSupplier"] is True and vendor["IsCustomer"] is False


# --- status lifecycle, edits, payments, credit notes ---------------------------------------------
def test_status_transition_table(x: XeroCaller, acme: dict) -> None:
    def move(inv: dict, status: str) -> requests.Response:
        return x.post(f"/Invoices/{inv['InvoiceID']}", {"Invoices": [{"Status": status}]})

    assert errors_of(x.put("/Invoices", {"Invoices": [{"Type": "ACCREC", "Status": "PAID", "Contact": {
        "ContactID": acme["ContactID"]}}]})) == ["Invoice not of valid status for modification"]
    inv = x.invoice(acme["ContactID"])
    assert inv["Status"] == "DRAFT"
    assert x.ok(move(inv, "SUBMITTED"))["Invoices"][0]["Status"] == "SUBMITTED"
    assert x.ok(move(inv, "DRAFT"))["Invoices"][0]["Status"] == "DRAFT"
    assert x.ok(move(inv, "AUTHORISED"))["Invoices"][0]["Status"] == "AUTHORISED"
    for bad in ("DRAFT", "SUBMITTED", "DELETED", "PAID"):
        answer = move(inv, bad)
        assert answer.status_code == 400 and errors_of(answer) == ["Invoice not of valid status for modification"]
    assert x.ok(move(inv, "VOIDED"))["Invoices"][0]["Status"] == "VOIDED"
    assert errors_of(move(inv, "AUTHORISED")) == ["Invoice not of valid status for modification"]
    draft = x.invoice(acme["ContactID"])
    assert x.ok(move(draft, "DELETED"))["Invoices"][0]["Status"] == "DELETED"
    assert errors_of(x.post(f"/Invoices/{draft['InvoiceID']}", {"Invoices": [{"Reference": "late"}]})) == [
        "Invoice not of valid status for modification"]


def test_payments_drive_amounts_status_and_edit_locks(x: XeroCaller, acme: dict) -> None:
    inv = x.invoice(acme["ContactID"], Status="AUTHORISED", lines=_invoice_lines([100]))
    assert inv["AmountDue"] == 115.0
    # Editable while nothing is allocated (keeping Status AUTHORISED).
    edited = x.ok(x.post(f"/Invoices/{inv['InvoiceID']}", {"Invoices": [{"Reference": "edited"}]}))
    assert edited["Invoices"][0]["Reference"] == "edited"
    over = x.pay(inv["InvoiceID"], 200)
    assert over.status_code == 400
    assert errors_of(over) == ["Payment amount exceeds the amount outstanding on this document"]
    part = x.ok(x.pay(inv["InvoiceID"], 15))["Payments"][0]
    assert part["PaymentType"] == "ACCRECPAYMENT" and part["Status"] == "AUTHORISED"
    now = x.ok(x.get(f"/Invoices/{inv['InvoiceID']}"))["Invoices"][0]
    assert (now["AmountPaid"], now["AmountDue"], now["Status"]) == (15.0, 100.0, "AUTHORISED")
    assert [p["PaymentID"] for p in now["Payments"]] == [part["PaymentID"]]
    locked = x.post(f"/Invoices/{inv['InvoiceID']}", {"Invoices": [{"Reference": "again"}]})
    assert errors_of(locked) == ["Invoice not of valid status for modification",
                                 "This document cannot be edited as it has a payment or credit note allocated to it."]
    void = x.post(f"/Invoices/{inv['InvoiceID']}", {"Invoices": [{"Status": "VOIDED"}]})
    assert "This document cannot be edited as it has a payment or credit note allocated to it." in errors_of(void)
    rest = x.ok(x.post("/Payments", {"Invoice": {"InvoiceNumber": inv["InvoiceNumber"]}, "Account": {"Code": "090"},
                                     "Date": "2025-08-02", "Amount": 100}))["Payments"][0]
    paid = x.ok(x.get(f"/Invoices/{inv['InvoiceID']}"))["Invoices"][0]
    assert (paid["Status"], paid["AmountDue"], paid["AmountPaid"]) == ("PAID", 0.0, 115.0)
    assert paid["FullyPaidOnDate"] == "/Date(1754092800000+0000)/"  # 2025-08-02
    # Deleting a payment reopens the invoice.
    deleted = x.ok(x.post(f"/Payments/{rest['PaymentID']}", {"Status": "DELETED"}))["Payments"][0]
    assert deleted["Status"] == "DELETED"
    reopened = x.ok(x.get(f"/Invoices/{inv['InvoiceID']}"))["Invoices"][0]
    assert (reopened["Status"], reopened["AmountDue"]) == ("AUTHORISED", 100.0) and "FullyPaidOnDate" not in reopened
    draft = x.invoice(acme["ContactID"])
    assert errors_of(x.pay(draft["InvoiceID"], 1)) == ["Payments can only be made against Authorised documents."]
    bill = x.invoice(acme["ContactID"], Type="ACCPAY", Status="AUTHORISED",
                     lines=[{"Description": "P", "Quantity": 1, "UnitAmount": 10, "AccountCode": "300"}])
    assert x.ok(x.pay(bill["InvoiceID"], 11.5))["Payments"][0]["PaymentType"] == "ACCPAYPAYMENT"
    pays = x.ok(x.get("/Payments", where='Status=="AUTHORISED"'))["Payments"]
    assert {p["PaymentID"] for p in pays} >= {part["PaymentID"]} and rest["PaymentID"] not in {p["PaymentID"] for p in pays}


def test_line_items_keep_their_ids_and_are_replaced_when_omitted(x: XeroCaller, acme: dict) -> None:
    inv = x.invoice(acme["ContactID"], lines=_invoice_lines([10, 20]))
    first, second = inv["LineItems"]
    same = x.ok(x.post(f"/Invoices/{inv['InvoiceID']}", {"Invoices": [{"Reference": "no lines sent"}]}))
    assert [ln["LineItemID"] for ln in same["Invoices"][0]["LineItems"]] == [first["LineItemID"], second["LineItemID"]]
    upd = x.ok(x.post(f"/Invoices/{inv['InvoiceID']}", {"Invoices": [{"LineItems": [
        {"LineItemID": second["LineItemID"], "UnitAmount": 25},
        {"Description": "new", "Quantity": 1, "UnitAmount": 5, "AccountCode": "200", "TaxType": "OUTPUT2"}]}]}))
    lines = upd["Invoices"][0]["LineItems"]
    assert len(lines) == 2 and first["LineItemID"] not in [ln["LineItemID"] for ln in lines]
    kept = next(ln for ln in lines if ln["LineItemID"] == second["LineItemID"])
    assert kept["UnitAmount"] == 25 and kept["Description"] == "L1"
    assert upd["Invoices"][0]["SubTotal"] == 30.0


def test_credit_note_allocation_reduces_amount_due_and_locks_the_invoice(x: XeroCaller, acme: dict) -> None:
    inv = x.invoice(acme["ContactID"], Status="AUTHORISED", lines=_invoice_lines([100]))
    cn = x.ok(x.put("/CreditNotes", {"CreditNotes": [{"Type": "ACCRECCREDIT", "Status": "AUTHORISED", "Date": "2025-07-05",
                                                      "Contact": {"ContactID": acme["ContactID"]},
                                                      "LineItems": _invoice_lines([20])}]}))["CreditNotes"][0]
    assert cn["CreditNoteNumber"] == "CN-0001" and cn["RemainingCredit"] == 23.0
    too_much = x.put(f"/CreditNotes/{cn['CreditNoteID']}/Allocations",
                     {"Allocations": [{"Amount": 30, "Invoice": {"InvoiceID": inv["InvoiceID"]}, "Date": "2025-07-06"}]})
    assert too_much.status_code == 400
    alloc = x.ok(x.put(f"/CreditNotes/{cn['CreditNoteID']}/Allocations",
                       {"Allocations": [{"Amount": 23, "Invoice": {"InvoiceID": inv["InvoiceID"]}, "Date": "2025-07-06"}]}))
    assert alloc["Allocations"][0]["Amount"] == 23.0
    now = x.ok(x.get(f"/Invoices/{inv['InvoiceID']}"))["Invoices"][0]
    assert (now["AmountCredited"], now["AmountDue"], now["Status"]) == (23.0, 92.0, "AUTHORISED")
    assert now["CreditNotes"][0]["CreditNoteID"] == cn["CreditNoteID"]
    credit = x.ok(x.get(f"/CreditNotes/{cn['CreditNoteID']}"))["CreditNotes"][0]
    assert (credit["RemainingCredit"], credit["Status"]) == (0.0, "PAID")
    assert errors_of(x.post(f"/Invoices/{inv['InvoiceID']}", {"Invoices": [{"DueDate": "2025-09-01"}]}))[1] == \
        "This document cannot be edited as it has a payment or credit note allocated to it."
    x.ok(x.pay(inv["InvoiceID"], 92))
    assert x.ok(x.get(f"/Invoices/{inv['InvoiceID']}"))["Invoices"][0]["Status"] == "PAID"
    disc = x.put("/CreditNotes", {"CreditNotes": [{"Type": "ACCRECCREDIT", "Contact": {"ContactID": acme["ContactID"]},
                                                   "LineItems": [{"Description": "d", "Quantity": 1, "UnitAmount": 1,
                                                                  "DiscountRate": 5, "AccountCode": "200"}]}]})
    assert errors_of(disc) == ["Discounts are only supported on sales invoices (ACCREC)."]


def test_purchase_orders_numbering_statuses_and_warnings(x: XeroCaller, acme: dict) -> None:
    def po(**fields: object) -> requests.Response:
        body = {"Contact": {"ContactID": acme["ContactID"]}, "Date": "2025-07-01",
                "LineItems": [{"Description": "Widgets", "Quantity": 10, "UnitAmount": 2, "AccountCode": "300",
                               "TaxType": "INPUT2"}], **fields}
        return x.put("/PurchaseOrders", {"PurchaseOrders": [body]})

    first = x.ok(po())["PurchaseOrders"][0]
    assert first["PurchaseOrderNumber"] == "PO-0001" and first["Status"] == "DRAFT" and first["Total"] == 23.0
    assert x.ok(po())["PurchaseOrders"][0]["PurchaseOrderNumber"] == "PO-0002"
    assert errors_of(po(PurchaseOrderNumber="PO-0001")) == ["Order number must be unique"]
    warned = x.ok(x.put("/PurchaseOrders", {"PurchaseOrders": [{"Contact": {"ContactID": acme["ContactID"]},
                                                                "SentToContact": True, "LineItems": []}]},
                        summarizeErrors="false"))["PurchaseOrders"][0]
    assert warned["StatusAttributeString"] == "WARNING"
    assert warned["Warnings"] == [{"Message": "Only AUTHORISED and BILLED purchase orders may have SentToContact updated."}]
    for status in ("SUBMITTED", "AUTHORISED", "BILLED"):
        moved = x.ok(x.post(f"/PurchaseOrders/{first['PurchaseOrderID']}", {"PurchaseOrders": [{"Status": status}]}))
        assert moved["PurchaseOrders"][0]["Status"] == status
    assert x.ok(x.get("/PurchaseOrders/PO-0001"))["PurchaseOrders"][0]["Status"] == "BILLED"
    assert [p["PurchaseOrderNumber"] for p in x.ok(x.get("/PurchaseOrders", Status="BILLED"))["PurchaseOrders"]] == ["PO-0001"]
    assert x.put("/PurchaseOrders", {"PurchaseOrders": [{"Contact": {"Name": "Nobody"}, "LineItems": []}]}
                 ).status_code == 400


# --- reads ---------------------------------------------------------------------------------------
def _many(x: XeroCaller, contact_id: str, n: int) -> list[dict]:
    out = []
    for start_at in range(0, n, 50):
        batch = [{"Type": "ACCREC", "Contact": {"ContactID": contact_id}, "Date": "2025-07-01",
                  "Reference": f"R{i}", "LineItems": _invoice_lines([i + 1])} for i in range(start_at, min(n, start_at + 50))]
        out += x.ok(x.put("/Invoices", {"Invoices": batch}))["Invoices"]
    return out


def test_paging_and_page_size(x: XeroCaller, acme: dict) -> None:
    _many(x, acme["ContactID"], 120)
    page = x.ok(x.get("/Invoices", page=1))
    assert page["pagination"] == {"page": 1, "pageSize": 100, "pageCount": 2, "itemCount": 120}
    assert len(page["Invoices"]) == 100 and page["Invoices"][0]["LineItems"]
    last = x.ok(x.get("/Invoices", page=2, pageSize=50))
    assert last["pagination"] == {"page": 2, "pageSize": 50, "pageCount": 3, "itemCount": 120}
    assert [i["Reference"] for i in last["Invoices"]][:2] == ["R50", "R51"]
    assert x.ok(x.get("/Invoices", page=1, pageSize=5000))["pagination"]["pageSize"] == 1000
    unpaged = x.ok(x.get("/Invoices"))
    assert "pagination" not in unpaged and len(unpaged["Invoices"]) == 120
    assert unpaged["Invoices"][0]["LineItems"] == []
    assert x.ok(x.get("/Invoices", page=9))["Invoices"] == []
    assert x.ok(x.get("/Contacts", page=1))["pagination"]["itemCount"] == 2


def test_if_modified_since_accepts_every_form_clients_send(x: XeroCaller, url: str, acme: dict) -> None:
    old = x.invoice(acme["ContactID"])
    advance(url, 3600)
    x.refresh()
    cut = requests.get(f"{url}/_sandbox/clock").json()["now"]  # e.g. 2026-11-25T20:00:00.123456+00:00
    advance(url, 2)
    new = x.invoice(acme["ContactID"])
    base = cut[:19]
    forms = [base + "Z", base + "+00:00", cut, base + ".1234567Z", base, cut.replace("+00:00", ""),
             time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.strptime(base, "%Y-%m-%dT%H:%M:%S"))]
    for form in forms:
        got = x.call("GET", "/Invoices", headers={"If-Modified-Since": form}).json()["Invoices"]
        assert [i["InvoiceID"] for i in got] == [new["InvoiceID"]], form
    assert len(x.call("GET", "/Invoices", headers={"If-Modified-Since": "not a date"}).json()["Invoices"]) == 2
    assert old["InvoiceID"] != new["InvoiceID"]


def test_where_order_and_explicit_filters(x: XeroCaller, acme: dict) -> None:
    obrien = x.contact("O'Brien & Sons", EmailAddress="o@obrien.example")
    x.invoice(acme["ContactID"], Reference="alpha")
    x.invoice(obrien["ContactID"], Reference="beta", Status="AUTHORISED")
    x.invoice(obrien["ContactID"], Type="ACCPAY", lines=[{"Description": "p", "Quantity": 1, "UnitAmount": 3,
                                                         "AccountCode": "300"}])
    got = x.ok(x.get("/Contacts", where='Name=="O\'Brien & Sons"'))["Contacts"]
    assert [c["ContactID"] for c in got] == [obrien["ContactID"]]
    got = x.ok(x.get("/Contacts", where='EmailAddress=="o@obrien.example" AND Name.Contains("brien")'))["Contacts"]
    assert len(got) == 1
    q = f'Contact.ContactID==Guid("{obrien["ContactID"]}") AND Type=="ACCREC"'
    assert [i["Reference"] for i in x.ok(x.get("/Invoices", where=q))["Invoices"]] == ["beta"]
    assert [i["Reference"] for i in x.ok(x.get("/Invoices", where='Status=="DRAFT" && Type=="ACCREC"'))["Invoices"]] == ["alpha"]
    assert len(x.ok(x.get("/Invoices", where='Date>=DateTime(2025,07,01) AND Contact.Name=="Acme Ltd"'))["Invoices"]) == 1
    ordered = x.ok(x.get("/Invoices", where='Type=="ACCREC"', order="Reference DESC"))["Invoices"]
    assert [i["Reference"] for i in ordered] == ["beta", "alpha"]
    bad = x.get("/Invoices", where='Status=="DRAFT" AND')
    assert bad.status_code == 400 and bad.json()["Type"] == "ValidationException"
    assert [i["Reference"] for i in x.ok(x.get("/Invoices", Statuses="AUTHORISED,PAID"))["Invoices"]] == ["beta"]
    assert len(x.ok(x.get("/Invoices", ContactIDs=obrien["ContactID"]))["Invoices"]) == 2
    assert [i["InvoiceNumber"] for i in x.ok(x.get("/Invoices", InvoiceNumbers="INV-0002"))["Invoices"]] == ["INV-0002"]
    assert [i["Reference"] for i in x.ok(x.get("/Invoices", searchTerm="ALP"))["Invoices"]] == ["alpha"]
    summary = x.ok(x.get("/Invoices", summaryOnly="true", page=1))["Invoices"][0]
    assert "LineItems" not in summary
    assert [c["Name"] for c in x.ok(x.get("/Contacts", searchTerm="obrien.example"))["Contacts"]] == ["O'Brien & Sons"]


def test_ids_filter_404_above_52(x: XeroCaller, acme: dict) -> None:
    made = _many(x, acme["ContactID"], 53)
    ids = [i["InvoiceID"] for i in made]
    by_ids = x.ok(x.get("/Invoices", IDs=",".join(ids[:52])))["Invoices"]
    assert len(by_ids) == 52 and by_ids[0]["LineItems"] == []  # unpaged: no line details
    too_many = x.get("/Invoices", IDs=",".join(ids))
    assert too_many.status_code == 404 and too_many.text == "The resource you're looking for cannot be found"
    assert x.get("/Invoices/00000000-0000-0000-0000-000000000000").status_code == 404


def test_online_invoice_and_lookup_by_number(x: XeroCaller, acme: dict) -> None:
    inv = x.invoice(acme["ContactID"], Status="AUTHORISED")
    online = x.ok(x.get(f"/Invoices/{inv['InvoiceID']}/OnlineInvoice"))["OnlineInvoices"][0]
    assert online["OnlineInvoiceUrl"].startswith("https://in.xero.com/")
    draft = x.invoice(acme["ContactID"])
    assert x.get(f"/Invoices/{draft['InvoiceID']}/OnlineInvoice").status_code == 400
    assert x.ok(x.get(f"/Invoices/{inv['InvoiceNumber']}"))["Invoices"][0]["InvoiceID"] == inv["InvoiceID"]


# --- writes --------------------------------------------------------------------------------------
def test_summarize_errors_trap_and_per_element_results(x: XeroCaller, acme: dict) -> None:
    good = {"Type": "ACCREC", "Contact": {"ContactID": acme["ContactID"]}, "Reference": "good-1",
            "LineItems": _invoice_lines([10])}
    bad = {"Type": "ACCREC", "Contact": {"ContactID": acme["ContactID"]}, "Reference": "bad",
           "LineItems": [{"Description": "x", "Quantity": 1, "UnitAmount": 1, "AccountCode": "999"}]}
    trap = x.put("/Invoices", {"Invoices": [good, bad]})
    assert trap.status_code == 400
    body = trap.json()
    assert (body["ErrorNumber"], body["Type"], body["Message"]) == (10, "ValidationException",
                                                                    "A validation exception occurred")
    assert [e["Reference"] for e in body["Elements"]] == ["bad"]
    assert body["Elements"][0]["HasErrors"] is True
    # ...yet the good one was created (and its id was not reported).
    assert [i["Reference"] for i in x.ok(x.get("/Invoices"))["Invoices"]] == ["good-1"]
    mixed = x.ok(x.put("/Invoices", {"Invoices": [{**good, "Reference": "good-2"}, bad]}, summarizeErrors="false"))
    assert [(i["Reference"], i["StatusAttributeString"]) for i in mixed["Invoices"]] == [("good-2", "OK"),
                                                                                        ("bad", "ERROR")]
    assert mixed["Invoices"][0]["InvoiceID"] and mixed["Invoices"][1]["ValidationErrors"] == [
        {"Message": "Account code '999' is not a valid code for this document."}]


def test_idempotency_replay_mismatch_expiry_and_errors_cached(x: XeroCaller, url: str, acme: dict) -> None:
    body = {"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": acme["ContactID"]}, "LineItems": _invoice_lines([5])}]}
    key = {"Idempotency-Key": "batch-1"}
    first = x.call("PUT", "/Invoices", json=body, headers=key)
    again = x.call("PUT", "/Invoices", json=body, headers=key)
    assert first.status_code == again.status_code == 200 and first.json() == again.json()
    assert len(x.ok(x.get("/Invoices"))["Invoices"]) == 1
    stats = requests.get(f"{url}/_sandbox/stats").json()
    assert stats["writes"] == 2  # the contact and the first PUT; the replay wrote nothing
    assert first.json()["ProviderName"] == "zoho-xero-sync (sandbox app)"
    assert x.call("PUT", "/Invoices", json=body, headers={"Idempotency-Key": "k" * 129}).status_code == 400
    other = x.call("PUT", "/Invoices", json={"Invoices": [{**body["Invoices"][0], "Reference": "x"}]}, headers=key)
    assert other.status_code == 400 and "used with a different request" in other.json()["Detail"]
    # Errors are cached too: the same failing request replays its 400 even once it would pass.
    bad = {"Invoices": [{**body["Invoices"][0], "InvoiceNumber": "INV-0001"}]}
    err_key = {"Idempotency-Key": "batch-2"}
    assert x.call("PUT", "/Invoices", json=bad, headers=err_key).status_code == 400
    x.ok(x.post(f"/Invoices/{first.json()['Invoices'][0]['InvoiceID']}", {"Invoices": [{"InvoiceNumber": "INV-9"}]}))
    assert x.call("PUT", "/Invoices", json=bad, headers=err_key).status_code == 400
    # After 6 minutes the key is forgotten: the same request writes again.
    advance(url, 361)
    x.refresh()
    assert x.call("PUT", "/Invoices", json=body, headers=key).status_code == 200
    assert len(x.ok(x.get("/Invoices"))["Invoices"]) == 2
    # Keys are per app: another app's identical key is its own.
    creds = requests.get(f"{url}/_sandbox/credentials", params={"grant": "client_credentials"}).json()
    token = requests.post(f"{url}/connect/token", data={"grant_type": "client_credentials"},
                          auth=(creds["client_id"], creds["client_secret"])).json()["access_token"]
    custom = requests.put(f"{url}/api.xro/2.0/Invoices", json={"Invoices": [{**body["Invoices"][0], "Reference": "x"}]},
                          headers={"Authorization": f"Bearer {token}", **key})
    assert custom.status_code == 200


def test_journal_keys_and_stats(x: XeroCaller, url: str, acme: dict) -> None:
    since = requests.get(f"{url}/_sandbox/journal").json()[-1]["seq"]
    x.invoice(acme["ContactID"], InvoiceNumber="Z-1")
    x.ok(x.put("/Items", {"Items": [{"Code": "SV-001", "Name": "Setup"}]}))
    journal = requests.get(f"{url}/_sandbox/journal", params={"since": since}).json()
    assert [(j["method"], j["keys"], j["tenant"]) for j in journal] == [
        ("PUT", ["Z-1"], DEMO_TENANT_ID), ("PUT", ["SV-001"], DEMO_TENANT_ID)]
    assert journal[0]["path"] == "/api.xro/2.0/Invoices"
    assert requests.get(f"{url}/_sandbox/stats").json()["by_tenant"][DEMO_TENANT_ID]["writes"] == 3


# --- admin ---------------------------------------------------------------------------------------
def test_orgs_with_generated_invoices_are_isolated(url: str, x: XeroCaller) -> None:
    made = requests.post(f"{url}/_sandbox/orgs", json={"name": "Bench Co", "seed": "250"})
    assert made.status_code == 201
    org = made.json()
    assert set(org) >= {"client_id", "client_secret", "refresh_token", "tenant_id", "api_domain", "accounts_url"}
    y = XeroCaller(url, org["client_id"], org["client_secret"], org["refresh_token"], org["tenant_id"])
    y.refresh()
    page = y.ok(y.get("/Invoices", page=1, pageSize=1000))
    assert page["pagination"]["itemCount"] == 250
    assert page["Invoices"][0]["InvoiceNumber"] == "INV-0001" and page["Invoices"][0]["LineItems"]
    assert y.invoice(page["Invoices"][0]["Contact"]["ContactID"])["InvoiceNumber"] == "INV-0251"
    # The demo connection cannot read the new tenant, and vice versa.
    assert x.call("GET", "/Invoices", headers={"xero-tenant-id": org["tenant_id"]}).status_code == 403
    assert x.ok(x.get("/Invoices"))["Invoices"] == []
    listed = requests.get(f"{url}/_sandbox/orgs").json()
    assert {o["tenant_id"] for o in listed} == {DEMO_TENANT_ID, org["tenant_id"]}
    assert requests.post(f"{url}/_sandbox/orgs", json={"name": "X", "seed": "lots"}).status_code == 400


def test_reset_to_the_empty_seed_keeps_reference_data_only(url: str) -> None:
    requests.post(f"{url}/_sandbox/reset", params={"seed": "empty"}).raise_for_status()
    x = XeroCaller.connect(url)
    assert x.tenant_id == DEMO_TENANT_ID
    assert x.ok(x.get("/Contacts"))["Contacts"] == [] and x.ok(x.get("/Items"))["Items"] == []
    assert len(x.ok(x.get("/Accounts"))["Accounts"]) == 18


def test_each_credentials_call_grants_a_fresh_refresh_token(url: str) -> None:
    one = requests.get(f"{url}/_sandbox/credentials").json()
    two = requests.get(f"{url}/_sandbox/credentials").json()
    assert one["refresh_token"] != two["refresh_token"]
    assert (one["client_id"], one["tenant_id"]) == (DEMO_CLIENT_ID, DEMO_TENANT_ID)
    assert one["api_domain"] == url and one["accounts_url"] == url
    assert requests.get(f"{url}/_sandbox/credentials", params={"org": "nope"}).status_code == 404


def test_state_survives_a_restart(tmp_path: Path) -> None:
    first = start(XeroSandbox(tmp_path))
    try:
        x = XeroCaller.connect(first.url)
        contact = x.contact("Persisted Ltd", ContactNumber="P-1")
        inv = x.invoice(contact["ContactID"], Status="AUTHORISED")
        x.ok(x.pay(inv["InvoiceID"], 50))
        refresh = x.refresh_token
    finally:
        first.stop()
    second = start(XeroSandbox(tmp_path))
    try:
        y = XeroCaller(second.url, DEMO_CLIENT_ID, x.client_secret, refresh, DEMO_TENANT_ID)
        y.refresh()
        got = y.ok(y.get(f"/Invoices/{inv['InvoiceID']}"))["Invoices"][0]
        assert (got["AmountPaid"], got["Contact"]["Name"]) == (50.0, "Persisted Ltd")
        assert y.ok(y.get("/Contacts/P-1"))["Contacts"][0]["ContactID"] == contact["ContactID"]
        assert y.invoice(contact["ContactID"])["InvoiceNumber"] == "INV-0002"
        dup = y.put("/Contacts", {"Contacts": [{"Name": "Persisted Ltd"}]})
        assert dup.status_code == 400
    finally:
        second.stop()


def test_a_dropped_answer_is_healed_by_the_idempotent_retry(x: XeroCaller, url: str, acme: dict) -> None:
    requests.put(f"{url}/_sandbox/faults", json={"rules": [
        {"method": "PUT", "path": "/api.xro/2.0/Invoices", "kind": "drop_after_commit", "count": 1}]}).raise_for_status()
    body = {"Invoices": [{"Type": "ACCREC", "Contact": {"ContactID": acme["ContactID"]}, "LineItems": _invoice_lines([7])}]}
    key = {"Idempotency-Key": "crash-1"}
    with pytest.raises(requests.exceptions.RequestException):
        x.call("PUT", "/Invoices", json=body, headers=key)
    retry = x.call("PUT", "/Invoices", json=body, headers=key)
    assert retry.status_code == 200
    stored = x.ok(x.get("/Invoices"))["Invoices"]
    assert [i["InvoiceID"] for i in stored] == [retry.json()["Invoices"][0]["InvoiceID"]]
    journal = requests.get(f"{url}/_sandbox/journal").json()
    assert [j["keys"] for j in journal if j["method"] == "PUT" and j["path"].endswith("/Invoices")] == [["INV-0001"], []]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(st.tuples(st.decimals("0.0001", "500", places=4), st.decimals("0.01", "9999.99", places=2),
                                st.sampled_from(["OUTPUT2", "ZERORATED", "NONE"])), min_size=1, max_size=6),
       amount_types=st.sampled_from(["Exclusive", "Inclusive", "NoTax"]))
def test_document_arithmetic_follows_xeros_per_line_rule(x: XeroCaller, acme: dict, lines: list, amount_types: str) -> None:
    from decimal import ROUND_HALF_UP, Decimal

    def cents(value: Decimal) -> Decimal:
        return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)

    rates = {"OUTPUT2": Decimal(15), "ZERORATED": Decimal(0), "NONE": Decimal(0)}
    inv = x.invoice(acme["ContactID"], LineAmountTypes=amount_types, lines=[
        {"Description": "p", "Quantity": str(q), "UnitAmount": str(u), "AccountCode": "200", "TaxType": t}
        for q, u, t in lines])
    amounts = [cents(q * u) for q, u, _ in lines]
    taxes = []
    for (_, _, tax_type), la in zip(lines, amounts, strict=True):
        rate = rates[tax_type] if amount_types != "NoTax" else Decimal(0)
        taxes.append(cents(la * rate / 100) if amount_types == "Exclusive" else cents(la * rate / (100 + rate)))
    assert [Decimal(str(ln["LineAmount"])) for ln in inv["LineItems"]] == amounts
    assert [Decimal(str(ln["TaxAmount"])) for ln in inv["LineItems"]] == taxes
    total_tax = sum(taxes, Decimal(0))
    gross = sum(amounts, Decimal(0))
    total = gross if amount_types == "Inclusive" else gross + total_tax
    assert (Decimal(str(inv["TotalTax"])), Decimal(str(inv["Total"])), Decimal(str(inv["AmountDue"]))) == (
        total_tax, total, total)
    assert Decimal(str(inv["SubTotal"])) == total - total_tax


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list('ab"\'\\()=!<>&|., 0123456789ANDORTNguidGuidDateTime')), max_size=40))
def test_where_parser_refuses_cleanly_or_compiles(text: str) -> None:
    from sandbox.xero.where import WhereError, compile_where

    try:
        predicate = compile_where(text, lambda doc, path: doc.get(path))
    except WhereError:
        return
    predicate({"a": "x", "b": 1})  # whatever compiles evaluates without raising
