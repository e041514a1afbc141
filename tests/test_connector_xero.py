"""The Xero connector against the Xero sandbox over HTTP: tokens, reads, batch writes, limits, lookups."""

# ruff: noqa: F811  (the sandbox fixtures are imported by name)
from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from connectors.credentials import Connection, MemoryCredentialStore
from connectors.errors import BudgetExhausted, NotFoundError, TokenRefreshError, TransportError
from connectors.xero import BillRef, XeroClient
from connectors.xero_batches import IdempotencyKeys
from connectors.xero_limits import forget_limiters
from tests.test_connector_xero_support import (  # noqa: F401  (fixtures)
    Recorder,
    XeroSandboxHandle,
    client_for,
    connection_from,
    contact,
    store_for,
    xero,
    xero_sandbox,
)
from zxsync.settings import get_settings

TOKEN = "POST /connect/token"
PUT_CONTACTS = "/api.xro/2.0/Contacts"


def _query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def _api_calls(xero: XeroSandboxHandle, method: str, path: str) -> list[dict]:
    return [e for e in xero.journal() if e["method"] == method and e["path"] == path]


def _invoice(number: str | None, contact_id: str, *, type: str = "ACCREC", status: str = "AUTHORISED",
             amount: float = 10.1234, **extra: object) -> dict:
    element = {"Type": type, "Contact": {"ContactID": contact_id}, "Date": "2025-07-01", "DueDate": "2025-07-31",
               "LineAmountTypes": "Exclusive", "Status": status,
               "LineItems": [{"Description": "Widget", "Quantity": 2, "UnitAmount": amount,
                              "AccountCode": "200" if type == "ACCREC" else "300",
                              "TaxType": "OUTPUT2" if type == "ACCREC" else "INPUT2"}], **extra}
    if number is not None:
        element["InvoiceNumber"] = number
    return element


def _contacts(client: XeroClient, n: int, prefix: str = "Z") -> dict[str, str]:
    """Create ``n`` contacts; caller key -> ContactID."""
    results = client.write_all("Contacts", {f"{prefix}{i}": contact(f"{prefix}{i}") for i in range(n)}, method="PUT")
    assert all(r.ok for r in results.values()), [r.errors for r in results.values() if not r.ok]
    return {k: r.xero_id for k, r in results.items()}


# --- tokens -------------------------------------------------------------------------------------
def test_refresh_rotates_and_persists_the_newest_token(xero: XeroSandboxHandle) -> None:
    store = store_for(xero)
    first = store.load("demo", "xero").refresh_token.get_secret_value()
    XeroClient(store, "demo").organisation()
    stored = store.load("demo", "xero")
    assert stored.refresh_token.get_secret_value() != first
    assert stored.previous_refresh_token.get_secret_value() == first
    assert stored.access_token is not None and stored.refresh_rotated_at is not None

    # Another client of the org reuses the stored access token: no second refresh.
    XeroClient(store, "demo").organisation()
    assert xero.calls(TOKEN) == 1

    # When the access token runs out, the newest refresh token is the one that works.
    second = stored.refresh_token.get_secret_value()
    store.save(stored.model_copy(update={"access_expires_at": datetime.now(UTC) - timedelta(seconds=1)}))
    XeroClient(store, "demo").organisation()
    again = store.load("demo", "xero")
    assert xero.calls(TOKEN) == 2
    assert again.previous_refresh_token.get_secret_value() == second
    assert again.refresh_token.get_secret_value() not in (first, second)


def test_a_lost_refresh_answer_is_recovered_with_the_same_token(xero: XeroSandboxHandle) -> None:
    store = store_for(xero)
    first = store.load("demo", "xero").refresh_token.get_secret_value()
    xero.faults({"method": "POST", "path": "/connect/token", "kind": "drop_after_commit", "count": 1})
    client = XeroClient(store, "demo")
    assert client.organisation()["Name"]
    tokens = [e for e in xero.journal() if e["path"] == "/connect/token"]
    assert [e["fault"] for e in tokens] == ["drop_after_commit", None]  # Xero rotated, we never saw it
    stored = store.load("demo", "xero")
    assert stored.previous_refresh_token.get_secret_value() == first
    # The token we persisted is live: the next refresh succeeds with it.
    store.save(stored.model_copy(update={"access_expires_at": datetime.now(UTC) - timedelta(seconds=1)}))
    XeroClient(store, "demo").organisation()
    assert store.load("demo", "xero").previous_refresh_token == stored.refresh_token


def test_the_replaced_refresh_token_works_only_inside_the_grace_period(xero: XeroSandboxHandle) -> None:
    store = store_for(xero)
    old = store.load("demo", "xero")
    XeroClient(store, "demo").organisation()  # rotates
    # Within 30 minutes the replaced token still refreshes (a process that lost the answer).
    replay = store_for(xero)
    replay.save(old)
    XeroClient(replay, "demo").organisation()
    # After the grace period it is dead: invalid_grant, permanent.
    xero.advance(31 * 60)
    late = store_for(xero)
    late.save(old)
    with pytest.raises(TokenRefreshError) as info:
        XeroClient(late, "demo").organisation()
    assert info.value.permanent


def test_invalid_grant_marks_the_connection_broken_and_is_never_retried(xero: XeroSandboxHandle) -> None:
    store = store_for(xero, refresh_token=SecretStr("revoked-long-ago"))
    client = XeroClient(store, "demo")
    with pytest.raises(TokenRefreshError) as info:
        client.organisation()
    assert info.value.permanent and info.value.code == "invalid_grant"
    assert "invalid_grant" in (store.load("demo", "xero").broken_reason or "")
    with pytest.raises(TokenRefreshError):
        XeroClient(store, "demo").organisation()
    assert xero.calls(TOKEN) == 1  # the broken connection is not sent again


def test_a_refused_access_token_is_refreshed_once_and_the_call_retried(xero: XeroSandboxHandle) -> None:
    store = store_for(xero, access_token=SecretStr("forged"),
                      access_expires_at=datetime.now(UTC) + timedelta(hours=1))
    XeroClient(store, "demo").organisation()
    assert [e["status"] for e in _api_calls(xero, "GET", "/api.xro/2.0/Organisation")] == [401, 200]
    assert xero.calls(TOKEN) == 1


def test_the_sandbox_clock_expiring_our_token_is_handled_by_the_401_retry(xero: XeroSandboxHandle) -> None:
    client = client_for(xero)
    client.organisation()
    xero.advance(31 * 60)  # Xero's clock says our 30-minute token is dead, ours does not know
    client.organisation()
    assert [e["status"] for e in _api_calls(xero, "GET", "/api.xro/2.0/Organisation")] == [200, 401, 200]


# --- reads --------------------------------------------------------------------------------------
def test_reads_are_paged_conditional_and_deduplicated(xero: XeroSandboxHandle,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ZX_XERO_PAGE_SIZE", "10")
    get_settings.cache_clear()
    recorder = Recorder()
    client = client_for(xero, session=recorder.session())
    ids = _contacts(client, 25)

    pages = list(client.contacts())
    assert [len(p) for p in pages] == [10, 10, 6]  # 25 + the seeded "Walk-in Customer"
    gets = [r for r, _ in recorder.exchanges if r.method == "GET" and r.url.split("?")[0].endswith("/Contacts")]
    assert [_query(r.url)["page"] for r in gets] == [["1"], ["2"], ["3"]]
    assert all(_query(r.url)["pageSize"] == ["10"] for r in gets)

    # Conditional: only what changed since the watermark (minus the overlap) comes back.
    xero.advance(3600)  # the contacts above are now older than the 5-minute overlap
    watermark = datetime.fromisoformat(xero.now())
    xero.advance(3600)
    later = client.write_all("Contacts", {"late1": contact("late1"), "late2": contact("late2")}, method="PUT")
    recorder.exchanges.clear()
    changed = [c for page in client.contacts(modified_since=watermark) for c in page]
    assert sorted(c["ContactNumber"] for c in changed) == ["late1", "late2"]
    sent = recorder.exchanges[0][0].headers["If-Modified-Since"]
    assert sent == (watermark - timedelta(minutes=5)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert set(later) == {"late1", "late2"}

    # A record saved while we page moves to the end when ordered by UpdatedDateUTC: Xero sends
    # it twice, the client yields it once.
    recorder.exchanges.clear()
    reader = client.contacts(order="UpdatedDateUTC ASC")
    first = next(reader)
    xero.advance(60)
    moved = first[0]
    assert client.write_all("Contacts", {"m": {"ContactID": moved["ContactID"], "Name": "Moved Ltd"}},
                            method="POST")["m"].ok
    seen = [c["ContactID"] for c in first + [c for page in reader for c in page]]
    assert len(seen) == len(set(seen))
    raw = Counter(c["ContactID"] for r, resp in recorder.exchanges
                  if r.method == "GET" for c in resp.json().get("Contacts", []))
    assert raw[moved["ContactID"]] == 2

    # By default pages are ordered by id, which a save does not change: nothing moves, nothing
    # is skipped (with UpdatedDateUTC order the records after a moved one shift a place back).
    everyone = {c["ContactID"] for page in client.contacts() for c in page}
    reader = client.contacts()
    first = next(reader)
    xero.advance(60)
    assert client.write_all("Contacts", {"m": {"ContactID": first[0]["ContactID"], "Name": "Moved Again Ltd"}},
                            method="POST")["m"].ok
    seen = [c["ContactID"] for c in first + [c for page in reader for c in page]]
    assert len(seen) == len(set(seen)) and set(seen) == everyone and set(ids.values()) <= everyone


def test_reference_data_and_explicit_filters(xero: XeroSandboxHandle) -> None:
    recorder = Recorder()
    client = client_for(xero, session=recorder.session())
    org = client.organisation()
    assert org["BaseCurrency"] == "NZD"
    assert {a["Code"] for a in client.accounts()} >= {"090", "200", "860"}
    assert {t["TaxType"] for t in client.tax_rates()} >= {"OUTPUT2", "INPUT2"}
    assert min(client.branding_themes(), key=lambda b: b["SortOrder"])["Name"] == "Standard"
    archived = {o["Name"] for c in client.tracking_categories(include_archived=True) for o in c["Options"]}
    assert "Legacy" in archived
    assert {c["Code"] for c in client.currencies()} >= {"NZD", "AUD", "USD"}
    assert "HW-OLD" in {i["Code"] for i in client.items()}
    items_get = next(r for r, _ in recorder.exchanges if r.url.split("?")[0].endswith("/Items"))
    assert _query(items_get.url)["unitdp"] == ["4"]

    ids = _contacts(client, 60)
    recorder.exchanges.clear()
    wanted = sorted(ids.values())
    found = [c["ContactID"] for page in client.contacts(ids=wanted) for c in page]
    assert sorted(found) == wanted
    chunks = [_query(r.url)["IDs"][0].split(",") for r, _ in recorder.exchanges]
    assert [len(c) for c in chunks] == [50, 10]

    cid = ids["Z0"]
    created = client.write_all("Invoices", {"a": _invoice("ZI-1", cid), "b": _invoice("ZI-2", cid, status="DRAFT")},
                               method="PUT")
    assert all(r.ok for r in created.values())
    drafts = [i["InvoiceNumber"] for p in client.invoices(statuses=["DRAFT"], where='Type=="ACCREC"') for i in p]
    assert drafts == ["ZI-2"]
    light = [i for p in client.invoices(invoice_numbers=["ZI-1"], summary_only=True) for i in p]
    assert [i["InvoiceNumber"] for i in light] == ["ZI-1"]
    full = next(i for p in client.invoices(invoice_numbers=["ZI-1"]) for i in p)
    assert full["LineItems"][0]["UnitAmount"] == pytest.approx(10.1234)  # unitdp=4 kept 4 dp


def test_connections_lists_the_tenant(xero: XeroSandboxHandle) -> None:
    client = client_for(xero)
    assert client.tenant_id in {c["tenantId"] for c in client.connections()}


# --- writes -------------------------------------------------------------------------------------
def test_writes_go_in_batches_of_at_most_50_with_summarize_errors_off(xero: XeroSandboxHandle) -> None:
    recorder = Recorder()
    client = client_for(xero, session=recorder.session())
    batches = list(client.create("Contacts", {f"z{i}": contact(f"z{i}") for i in range(120)}))
    assert [len(b.results) for b in batches] == [50, 50, 20]
    assert all(r.ok and r.xero_id and r.number == r.key for b in batches for r in b.results)
    puts = [r for r, _ in recorder.exchanges if r.method == "PUT"]
    assert len(puts) == 3
    for request in puts:
        assert _query(request.url)["summarizeErrors"] == ["false"] and _query(request.url)["unitdp"] == ["4"]
    assert [len(e["keys"]) for e in _api_calls(xero, "PUT", PUT_CONTACTS)] == [50, 50, 20]


def test_a_batch_too_big_in_bytes_is_split_further(xero: XeroSandboxHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    limit = 20_000
    monkeypatch.setenv("ZX_XERO_MAX_REQUEST_BYTES", str(limit))
    get_settings.cache_clear()
    recorder = Recorder()
    client = client_for(xero, session=recorder.session())
    address = {"AddressType": "STREET", **{f"AddressLine{i}": f"{i} " + "x" * 480 for i in range(1, 5)}}
    elements = {f"big{i}": contact(f"big{i}", Addresses=[address]) for i in range(40)}
    results = client.write_all("Contacts", elements, method="PUT")
    assert all(r.ok for r in results.values())
    puts = [r for r, _ in recorder.exchanges if r.method == "PUT"]
    assert len(puts) >= 4 and all(len(r.body) <= limit for r in puts)
    numbers = Counter(c["ContactNumber"] for p in client.contacts() for c in p if c.get("ContactNumber"))
    assert all(numbers[k] == 1 for k in elements)


def test_results_come_back_by_caller_key_when_one_element_fails(xero: XeroSandboxHandle) -> None:
    client = client_for(xero)
    (batch,) = client.create("Contacts", {"acc-1": contact("acc-1", "Kauri Traders"),
                                          "acc-2": contact("acc-2", "Walk-in Customer"),
                                          "acc-3": contact("acc-3", "Rimu Holdings")})
    results = batch.by_key()
    assert results["acc-1"].ok and results["acc-3"].ok and results["acc-1"].xero_id != results["acc-3"].xero_id
    assert results["acc-1"].element["Name"] == "Kauri Traders"
    bad = results["acc-2"]
    assert bad.status == "ERROR" and bad.xero_id is None
    assert bad.errors == [("The contact name Walk-in Customer is already assigned to another contact. "
                           "The contact name must be unique across all active contacts.")]


def test_a_dropped_answer_after_commit_is_replayed_not_duplicated(xero: XeroSandboxHandle) -> None:
    client = client_for(xero)
    xero.faults({"method": "PUT", "path": PUT_CONTACTS, "kind": "drop_after_commit", "count": 1})
    results = client.write_all("Contacts", {f"d{i}": contact(f"d{i}") for i in range(5)}, method="PUT")
    assert all(r.ok for r in results.values())
    calls = _api_calls(xero, "PUT", PUT_CONTACTS)
    assert [c["fault"] for c in calls] == ["drop_after_commit", None]
    assert calls[0]["idempotency_key"] == calls[1]["idempotency_key"]
    numbers = Counter(c.get("ContactNumber") for p in client.contacts() for c in p)
    assert all(numbers[f"d{i}"] == 1 for i in range(5))
    # The replay answered with the very contacts the first (lost) attempt created.
    assert {r.xero_id for r in results.values()} == {c["ContactID"] for p in client.contacts() for c in p
                                                     if str(c.get("ContactNumber", "")).startswith("d")}


def test_a_new_key_after_an_error_answer(xero: XeroSandboxHandle) -> None:
    client = client_for(xero)
    xero.faults({"method": "PUT", "path": PUT_CONTACTS, "kind": "500", "count": 1})
    results = client.write_all("Contacts", {"e1": contact("e1")}, method="PUT")
    assert results["e1"].ok
    calls = _api_calls(xero, "PUT", PUT_CONTACTS)
    assert [c["status"] for c in calls] == [500, 200]
    assert calls[0]["idempotency_key"] != calls[1]["idempotency_key"]

    # Element errors come back in a 200 answer (summarizeErrors=false): not an error answer. The
    # same batch sent again (a task retry after the answer was lost on our side) keeps its key, so
    # Xero replays the answer and the good element is not created twice.
    batch = {"e2": contact("e2", "Walk-in Customer"), "e3": contact("e3")}
    first = client.write_all("Contacts", batch, method="PUT")
    second = client.write_all("Contacts", batch, method="PUT")
    assert first["e2"].status == second["e2"].status == "ERROR"
    assert first["e3"].ok and second["e3"].xero_id == first["e3"].xero_id
    keys = [c["idempotency_key"] for c in _api_calls(xero, "PUT", PUT_CONTACTS)[2:]]
    assert len(keys) == 2 and keys[0] == keys[1]
    assert sum(1 for p in client.contacts() for c in p if c.get("ContactNumber") == "e3") == 1


def test_429_waits_retry_after_for_the_whole_tenant(xero: XeroSandboxHandle) -> None:
    client = client_for(xero)
    sleeps: list[float] = []
    client.http.retry.sleep = sleeps.append
    xero.faults({"method": "PUT", "path": PUT_CONTACTS, "kind": "429", "count": 2, "retry_after": 1})
    results = client.write_all("Contacts", {"r1": contact("r1")}, method="PUT")
    assert results["r1"].ok
    calls = _api_calls(xero, "PUT", PUT_CONTACTS)
    assert [c["status"] for c in calls] == [429, 429, 200]
    assert len({c["idempotency_key"] for c in calls}) == 3  # a 429 is an error answer too
    assert sleeps == [1.0, 1.0]


def test_5xx_is_retried_with_jittered_backoff(xero: XeroSandboxHandle) -> None:
    client = client_for(xero)
    sleeps: list[float] = []
    client.http.retry.sleep = sleeps.append
    xero.faults({"method": "GET", "path": "/api.xro/2.0/Organisation", "kind": "503", "count": 2})
    client.organisation()
    base = get_settings().http_backoff_base_seconds
    assert len(sleeps) == 2 and base / 2 <= sleeps[0] <= base <= sleeps[1] <= 2 * base


def test_the_day_budget_stops_before_the_reserve_without_a_429(xero: XeroSandboxHandle) -> None:
    xero.limits(per_day=20)
    client = client_for(xero, day_reserve=5)
    calls = 0
    with pytest.raises(BudgetExhausted, match="reserve"):
        while calls < 100:
            client.organisation()
            calls += 1
    assert calls == 15  # 20 - 15 = 5 left: the reserve
    assert xero.stats()["rate_limited"] == 0


def test_a_429_for_the_day_raises_budget_exhausted_instead_of_sleeping(xero: XeroSandboxHandle) -> None:
    xero.limits(per_day=3)
    spender = client_for(xero, day_reserve=0)
    for _ in range(3):
        spender.organisation()
    forget_limiters()  # a process that has not seen the headers (another worker)
    late = client_for(xero, day_reserve=0)
    sleeps: list[float] = []
    late.http.retry.sleep = sleeps.append
    with pytest.raises(BudgetExhausted) as info:
        late.organisation()
    assert info.value.status == 429 and sleeps == []
    assert [e["status"] for e in _api_calls(xero, "GET", "/api.xro/2.0/Organisation")] == [200, 200, 200, 429]
    with pytest.raises(BudgetExhausted):  # the tenant stays parked without calling Xero again
        late.organisation()
    assert len(_api_calls(xero, "GET", "/api.xro/2.0/Organisation")) == 4


def test_a_gate_is_entered_around_every_call(xero: XeroSandboxHandle) -> None:
    entered: list[int] = []
    lock = threading.Lock()

    @contextmanager
    def gate() -> Iterator[None]:
        with lock:
            entered.append(1)
        yield

    client = client_for(xero, gate=gate)
    client.organisation()
    client.currencies()
    assert len(entered) == 2


# --- documents, payments, status changes --------------------------------------------------------
def test_invoice_lifecycle_payments_credit_notes_and_status_changes(xero: XeroSandboxHandle) -> None:
    client = client_for(xero)
    cid = _contacts(client, 1)["Z0"]
    created = client.write_all("Invoices", {
        "inv-a": _invoice("ZI-10", cid), "inv-b": _invoice("ZI-11", cid, status="DRAFT"),
        "inv-c": _invoice("ZI-12", cid)}, method="PUT")
    assert all(r.ok for r in created.values())
    a, b, c = (created[k].xero_id for k in ("inv-a", "inv-b", "inv-c"))

    # Update by InvoiceID through POST /Invoices (keeps AUTHORISED).
    updated = client.write_all("Invoices", {"inv-a": {"InvoiceID": a, "Reference": "PO 7", "Status": "AUTHORISED"}},
                               method="POST")
    assert updated["inv-a"].ok and updated["inv-a"].element["Reference"] == "PO 7"

    paid = client.write_all("Payments", {"pay-a": {"Invoice": {"InvoiceID": a}, "Account": {"Code": "090"},
                                                   "Date": "2025-07-05", "Amount": 5.0}}, method="PUT")
    assert paid["pay-a"].ok and paid["pay-a"].xero_id
    invoice = next(i for p in client.invoices(ids=[a]) for i in p)
    assert invoice["AmountPaid"] == pytest.approx(5.0)

    # Void the paid one (refused, per element), delete the draft, void the untouched one.
    changed = {r.key: r for batch in client.set_status("Invoices", {"void-a": (a, "VOIDED"), "del-b": (b, "DELETED"),
                                                                    "void-c": (c, "VOIDED")}) for r in batch.results}
    assert changed["del-b"].ok and changed["void-c"].ok
    assert changed["void-a"].status == "ERROR" and changed["void-a"].errors

    # Deleting the payment reopens the invoice.
    client.delete_payment(paid["pay-a"].xero_id)
    reopened = next(i for p in client.invoices(ids=[a]) for i in p)
    assert reopened["AmountPaid"] == pytest.approx(0.0) and reopened["Status"] == "AUTHORISED"

    credit = client.write_all("CreditNotes", {"cn-1": {
        "Type": "ACCRECCREDIT", "Contact": {"ContactID": cid}, "Date": "2025-07-06", "Status": "AUTHORISED",
        "CreditNoteNumber": "ZCN-1", "LineAmountTypes": "Exclusive",
        "LineItems": [{"Description": "Refund", "Quantity": 1, "UnitAmount": 2.0, "AccountCode": "200",
                       "TaxType": "OUTPUT2"}]}}, method="PUT")
    assert credit["cn-1"].ok and credit["cn-1"].number == "ZCN-1"
    (allocation,) = client.allocate_credit_note(credit["cn-1"].xero_id, {
        "alloc-1": {"Invoice": {"InvoiceID": a}, "Amount": 1.0, "Date": "2025-07-06"}})
    assert allocation.results[0].ok


# --- lookups that settle write-ahead intents -------------------------------------------------------
def test_lookups_find_what_a_crashed_batch_created(xero: XeroSandboxHandle) -> None:
    recorder = Recorder()
    client = client_for(xero, session=recorder.session())
    intent_time = datetime.fromisoformat(xero.now())
    cids = _contacts(client, 3, prefix="zc-")
    items = client.write_all("Items", {"p1": {"Code": "HW-001", "Name": "Cable"},
                                       "p2": {"Code": "SW-001", "Name": "Licence"}}, method="PUT")
    assert all(r.ok for r in items.values())
    cid = cids["zc-0"]
    other = cids["zc-1"]
    client.write_all("Invoices", {"i1": _invoice("ZI-20", cid), "i2": _invoice("ZI-21", cid)}, method="PUT")
    bills = client.write_all("Invoices", {
        "po-1": _invoice("B-7", cid, type="ACCPAY", Url="https://crm.zoho.com/crm/tab/PurchaseOrders/1"),
        "po-2": _invoice("B-7", other, type="ACCPAY", Url="https://crm.zoho.com/crm/tab/PurchaseOrders/2"),
        "po-3": _invoice(None, other, type="ACCPAY", Url="https://crm.zoho.com/crm/tab/PurchaseOrders/3")},
        method="PUT")
    assert all(r.ok for r in bills.values())
    orders = client.write_all("PurchaseOrders", {"o1": {
        "Contact": {"ContactID": cid}, "Date": "2025-07-01", "PurchaseOrderNumber": "ZPO-1",
        "LineItems": [{"Description": "Stock", "Quantity": 1, "UnitAmount": 3.0, "AccountCode": "300"}]}},
        method="PUT")
    assert orders["o1"].ok
    recorder.exchanges.clear()

    contacts = client.find_contacts_by_number(["zc-0", "zc-2", "never-created"], since=intent_time)
    assert {k: v["ContactID"] for k, v in contacts.items()} == {"zc-0": cid, "zc-2": cids["zc-2"]}
    codes = client.find_items_by_code(["HW-001", "SW-001", "XX-404"], since=intent_time)
    assert set(codes) == {"HW-001", "SW-001"}
    invoices = client.find_invoices_by_number(["ZI-20", "ZI-21", "ZI-404"])
    assert set(invoices) == {"ZI-20", "ZI-21"}
    pos = client.find_purchase_orders_by_number(["ZPO-1", "ZPO-404"], since=intent_time)
    assert pos["ZPO-1"]["PurchaseOrderID"] == orders["o1"].xero_id and set(pos) == {"ZPO-1"}
    found = client.find_bills([
        BillRef("po-1", "https://crm.zoho.com/crm/tab/PurchaseOrders/1", cid, "B-7"),
        BillRef("po-2", "https://crm.zoho.com/crm/tab/PurchaseOrders/2", other, "B-7"),
        BillRef("po-3", "https://crm.zoho.com/crm/tab/PurchaseOrders/3", other),
        BillRef("po-9", "https://crm.zoho.com/crm/tab/PurchaseOrders/9", cid, "B-7")], since=intent_time)
    assert {k: v["InvoiceID"] for k, v in found.items()} == {k: bills[k].xero_id for k in ("po-1", "po-2", "po-3")}
    # Batch-friendly: a handful of calls for all of it, never one per record.
    assert len(recorder.exchanges) == 6


# --- connections, tenants, shared limits ------------------------------------------------------------
def test_a_custom_connection_uses_client_credentials_and_finds_its_tenant(xero: XeroSandboxHandle) -> None:
    creds = xero.admin("GET", "credentials", grant="client_credentials")
    store = MemoryCredentialStore()
    store.save(Connection(org="demo", system="xero", grant="client_credentials", client_id=creds["client_id"],
                          client_secret=SecretStr(creds["client_secret"])))  # no tenant id stored
    client = XeroClient(store, "demo")
    assert client.organisation()["Name"] == "Harbour Demo Ltd"
    assert client.tenant_id == creds["tenant_id"]
    token_call = next(e for e in xero.journal() if e["path"] == "/connect/token")
    assert token_call["status"] == 200 and store.load("demo", "xero").refresh_token is None


def test_clients_of_one_tenant_share_a_limiter_and_tenants_do_not(xero: XeroSandboxHandle) -> None:
    store = store_for(xero)
    one, two = XeroClient(store, "demo"), XeroClient(store, "demo")
    assert one.limiter is two.limiter
    other = xero.admin("POST", "orgs", {"name": "Second Org Ltd", "seed": "empty"})
    store.save(connection_from(other, "second"))
    second = XeroClient(store, "second")
    assert second.tenant_id != one.tenant_id and second.limiter is not one.limiter
    assert second.organisation()["Name"] == "Second Org Ltd"
    assert one.organisation()["Name"] == "Harbour Demo Ltd"
    tenants = xero.stats()["by_tenant"]
    assert tenants[second.tenant_id]["calls"]["GET /api.xro/2.0/Organisation"] == 1


def test_no_blind_retry_of_a_write_once_the_idempotency_window_may_have_passed(
        xero: XeroSandboxHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    import connectors.xero as xero_module

    ticks = iter(range(0, 10_000, 200))  # every look at the clock: 200 s later
    monkeypatch.setattr(xero_module, "KEYS", IdempotencyKeys(clock=lambda: float(next(ticks))))
    client = client_for(xero)
    client.http.retry.sleep = lambda _s: None
    xero.faults({"method": "PUT", "path": PUT_CONTACTS, "kind": "drop_after_commit", "count": 5})
    with pytest.raises(TransportError, match="settle the batch by lookup") as info:
        client.write_all("Contacts", {"w1": contact("w1")}, method="PUT")
    assert info.value.outcome_unknown
    assert len(_api_calls(xero, "PUT", PUT_CONTACTS)) == 1  # the committed write was not sent again
    found = client.find_contacts_by_number(["w1"], since=datetime.now(UTC) - timedelta(hours=1))
    assert list(found) == ["w1"]  # ... and the lookup settles it


def test_planned_batches_are_sent_one_by_one_and_unpairable_ones_refused(xero: XeroSandboxHandle) -> None:
    client = client_for(xero)
    batches, too_big = client.plan_batches("Contacts", {f"b{i}": contact(f"b{i}") for i in range(60)})
    assert [len(b) for b in batches] == [50, 10] and not too_big
    result = client.write_batch("Contacts", batches[1], method="PUT")
    assert [r.key for r in result.results] == [f"b{i}" for i in range(50, 60)]
    assert all(r.ok for r in result.results) and result.idempotency_key
    with pytest.raises(ValueError, match="position"):
        list(client.create("Invoices", {"x": {"Type": "ACCPAY"}, "y": {"Type": "ACCPAY"}}))
    assert not _api_calls(xero, "PUT", "/api.xro/2.0/Invoices")


def test_errors_keep_xeros_own_words(xero: XeroSandboxHandle) -> None:
    client = client_for(xero)
    with pytest.raises(NotFoundError, match="cannot be found"):
        client.delete_payment("00000000-0000-0000-0000-0000000000ff")
