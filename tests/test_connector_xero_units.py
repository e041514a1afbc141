"""The Xero connector's pure parts: batch splitting, pairing by key, key generations, budgets, dates."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from connectors.errors import BudgetExhausted
from connectors.xero import if_modified_since, xero_datetime
from connectors.xero_batches import (
    ENTITIES,
    IdempotencyKeys,
    content_hash,
    jsonable,
    match_keys,
    pair_results,
    split_batches,
    wire_size,
)
from connectors.xero_limits import XeroTenantLimiter


def test_batches_hold_at_most_50_elements_and_keep_order() -> None:
    items = [(f"z{i}", {"Name": f"Contact {i}", "ContactNumber": f"z{i}"}) for i in range(120)]
    batches, too_big = split_batches("Contacts", items, max_elements=50, max_bytes=3_500_000)
    assert [len(b) for b in batches] == [50, 50, 20] and not too_big
    assert [k for b in batches for k, _ in b] == [k for k, _ in items]


def test_batches_split_further_when_the_json_is_too_big() -> None:
    items = [(f"z{i}", {"ContactNumber": f"z{i}", "Name": "x" * 1000}) for i in range(20)]
    limit = 5_000
    batches, too_big = split_batches("Contacts", items, max_elements=50, max_bytes=limit)
    assert not too_big and len(batches) > 1
    for batch in batches:
        # Exactly the bytes requests will send for this batch.
        assert wire_size({"Contacts": [e for _, e in batch]}) <= limit
        assert len(json.dumps({"Contacts": [e for _, e in batch]}).encode()) <= limit
    # Packed greedily: no two neighbouring batches would have fit together.
    for a, b in itertools.pairwise(batches):
        assert wire_size({"Contacts": [e for _, e in a + b[:1]]}) > limit


def test_an_element_too_big_for_any_request_is_reported_not_sent() -> None:
    items = [("small", {"Code": "A"}), ("huge", {"Code": "B", "Description": "x" * 2000})]
    batches, too_big = split_batches("Items", items, max_elements=50, max_bytes=500)
    assert [k for b in batches for k, _ in b] == ["small"]
    assert too_big and too_big[0][0] == "huge" and too_big[0][1] > 500


def test_results_are_paired_by_key_not_by_position() -> None:
    sent = [("zoho-1", {"ContactNumber": "Z1", "Name": "Alpha"}),
            ("zoho-2", {"ContactNumber": "Z2", "Name": "Beta"}),
            ("zoho-3", {"ContactNumber": "Z3", "Name": "Gamma"})]
    # Xero answers in another order, one element rejected, one missing.
    returned = [
        {"ContactID": "c2", "ContactNumber": "Z2", "Name": "Beta", "StatusAttributeString": "ERROR",
         "ValidationErrors": [{"Message": "The contact name Beta is already assigned to another contact."}]},
        {"ContactID": "c1", "ContactNumber": "Z1", "Name": "Alpha", "StatusAttributeString": "OK"},
    ]
    results = {r.key: r for r in pair_results(ENTITIES["Contacts"], sent, returned)}
    assert results["zoho-1"].ok and results["zoho-1"].xero_id == "c1" and results["zoho-1"].number == "Z1"
    assert results["zoho-2"].status == "ERROR" and not results["zoho-2"].ok
    assert results["zoho-2"].errors == ["The contact name Beta is already assigned to another contact."]
    assert results["zoho-3"].status == "UNKNOWN"


def test_nested_validation_errors_and_warnings_are_kept_and_zero_ids_dropped() -> None:
    sent = [("inv-9", {"InvoiceNumber": "ZI-9", "Type": "ACCREC"})]
    returned = [{"InvoiceID": "00000000-0000-0000-0000-000000000000", "InvoiceNumber": "ZI-9", "HasErrors": True,
                 "LineItems": [{"ValidationErrors": [{"Message": "Account code '205' is not a valid code"}]}],
                 "Warnings": [{"Message": "Only AUTHORISED and BILLED purchase orders may have SentToContact"}],
                 "ValidationErrors": [{"Message": "Invoice not of valid status for modification"}]}]
    (result,) = pair_results(ENTITIES["Invoices"], sent, returned)
    assert result.status == "ERROR" and result.xero_id is None
    assert result.errors == ["Account code '205' is not a valid code", "Invoice not of valid status for modification"]
    assert result.warnings == ["Only AUTHORISED and BILLED purchase orders may have SentToContact"]


def test_pairing_falls_back_to_a_unique_field_and_refuses_positional_pairing() -> None:
    bills = ENTITIES["Invoices"]
    # Two bills with the same supplier number: the Url (our Zoho id) tells them apart.
    sent = [("po-1", {"Type": "ACCPAY", "InvoiceNumber": "B-1", "Url": "https://crm/1"}),
            ("po-2", {"Type": "ACCPAY", "InvoiceNumber": "B-1", "Url": "https://crm/2"})]
    assert match_keys(bills, sent) == {"po-1": ("Url", "https://crm/1"), "po-2": ("Url", "https://crm/2")}
    returned = [{"InvoiceID": "b2", "InvoiceNumber": "B-1", "Url": "https://crm/2"},
                {"InvoiceID": "b1", "InvoiceNumber": "B-1", "Url": "https://crm/1"}]
    assert [r.xero_id for r in pair_results(bills, sent, returned)] == ["b1", "b2"]
    with pytest.raises(ValueError, match="by position"):
        match_keys(bills, [("a", {"Type": "ACCPAY"}), ("b", {"Type": "ACCPAY"})])


def test_payments_pair_by_invoice_when_unique() -> None:
    sent = [("p1", {"Invoice": {"InvoiceID": "i1"}, "Amount": 10}), ("p2", {"Invoice": {"InvoiceID": "i2"}, "Amount": 5})]
    returned = [{"PaymentID": "x2", "Invoice": {"InvoiceID": "I2"}}, {"PaymentID": "x1", "Invoice": {"InvoiceID": "i1"}}]
    assert [r.xero_id for r in pair_results(ENTITIES["Payments"], sent, returned)] == ["x1", "x2"]


def test_idempotency_key_depends_on_content_and_changes_only_after_an_error_answer() -> None:
    a = content_hash("t1", "PUT", "/Contacts", {"summarizeErrors": "false"}, {"Contacts": [{"Name": "A", "X": 1}]})
    same = content_hash("t1", "put", "/Contacts", {"summarizeErrors": "false"}, {"Contacts": [{"X": 1, "Name": "A"}]})
    assert a == same
    assert a != content_hash("t2", "PUT", "/Contacts", {"summarizeErrors": "false"}, {"Contacts": [{"Name": "A", "X": 1}]})
    assert a != content_hash("t1", "POST", "/Contacts", {"summarizeErrors": "false"}, {"Contacts": [{"Name": "A", "X": 1}]})
    keys = IdempotencyKeys()
    first = keys.current(a)
    assert keys.current(a) == first  # a transport retry reuses it
    keys.answered_with_error(first)
    second = keys.current(a)
    assert second != first and len(second) <= 128
    keys.answered_with_error(first)  # a late duplicate report for the old key changes nothing
    assert keys.current(a) == second


def test_jsonable_makes_decimals_and_dates_sendable() -> None:
    value = jsonable({"UnitAmount": Decimal("0.1234"), "Date": datetime(2025, 7, 1).date(), "Lines": ({"Q": Decimal(2)},)})
    assert value == {"UnitAmount": 0.1234, "Date": "2025-07-01", "Lines": [{"Q": 2.0}]}


def test_day_budget_from_headers_stops_before_the_reserve() -> None:
    limiter = XeroTenantLimiter("t", 60, 60.0, 5, daily_budget=5000, day_reserve=3)
    with limiter.slot():
        pass
    limiter.observe({"X-DayLimit-Remaining": "5", "X-MinLimit-Remaining": "59"})
    with limiter.slot():  # 5 left -> 4 after this call, above the reserve
        pass
    limiter.observe({"X-DayLimit-Remaining": "4"})
    with limiter.slot():
        pass
    limiter.observe({"X-DayLimit-Remaining": "3"})
    with pytest.raises(BudgetExhausted, match="reserve"), limiter.slot():
        pass


def test_a_day_429_blocks_until_retry_after() -> None:
    now = [1000.0]
    limiter = XeroTenantLimiter("t", 60, 60.0, 5, daily_budget=5000, clock=lambda: now[0])
    limiter.day_spent(120.0)
    with pytest.raises(BudgetExhausted):
        limiter.check_budget()
    now[0] += 121
    limiter.check_budget()  # a probe may go once Xero's window has passed


def test_foreign_calls_revealed_by_the_minute_header_are_booked() -> None:
    limiter = XeroTenantLimiter("t", 60, 60.0, 5, daily_budget=5000)
    for _ in range(3):
        with limiter.slot():
            pass
    limiter.observe({"X-MinLimit-Remaining": "57"})  # Xero counts exactly our 3
    assert limiter.foreign_calls == 0 and limiter.in_window() == 3
    limiter.observe({"X-MinLimit-Remaining": "40"})  # someone else made 17 calls
    assert limiter.foreign_calls == 17 and limiter.in_window() == 20


def test_if_modified_since_is_utc_to_the_second() -> None:
    nz = timezone(timedelta(hours=13))
    assert if_modified_since(datetime(2025, 7, 2, 9, 30, 15, 999, tzinfo=nz)) == "2025-07-01T20:30:15Z"
    assert if_modified_since(datetime(2025, 7, 2, 9, 30, 15)) == "2025-07-02T09:30:15Z"


def test_xero_dates_are_read_as_utc() -> None:
    assert xero_datetime("/Date(1539993600000+0000)/") == datetime(2018, 10, 20, tzinfo=UTC)
    assert xero_datetime("/Date(1539993600000+1300)/") == datetime(2018, 10, 20, tzinfo=UTC)
    assert xero_datetime("2025-07-01T10:00:00") == datetime(2025, 7, 1, 10, tzinfo=UTC)
    assert xero_datetime(None) is None and xero_datetime("soon") is None
