"""The Zoho CRM sandbox over real HTTP: accounts server, records, subforms, upsert, deletes,
metadata, fields API, credits and concurrency, admin routes (rules: zoho-api-notes.md)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlparse
from zoneinfo import ZoneInfo

import pytest
import requests
from test_sandbox_zoho_support import ZohoCaller, connected, running_zoho

from sandbox.server import start
from sandbox.zoho.app import ZohoSandbox


@pytest.fixture()
def zoho(tmp_path: Path) -> Iterator[ZohoCaller]:
    """A fresh demo sandbox per test (for tests that write or move the clock)."""
    yield from connected(tmp_path)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ZohoCaller]:
    """One demo sandbox shared by the read-only tests of this module."""
    yield from connected(tmp_path_factory.mktemp("zoho-shared"))


INVALID_TOKEN = {"code": "INVALID_TOKEN", "details": {}, "message": "invalid oauth token", "status": "error"}


def money(x: Decimal) -> float:
    return float(x.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


# --- accounts server -------------------------------------------------------------------------------
def test_refresh_grant_from_form_body_or_query_string(zoho: ZohoCaller) -> None:
    body = zoho.refresh()
    assert body["expires_in"] == 3600 and body["token_type"] == "Bearer"
    assert body["api_domain"] == zoho.url and "ZohoCRM.modules.ALL" in body["scope"]
    assert "refresh_token" not in body  # Zoho's refresh tokens do not rotate
    query = requests.post(f"{zoho.url}/oauth/v2/token", params={
        "grant_type": "refresh_token", "client_id": zoho.client_id, "client_secret": zoho.client_secret,
        "refresh_token": zoho.refresh_token}, timeout=10)
    assert query.status_code == 200 and query.json()["access_token"].startswith("1000.")


def test_token_failures_are_http_200_with_an_error_key(zoho: ZohoCaller) -> None:
    cases = [
        ({"client_id": "1000.NOPE"}, "invalid_client"),
        ({"client_secret": "wrong"}, "invalid_client_secret"),
        ({"refresh_token": "1000.aaaa.bbbb"}, "invalid_code"),
        ({"grant_type": "password"}, "unsupported_grant_type"),
    ]
    for change, error in cases:
        form = {"grant_type": "refresh_token", "client_id": zoho.client_id, "client_secret": zoho.client_secret,
                "refresh_token": zoho.refresh_token, **change}
        answer = zoho.token(**form)
        assert answer.status_code == 200 and answer.json() == {"error": error}, (change, answer.text)


def test_ten_mints_per_refresh_token_per_ten_minutes(zoho: ZohoCaller) -> None:
    for _ in range(9):  # the fixture minted one already
        zoho.refresh()
    denied = zoho.token(grant_type="refresh_token", client_id=zoho.client_id, client_secret=zoho.client_secret,
                        refresh_token=zoho.refresh_token)
    assert denied.status_code == 200
    assert denied.json() == {"error_description": "You have made too many requests continuously. Please try again "
                                                  "after some time.", "error": "Access Denied", "status": "failure"}
    zoho.advance(601)
    zoho.refresh()


def test_sixteenth_access_token_invalidates_the_oldest(zoho: ZohoCaller) -> None:
    first = zoho.access_token
    tokens = [first]
    for n in range(15):
        if n == 9:
            zoho.advance(601)  # past the mint window, still inside the first token's hour
        tokens.append(zoho.refresh()["access_token"])
    zoho.access_token = first
    assert zoho.get("/org").json() == INVALID_TOKEN
    for token in tokens[1:]:
        zoho.access_token = token
        assert zoho.get("/org").status_code == 200


def test_access_tokens_last_one_hour_on_the_virtual_clock(zoho: ZohoCaller) -> None:
    assert zoho.get("/org").status_code == 200
    zoho.advance(3599)
    assert zoho.get("/org").status_code == 200
    zoho.advance(2)
    answer = zoho.get("/org")
    assert answer.status_code == 401 and answer.json() == INVALID_TOKEN


def test_missing_or_foreign_authorization_header(zoho: ZohoCaller) -> None:
    bare = requests.get(f"{zoho.url}/crm/v8/org", timeout=10)
    assert bare.status_code == 401 and bare.json()["code"] == "AUTHENTICATION_FAILURE"
    bearer = requests.get(f"{zoho.url}/crm/v8/org", headers={"Authorization": f"Bearer {zoho.access_token}"},
                          timeout=10)
    assert bearer.status_code == 401 and bearer.json() == INVALID_TOKEN


def test_authorization_code_flow_with_auto_consent(zoho: ZohoCaller) -> None:
    redirect = "http://127.0.0.1:9/callback"
    auth = requests.get(f"{zoho.url}/oauth/v2/auth", params={
        "response_type": "code", "client_id": zoho.client_id, "scope": "ZohoCRM.modules.ALL,ZohoCRM.settings.ALL",
        "redirect_uri": redirect, "access_type": "offline", "state": "s-42", "prompt": "consent"},
        allow_redirects=False, timeout=10)
    assert auth.status_code == 302
    target = urlparse(auth.headers["Location"])
    params = {k: v[0] for k, v in parse_qs(target.query).items()}
    assert f"{target.scheme}://{target.netloc}{target.path}" == redirect
    assert params["state"] == "s-42" and params["location"] == "us" and params["accounts-server"] == zoho.url
    form = {"grant_type": "authorization_code", "client_id": zoho.client_id, "client_secret": zoho.client_secret,
            "redirect_uri": redirect, "code": params["code"]}
    grant = zoho.token(**form).json()
    assert grant["refresh_token"].startswith("1000.") and grant["api_domain"] == zoho.url
    assert grant["scope"] == "ZohoCRM.modules.ALL ZohoCRM.settings.ALL"  # asked comma-separated
    zoho.access_token = grant["access_token"]
    assert zoho.get("/Invoices", fields="Subject", per_page=1).status_code == 200
    assert zoho.get("/settings/modules").status_code == 200
    assert zoho.token(**form).json() == {"error": "invalid_code"}  # grant codes are single use
    online = requests.get(f"{zoho.url}/oauth/v2/auth", params={
        "response_type": "code", "client_id": zoho.client_id, "scope": "ZohoCRM.modules.ALL",
        "redirect_uri": redirect}, allow_redirects=False, timeout=10)
    code = parse_qs(urlparse(online.headers["Location"]).query)["code"][0]
    assert "refresh_token" not in zoho.token(**{**form, "code": code}).json()  # access_type=online
    stale = requests.get(f"{zoho.url}/oauth/v2/auth", params={
        "response_type": "code", "client_id": zoho.client_id, "scope": "ZohoCRM.modules.ALL",
        "redirect_uri": redirect}, allow_redirects=False, timeout=10)
    zoho.advance(181)  # grant codes live 3 minutes
    code = parse_qs(urlparse(stale.headers["Location"]).query)["code"][0]
    assert zoho.token(**{**form, "code": code}).json() == {"error": "invalid_code"}
    bad_client = requests.get(f"{zoho.url}/oauth/v2/auth", params={"client_id": "1000.X", "redirect_uri": redirect},
                              allow_redirects=False, timeout=10)
    assert bad_client.status_code == 400


def test_revoking_a_refresh_token_revokes_its_access_tokens(zoho: ZohoCaller) -> None:
    assert zoho.get("/org").status_code == 200
    answer = requests.post(f"{zoho.url}/oauth/v2/token/revoke", params={"token": zoho.refresh_token}, timeout=10)
    assert answer.json() == {"status": "success"}
    assert zoho.get("/org").json() == INVALID_TOKEN
    assert zoho.token(grant_type="refresh_token", client_id=zoho.client_id, client_secret=zoho.client_secret,
                      refresh_token=zoho.refresh_token).json() == {"error": "invalid_code"}
    again = requests.post(f"{zoho.url}/oauth/v2/token/revoke", params={"token": zoho.refresh_token}, timeout=10)
    assert again.status_code == 400


def test_scopes_are_enforced(zoho: ZohoCaller) -> None:
    redirect = "http://127.0.0.1:9/cb"
    auth = requests.get(f"{zoho.url}/oauth/v2/auth", params={
        "response_type": "code", "client_id": zoho.client_id, "scope": "ZohoCRM.modules.invoices.READ",
        "redirect_uri": redirect}, allow_redirects=False, timeout=10)
    code = parse_qs(urlparse(auth.headers["Location"]).query)["code"][0]
    zoho.access_token = zoho.token(grant_type="authorization_code", client_id=zoho.client_id,
                                   client_secret=zoho.client_secret, code=code, redirect_uri=redirect).json()[
        "access_token"]
    assert zoho.get("/Invoices", fields="Subject").status_code == 200
    for answer in (zoho.get("/Accounts", fields="Account_Name"), zoho.put("/Invoices", {"data": [{"id": "1"}]})):
        assert answer.status_code == 401 and answer.json()["code"] == "OAUTH_SCOPE_MISMATCH"


def test_each_credentials_call_grants_a_fresh_refresh_token_and_old_ones_fall_after_twenty(zoho: ZohoCaller) -> None:
    tokens = [zoho.refresh_token] + [zoho.admin("GET", "credentials")["refresh_token"] for _ in range(20)]
    assert len(set(tokens)) == 21
    oldest = zoho.token(grant_type="refresh_token", client_id=zoho.client_id, client_secret=zoho.client_secret,
                        refresh_token=tokens[0])
    assert oldest.json() == {"error": "invalid_code"}  # the 21st refresh token deleted the first
    assert zoho.get("/org").json() == INVALID_TOKEN  # ... and its access tokens


# --- reading records -------------------------------------------------------------------------------
def test_fields_param_is_mandatory_and_capped_at_fifty(demo: ZohoCaller) -> None:
    missing = demo.get("/Invoices")
    assert missing.status_code == 400 and missing.json() == {
        "code": "REQUIRED_PARAM_MISSING", "details": {"param_name": "fields"},
        "message": "One of the expected parameter is missing", "status": "error"}
    too_many = demo.get("/Invoices", fields=",".join(f"Field_{i}" for i in range(51)))
    assert too_many.status_code == 400 and too_many.json()["code"] == "LIMIT_EXCEEDED"
    assert too_many.json()["details"] == {"limit": 50, "param_name": "fields"}
    unknown = demo.get("/Invoices", fields="Subject,No_Such_Field")
    assert unknown.status_code == 400 and unknown.json()["code"] == "INVALID_DATA"
    assert demo.get("/Widgets", fields="Name").json()["code"] == "INVALID_MODULE"


def test_list_returns_id_and_requested_fields_with_info(demo: ZohoCaller) -> None:
    page = demo.ok(demo.get("/Invoices", fields="Subject,Modified_Time,Account_Name,Owner", per_page=7,
                            sort_by="Modified_Time", sort_order="asc"))
    assert len(page["data"]) == 7
    info = page["info"]
    assert (info["per_page"], info["count"], info["page"], info["sort_by"], info["sort_order"]) == (
        7, 7, 1, "Modified_Time", "asc")
    assert info["more_records"] is True and info["next_page_token"] and info["previous_page_token"] is None
    stamps = [datetime.fromisoformat(r["Modified_Time"]) for r in page["data"]]
    assert stamps == sorted(stamps)
    for record, stamp in zip(page["data"], stamps, strict=True):
        assert {"id", "Subject", "Modified_Time", "Account_Name", "Owner"} <= set(record)
        assert "Grand_Total" not in record
        expected = stamp.astimezone(ZoneInfo("Pacific/Auckland")).utcoffset()
        assert stamp.utcoffset() == expected and expected in (timedelta(hours=12), timedelta(hours=13))
        assert set(record["Owner"]) == {"name", "id", "email"}
    default = demo.ok(demo.get("/Invoices", fields="Subject"))
    assert (default["info"]["sort_by"], default["info"]["sort_order"], default["info"]["per_page"]) == (
        "id", "desc", 200)
    ids = [r["id"] for r in default["data"]]
    assert ids == sorted(ids, reverse=True) and len(ids) == 150 and default["info"]["more_records"] is False
    chosen = demo.ok(demo.get("/Invoices", fields="Subject", ids=",".join(ids[:3])))
    assert sorted(r["id"] for r in chosen["data"]) == sorted(ids[:3])
    bad = demo.get("/Invoices", fields="Subject", sort_by="Subject")
    assert bad.status_code == 400 and bad.json()["details"]["param_name"] == "sort_by"


def test_paging_past_two_thousand_records_needs_page_tokens(tmp_path: Path) -> None:
    for running in running_zoho(tmp_path, xero_fields=False):
        big = requests.post(f"{running.url}/_sandbox/orgs", json={"name": "Paging Ltd", "seed": "2500"},
                            timeout=60).json()
        caller = ZohoCaller.connect(running.url, org=big["org_id"])
        seen: list[str] = []
        for page in range(1, 11):
            body = caller.ok(caller.get("/Invoices", fields="Subject", page=page, per_page=200,
                                        sort_by="Modified_Time", sort_order="asc"))
            seen += [r["id"] for r in body["data"]]
        assert body["info"]["more_records"] is True
        wall = caller.get("/Invoices", fields="Subject", page=11, per_page=200, sort_by="Modified_Time",
                          sort_order="asc")
        assert wall.status_code == 400 and wall.json() == {
            "code": "DISCRETE_PAGINATION_LIMIT_EXCEEDED", "details": {"limit": 2000},
            "message": "You can only get the first 2000 records without using page_token param", "status": "error"}
        token = body["info"]["next_page_token"]
        mismatch = caller.get("/Invoices", fields="Subject,Status", page_token=token, per_page=200,
                              sort_by="Modified_Time", sort_order="asc")
        assert mismatch.status_code == 400 and mismatch.json()["code"] == "TOKEN_BOUND_DATA_MISMATCH"
        pages = 10
        while token:
            body = caller.ok(caller.get("/Invoices", fields="Subject", page_token=token, per_page=200,
                                        sort_by="Modified_Time", sort_order="asc"))
            pages += 1
            assert body["info"]["page"] == pages
            seen += [r["id"] for r in body["data"]]
            token = body["info"]["next_page_token"]
            assert (token is not None) == body["info"]["more_records"]
        assert len(seen) == len(set(seen)) == 2500
        again = caller.ok(caller.get("/Invoices", fields="Subject", page=10, per_page=200, sort_by="Modified_Time",
                                     sort_order="asc"))["info"]["next_page_token"]
        caller.advance(86401)
        caller.refresh()
        expired = caller.get("/Invoices", fields="Subject", page_token=again, per_page=200, sort_by="Modified_Time",
                             sort_order="asc")
        assert expired.status_code == 400 and expired.json()["code"] == "EXPIRED_VALUE"


def test_if_modified_since_answers_304_then_only_changed_records(zoho: ZohoCaller) -> None:
    newest = zoho.ok(zoho.get("/Invoices", fields="Modified_Time", sort_by="Modified_Time", per_page=1))
    stamp = newest["data"][0]["Modified_Time"]
    unchanged = zoho.get("/Invoices", fields="Subject", headers={"If-Modified-Since": stamp})
    assert unchanged.status_code == 304 and unchanged.content == b""
    zoho.advance(5)
    target = zoho.first("Invoices")["id"]
    zoho.ok(zoho.put("/Invoices", {"data": [{"id": target, "Xero_Status": "AUTHORISED"}]}))
    changed = zoho.ok(zoho.get("/Invoices", fields="Xero_Status", headers={"If-Modified-Since": stamp}))
    assert [r["id"] for r in changed["data"]] == [target]
    assert zoho.get(f"/Invoices/{target}", headers={"If-Modified-Since": changed["data"][0]["id"] and
                                                   zoho.record("Invoices", target)["Modified_Time"]}).status_code == 304


def test_204_when_nothing_matches(tmp_path: Path) -> None:
    for running in running_zoho(tmp_path):
        empty = requests.post(f"{running.url}/_sandbox/orgs", json={"name": "Blank", "seed": "empty"},
                              timeout=10).json()
        caller = ZohoCaller.connect(running.url, org=empty["org_id"])
        answer = caller.get("/Invoices", fields="Subject")
        assert answer.status_code == 204 and answer.content == b""
        assert caller.get("/Invoices/8100000020000009999").status_code == 204
        assert caller.get("/Invoices/deleted").status_code == 204


def test_get_one_record_returns_every_field_with_subform_rows(demo: ZohoCaller) -> None:
    rid = demo.first("Invoices")["id"]
    record = demo.record("Invoices", rid)
    fields = {f["api_name"] for f in demo.ok(demo.get("/settings/fields", module="Invoices"))["fields"]}
    assert fields <= set(record)
    row = record["Invoiced_Items"][0]
    assert {"id", "Product_Name", "Product_Code", "Quantity", "List_Price", "Discount", "Description", "Line_Tax",
            "Total", "Total_After_Discount", "Net_Total", "Sequence_Number"} <= set(row)
    assert set(row["Line_Tax"][0]) >= {"name", "percentage", "value", "id"}
    assert record["Invoice_Number"].startswith("INV-") and record["Owner"]["id"] == record["Created_By"]["id"]
    assert demo.get("/Invoices/not-a-number").status_code == 400


def test_demo_seed_matches_the_demo_universe(demo: ZohoCaller) -> None:
    invoices = demo.ok(demo.get("/Invoices", fields="Status,Currency,Invoice_Date,Account_Name,Invoiced_Items"))["data"]
    assert len(invoices) == 150
    assert sum(r["Status"] == "On Hold" for r in invoices) == 1
    assert sum(r["Currency"] == "GBP" for r in invoices) == 1
    assert sum(r["Account_Name"] is None for r in invoices) == 1
    assert [r["Invoice_Date"] for r in invoices if r["Invoice_Date"] < "2025-06-01"] == ["2025-02-14"]
    luxury = [r for r in invoices if any(t["name"] == "Luxury Tax 20%" for line in r["Invoiced_Items"]
                                         for t in line["Line_Tax"])]
    assert len(luxury) == 1
    assert all(1 <= len(r["Invoiced_Items"]) <= 6 for r in invoices)
    assert {r["Status"] for r in invoices} == {"Created", "Approved", "Delivered", "On Hold"}
    products = demo.ok(demo.get("/Products", fields="Product_Code,Unit_Price,Product_Category"))["data"]
    assert len(products) == 15 and {p["Product_Category"] for p in products} == {"Hardware", "Software", "Services"}
    assert sum(round(p["Unit_Price"], 2) != p["Unit_Price"] for p in products) == 2
    assert len(demo.ok(demo.get("/Accounts", fields="Account_Name"))["data"]) == 40
    assert len(demo.ok(demo.get("/Vendors", fields="Vendor_Name"))["data"]) == 5
    pos = demo.ok(demo.get("/Purchase_Orders", fields="Status,Vendor_Name"))["data"]
    assert pos and {p["Status"] for p in pos} <= {"Created", "Approved"}


def test_line_and_header_arithmetic_follow_the_demo_universe(demo: ZohoCaller) -> None:
    invoices = demo.ok(demo.get("/Invoices", fields="Invoiced_Items,Sub_Total,Discount,Tax,Adjustment,Excise_Duty,"
                                                    "Grand_Total"))["data"]
    checked_discount = checked_adjust = 0
    for inv in invoices:
        sub = Decimal(0)
        for row in inv["Invoiced_Items"]:
            total = Decimal(repr(row["Quantity"])) * Decimal(repr(row["List_Price"]))
            assert row["Total"] == money(total)
            after = Decimal(repr(row["Total"])) - Decimal(repr(row["Discount"]))
            assert row["Total_After_Discount"] == money(after)
            pct = sum((Decimal(repr(t["percentage"])) for t in row["Line_Tax"]), Decimal(0))
            tax = Decimal(str(money(after * pct / 100)))
            assert row["Net_Total"] == money(after + tax)
            sub += Decimal(repr(row["Net_Total"]))
        assert inv["Sub_Total"] == money(sub)
        grand = sub - Decimal(repr(inv["Discount"] or 0)) + Decimal(repr(inv["Tax"] or 0)) + Decimal(
            repr(inv["Adjustment"] or 0)) + Decimal(repr(inv["Excise_Duty"] or 0))
        assert inv["Grand_Total"] == money(grand)
        checked_discount += bool(inv["Discount"])
        checked_adjust += bool(inv["Adjustment"])
    assert checked_discount and checked_adjust


# --- writing records -------------------------------------------------------------------------------
def test_insert_answers_201_with_details_and_the_sandbox_computes_the_rest(zoho: ZohoCaller) -> None:
    account = zoho.first("Accounts")["id"]
    products = zoho.ok(zoho.get("/Products", fields="Product_Code,Unit_Price", sort_by="id", sort_order="asc"))[
        "data"]
    body = {"data": [{"Subject": "Two lines", "Account_Name": {"id": account}, "Grand_Total": 1.0,
                      "Invoice_Number": "MINE-1", "Discount": 5, "Adjustment": 0.5,
                      "Invoiced_Items": [
                          {"Product_Name": {"id": products[0]["id"]}, "Quantity": 3, "Discount": 1.5,
                           "Line_Tax": [{"name": "GST 15%"}]},
                          {"Product_Name": {"id": products[4]["id"]}, "Quantity": 7, "List_Price": 2.3456,
                           "Line_Tax": [{"name": "Zero Rated"}]}]}],
            "trigger": []}
    answer = zoho.ok(zoho.post("/Invoices", body), 201)["data"][0]
    assert answer["code"] == "SUCCESS" and answer["status"] == "success" and answer["message"] == "record added"
    assert {"id", "Modified_Time", "Modified_By", "Created_Time", "Created_By"} <= set(answer["details"])
    record = zoho.record("Invoices", answer["details"]["id"])
    assert record["Invoice_Number"].startswith("INV-") and record["Invoice_Number"] != "MINE-1"
    first, second = record["Invoiced_Items"]
    assert first["List_Price"] == products[0]["Unit_Price"]  # taken from the product
    assert first["Total"] == money(Decimal(repr(products[0]["Unit_Price"])) * 3)
    assert second["Total"] == 16.42 and second["Net_Total"] == 16.42  # 7 x 2.3456 = 16.4192
    net = Decimal(repr(first["Net_Total"])) + Decimal(repr(second["Net_Total"]))
    assert record["Sub_Total"] == money(net) and record["Grand_Total"] == money(net - 5 + Decimal("0.5"))
    assert record["Currency"] == "NZD" and record["Exchange_Rate"] == 1.0
    assert [r["Sequence_Number"] for r in record["Invoiced_Items"]] == [1, 2]


def test_write_errors_carry_api_name_json_path_and_hints(zoho: ZohoCaller) -> None:
    account = zoho.first("Accounts")["id"]
    product = zoho.first("Products")["id"]
    good = {"Subject": "ok", "Account_Name": {"id": account}, "Invoiced_Items": [
        {"Product_Name": {"id": product}, "Quantity": 1}]}
    cases = [
        ({**good, "Colour": "red"}, "INVALID_DATA", "Colour", set()),
        ({**good, "Status": "Paid"}, "INVALID_DATA", "Status", {"supported_values"}),
        ({**good, "Subject": "x" * 256}, "INVALID_DATA", "Subject", {"maximum_length"}),
        ({**good, "Adjustment": "ten"}, "INVALID_DATA", "Adjustment", {"expected_data_type"}),
        ({**good, "Invoice_Date": "14/02/2025"}, "INVALID_DATA", "Invoice_Date", {"expected_data_type"}),
        ({k: v for k, v in good.items() if k != "Subject"}, "MANDATORY_NOT_FOUND", "Subject", set()),
        ({**good, "Account_Name": {"id": "8100000019999999999"}}, "INVALID_DATA", "Account_Name", set()),
        ({**good, "Invoiced_Items": [{"Quantity": 1}]}, "MANDATORY_NOT_FOUND", "Product_Name", set()),
        ({**good, "Invoiced_Items": [{"Product_Name": {"id": product}, "Quantity": 1, "Colour": "x"}]},
         "INVALID_DATA", "Colour", set()),
        ({**good, "Invoiced_Items": [{"Product_Name": {"id": product}, "Quantity": 1,
                                      "Line_Tax": [{"name": "VAT"}]}]}, "INVALID_DATA", "name", {"supported_values"}),
    ]
    answer = zoho.post("/Invoices", {"data": [c[0] for c in cases]})
    assert answer.status_code == 400
    results = answer.json()["data"]
    for n, ((_, code, api_name, extra), result) in enumerate(zip(cases, results, strict=True)):
        assert result["code"] == code and result["status"] == "error", (n, result)
        assert result["details"]["api_name"] == api_name, (n, result)
        assert result["details"]["json_path"].startswith(f"$.data[{n}]"), (n, result)
        assert extra <= set(result["details"]), (n, result)
    mixed = zoho.post("/Invoices", {"data": [good, cases[0][0]]})
    assert mixed.status_code == 207
    assert [r["code"] for r in mixed.json()["data"]] == ["SUCCESS", "INVALID_DATA"]
    assert mixed.json()["data"][1]["details"]["json_path"] == "$.data[1].Colour"


def test_at_most_100_records_per_write(zoho: ZohoCaller) -> None:
    answer = zoho.post("/Accounts", {"data": [{"Account_Name": f"A{i}"} for i in range(101)]})
    assert answer.status_code == 400
    assert answer.json()["data"][0]["code"] == "LIMIT_EXCEEDED"
    assert answer.json()["data"][0]["details"] == {"maximum_length": 100, "api_name": "data"}
    ok = zoho.post("/Accounts", {"data": [{"Account_Name": f"A{i}"} for i in range(100)]})
    assert ok.status_code == 201 and len(ok.json()["data"]) == 100
    many = ",".join(str(i) for i in range(101))
    assert zoho.delete("/Accounts", ids=many).json()["data"][0]["code"] == "LIMIT_EXCEEDED"


def test_unique_custom_field_rejects_duplicates(zoho: ZohoCaller) -> None:
    first, second = (r["id"] for r in zoho.ok(zoho.get("/Invoices", fields="Subject", per_page=2))["data"])
    zoho.ok(zoho.put("/Invoices", {"data": [{"id": first, "Xero_Invoice_ID": "xero-abc"}]}))
    answer = zoho.put("/Invoices", {"data": [{"id": second, "Xero_Invoice_ID": "XERO-ABC"}]})
    assert answer.status_code == 400
    result = answer.json()["data"][0]
    assert result["code"] == "DUPLICATE_DATA" and result["message"] == "duplicate data"
    assert result["details"]["api_name"] == "Xero_Invoice_ID" and result["details"]["json_path"] == \
        "$.data[0].Xero_Invoice_ID"
    assert result["details"]["duplicate_record"]["id"] == first
    assert result["details"]["duplicate_record"]["module"]["api_name"] == "Invoices"
    zoho.ok(zoho.put("/Invoices", {"data": [{"id": first, "Xero_Invoice_ID": "xero-abc", "Xero_Status": "PAID"}]}))


def test_locked_records_refuse_updates_and_deletes(zoho: ZohoCaller) -> None:
    rid = zoho.first("Invoices")["id"]
    zoho.admin("PUT", "locks", json={"module": "Invoices", "ids": [rid], "locked": True})
    update = zoho.put("/Invoices", {"data": [{"id": rid, "Xero_Status": "PAID"}]})
    assert update.status_code == 400 and update.json()["data"][0]["code"] == "RECORD_LOCKED"
    assert update.json()["data"][0]["details"] == {"api_name": "id", "json_path": "$.data[0].id",
                                                   "action": "record_locking"}
    assert zoho.delete(f"/Invoices/{rid}").json()["data"][0]["code"] == "RECORD_LOCKED"
    assert zoho.record("Invoices", rid)["Locked__s"] is True
    zoho.admin("PUT", "locks", json={"module": "Invoices", "ids": [rid], "locked": False})
    assert zoho.put(f"/Invoices/{rid}", {"data": [{"Xero_Status": "PAID"}]}).status_code == 200


def test_if_unmodified_since_reports_already_modified(zoho: ZohoCaller) -> None:
    rid = zoho.first("Invoices")["id"]
    seen = zoho.record("Invoices", rid)["Modified_Time"]
    zoho.advance(2)
    zoho.ok(zoho.put("/Invoices", {"data": [{"id": rid, "Xero_Status": "DRAFT"}]}))
    stale = zoho.put("/Invoices", {"data": [{"id": rid, "Xero_Status": "PAID"}]},
                     headers={"If-Unmodified-Since": seen})
    assert stale.status_code == 412
    result = stale.json()["data"][0]
    assert result["code"] == "ALREADY_MODIFIED" and result["details"]["id"] == rid
    fresh = zoho.record("Invoices", rid)["Modified_Time"]
    assert zoho.put("/Invoices", {"data": [{"id": rid, "Xero_Status": "PAID"}]},
                    headers={"If-Unmodified-Since": fresh}).status_code == 200


def test_update_by_path_id_and_unknown_ids(zoho: ZohoCaller) -> None:
    rid = zoho.first("Contacts")["id"]
    answer = zoho.ok(zoho.put(f"/Contacts/{rid}", {"data": [{"Title": "Director"}]}))["data"][0]
    assert answer["message"] == "record updated" and answer["details"]["id"] == rid
    assert zoho.record("Contacts", rid)["Title"] == "Director"
    missing = zoho.put("/Contacts", {"data": [{"Title": "x"}, {"id": "8100000019999999999", "Title": "y"}]})
    assert missing.status_code == 400
    assert [r["code"] for r in missing.json()["data"]] == ["MANDATORY_NOT_FOUND", "INVALID_DATA"]
    cleared = zoho.put(f"/Contacts/{rid}", {"data": [{"Last_Name": None}]})
    assert cleared.status_code == 400 and cleared.json()["data"][0]["code"] == "MANDATORY_NOT_FOUND"


def test_subform_rules_update_twice_leaves_exactly_the_intended_lines(zoho: ZohoCaller) -> None:
    products = [p["id"] for p in zoho.ok(zoho.get("/Products", fields="Product_Name", sort_by="id",
                                                  sort_order="asc"))["data"]]
    rid = zoho.new_invoice(lines=[{"Product_Name": {"id": products[0]}, "Quantity": 1, "List_Price": 100},
                                  {"Product_Name": {"id": products[1]}, "Quantity": 2, "List_Price": 50},
                                  {"Product_Name": {"id": products[2]}, "Quantity": 3, "List_Price": 10}])
    rows = zoho.record("Invoices", rid)["Invoiced_Items"]
    keep, change, drop = (r["id"] for r in rows)
    # Update one row by id, delete one with _delete, append one without id; the untouched row stays.
    zoho.ok(zoho.put("/Invoices", {"data": [{"id": rid, "Invoiced_Items": [
        {"id": change, "Quantity": 5}, {"id": drop, "_delete": None},
        {"Product_Name": {"id": products[3]}, "Quantity": 1, "List_Price": 1}]}]}))
    after = zoho.record("Invoices", rid)["Invoiced_Items"]
    assert [r["id"] for r in after][:2] == [keep, change] and len(after) == 3
    assert [(r["Product_Name"]["id"], r["Quantity"]) for r in after] == [
        (products[0], 1.0), (products[1], 5.0), (products[3], 1.0)]
    assert [r["Sequence_Number"] for r in after] == [1, 2, 3]
    # Replace the lines: delete every current row and add the intended ones, in one update.
    intended = [{"Product_Name": {"id": products[4]}, "Quantity": 2, "List_Price": 7.5}]
    zoho.ok(zoho.put("/Invoices", {"data": [{"id": rid, "Invoiced_Items": [
        *({"id": r["id"], "_delete": None} for r in after), *intended]}]}))
    zoho.ok(zoho.put("/Invoices", {"data": [{"id": rid, "Invoiced_Items": [
        *({"id": r["id"], "_delete": None} for r in zoho.record("Invoices", rid)["Invoiced_Items"]), *intended]}]}))
    final = zoho.record("Invoices", rid)
    assert [(r["Product_Name"]["id"], r["Quantity"], r["List_Price"]) for r in final["Invoiced_Items"]] == [
        (products[4], 2.0, 7.5)]
    assert final["Sub_Total"] == 15.0 and final["Grand_Total"] == 15.0
    # Re-sending rows without ids duplicates them (Zoho appends); [] removes every row.
    zoho.ok(zoho.put("/Invoices", {"data": [{"id": rid, "Invoiced_Items": intended}]}))
    assert len(zoho.record("Invoices", rid)["Invoiced_Items"]) == 2
    zoho.ok(zoho.put("/Invoices", {"data": [{"id": rid, "Invoiced_Items": []}]}))
    emptied = zoho.record("Invoices", rid)
    assert emptied["Invoiced_Items"] == [] and emptied["Grand_Total"] == 0.0
    unknown = zoho.put("/Invoices", {"data": [{"id": rid, "Invoiced_Items": [{"id": keep, "Quantity": 1}]}]})
    assert unknown.status_code == 400 and unknown.json()["data"][0]["details"] == {
        "api_name": "id", "json_path": "$.data[0].Invoiced_Items[0].id"}


def test_upsert_uses_zoho_default_duplicate_checks(zoho: ZohoCaller) -> None:
    invoice = zoho.ok(zoho.get("/Invoices", fields="Subject,Status", per_page=1, sort_by="id", sort_order="asc"))[
        "data"][0]
    answer = zoho.ok(zoho.post("/Invoices/upsert", {"data": [{"Subject": invoice["Subject"], "Status": "Delivered"}]}))
    result = answer["data"][0]
    assert (result["action"], result["duplicate_field"], result["details"]["id"]) == (
        "update", "Subject", invoice["id"])
    contact = zoho.ok(zoho.get("/Contacts", fields="Email", per_page=1))["data"][0]
    both = zoho.ok(zoho.post("/Contacts/upsert", {"data": [
        {"Email": contact["Email"].upper(), "Title": "Buyer"},
        {"Email": "new.person@example.com", "Last_Name": "Person"}]}))["data"]
    assert [(r["action"], r.get("duplicate_field")) for r in both] == [("update", "Email"), ("insert", "Email")]
    assert both[0]["details"]["id"] == contact["id"] and both[1]["message"] == "record added"
    account = zoho.ok(zoho.get("/Accounts", fields="Account_Name", per_page=1))["data"][0]
    acc = zoho.ok(zoho.post("/Accounts/upsert", {"data": [{"Account_Name": account["Account_Name"]}]}))["data"][0]
    assert acc["action"] == "update" and acc["duplicate_field"] == "Account_Name"


def test_upsert_with_duplicate_check_fields_on_a_unique_custom_field(zoho: ZohoCaller) -> None:
    rid = zoho.first("Invoices")["id"]
    subject = zoho.record("Invoices", rid)["Subject"]
    zoho.ok(zoho.put("/Invoices", {"data": [{"id": rid, "Xero_Invoice_ID": "x-1"}]}))
    body = {"data": [{"Xero_Invoice_ID": "x-1", "Xero_Status": "PAID"},
                     {"Xero_Invoice_ID": "x-2", "Subject": subject}],
            "duplicate_check_fields": ["Xero_Invoice_ID"], "trigger": []}
    results = zoho.post("/Invoices/upsert", body)
    # The second matches nothing by Xero_Invoice_ID, so it is an insert that lacks Account_Name and lines.
    assert results.status_code == 207
    first, second = results.json()["data"]
    assert first["action"] == "update" and first["duplicate_field"] == "Xero_Invoice_ID"
    assert first["details"]["id"] == rid and second["code"] == "MANDATORY_NOT_FOUND"
    bad = zoho.post("/Invoices/upsert", {"data": [{"Subject": "x"}], "duplicate_check_fields": ["Nope"]})
    assert bad.status_code == 400 and bad.json()["data"][0]["details"]["api_name"] == "duplicate_check_fields"


def test_trigger_is_accepted_and_checked(zoho: ZohoCaller) -> None:
    rid = zoho.first("Accounts")["id"]
    for trigger in ([], ["workflow", "approval"]):
        assert zoho.put("/Accounts", {"data": [{"id": rid, "Phone": "1"}], "trigger": trigger}).status_code == 200
    wrong = zoho.put("/Accounts", {"data": [{"id": rid}], "trigger": ["cron"]})
    assert wrong.status_code == 400 and "supported_values" in wrong.json()["data"][0]["details"]


def test_delete_and_the_recycle_bin(zoho: ZohoCaller) -> None:
    ids = [r["id"] for r in zoho.ok(zoho.get("/Invoices", fields="Subject", per_page=2))["data"]]
    answer = zoho.delete("/Invoices", ids=",".join([*ids, "8100000019999999999"]))
    assert answer.status_code == 207
    assert [r["code"] for r in answer.json()["data"]] == ["SUCCESS", "SUCCESS", "INVALID_DATA"]
    assert answer.json()["data"][0] == {"code": "SUCCESS", "details": {"id": ids[0]}, "message": "record deleted",
                                        "status": "success"}
    assert zoho.get(f"/Invoices/{ids[0]}").status_code == 204
    assert len(zoho.ok(zoho.get("/Invoices", fields="Subject"))["data"]) == 148
    bin_ = zoho.ok(zoho.get("/Invoices/deleted", type="recycle"))
    assert sorted(r["id"] for r in bin_["data"]) == sorted(ids)
    entry = bin_["data"][0]
    assert entry["type"] == "recycle" and entry["display_name"] and entry["deleted_by"]["id"]
    assert bin_["info"] == {"per_page": 200, "count": 2, "page": 1, "more_records": False}
    stamp = entry["deleted_time"]
    assert zoho.get("/Invoices/deleted", headers={"If-Modified-Since": stamp}).status_code == 304
    assert zoho.get("/Invoices/deleted", type="permanent").status_code == 204
    zoho.advance(61 * 86400)
    zoho.refresh()
    gone = zoho.ok(zoho.get("/Invoices/deleted", type="permanent"))["data"]
    assert {r["type"] for r in gone} == {"permanent"} and gone[0]["display_name"] is None
    assert zoho.delete("/Invoices").json()["code"] == "REQUIRED_PARAM_MISSING"


def test_records_written_are_journalled_and_counted_as_writes(zoho: ZohoCaller) -> None:
    before = zoho.admin("GET", "stats")
    rid = zoho.new_invoice()
    zoho.coql("select id from Invoices where id is not null limit 1")
    stats = zoho.admin("GET", "stats")
    assert stats["writes"] == before["writes"] + 1
    assert stats["by_tenant"][zoho.org_id]["calls"]["POST /crm/v8/{module_api_name}"] == 1
    assert stats["calls"]["POST /crm/v8/coql"] == 1
    journal = zoho.admin("GET", "journal")
    writes = [j for j in journal if j["method"] == "POST" and j["path"] == "/crm/v8/Invoices"]
    assert writes[-1]["keys"] == [rid] and writes[-1]["tenant"] == zoho.org_id


# --- metadata --------------------------------------------------------------------------------------
def test_fields_metadata_describes_picklists_lookups_auto_numbers_and_custom_fields(demo: ZohoCaller) -> None:
    fields = {f["api_name"]: f for f in demo.ok(demo.get("/settings/fields", module="Invoices"))["fields"]}
    status = [v["actual_value"] for v in fields["Status"]["pick_list_values"] if v["actual_value"] != "-None-"]
    assert status == ["Created", "Approved", "Delivered", "Cancelled", "On Hold"]
    assert {"display_value", "actual_value"} <= set(fields["Status"]["pick_list_values"][1])
    assert fields["Invoice_Number"]["read_only"] and fields["Invoice_Number"]["auto_number"]["prefix"] == "INV-"
    assert fields["Account_Name"]["lookup"]["module"]["api_name"] == "Accounts"
    assert fields["Account_Name"]["system_mandatory"] and fields["Subject"]["system_mandatory"]
    assert fields["Grand_Total"]["read_only"] and fields["Sub_Total"]["read_only"] and fields["Tax"]["read_only"]
    for name in ("Xero_Invoice_ID", "Xero_Invoice_Number", "Xero_Status", "Xero_Amount_Paid", "Xero_Amount_Due",
                 "Xero_Fully_Paid_On", "Xero_Online_URL", "Xero_Payments", "Xero_Sync_Status", "Xero_Last_Synced"):
        assert fields[name]["custom_field"] is True, name
    assert fields["Xero_Invoice_ID"]["unique"] == {"casesensitive": "false"}
    assert fields["Xero_Amount_Paid"]["data_type"] == "currency"
    po = {f["api_name"]: f for f in demo.ok(demo.get("/settings/fields", module="Purchase_Orders"))["fields"]}
    assert {v["actual_value"] for v in po["Status"]["pick_list_values"]} - {"-None-"} == {
        "Created", "Approved", "Delivered", "Cancelled"}
    assert {"Xero_PO_ID", "Xero_Bill_ID", "Xero_Number", "Xero_Status", "Xero_Sync_Status"} <= set(po)
    for module, name in (("Accounts", "Xero_Contact_ID"), ("Contacts", "Xero_Contact_ID"),
                         ("Vendors", "Xero_Contact_ID"), ("Products", "Xero_Item_ID")):
        names = {f["api_name"] for f in demo.ok(demo.get("/settings/fields", module=module))["fields"]}
        assert name in names
    rows = {f["api_name"] for f in demo.ok(demo.get("/settings/fields", module="Invoiced_Items"))["fields"]}
    assert {"Product_Name", "Quantity", "List_Price", "Discount", "Line_Tax", "Net_Total"} <= rows
    missing = demo.get("/settings/fields")
    assert missing.status_code == 400 and missing.json()["code"] == "REQUIRED_PARAM_MISSING"
    assert demo.get("/settings/fields", module="Widgets").json()["code"] == "INVALID_MODULE"


def test_fields_api_creates_usable_fields_and_refuses_duplicates(zoho: ZohoCaller) -> None:
    body = {"fields": [{"field_label": "Xero Branding Theme", "data_type": "text", "length": 80,
                        "unique": {"casesensitive": "false"}},
                       {"field_label": "Sync Batch", "data_type": "integer"}]}
    created = zoho.ok(zoho.post("/settings/fields", body, module="Invoices"), 201)["fields"]
    assert [c["code"] for c in created] == ["SUCCESS", "SUCCESS"] and created[0]["message"] == "field created"
    field = zoho.ok(zoho.get(f"/settings/fields/{created[0]['details']['id']}", module="Invoices"))["fields"][0]
    assert field["api_name"] == "Xero_Branding_Theme" and field["custom_field"] and field["length"] == 80
    rid = zoho.first("Invoices")["id"]
    zoho.ok(zoho.put("/Invoices", {"data": [{"id": rid, "Xero_Branding_Theme": "Standard", "Sync_Batch": 7}]}))
    listed = zoho.ok(zoho.get("/Invoices", fields="Xero_Branding_Theme,Sync_Batch", ids=rid))["data"][0]
    assert (listed["Xero_Branding_Theme"], listed["Sync_Batch"]) == ("Standard", 7)
    again = zoho.post("/settings/fields", {"fields": [{"field_label": "Xero Branding Theme", "data_type": "text"}]},
                      module="Invoices")
    assert again.status_code == 400 and again.json()["fields"][0]["code"] == "DUPLICATE_DATA"
    by_name = zoho.post("/settings/fields", {"fields": [{"api_name": "Sync_Batch", "field_label": "Other label",
                                                         "data_type": "text"}]}, module="Invoices")
    assert by_name.json()["fields"][0]["code"] == "DUPLICATE_DATA"
    mixed = zoho.post("/settings/fields", {"fields": [{"data_type": "text"}, {"field_label": "Fine", "data_type":
                                                                              "text"}]}, module="Invoices")
    assert mixed.status_code == 207
    assert mixed.json()["fields"][0]["code"] == "MANDATORY_NOT_FOUND"
    assert mixed.json()["fields"][0]["details"] == {"api_name": "field_label", "json_path": "$.fields[0].field_label"}


def test_xero_fields_can_be_left_out_of_the_seed(tmp_path: Path) -> None:
    for running in running_zoho(tmp_path, xero_fields=False):
        caller = ZohoCaller.connect(running.url)
        names = {f["api_name"] for f in caller.ok(caller.get("/settings/fields", module="Invoices"))["fields"]}
        assert not any(n.startswith("Xero_") for n in names)
        rid = caller.first("Invoices")["id"]
        refused = caller.put("/Invoices", {"data": [{"id": rid, "Xero_Invoice_ID": "x"}]})
        assert refused.status_code == 400 and refused.json()["data"][0]["details"]["api_name"] == "Xero_Invoice_ID"
        caller.ok(caller.post("/settings/fields", {"fields": [
            {"api_name": "Xero_Invoice_ID", "field_label": "Xero Invoice ID", "data_type": "text", "length": 100,
             "unique": {"casesensitive": "false"}}]}, module="Invoices"), 201)
        caller.ok(caller.put("/Invoices", {"data": [{"id": rid, "Xero_Invoice_ID": "x"}]}))


def test_org_taxes_currencies_users_and_modules(demo: ZohoCaller) -> None:
    org = demo.ok(demo.get("/org"))["org"][0]
    assert org["zgid"] == demo.org_id and org["time_zone"] == "Pacific/Auckland" and org["iso_code"] == "NZD"
    assert org["company_name"] == "Harbour Demo Ltd"
    taxes = demo.ok(demo.get("/org/taxes"))["taxes"]
    assert [(t["name"], t["value"]) for t in taxes] == [("GST 15%", 15.0), ("Zero Rated", 0.0),
                                                        ("Luxury Tax 20%", 20.0)]
    currencies = demo.ok(demo.get("/org/currencies"))["currencies"]
    assert [c["iso_code"] for c in currencies] == ["NZD", "AUD", "USD", "GBP"]
    assert [c["iso_code"] for c in currencies if c["is_base"]] == ["NZD"]
    me = demo.ok(demo.get("/users", type="CurrentUser"))
    assert me["users"][0]["email"] == "aroha@harbourdemo.example" and me["info"]["count"] == 1
    modules = {m["api_name"]: m for m in demo.ok(demo.get("/settings/modules"))["modules"]}
    assert {"Accounts", "Contacts", "Vendors", "Products", "Invoices", "Purchase_Orders", "Sales_Orders", "Quotes",
            "Invoiced_Items", "Purchase_Items", "Ordered_Items", "Quoted_Items"} <= set(modules)
    assert modules["Invoiced_Items"]["generated_type"] == "subform" and modules["Invoices"]["api_supported"]


def test_subform_modules_are_readable_on_their_own(demo: ZohoCaller) -> None:
    rows = demo.ok(demo.get("/Invoiced_Items", fields="Product_Name,Quantity,Parent_Id", per_page=5))["data"]
    assert len(rows) == 5 and all(r["Parent_Id"]["id"] for r in rows)
    parent = demo.record("Invoices", rows[0]["Parent_Id"]["id"])
    assert rows[0]["id"] in {r["id"] for r in parent["Invoiced_Items"]}
    refused = demo.post("/Invoiced_Items", {"data": [{"Quantity": 1}]})
    assert refused.status_code == 400


# --- limits ----------------------------------------------------------------------------------------
def test_credits_costs_header_and_exhaustion(zoho: ZohoCaller) -> None:
    zoho.admin("PUT", "limits", json={"credits_per_day": 40})
    def used() -> int:
        return zoho.admin("GET", "limits")["orgs"][zoho.org_id]["credits_used"]

    start = used()
    answer = zoho.get("/Accounts", fields="Account_Name", per_page=1)
    assert used() == start + 1 and "X-API-CREDITS-REMAINING" not in answer.headers
    zoho.post("/Accounts", {"data": [{"Account_Name": f"Credit {i}"} for i in range(25)]})
    assert used() == start + 4  # 25 records: 3 credits
    zoho.coql("select id from Accounts where id is not null limit 500")
    assert used() == start + 6  # LIMIT 201-1000: 2 credits
    zoho.coql("select id from Accounts where id is not null limit 0, 1500")
    assert used() == start + 9  # LIMIT 1001-2000: 3 credits
    while used() < 20:
        zoho.get("/org")
    answer = zoho.get("/org")
    assert answer.headers["X-API-CREDITS-REMAINING"] == str(40 - used())
    while used() < 40:
        zoho.get("/org")
    refused = zoho.get("/org")
    assert refused.status_code == 429 and refused.json()["code"] == "TOO_MANY_REQUESTS"
    assert used() == 40
    assert zoho.admin("GET", "stats")["rate_limited"] == 1
    zoho.advance(86401)
    zoho.refresh()
    assert zoho.get("/org").status_code == 200
    defaults = zoho.admin("DELETE", "limits")
    assert (defaults["credits_per_day"], defaults["concurrency"], defaults["sub_concurrency"]) == (60000, 20, 10)


def test_limits_admin_accepts_partial_bodies_and_editions(zoho: ZohoCaller) -> None:
    body = zoho.admin("PUT", "limits", json={"concurrency": 3})
    assert (body["concurrency"], body["sub_concurrency"], body["credits_per_day"]) == (3, 10, 60000)
    body = zoho.admin("PUT", "limits", json={"edition": "Professional", "users": 4})
    assert (body["concurrency"], body["credits_per_day"]) == (15, 52000)
    assert requests.put(f"{zoho.url}/_sandbox/limits", json={"speed": 1}, timeout=10).status_code == 400


def _hold(zoho: ZohoCaller, method: str, path: str, **kw: object) -> threading.Thread:
    def run() -> None:
        zoho.session.request(method, f"{zoho.url}/crm/v8{path}", headers=zoho.headers(), timeout=30, **kw)
    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _wait_in_flight(zoho: ZohoCaller, key: str, n: int) -> None:
    deadline = time.monotonic() + 10
    while zoho.admin("GET", "limits")["orgs"][zoho.org_id][key] < n:
        assert time.monotonic() < deadline, "calls never reached the sandbox"
        time.sleep(0.01)


def test_concurrency_limit_answers_429(zoho: ZohoCaller) -> None:
    zoho.admin("PUT", "limits", json={"concurrency": 2})
    zoho.admin("PUT", "faults", json={"rules": [{"method": "GET", "path": "/crm/v8/Accounts", "kind": "slow",
                                                 "count": 2, "delay_seconds": 1.0}]})
    threads = [_hold(zoho, "GET", "/Accounts", params={"fields": "Account_Name"}) for _ in range(2)]
    _wait_in_flight(zoho, "in_flight", 2)
    refused = zoho.get("/org")
    for t in threads:
        t.join()
    assert refused.status_code == 429 and refused.json()["code"] == "TOO_MANY_REQUESTS"
    assert "concurrency" in refused.json()["message"]
    assert zoho.get("/org").status_code == 200
    assert zoho.admin("GET", "stats")["rate_limited"] == 1


def test_sub_concurrency_applies_to_complex_calls_only(zoho: ZohoCaller) -> None:
    zoho.admin("PUT", "limits", json={"sub_concurrency": 1})
    zoho.admin("PUT", "faults", json={"rules": [{"method": "POST", "path": "/crm/v8/coql", "kind": "slow",
                                                 "count": 1, "delay_seconds": 1.0}]})
    thread = _hold(zoho, "POST", "/coql", json={"select_query": "select id from Accounts where id is not null"})
    _wait_in_flight(zoho, "heavy_in_flight", 1)
    second = zoho.coql("select id from Accounts where id is not null")
    sorted_list = zoho.get("/Accounts", fields="Account_Name", sort_by="Modified_Time")
    big_write = zoho.post("/Accounts", {"data": [{"Account_Name": f"Sub {i}"} for i in range(11)]})
    plain = zoho.get("/Accounts", fields="Account_Name")
    small_write = zoho.post("/Accounts", {"data": [{"Account_Name": f"Small {i}"} for i in range(10)]})
    thread.join()
    for answer in (second, sorted_list, big_write):
        assert answer.status_code == 429 and "sub-concurrency" in answer.json()["message"]
    assert plain.status_code == 200 and small_write.status_code == 201


def test_injected_faults_use_zoho_shapes(zoho: ZohoCaller) -> None:
    zoho.admin("PUT", "faults", json={"rules": [
        {"path": "/crm/v8/org", "kind": "429", "count": 1, "retry_after": 7},
        {"path": "/crm/v8/org", "kind": "500", "count": 1},
        {"path": "/crm/v8/org", "kind": "503", "count": 1}]})
    limited = zoho.get("/org")
    assert limited.status_code == 429 and limited.json()["code"] == "TOO_MANY_REQUESTS"
    assert limited.json()["details"]["retry_after"] == 7 and "Retry-After" not in limited.headers
    failed = zoho.get("/org")
    assert failed.status_code == 500 and failed.json()["code"] == "INTERNAL_ERROR"
    down = zoho.get("/org")
    assert down.status_code == 503 and "text/html" in down.headers["content-type"]
    assert zoho.get("/org").status_code == 200
    stats = zoho.admin("GET", "stats")
    assert stats["by_tenant"][zoho.org_id]["rate_limited"] == 1


# --- admin -----------------------------------------------------------------------------------------
def test_orgs_are_isolated_and_have_their_own_credentials(zoho: ZohoCaller) -> None:
    created = zoho.admin("POST", "orgs", json={"name": "Second Org Ltd", "seed": "demo"})
    assert created["org_id"] != zoho.org_id and created["client_id"] != zoho.client_id
    assert {"client_id", "client_secret", "refresh_token", "org_id", "api_domain", "accounts_url"} <= set(created)
    other = ZohoCaller.connect(zoho.url, org=created["org_id"])
    assert other.ok(other.get("/org"))["org"][0]["company_name"] == "Second Org Ltd"
    rid = other.new_invoice()
    assert zoho.get(f"/Invoices/{rid}").status_code == 204
    listed = {o["id"] for o in zoho.admin("GET", "orgs")}
    assert {zoho.org_id, created["org_id"]} <= listed
    stats = zoho.admin("GET", "stats")
    assert stats["by_tenant"][created["org_id"]]["writes"] == 1
    generated = zoho.admin("POST", "orgs", json={"name": "Gen", "seed": "30"})
    gen = ZohoCaller.connect(zoho.url, org=generated["org_id"])
    invoices = gen.ok(gen.get("/Invoices", fields="Invoiced_Items,Sub_Total,Grand_Total"))["data"]
    assert len(invoices) == 30 and all(1 <= len(i["Invoiced_Items"]) <= 8 for i in invoices)
    for inv in invoices:
        assert inv["Sub_Total"] == money(sum((Decimal(repr(r["Net_Total"])) for r in inv["Invoiced_Items"]),
                                             Decimal(0)))
    assert len(gen.ok(gen.get("/Accounts", fields="Account_Name"))["data"]) == 6
    assert len(gen.ok(gen.get("/Products", fields="Product_Name"))["data"]) == 3


def test_reset_restores_the_seed_and_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "zoho-state"
    first = start(ZohoSandbox(state))
    caller = ZohoCaller.connect(first.url)
    rid = caller.new_invoice()
    first.stop()
    second = start(ZohoSandbox(state))
    try:
        caller.url = second.url
        assert caller.record("Invoices", rid)["id"] == rid  # token and record both persisted
        caller.admin("POST", "reset", params={"seed": "demo"})
        fresh = ZohoCaller.connect(second.url)
        assert fresh.get(f"/Invoices/{rid}").status_code == 204
        assert fresh.client_id == caller.client_id and fresh.org_id == caller.org_id  # stable demo identity
        assert caller.get("/org").status_code == 401
    finally:
        second.stop()


def test_unknown_urls_and_methods(demo: ZohoCaller) -> None:
    nowhere = demo.get("/settings/nowhere/else/at/all")
    assert nowhere.status_code == 404 and nowhere.json()["code"] == "INVALID_URL_PATTERN"
    wrong = demo.call("PATCH", "/coql")
    assert wrong.status_code == 405 and wrong.json()["code"] == "INVALID_REQUEST_METHOD"


def test_every_module_lists_and_counts(demo: ZohoCaller) -> None:
    for module in ("Accounts", "Contacts", "Vendors", "Products", "Invoices", "Sales_Orders", "Quotes",
                   "Purchase_Orders"):
        body = demo.ok(demo.get(f"/{module}", fields="Owner,Created_Time"))
        count = demo.ok(demo.get(f"/{module}/actions/count"))["count"]
        assert int(count) == len(body["data"]) > 0, module
