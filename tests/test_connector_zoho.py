"""The Zoho CRM connector against the Zoho sandbox over HTTP: tokens, data centres, concurrency,
credits, paged and conditional reads, COQL, metadata, batch writes and subform replacement."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from pydantic import SecretStr
from test_connector_zoho_support import (  # noqa: F401  (the fixture is requested by its name)
    Sandbox,
    Traffic,
    client,
    connect,
    set_env,
    zoho_sandbox_fixture,
)

from connectors.credentials import MemoryCredentialStore
from connectors.errors import BudgetExhausted, TokenRefreshError, TransportError
from connectors.zoho import XERO_SYNC_FIELDS, FieldSpec, ZohoClient
from connectors.zoho_auth import authorize_url, exchange_grant_code, parse_auth_redirect
from connectors.zoho_coql import cond, select


def _query(response: requests.Response) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(response.request.url).query).items()}


def _products_and_accounts(zc: ZohoClient) -> tuple[list[dict], list[dict]]:
    products = list(zc.iter_records("Products", ["Product_Name", "Product_Code", "Unit_Price"]))
    accounts = list(zc.iter_records("Accounts", ["Account_Name"]))
    assert products and accounts, "the demo seed has products and accounts"
    return products, accounts


# --- OAuth, data centres and the shared token ---------------------------------------------------------


def test_onboarding_by_consent_redirect_and_grant_exchange(zoho_sandbox: Sandbox) -> None:
    creds = zoho_sandbox.credentials()
    url = authorize_url(zoho_sandbox.url, client_id=creds["client_id"], redirect_uri="http://127.0.0.1:1/callback",
                        state="st4te")
    consent = requests.get(url, allow_redirects=False, timeout=10)
    assert consent.status_code in (302, 303, 307)
    redirect = parse_auth_redirect(consent.headers["Location"], expected_state="st4te",
                                   also_allow=[zoho_sandbox.url])
    conn = exchange_grant_code(org="acme", client_id=creds["client_id"], client_secret=creds["client_secret"],
                               code=redirect.code, accounts_url=redirect.accounts_server,
                               redirect_uri="http://127.0.0.1:1/callback", allowed_api_domains=[zoho_sandbox.url])
    assert conn.refresh_token and conn.access_token and conn.api_domain and conn.accounts_url
    assert conn.access_expires_at > datetime.now(UTC) + timedelta(minutes=50)
    store = MemoryCredentialStore()
    store.save(conn)
    before = zoho_sandbox.token_calls()
    assert client(store).org()  # the exchanged access token is used as is: no refresh
    assert zoho_sandbox.token_calls() == before
    # A grant code is single-use: Zoho answers HTTP 200 {"error": "invalid_code"}, permanent.
    with pytest.raises(TokenRefreshError) as used:
        exchange_grant_code(org="acme", client_id=creds["client_id"], client_secret=creds["client_secret"],
                            code=redirect.code, accounts_url=redirect.accounts_server,
                            redirect_uri="http://127.0.0.1:1/callback", allowed_api_domains=[zoho_sandbox.url])
    assert used.value.permanent


def test_many_clients_and_threads_share_one_token(zoho_sandbox: Sandbox) -> None:
    store = MemoryCredentialStore()
    connect(zoho_sandbox, store)
    clients = [client(store) for _ in range(6)]
    errors: list[BaseException] = []

    def work(zc: ZohoClient) -> None:
        try:
            zc.org()
            zc.fields("Invoices")
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(zc,)) for zc in clients * 4]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert zoho_sandbox.token_calls() == 1
    stored = store.load("acme", "zoho")
    assert stored.access_token is not None and len(stored.recent_mints) == 1
    # A new client in another "process" (same store) reuses the stored token too.
    client(store).current_user()
    assert zoho_sandbox.token_calls() == 1


def test_token_is_refreshed_before_it_expires(zoho_sandbox: Sandbox) -> None:
    store = MemoryCredentialStore()
    connect(zoho_sandbox, store)
    client(store).org()
    conn = store.load("acme", "zoho")
    old = conn.access_token.get_secret_value()
    # Four minutes left (our margin is five): the next call refreshes first, never meets a 401.
    store.save(conn.model_copy(update={"access_expires_at": datetime.now(UTC) + timedelta(minutes=4)}))
    traffic = Traffic()
    client(store, traffic=traffic).org()
    assert zoho_sandbox.token_calls() == 2
    assert store.load("acme", "zoho").access_token.get_secret_value() != old
    assert all(r.status_code != 401 for r in traffic.api_calls())


def test_invalid_token_is_refreshed_once_and_the_call_retried(zoho_sandbox: Sandbox) -> None:
    store = MemoryCredentialStore()
    connect(zoho_sandbox, store)
    traffic = Traffic()
    zc = client(store, traffic=traffic)
    zc.org()
    # Zoho's clock says the token is dead; ours still thinks it valid: 401 INVALID_TOKEN.
    zoho_sandbox.advance_clock(3700)
    assert zc.org()
    statuses = [r.status_code for r in traffic.api_calls()]
    assert statuses == [200, 401, 200]
    assert traffic.api_calls()[1].json()["code"] == "INVALID_TOKEN"
    assert zoho_sandbox.token_calls() == 2


def test_token_mints_stay_under_zohos_limit(zoho_sandbox: Sandbox) -> None:
    store = MemoryCredentialStore()
    connect(zoho_sandbox, store)
    zc = client(store)
    minted = 0
    with pytest.raises(TokenRefreshError) as stopped:
        for _ in range(20):
            zc.org()
            minted += 1
            zc.tokens.refused(zc.tokens.access_token())  # as if every token were rejected
    assert not stopped.value.permanent
    assert "Zoho allows 10 per refresh token" in stopped.value.message
    assert minted == 9 and zoho_sandbox.token_calls() == 9
    assert store.load("acme", "zoho").broken_reason is None


def test_access_denied_from_the_token_endpoint_is_temporary(zoho_sandbox: Sandbox) -> None:
    store = MemoryCredentialStore()
    connect(zoho_sandbox, store)
    zc = client(store)
    zc.refresher.budget = 100  # switch our guard off to meet Zoho's own limit
    with pytest.raises(TokenRefreshError) as denied:
        for _ in range(15):
            zc.org()
            zc.tokens.refused(zc.tokens.access_token())
    assert not denied.value.permanent and "too many requests" in denied.value.message.lower()
    assert zoho_sandbox.token_calls() == 11
    assert store.load("acme", "zoho").broken_reason is None


def test_invalid_code_on_refresh_breaks_the_connection(zoho_sandbox: Sandbox) -> None:
    store = MemoryCredentialStore()
    conn = connect(zoho_sandbox, store)
    store.save(conn.model_copy(update={"refresh_token": SecretStr("1000.revoked.token")}))
    with pytest.raises(TokenRefreshError) as dead:
        client(store).org()
    assert dead.value.permanent and "reconnect" in dead.value.message
    assert store.load("acme", "zoho").broken_reason
    with pytest.raises(TokenRefreshError, match="needs reconnecting"):
        client(store).org()
    assert zoho_sandbox.token_calls() == 1


# --- concurrency, 429 and credits ------------------------------------------------------------------------


def test_concurrency_is_capped_per_org(zoho_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, zoho_concurrency=3)
    zoho_sandbox.limits(concurrency=3)
    store = MemoryCredentialStore()
    connect(zoho_sandbox, store)
    client(store).org()
    since = len(zoho_sandbox.journal())
    zoho_sandbox.faults({"method": "GET", "path": "/crm/v8/settings/*", "kind": "slow", "delay_seconds": 0.2,
                         "count": 24})
    clients = [client(store) for _ in range(4)]
    threads = [threading.Thread(target=zc.fields, args=("Contacts",)) for zc in clients * 6]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    calls = [e for e in zoho_sandbox.journal(since) if e["path"].startswith("/crm/")]
    assert len(calls) == 24 and all(e["status"] == 200 for e in calls)
    # Peak in flight, from the sandbox's own start/finish times.
    events = sorted([(e["started"], 1) for e in calls] + [(e["finished"], -1) for e in calls])
    peak = level = 0
    for _, step in events:
        level += step
        peak = max(peak, level)
    assert peak <= 3
    assert zoho_sandbox.stats()["rate_limited"] == 0


def test_429_is_retried_with_exponential_jittered_backoff(zoho_sandbox: Sandbox) -> None:
    store = MemoryCredentialStore()
    connect(zoho_sandbox, store)
    sleeps: list[float] = []
    traffic = Traffic()
    zc = client(store, traffic=traffic, sleeps=sleeps)
    zc.org()
    zoho_sandbox.faults({"method": "GET", "path": "/crm/v8/org", "kind": "429", "count": 3})
    assert zc.org()
    assert len(sleeps) == 3
    base = zc.retry.base_seconds
    hints = [float((r.json().get("details") or {}).get("retry_after") or 0)
             for r in traffic.api_calls("/crm/v8/org") if r.status_code == 429]
    # Full jitter within [ceiling/2, ceiling], the ceiling doubling per consecutive 429, plus
    # Zoho's retry_after hint when the body carries one.
    for n, (wait, hint) in enumerate(zip(sleeps, hints, strict=True), start=1):
        ceiling = base * 2 ** (n - 1)
        assert hint + ceiling / 2 <= wait <= hint + ceiling


def test_credit_reserve_stops_before_a_batch(zoho_sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, zoho_credit_reserve=60)
    zoho_sandbox.limits(credits_per_day=200)
    store = MemoryCredentialStore()
    connect(zoho_sandbox, store)
    zc = client(store)
    batch = [{"Last_Name": f"Budget {i}"} for i in range(100)]  # 10 credits a batch
    done = 0
    with pytest.raises(BudgetExhausted) as stopped:
        for _ in range(30):
            writes_before = zoho_sandbox.stats()["writes"]
            zc.insert("Contacts", batch)
            done += 1
    # The refused batch never reached Zoho, and we stopped with the reserve intact.
    assert zoho_sandbox.stats()["writes"] == writes_before
    assert "credits" in stopped.value.message and "reserve" in stopped.value.message
    assert zc.budget.estimated_remaining is not None and zc.budget.estimated_remaining >= 60
    assert zoho_sandbox.stats()["rate_limited"] == 0
    assert done >= 10  # the header only shows up once half the credits are used


# --- reads ---------------------------------------------------------------------------------------------------


def test_reading_5000_records_walks_past_the_page_wall(zoho_sandbox: Sandbox) -> None:
    creds = zoho_sandbox.new_org("Big Books", seed="5000")
    store = MemoryCredentialStore()
    connect(zoho_sandbox, store, org="big", creds=creds)
    traffic = Traffic()
    zc = client(store, "big", traffic=traffic)
    pages = list(zc.iter_pages("Invoices", ["Subject", "Modified_Time"]))
    ids = [r["id"] for p in pages for r in p.records]
    assert len(ids) == 5000 and len(set(ids)) == 5000
    assert len(pages) == 25 and all(len(p.records) == 200 for p in pages)
    queries = [_query(r) for r in traffic.api_calls("/crm/v8/Invoices")]
    # One token walk from the first page: never `page` and `page_token` mixed (Zoho binds tokens).
    assert "page" not in queries[0] and "page_token" not in queries[0]
    assert all("page_token" in q and "page" not in q for q in queries[1:])
    assert len(queries) == 25
    assert all(q["per_page"] == "200" and q["sort_by"] == "Modified_Time" and q["sort_order"] == "asc"
               for q in queries)
    stamps = [datetime.fromisoformat(r["Modified_Time"]) for p in pages for r in p.records]
    assert all(a <= b for a, b in pairwise(stamps))


def test_conditional_reads_304_and_204(zoho_sandbox: Sandbox) -> None:
    store = MemoryCredentialStore()
    connect(zoho_sandbox, store)
    traffic = Traffic()
    zc = client(store, traffic=traffic)
    invoices = list(zc.iter_records("Invoices", ["Subject", "Modified_Time"]))
    newest = max(datetime.fromisoformat(r["Modified_Time"]) for r in invoices)
    assert list(zc.iter_pages("Invoices", ["Subject"], modified_since=newest + timedelta(seconds=1))) == []
    assert traffic.api_calls()[-1].status_code == 304
    zoho_sandbox.advance_clock(60)
    target = invoices[0]
    [result] = zc.update("Invoices", [{"id": target["id"], "Subject": target["Subject"] + " (edited)"}])
    assert result.ok
    changed = list(zc.iter_records("Invoices", ["Subject"], modified_since=newest + timedelta(seconds=1)))
    assert [r["id"] for r in changed] == [target["id"]]
    header = traffic.api_calls()[-1].request.headers["If-Modified-Since"]
    assert datetime.fromisoformat(header).utcoffset() is not None
    with pytest.raises(ValueError):
        list(zc.iter_pages("Invoices", ["Subject"], modified_since=datetime(2026, 1, 1)))
    # An org without data answers 204: nothing to yield.
    empty = zoho_sandbox.new_org("Empty Co", seed="empty")
    connect(zoho_sandbox, store, org="empty", creds=empty)
    ec = client(store, "empty", traffic=traffic)
    assert list(ec.iter_pages("Invoices", ["Subject"])) == []
    assert traffic.api_calls()[-1].status_code == 204


def test_get_one_record_with_its_lines_and_deleted_records(zoho_sandbox: Sandbox) -> None:
    store = MemoryCredentialStore()
    connect(zoho_sandbox, store)
    zc = client(store)
    first = next(zc.iter_records("Invoices", ["Subject"]))
    record = zc.get_record("Invoices", first["id"])
    assert record["id"] == first["id"] and record["Invoiced_Items"]
    [created] = zc.insert("Contacts", [{"Last_Name": "To Delete"}])
    zc.call("DELETE", "/Contacts", params={"ids": created.id}, idempotent=True)
    assert zc.get_record("Contacts", created.id) is None
    deleted = [r for page in zc.iter_deleted("Contacts") for r in page.records]
    assert created.id in {str(r["id"]) for r in deleted}


def test_more_than_50_fields_are_read_in_chunks_merged_by_id(zoho_sandbox: Sandbox) -> None:
    store = MemoryCredentialStore()
    connect(zoho_sandbox, store)
    traffic = Traffic()
    zc = client(store, traffic=traffic)
    extra = [FieldSpec(api_name=f"Extra_{i:02d}") for i in range(55)]
    zc.ensure_fields("Vendors", extra)
    vendors = list(zc.iter_records("Vendors", ["Vendor_Name"]))
    zc.update("Vendors", [{"id": v["id"], "Extra_54": f"x{v['id']}", "Extra_00": "first"} for v in vendors])
    names = ["Vendor_Name", *[f.api_name for f in extra]]
    wide = list(zc.iter_records("Vendors", names))
    assert len(wide) == len(vendors)
    for row in wide:
        assert row["Extra_54"] == f"x{row['id']}" and row["Extra_00"] == "first" and row["Vendor_Name"]
    reads = [_query(r) for r in traffic.api_calls("/crm/v8/Vendors")][-2:]
    assert all(len(q["fields"].split(",")) <= 50 for q in reads)
    assert "ids" in reads[1] and "Extra_54" in reads[1]["fields"]


# --- COQL -----------------------------------------------------------------------------------------------------


def test_coql_quotes_obrien_and_cannot_be_injected(zoho_sandbox: Sandbox) -> None:
    store = MemoryCredentialStore()
    connect(zoho_sandbox, store)
    zc = client(store)
    names = ["O'Brien-Zx", "D'Arcy-O'Neil", 'Say "G\'day"']
    assert all(r.ok for r in zc.insert("Contacts", [{"Last_Name": n} for n in [*names, "Back\\slash"]]))
    for name in names:
        rows = zc.coql(select("Contacts", ["Last_Name"], cond("Last_Name", "=", name))).records
        assert [r["Last_Name"] for r in rows] == [name]
    # Backslashes are doubled whatever the parser: never an error, never someone else's row.
    rows = zc.coql(select("Contacts", ["Last_Name"], cond("Last_Name", "=", "Back\\slash"))).records
    assert {r["Last_Name"] for r in rows} <= {"Back\\slash"}
    for sneaky in ("x' or Last_Name is not null or Last_Name = 'y", "\\' or id is not null or \"",
                   "x'' or id is not null or ''='"):
        assert zc.coql(select("Contacts", ["Last_Name"], cond("Last_Name", "=", sneaky))).records == []


def test_coql_pages_by_offset_and_by_keyset(zoho_sandbox: Sandbox) -> None:
    creds = zoho_sandbox.new_org("Keyset Ltd", seed="2500")
    store = MemoryCredentialStore()
    connect(zoho_sandbox, store, org="ks", creds=creds)
    zc = client(store, "ks")
    by_offset = [r["id"] for page in zc.iter_coql("Invoices", ["Subject"], page_size=1000) for r in page.records]
    assert len(by_offset) == 2500 == len(set(by_offset))
    pages = list(zc.iter_coql_since("Invoices", ["Subject"], since=datetime(2020, 1, 1, tzinfo=UTC),
                                    page_size=1000))
    keyset = [r["id"] for page in pages for r in page.records]
    assert len(pages) == 3 and sorted(keyset) == sorted(by_offset)
    assert "order by Modified_Time asc, id asc" in pages[1].query and "id >" in pages[1].query


# --- metadata -------------------------------------------------------------------------------------------------


def test_metadata(zoho_sandbox: Sandbox) -> None:
    store = MemoryCredentialStore()
    connect(zoho_sandbox, store)
    zc = client(store)
    modules = {m["api_name"] for m in zc.modules()}
    assert {"Accounts", "Contacts", "Vendors", "Products", "Invoices", "Purchase_Orders"} <= modules
    assert {"Created", "Approved", "Delivered", "Cancelled"} <= set(zc.picklist_values("Invoices", "Status"))
    assert zc.org().get("id")
    assert {t["name"] for t in zc.org_taxes()} >= {"GST 15%", "Zero Rated"}
    assert {c["iso_code"] for c in zc.currencies()} >= {"NZD", "AUD", "USD"}
    assert zc.current_user().get("id")


def test_ensure_fields_creates_only_missing_api_names(zoho_sandbox: Sandbox) -> None:
    store = MemoryCredentialStore()
    connect(zoho_sandbox, store)
    zc = client(store)
    specs = XERO_SYNC_FIELDS["Invoices"]
    first = zc.ensure_fields("Invoices", specs)
    assert sorted(first.created + first.existing) == sorted(s.api_name for s in specs)
    second = zc.ensure_fields("Invoices", specs)
    assert second.created == [] and sorted(second.existing) == sorted(s.api_name for s in specs)
    present = {f["api_name"] for f in zc.fields("Invoices")}
    assert {s.api_name for s in specs} <= present


# --- writes ---------------------------------------------------------------------------------------------------


def test_insert_update_upsert_results_are_paired_with_keys(zoho_sandbox: Sandbox) -> None:
    store = MemoryCredentialStore()
    connect(zoho_sandbox, store)
    traffic = Traffic()
    zc = client(store, traffic=traffic)
    zc.ensure_fields("Contacts", XERO_SYNC_FIELDS["Contacts"])
    results = zc.insert("Contacts", [{"Last_Name": "Ngata", "Email": "a@example.com"}, {"First_Name": "No last name"},
                                     {"Last_Name": "Parata"}], keys=["z-1", "z-2", "z-3"])
    assert [(r.key, r.ok) for r in results] == [("z-1", True), ("z-2", False), ("z-3", True)]
    assert results[1].code == "MANDATORY_NOT_FOUND" and results[1].api_name == "Last_Name"
    assert traffic.api_calls()[-1].status_code == 207
    assert traffic.api_calls()[-1].request.body and b'"trigger": []' in traffic.api_calls()[-1].request.body
    updated = zc.update("Contacts", [{"id": results[2].id, "First_Name": "Aroha"}, {"id": results[0].id,
                                                                                     "First_Name": "Mere"}])
    assert [(r.key, r.ok) for r in updated] == [(results[2].id, True), (results[0].id, True)]
    up1 = zc.upsert("Contacts", [{"Last_Name": "Upserted", "Xero_Contact_ID": "xc-1"}],
                    duplicate_check_fields=["Xero_Contact_ID"], keys=["xc-1"])
    up2 = zc.upsert("Contacts", [{"Last_Name": "Upserted again", "Xero_Contact_ID": "xc-1"}],
                    duplicate_check_fields=["Xero_Contact_ID"], keys=["xc-1"])
    assert up1[0].action == "insert" and up2[0].action == "update" and up1[0].id == up2[0].id
    all_bad = zc.insert("Contacts", [{"First_Name": "x"}, {"First_Name": "y"}])
    assert traffic.api_calls()[-1].status_code == 400 and not any(r.ok for r in all_bad)
    with pytest.raises(ValueError, match="at most 100"):
        zc.insert("Contacts", [{"Last_Name": str(i)} for i in range(101)])
    fired = client(store, traffic=traffic, trigger=["workflow"])
    assert fired.insert("Contacts", [{"Last_Name": "With workflow"}])[0].ok
    assert b'"trigger": ["workflow"]' in traffic.api_calls()[-1].request.body
    zc.insert("Contacts", [{"Last_Name": "Per call"}], trigger=["approval"])
    assert b'"trigger": ["approval"]' in traffic.api_calls()[-1].request.body


def test_insert_is_not_resent_after_an_unknown_outcome_but_update_is(zoho_sandbox: Sandbox) -> None:
    store = MemoryCredentialStore()
    connect(zoho_sandbox, store)
    zc = client(store, sleeps=[])
    zc.org()
    zoho_sandbox.faults({"method": "POST", "path": "/crm/v8/Contacts", "kind": "drop_after_commit", "count": 1})
    with pytest.raises(TransportError) as unknown:
        zc.insert("Contacts", [{"Last_Name": "Unknown-Outcome"}])
    assert unknown.value.outcome_unknown
    found = zc.coql(select("Contacts", ["id", "Last_Name"], cond("Last_Name", "=", "Unknown-Outcome"))).records
    assert len(found) == 1  # committed once, never re-sent: the caller settles by this lookup
    zoho_sandbox.faults({"method": "PUT", "path": "/crm/v8/Contacts", "kind": "drop_after_commit", "count": 1})
    [done] = zc.update("Contacts", [{"id": found[0]["id"], "First_Name": "Settled"}])
    assert done.ok
    assert zc.get_record("Contacts", found[0]["id"])["First_Name"] == "Settled"


def test_updating_an_invoices_lines_twice_leaves_exactly_the_intended_lines(zoho_sandbox: Sandbox) -> None:
    store = MemoryCredentialStore()
    connect(zoho_sandbox, store)
    zc = client(store)
    products, accounts = _products_and_accounts(zc)
    p = [x["id"] for x in products[:4]]

    def line(pid: str, qty: float, price: float) -> dict:
        return {"Product_Name": {"id": pid}, "Quantity": qty, "List_Price": price}

    [inv] = zc.insert("Invoices", [{"Subject": "Lines twice", "Account_Name": {"id": accounts[0]["id"]},
                                    "Invoiced_Items": [line(p[0], 1, 10), line(p[1], 2, 20), line(p[2], 3, 30)]}])
    assert inv.ok

    def lines() -> list[tuple[str, float, float]]:
        rows = zc.get_record("Invoices", inv.id)["Invoiced_Items"]
        return sorted((r["Product_Name"]["id"], float(r["Quantity"]), float(r["List_Price"])) for r in rows)

    intended = [line(p[1], 5, 20), line(p[3], 1, 99)]
    expected = sorted((x["Product_Name"]["id"], float(x["Quantity"]), float(x["List_Price"])) for x in intended)

    def by_product(row: dict) -> str:
        return row["Product_Name"]["id"]

    for _ in range(2):
        result = zc.replace_subform("Invoices", inv.id, "Invoiced_Items", intended, match_key=by_product)
        assert result.ok
        assert lines() == expected
    # Without a match key the rows are replaced rather than updated in place: still exact.
    zc.replace_subform("Invoices", inv.id, "Invoiced_Items", intended)
    assert lines() == expected
