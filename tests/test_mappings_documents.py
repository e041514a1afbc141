"""Zoho documents -> Xero documents with the demo config: payload shape, arithmetic, create /
update / unchanged, LineItemIDs kept, lock rules, cancellations, header amounts, rounding."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mappings import (
    Link,
    map_deletions,
    map_invoices,
    map_purchase_orders,
    map_quotes,
    map_sales_orders,
    match_line_ids,
)
from tests.test_mappings_data import (
    PRODUCTS,
    demo_org,
    demo_ref,
    org_with,
    ref_with,
    zoho_invoice,
    zoho_line,
    zoho_purchase_order,
)

LINKS = {"acc-1": "xc-acme", "v-1": "xc-parts"}


def run(records, org=None, **kw):
    kw.setdefault("contact_links", LINKS)
    kw.setdefault("products", PRODUCTS)
    return map_invoices(records, org=org or demo_org(), ref=kw.pop("ref", demo_ref()), **kw)


def test_invoice_to_accrec_with_the_demo_config() -> None:
    inv = zoho_invoice(
        "4150868000000224005",
        [zoho_line("p-hw-001", 2, line_id="L1"), zoho_line("p-sv-001", 1.5, line_id="L2", discount=10)],
        number="INV-00042",
        status="Approved",
        currency="AUD",
        Purchase_Order="PO-778",
    )
    res = run([inv])
    assert res.rejects == [] and res.counts()["create"] == 1
    doc = res.documents[0]
    p = doc.payload
    assert p["Type"] == "ACCREC" and p["Contact"] == {"ContactID": "xc-acme"}
    assert p["Status"] == "AUTHORISED" and p["InvoiceNumber"] == "INV-00042"
    assert p["Date"] == "2025-07-01" and p["DueDate"] == "2025-07-31" and p["LineAmountTypes"] == "Exclusive"
    assert p["CurrencyCode"] == "AUD" and "CurrencyRate" not in p  # rate policy: Xero's daily rate
    assert p["BrandingThemeID"] == "theme-special"  # branding rule by Currency
    assert p["Reference"] == "PO-778"  # first non-empty of [Purchase_Order, Subject]
    assert p["Url"] == "https://crm.zoho.com/crm/tab/Invoices/4150868000000224005"
    l1, l2 = p["LineItems"]
    assert l1 == {
        "Description": "Router",
        "Quantity": 2.0,
        "UnitAmount": 120.0,
        "AccountCode": "200",
        "TaxType": "OUTPUT2",
        "Tracking": [{"Name": "Department", "Option": "Sales"}, {"Name": "Region", "Option": "North"}],
    }
    assert l2["AccountCode"] == "210"  # by product code SV-001 (before the Services category)
    assert l2["DiscountAmount"] == 10.0 and l2["Tracking"][0] == {"Name": "Department", "Option": "Services"}
    assert doc.total == pytest.approx(inv["Grand_Total"])
    assert doc.natural_key == {"InvoiceNumber": "INV-00042", "Url": p["Url"]}
    assert doc.line_keys == ("L1", "L2")
    assert doc.action == "create" and doc.xero_id is None and len(doc.content_hash) == 64


def test_numbering_authority_xero_puts_zoho_number_in_reference() -> None:
    org = org_with(numbering={"authority": "xero"}, fields={"invoices": []})
    res = run([zoho_invoice("i1", [zoho_line("p-hw-001", 1)], number="INV-7")], org=org)
    p = res.documents[0].payload
    assert "InvoiceNumber" not in p and p["Reference"] == "INV-7"
    assert res.documents[0].natural_key["Reference"] == "INV-7"


def test_item_code_only_for_items_xero_has() -> None:
    line = zoho_line("p-hw-001", 1)
    res = run([zoho_invoice("i1", [line])], item_links={"p-hw-001": "item-1"})
    assert res.documents[0].payload["LineItems"][0]["ItemCode"] == "HW-001"
    # Product_Code absent on the line: taken from the Products page passed in.
    res = run([zoho_invoice("i1", [zoho_line("p-hw-001", 1, with_code=False)])], item_links={"p-hw-001": "x"})
    assert res.documents[0].payload["LineItems"][0]["ItemCode"] == "HW-001"
    res = run([zoho_invoice("i1", [line])])
    assert "ItemCode" not in res.documents[0].payload["LineItems"][0]


def test_header_discount_and_adjustment_become_lines_to_their_accounts() -> None:
    inv = zoho_invoice("i1", [zoho_line("p-hw-001", 3)], discount="12.50", adjustment="-0.40", excise="2")
    res = run([inv])
    assert res.rejects == []
    lines = res.documents[0].payload["LineItems"]
    extra = {li["Description"]: li for li in lines[1:]}
    assert extra["Discount"] == {
        "Description": "Discount",
        "Quantity": 1.0,
        "UnitAmount": -12.5,
        "AccountCode": "200",
        "TaxType": "NONE",
    }
    assert extra["Adjustment"]["UnitAmount"] == -0.4 and extra["Adjustment"]["AccountCode"] == "260"
    assert extra["Excise duty"]["UnitAmount"] == 2.0
    assert res.documents[0].line_keys == (
        inv["Invoiced_Items"][0]["id"],
        "$discount",
        "$adjustment",
        "$excise_duty",
    )
    assert res.documents[0].total == pytest.approx(inv["Grand_Total"])


def test_header_discount_spread_pro_rata_keeps_grand_total() -> None:
    org = org_with(header_amounts={"discount": {"policy": "spread"}})
    inv = zoho_invoice(
        "i1",
        [
            zoho_line("p-hw-001", 1, line_id="a"),
            zoho_line("p-sw-001", 1, line_id="b"),
            zoho_line("p-sv-002", 2, line_id="c", taxes=["Zero Rated"]),
        ],
        discount="33.33",
    )
    res = run([inv], org=org)
    assert res.rejects == [], [r.message for r in res.rejects]
    lines = res.documents[0].payload["LineItems"]
    assert all("DiscountAmount" in li for li in lines[:3])
    # Gross shares pro rata (138, 573.85, 300 of 1011.85), converted to tax-exclusive amounts.
    # gross shares 4.55, 18.90, 9.88 (largest remainder), then 4.55/1.15 and 18.90/1.15 to 2 dp
    assert [li["DiscountAmount"] for li in lines[:3]] == [3.96, 16.43, 9.88]
    # Spreading a tax-inclusive discount over taxed lines can move the tax by a cent: the org's
    # rounding policy settles it on the ROUNDING account, so Xero's total is Zoho's exactly.
    assert [li["Description"] for li in lines[3:]] in ([], ["Rounding"])
    assert all(abs(li["UnitAmount"]) <= 0.05 for li in lines[3:])
    assert Decimal(str(res.documents[0].total)) == Decimal(str(inv["Grand_Total"]))


def test_rounding_line_on_the_rounding_system_account() -> None:
    inv = zoho_invoice("i1", [zoho_line("p-hw-001", 1)], grand_total=138.03)  # Xero: 120 + 18 = 138.00
    res = run([inv])
    assert res.rejects == []
    last = res.documents[0].payload["LineItems"][-1]
    assert last == {
        "Description": "Rounding",
        "Quantity": 1.0,
        "UnitAmount": 0.03,
        "AccountCode": "860",
        "TaxType": "NONE",
    }
    # The code is looked up by SystemAccount, never assumed to be 860.
    accounts = [
        dict(a, Code="8600") if a.get("SystemAccount") == "ROUNDING" else a
        for a in __import__("tests.test_mappings_data", fromlist=["x"]).XERO_ACCOUNTS["Accounts"]
    ]
    res = run([inv], ref=ref_with(accounts=accounts))
    assert res.documents[0].payload["LineItems"][-1]["AccountCode"] == "8600"
    # Beyond max_rounding_line it is a reject, never absorbed.
    res = run([zoho_invoice("i2", [zoho_line("p-hw-001", 1)], grand_total=140)])
    assert [r.rule for r in res.rejects] == ["totals.variance"]


def test_tolerance_accepts_small_variances_without_a_line() -> None:
    org = org_with(rounding={"tolerance": 0.05, "policy": "reject"})
    res = run([zoho_invoice("i1", [zoho_line("p-hw-001", 1)], grand_total=138.04)], org=org)
    assert res.rejects == [] and len(res.documents[0].payload["LineItems"]) == 1


def test_inclusive_and_notax_policies() -> None:
    org = org_with(tax={"line_amount_types": "Inclusive", "default": "OUTPUT2", "map": {}, "by_rate": {}})
    inv = zoho_invoice("i1", [zoho_line("p-hw-001", 1, price=115, taxes=[])])  # price includes GST
    res = run([inv], org=org)
    assert res.rejects == []
    p = res.documents[0].payload
    assert p["LineAmountTypes"] == "Inclusive" and p["LineItems"][0]["TaxType"] == "OUTPUT2"
    assert res.documents[0].total == 115.0
    org = org_with(tax={"line_amount_types": "NoTax"})
    res = run([zoho_invoice("i2", [zoho_line("p-hw-001", 1, taxes=[])])], org=org)
    assert res.rejects == [] and "TaxType" not in res.documents[0].payload["LineItems"][0]


def test_currency_rate_from_zoho_when_the_org_says_so() -> None:
    org = org_with(currency={"rate": "zoho"})
    res = run([zoho_invoice("i1", [zoho_line("p-hw-001", 1)], currency="USD", Exchange_Rate=0.5912)], org=org)
    assert res.documents[0].payload["CurrencyRate"] == 0.5912
    res = run([zoho_invoice("i1", [zoho_line("p-hw-001", 1)], currency="NZD")], org=org)
    assert "CurrencyRate" not in res.documents[0].payload


def test_unchanged_hash_means_no_write_and_update_keeps_line_item_ids() -> None:
    inv = zoho_invoice("i1", [zoho_line("p-hw-001", 2, line_id="L1"), zoho_line("p-sw-001", 1, line_id="L2")])
    first = run([inv]).documents[0]
    link = Link(
        xero_id="xi-1",
        content_hash=first.content_hash,
        line_ids={"L1": "li-1", "L2": "li-2"},
        xero_status="AUTHORISED",
    )
    again = run([inv], links={"i1": link})
    assert again.documents == [] and [d.action for d in again.unchanged] == ["unchanged"]
    # Edit: a new line and a changed quantity.
    edited = zoho_invoice(
        "i1",
        [
            zoho_line("p-hw-001", 3, line_id="L1"),
            zoho_line("p-sw-001", 1, line_id="L2"),
            zoho_line("p-sv-001", 1, line_id="L3"),
        ],
    )
    res = run([edited], links={"i1": link})
    (doc,) = res.documents
    assert doc.action == "update" and doc.payload["InvoiceID"] == "xi-1" and doc.xero_id == "xi-1"
    ids = [li.get("LineItemID") for li in doc.payload["LineItems"]]
    assert ids == ["li-1", "li-2", None]
    assert doc.content_hash != first.content_hash
    # The hash covers content only, not the Xero ids added for the update.
    assert "InvoiceID" not in run([edited]).documents[0].payload


def test_link_accepts_a_ledger_dataframe() -> None:
    import pandas as pd

    inv = zoho_invoice("i1", [zoho_line("p-hw-001", 2)])
    digest = run([inv]).documents[0].content_hash
    frame = pd.DataFrame([{"zoho_id": "i1", "xero_id": "xi-1", "content_hash": digest, "xero_status": None}])
    assert len(run([inv], links=frame).unchanged) == 1


def test_status_never_downgraded_on_an_authorised_invoice() -> None:
    inv = zoho_invoice("i1", [zoho_line("p-hw-001", 2)], status="Created")  # maps to DRAFT
    res = run([inv], links={"i1": Link(xero_id="xi-1", content_hash="old", xero_status="AUTHORISED")})
    assert res.documents[0].payload["Status"] == "AUTHORISED"
    res = run([inv], links={"i1": Link(xero_id="xi-1", content_hash="old", xero_status="SUBMITTED")})
    assert res.documents[0].payload["Status"] == "DRAFT"


@pytest.mark.parametrize(
    "status, paid, credited, rule",
    [
        ("PAID", 100.0, 0.0, "lock.paid"),
        ("AUTHORISED", 10.0, 0.0, "lock.part_paid"),
        ("AUTHORISED", 0.0, 5.0, "lock.part_paid"),
        ("VOIDED", 0.0, 0.0, "lock.final"),
        ("DELETED", 0.0, 0.0, "lock.final"),
    ],
)
def test_locked_documents_are_reported_not_pushed(
    status: str, paid: float, credited: float, rule: str
) -> None:
    inv = zoho_invoice("i1", [zoho_line("p-hw-001", 2)])
    link = Link(
        xero_id="xi-1",
        content_hash="old",
        xero_status=status,
        amount_paid=paid,
        amount_credited=credited,
        xero_number="INV-1",
    )
    res = run([inv], links={"i1": link})
    assert res.documents == [] and [r.rule for r in res.rejects] == [rule]
    assert "INV-1" in res.rejects[0].message
    # Unchanged content: nothing to report.
    digest = run([inv]).documents[0].content_hash
    res = run([inv], links={"i1": link.model_copy(update={"content_hash": digest})})
    assert res.rejects == [] and len(res.unchanged) == 1


@pytest.mark.parametrize(
    "xero_status, paid, action, status",
    [
        ("DRAFT", 0, "delete", "DELETED"),
        ("SUBMITTED", 0, "delete", "DELETED"),
        ("AUTHORISED", 0, "void", "VOIDED"),
    ],
)
def test_cancellation_with_opt_in(xero_status: str, paid: float, action: str, status: str) -> None:
    org = org_with(deletes={"enabled": True})
    inv = zoho_invoice("i1", [zoho_line("p-hw-001", 2)], status="Cancelled")
    res = run([inv], org=org, links={"i1": Link(xero_id="xi-1", xero_status=xero_status, amount_paid=paid)})
    (doc,) = res.documents
    assert doc.action == action and doc.payload == {"InvoiceID": "xi-1", "Status": status}


def test_cancellation_reports_and_skips() -> None:
    inv = zoho_invoice("i1", [zoho_line("p-hw-001", 2)], status="Cancelled")
    res = run([inv], links={"i1": Link(xero_id="xi-1", xero_status="AUTHORISED")})
    assert [r.rule for r in res.rejects] == ["cancel.not_enabled"]
    org = org_with(deletes={"enabled": True})
    res = run([inv], org=org, links={"i1": Link(xero_id="xi-1", xero_status="PAID", amount_paid=1)})
    assert [r.rule for r in res.rejects] == ["cancel.locked"]
    res = run([inv], org=org)  # never reached Xero: nothing to do
    assert res.documents == [] and res.rejects == [] and len(res.skipped) == 1
    res = run([inv], org=org, links={"i1": Link(xero_id="xi-1", xero_status="VOIDED")})
    assert res.documents == [] and res.rejects == [] and "already VOIDED" in res.skipped[0].reason


def test_sync_from_skips_old_unlinked_documents() -> None:
    org = org_with(sync_from="2025-07-01")
    old = zoho_invoice("i1", [zoho_line("p-hw-001", 1)], date="2025-06-30")
    new = zoho_invoice("i2", [zoho_line("p-hw-001", 1)], date="2025-07-01")
    res = run([old, new], org=org)
    assert [d.zoho_id for d in res.documents] == ["i2"] and [s.zoho_id for s in res.skipped] == ["i1"]
    res = run([old], org=org, links={"i1": Link(xero_id="x", content_hash="old")})
    assert [d.action for d in res.documents] == ["update"]


def test_rejects_never_block_good_records_in_the_same_page() -> None:
    good = [zoho_invoice(f"g{i}", [zoho_line("p-hw-001", i + 1)]) for i in range(5)]
    bad = [
        zoho_invoice("b1", [zoho_line("p-hw-001", 1)], status="On Hold"),
        zoho_invoice("b2", [zoho_line("p-hw-002", 1, taxes=["Luxury Tax 20%"])]),
        zoho_invoice("b3", [zoho_line("p-hw-001", 1)], account=None),
        zoho_invoice("b4", [zoho_line("p-hw-001", 1)], currency="GBP"),
        zoho_invoice("b5", [zoho_line("p-hw-001", 1)], date="2025-02-14"),
    ]
    res = run(good[:2] + bad + good[2:])
    assert [d.zoho_id for d in res.documents] == ["g0", "g1", "g2", "g3", "g4"]
    assert {r.record_id: r.rule for r in res.rejects} == {
        "b1": "status.unmapped",
        "b2": "tax.unmapped",
        "b3": "contact.missing",
        "b4": "currency.not_enabled",
        "b5": "date.before_year_lock",
    }


def test_bill_from_purchase_order() -> None:
    po = zoho_purchase_order(
        "po1",
        [zoho_line("p-hw-001", 2, discount=5, line_id="P1")],
        number="PO-0009",
        due="2025-08-15",
        discount=0,
    )
    res = map_purchase_orders([po], org=demo_org(), ref=demo_ref(), contact_links=LINKS, products=PRODUCTS)
    assert res.rejects == [], [r.message for r in res.rejects]
    p = res.documents[0].payload
    assert (
        p["Type"] == "ACCPAY"
        and p["InvoiceNumber"] == "PO-0009"
        and p["Contact"] == {"ContactID": "xc-parts"}
    )
    assert p["Url"].endswith("/tab/Purchase_Orders/po1") and res.documents[0].natural_key["Url"] == p["Url"]
    (li,) = p["LineItems"]
    # Bills take no discounts: the demo nets it into a 4 dp unit amount (2 x 120 - 5 = 235).
    assert "DiscountAmount" not in li and li["UnitAmount"] == 117.5 and li["AccountCode"] == "300"
    assert li["TaxType"] == "INPUT2" and "Reference" not in p
    assert res.documents[0].total == pytest.approx(po["Grand_Total"])
    assert res.entity == "Invoices" and res.module == "Purchase_Orders"


def test_purchase_order_target() -> None:
    org = org_with(
        modules={"purchase_orders": {"enabled": True, "direction": "to-xero", "target": "purchase_order"}},
        fields={"purchase_orders": [{"target": "DeliveryInstructions", "value": "Back door"}]},
    )
    po = zoho_purchase_order("po1", [zoho_line("p-hw-001", 2)], number="PO-0009", status="Created")
    res = map_purchase_orders([po], org=org, ref=demo_ref(), contact_links=LINKS, products=PRODUCTS)
    p = res.documents[0].payload
    assert res.entity == "PurchaseOrders" and "Type" not in p and "Url" not in p
    assert (
        p["PurchaseOrderNumber"] == "PO-0009" and p["DeliveryDate"] == "2025-07-31" and p["Status"] == "DRAFT"
    )
    assert p["DeliveryInstructions"] == "Back door"


def test_sales_orders_and_quotes_become_draft_invoices() -> None:
    so = zoho_invoice(
        "so1",
        [zoho_line("p-hw-001", 1)],
        items_key="Ordered_Items",
        SO_Number="SO-5",
        Created_Time="2025-07-02T09:00:00+12:00",
        status="Confirmed",
    )
    res = map_sales_orders([so], org=demo_org(), ref=demo_ref(), contact_links=LINKS, products=PRODUCTS)
    p = res.documents[0].payload
    assert p["Status"] == "DRAFT" and p["Reference"] == "SO-5" and p["Date"] == "2025-07-02"
    assert "InvoiceNumber" not in p and p["Type"] == "ACCREC"
    q = zoho_invoice(
        "q1",
        [zoho_line("p-hw-001", 1)],
        items_key="Quoted_Items",
        Quote_Number="Q-9",
        Created_Time="2025-07-03T09:00:00+12:00",
        Valid_Till="2025-08-01",
    )
    res = map_quotes([q], org=demo_org(), ref=demo_ref(), contact_links=LINKS, products=PRODUCTS)
    p = res.documents[0].payload
    assert p["Reference"] == "Q-9" and p["DueDate"] == "2025-08-01" and p["Status"] == "DRAFT"


def test_deterministic_output_for_the_same_input() -> None:
    inv = [
        zoho_invoice(
            f"i{i}", [zoho_line("p-hw-002", 7, line_id=f"a{i}"), zoho_line("p-sv-001", 1.25)], discount="1.11"
        )
        for i in range(20)
    ]
    a, b = run(inv), run(list(inv))
    assert [d.payload for d in a.documents] == [d.payload for d in b.documents]
    assert [d.content_hash for d in a.documents] == [d.content_hash for d in b.documents]


def test_match_line_ids_by_content_not_position() -> None:
    inv = zoho_invoice(
        "i1", [zoho_line("p-hw-001", 2, line_id="L1"), zoho_line("p-sw-001", 1, line_id="L2")], adjustment=1
    )
    doc = run([inv]).documents[0]
    sent = doc.payload["LineItems"]
    returned = [
        dict(sent[1], LineItemID="x2"),
        dict(sent[2], LineItemID="x3"),
        dict(sent[0], LineItemID="x1"),
    ]
    assert match_line_ids(doc, returned) == {"L1": "x1", "L2": "x2", "$adjustment": "x3"}


def test_line_discounts_as_rates() -> None:
    org = org_with(line_discounts="rate")
    inv = zoho_invoice("i1", [zoho_line("p-hw-001", 2, discount=24), zoho_line("p-sv-001", 3, discount=1)])
    res = run([inv], org=org)
    l1, l2 = res.documents[0].payload["LineItems"]
    assert l1["DiscountRate"] == 10.0 and "DiscountAmount" not in l1  # 24 of 240
    assert l2["DiscountRate"] == 0.35  # 1 of 286.50 = 0.349 % -> 0.35 %, Xero then computes the amount
    # 286.50 * (1 - 0.0035) = 285.49725 -> 285.50 vs Zoho's 285.50: same total, no rounding line.
    assert len(res.documents[0].payload["LineItems"]) == 2 and res.rejects == []


def test_due_days_fill_a_missing_due_date() -> None:
    po = zoho_purchase_order("po1", [zoho_line("p-hw-001", 2)], due=None, date="2025-07-01")
    res = map_purchase_orders([po], org=demo_org(), ref=demo_ref(), contact_links=LINKS, products=PRODUCTS)
    assert res.documents[0].payload["DueDate"] == "2025-07-31"  # demo.yaml: due_days.purchase_orders 30
    res = run([zoho_invoice("i1", [zoho_line("p-hw-001", 1)], due=None)])
    assert [r.rule for r in res.rejects] == ["date.due_missing"]  # invoices have no default terms in the demo


def test_zoho_deletions_follow_the_cancellation_rules() -> None:
    links = {
        "a": Link(xero_id="xa", xero_status="DRAFT"),
        "b": Link(xero_id="xb", xero_status="AUTHORISED"),
        "c": Link(xero_id="xc", xero_status="PAID", amount_paid=5),
    }
    deleted = [{"id": "a", "display_name": "INV-A"}, {"id": "b"}, {"id": "c"}, {"id": "never-synced"}]
    res = map_deletions(
        deleted, kind="invoice", org=org_with(deletes={"enabled": True}), ref=demo_ref(), links=links
    )
    assert [(d.zoho_id, d.action, d.payload) for d in res.documents] == [
        ("a", "delete", {"InvoiceID": "xa", "Status": "DELETED"}),
        ("b", "void", {"InvoiceID": "xb", "Status": "VOIDED"}),
    ]
    assert [(r.record_id, r.rule) for r in res.rejects] == [("c", "cancel.locked")]
    res = map_deletions(["a"], kind="invoice", org=demo_org(), ref=demo_ref(), links=links)
    assert res.documents == [] and [r.rule for r in res.rejects] == ["cancel.not_enabled"]
