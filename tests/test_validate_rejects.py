"""Table-driven bad inputs: one case per rule and mapping gap. Each asserts the exact rule id, that
the message names the record, and that the fix hint names what to change (file and key where
the fix is in the org file)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from mappings import (
    RULES,
    Link,
    map_accounts,
    map_invoices,
    map_products,
    map_purchase_orders,
    writeback_documents,
    xero_invoices_to_zoho,
)
from tests.test_mappings_data import (
    PRODUCTS,
    XERO_ACCOUNTS,
    XERO_CONTACTS,
    XERO_ORGANISATION,
    ZOHO_FIELDS,
    demo_org,
    demo_ref,
    org_with,
    ref_with,
    zoho_account,
    zoho_contact,
    zoho_invoice,
    zoho_line,
    zoho_purchase_order,
)

FILE = "orgs/demo.yaml"
LINKS = {"acc-1": "xc-acme", "v-1": "xc-parts"}


@dataclass
class Case:
    rule: str
    run: Callable[[], Any]  # -> list of rejects
    record: str  # the record id or number the message must name
    hint: tuple[str, ...] = ()  # substrings the fix hint must contain
    others: set[str] = field(default_factory=set)  # other rules allowed for the same record


def inv(records, org=None, ref=None, **kw):
    kw.setdefault("contact_links", LINKS)
    kw.setdefault("products", PRODUCTS)
    return map_invoices(records, org=org or demo_org(), ref=ref or demo_ref(), **kw).rejects


def one(inv_id="i1", lines=None, **kw):
    return zoho_invoice(inv_id, lines if lines is not None else [zoho_line("p-hw-001", 2)], **kw)


def acc(records, org=None, ref=None, **kw):
    return map_accounts(records, org=org or demo_org(), ref=ref or demo_ref(), **kw).rejects


def prod(records, org=None):
    return map_products(records, org=org or demo_org(), ref=demo_ref()).rejects


def po(records, org=None):
    return map_purchase_orders(
        records, org=org or demo_org(), ref=demo_ref(), contact_links=LINKS, products=PRODUCTS
    ).rejects


def ref_lock(period: str, year: str):
    org = dict(XERO_ORGANISATION["Organisations"][0], PeriodLockDate=period, EndOfYearLockDate=year)
    return ref_with(organisation=org)


def xero_invoice(**kw):
    base = {
        "InvoiceID": "xi-1",
        "InvoiceNumber": "INV-0001",
        "Type": "ACCREC",
        "Status": "AUTHORISED",
        "AmountPaid": 0.0,
        "AmountDue": 138.0,
        "CurrencyCode": "NZD",
        "Date": "/Date(1751328000000+0000)/",
        "Contact": {"ContactID": "xc-acme", "Name": "Acme Ltd"},
        "LineItems": [
            {
                "ItemCode": "HW-001",
                "Description": "Router",
                "Quantity": 1,
                "UnitAmount": 120,
                "TaxType": "OUTPUT2",
                "AccountCode": "200",
            }
        ],
    }
    base.update(kw)
    return base


def wb(docs, org=None, ref=None, **kw):
    return writeback_documents(
        docs, org=org or demo_org(), ref=ref or demo_ref(), links={"xi-1": "i1"}, **kw
    ).rejects


def x2z(docs, org=None, **kw):
    kw.setdefault("contact_links", {"xc-acme": "acc-1"})
    kw.setdefault("item_links", {"HW-001": "p-hw-001"})
    return xero_invoices_to_zoho(docs, org=org or demo_org(), ref=demo_ref(), linked=[], **kw).rejects


ARCHIVED_CONTACTS = {
    "Contacts": XERO_CONTACTS["Contacts"]
    + [{"ContactID": "xc-old", "Name": "Old Co", "ContactStatus": "ARCHIVED", "ContactNumber": "acc-9"}]
}
NO_ROUNDING = {"Accounts": [a for a in XERO_ACCOUNTS["Accounts"] if a.get("SystemAccount") != "ROUNDING"]}
FIELDS_WITHOUT_PAYMENTS = {
    **ZOHO_FIELDS,
    "Invoices": {
        "fields": [f for f in ZOHO_FIELDS["Invoices"]["fields"] if f["api_name"] != "Xero_Payments"]
    },
}

CASES: list[Case] = [
    # --- mapping gaps -------------------------------------------------------------------------------------
    Case(
        "status.unmapped",
        lambda: inv([one(status="On Hold")]),
        "INV-i1",
        (FILE, "status.invoices.to_xero", "On Hold"),
    ),
    Case(
        "tax.unmapped",
        lambda: inv([one(lines=[zoho_line("p-hw-002", 3, taxes=["Luxury Tax 20%"])])]),
        "INV-i1",
        (FILE, "tax.map", "Luxury Tax 20%"),
    ),
    Case(
        "tax.multiple",
        lambda: inv([one(lines=[zoho_line("p-hw-001", 1, taxes=["GST 15%", "Luxury Tax 20%"])])]),
        "INV-i1",
        (FILE, "tax.map", "GST 15% + Luxury Tax 20%"),
    ),
    Case(
        "tax.no_default",
        lambda: inv([one(lines=[zoho_line("p-hw-001", 1, taxes=[])])], org=org_with(tax={"default": None})),
        "INV-i1",
        (FILE, "tax.default"),
    ),
    Case(
        "account.unmapped",
        lambda: inv([one()], org=org_with(accounts={"by_category": {}, "defaults": {}})),
        "INV-i1",
        (FILE, "accounts.by_category", "accounts.defaults.invoices"),
    ),
    Case("contact.missing", lambda: inv([one(account=None)]), "INV-i1", ("Account_Name",)),
    Case("contact.not_linked", lambda: inv([one()], contact_links={}), "INV-i1", (FILE, "modules.contacts")),
    Case(
        "dependency.contact_failed",
        lambda: inv([one()], failed={"acc-1": "name clash"}),
        "INV-i1",
        ("contact",),
    ),
    Case(
        "dependency.item_failed",
        lambda: inv([one()], failed={"p-hw-001": "code too long"}),
        "INV-i1",
        ("product",),
    ),
    Case(
        "currency.rate_missing",
        lambda: inv([one(currency="AUD", Exchange_Rate=None)], org=org_with(currency={"rate": "zoho"})),
        "INV-i1",
        (FILE, "currency.rate"),
    ),
    Case(
        "header.discount",
        lambda: inv([one(discount=5)], org=org_with(header_amounts={"discount": {"policy": "reject"}})),
        "INV-i1",
        (FILE, "header_amounts.discount.policy"),
    ),
    Case(
        "header.adjustment",
        lambda: inv([one(adjustment=1)], org=org_with(header_amounts={"adjustment": {"policy": "reject"}})),
        "INV-i1",
        (FILE, "header_amounts.adjustment.policy"),
    ),
    Case(
        "header.excise_duty",
        lambda: inv([one(excise=2)], org=org_with(header_amounts={"excise_duty": {"policy": "reject"}})),
        "INV-i1",
        (FILE, "header_amounts.excise_duty.policy"),
    ),
    Case(
        "field.lookup_missing",
        lambda: inv(
            [one(Layout={"name": "Export"})],
            org=org_with(
                fields={
                    "invoices": [
                        {
                            "target": "Reference",
                            "source": "Layout.name",
                            "transforms": [{"lookup": {"Standard": "STD"}, "strict": True}],
                        }
                    ]
                }
            ),
        ),
        "INV-i1",
        (FILE, "fields.invoices[0].transforms[0].lookup", "Export"),
    ),
    # --- pre-flight against reference data ----------------------------------------------------------------
    Case(
        "account.unknown",
        lambda: inv([one()], org=org_with(accounts={"by_category": {"Hardware": "999"}})),
        "INV-i1",
        (FILE, "accounts.by_category.Hardware"),
    ),
    Case(
        "account.inactive",
        lambda: inv([one()], org=org_with(accounts={"by_category": {"Hardware": "205"}})),
        "INV-i1",
        (FILE, "accounts.by_category.Hardware"),
    ),
    Case(
        "account.wrong_class",
        lambda: inv([one()], org=org_with(accounts={"by_category": {"Hardware": "300"}})),
        "INV-i1",
        (FILE, "revenue"),
    ),
    Case(
        "account.system",
        lambda: inv([one()], org=org_with(accounts={"by_category": {"Hardware": "610"}})),
        "INV-i1",
        (FILE, "DEBTORS"),
    ),
    Case(
        "tax.unknown_type",
        lambda: inv([one()], org=org_with(tax={"map": {"GST 15%": "OUTPUT9"}})),
        "INV-i1",
        (FILE, "tax.map.'GST 15%'"),
    ),
    Case(
        "tax.inactive",
        lambda: inv([one()], org=org_with(tax={"map": {"GST 15%": "TAX001"}})),
        "INV-i1",
        (FILE, "tax.map.'GST 15%'"),
    ),
    Case(
        "tax.not_applicable",
        lambda: inv([one()], org=org_with(tax={"map": {"GST 15%": "INPUT2"}})),
        "INV-i1",
        (FILE, "REVENUE"),
    ),
    Case(
        "tax.rate_mismatch",
        lambda: inv([one()], org=org_with(tax={"map": {"GST 15%": "ZERORATED"}})),
        "INV-i1",
        (FILE, "tax.map", "15%"),
    ),
    Case("currency.not_enabled", lambda: inv([one(currency="GBP")]), "INV-i1", ("GBP", FILE, "currency.map")),
    Case(
        "branding.unknown_theme",
        lambda: inv([one()], org=org_with(branding={"default": "Pink"})),
        "INV-i1",
        (FILE, "branding.default", "Standard"),
    ),
    Case(
        "tracking.unknown_category",
        lambda: inv([one()], org=org_with(tracking=[{"category": "Project", "source": "Subject"}])),
        "INV-i1",
        (FILE, "tracking[0]"),
    ),
    Case(
        "tracking.unknown_option",
        lambda: inv(
            [one(Billing_City="Invercargill")],
            org=org_with(tracking=[{"category": "Region", "source": "Billing_City"}]),
        ),
        "INV-i1",
        (FILE, "tracking[0]", "North"),
    ),
    Case(
        "tracking.inactive",
        lambda: inv(
            [one()],
            org=org_with(
                tracking=[
                    {
                        "category": "Department",
                        "level": "line",
                        "source": "product.Product_Category",
                        "options": {"Hardware": "Legacy"},
                    }
                ]
            ),
        ),
        "INV-i1",
        (FILE, "tracking[0]"),
    ),
    Case(
        "contact.archived",
        lambda: inv([one()], contact_links={"acc-1": "xc-old"}, ref=ref_with(contacts=ARCHIVED_CONTACTS)),
        "INV-i1",
        ("Xero",),
    ),
    Case("date.missing", lambda: inv([one(date=None)]), "INV-i1", ("Invoice_Date",)),
    Case("date.invalid", lambda: inv([one(date="31/07/2025")]), "INV-i1", ("Invoice_Date", "YYYY-MM-DD")),
    Case("date.before_year_lock", lambda: inv([one(date="2025-02-14")]), "INV-i1", ("2025-03-31",)),
    Case(
        "date.before_period_lock",
        lambda: inv([one(date="2025-05-01")], ref=ref_lock("2025-06-30", "2025-03-31")),
        "INV-i1",
        ("2025-06-30",),
    ),
    Case("date.due_missing", lambda: inv([one(due=None)]), "INV-i1", ("Due_Date",)),
    Case("lines.missing", lambda: inv([one(lines=[])]), "INV-i1", ("line item",)),
    Case(
        "line.quantity_invalid",
        lambda: inv([one(lines=[dict(zoho_line("p-hw-001", 1), Quantity=None)])]),
        "INV-i1",
        ("Quantity", "line 1"),
    ),
    Case(
        "line.price_invalid",
        lambda: inv([one(lines=[dict(zoho_line("p-hw-001", 1), List_Price="abc")])]),
        "INV-i1",
        ("List_Price", "line 1"),
    ),
    Case(
        "line.description_missing",
        lambda: inv([one(lines=[dict(zoho_line("p-hw-001", 1), Product_Name=None, Product_Code=None)])]),
        "INV-i1",
        ("line 1",),
    ),
    Case("length.exceeded", lambda: inv([one(number="N" * 300)]), "i1", ("Invoice_Number", FILE)),
    Case("totals.variance", lambda: inv([one(grand_total=999)]), "INV-i1", (FILE, "rounding")),
    Case(
        "totals.negative", lambda: inv([one(lines=[zoho_line("p-hw-001", -1)])]), "INV-i1", ("credit note",)
    ),
    Case(
        "rounding.no_account",
        lambda: inv([one(grand_total=276.02)], ref=ref_with(accounts=NO_ROUNDING)),
        "INV-i1",
        (FILE, "rounding.policy"),
    ),
    # --- Xero lock rules, cancellations, conflicts --------------------------------------------------------
    Case(
        "lock.paid",
        lambda: inv(
            [one()],
            links={
                "i1": Link(
                    xero_id="x",
                    content_hash="old",
                    xero_status="PAID",
                    amount_paid=276,
                    xero_number="INV-0001",
                )
            },
        ),
        "INV-i1",
        ("payment",),
    ),
    Case(
        "lock.part_paid",
        lambda: inv(
            [one()],
            links={"i1": Link(xero_id="x", content_hash="old", xero_status="AUTHORISED", amount_paid=5)},
        ),
        "INV-i1",
        ("credit note",),
    ),
    Case(
        "lock.final",
        lambda: inv([one()], links={"i1": Link(xero_id="x", content_hash="old", xero_status="VOIDED")}),
        "INV-i1",
        ("Zoho",),
    ),
    Case(
        "cancel.not_enabled",
        lambda: inv([one(status="Cancelled")], links={"i1": Link(xero_id="x", xero_status="DRAFT")}),
        "INV-i1",
        (FILE, "deletes.enabled"),
    ),
    Case(
        "cancel.locked",
        lambda: inv(
            [one(status="Cancelled")],
            org=org_with(deletes={"enabled": True}),
            links={"i1": Link(xero_id="x", xero_status="PAID", amount_paid=1)},
        ),
        "INV-i1",
        ("Xero",),
    ),
    Case(
        "conflict.xero_wins",
        lambda: inv(
            [one()],
            org=org_with(conflicts={"sales": "xero"}),
            links={"i1": Link(xero_id="x", content_hash="old", xero_status="DRAFT", xero_changed=True)},
        ),
        "INV-i1",
        (FILE, "conflicts.sales"),
    ),
    Case(
        "bill.discount",
        lambda: po(
            [zoho_purchase_order("po1", [zoho_line("p-hw-001", 2, discount=5)])],
            org=org_with(purchases={"discounts": "reject"}),
        ),
        "PO-po1",
        (FILE, "purchases.discounts"),
    ),
    # --- contacts and products ----------------------------------------------------------------------------
    Case("contact.name_missing", lambda: acc([zoho_account("acc-7", "  ")]), "acc-7", ("Account_Name",)),
    Case(
        "contact.name_clash",
        lambda: acc(
            [zoho_account("acc-8", "Walk-in Customer")],
            org=org_with(
                contacts={"name_clash": "report", "match_order": ["link", "contact_number", "email"]}
            ),
        ),
        "acc-8",
        (FILE, "contacts.name_clash"),
    ),
    Case(
        "email.invalid",
        lambda: acc(
            [zoho_account("acc-5", "Beta Ltd")],
            contacts=[zoho_contact("c5", "acc-5", "B", "Eta", "beta at example.com")],
        ),
        "acc-5",
        ("EmailAddress",),
    ),
    Case(
        "item.code_missing",
        lambda: prod([dict(PRODUCTS[0], Product_Code=None)]),
        "p-hw-001",
        ("Product_Code",),
    ),
    Case(
        "item.code_duplicate",
        lambda: prod([PRODUCTS[0], dict(PRODUCTS[1], Product_Code="HW-001")]),
        "p-hw-002",
        ("unique",),
    ),
    # --- values written to Zoho ---------------------------------------------------------------------------
    Case(
        "zoho.picklist_value",
        lambda: wb(
            [xero_invoice(Status="AUTHORISED")],
            org=org_with(
                status={"invoices": {"to_xero": {"Created": "DRAFT"}, "to_zoho": {"AUTHORISED": "Invoiced"}}}
            ),
            zoho_status={"i1": "Created"},
        ),
        "i1",
        (FILE, "status.invoices.to_zoho.AUTHORISED", "Created, Approved"),
    ),
    Case(
        "zoho.field_missing",
        lambda: wb([xero_invoice()], ref=ref_with(zoho_fields=FIELDS_WITHOUT_PAYMENTS)),
        "i1",
        ("zxsync setup zoho-fields demo",),
    ),
    Case("zoho.product_missing", lambda: x2z([xero_invoice()], item_links={}), "INV-0001", (FILE,)),
    Case("zoho.contact_missing", lambda: x2z([xero_invoice()], contact_links={}), "INV-0001", (FILE,)),
    Case(
        "field.required",
        lambda: x2z([xero_invoice(Reference=None, InvoiceNumber=None)]),
        "xi-1",
        (FILE, "fields.invoices_to_zoho", "Subject"),
    ),
    Case(
        "tax.reverse_unmapped",
        lambda: x2z([xero_invoice(LineItems=[dict(xero_invoice()["LineItems"][0], TaxType="INPUT2")])]),
        "INV-0001",
        (FILE, "tax.map", "INPUT2"),
    ),
]


def test_at_least_forty_distinct_cases_cover_the_catalogue() -> None:
    rules = [c.rule for c in CASES]
    assert len(set(rules)) == len(rules) >= 40
    # Every rule in the catalogue that a record can trigger has a case (tracking.too_many is guarded
    # by the config schema, which refuses more than two tracking categories; see test_rules_validators).
    assert set(RULES) - set(rules) == {"tracking.too_many"}


@pytest.mark.parametrize("case", CASES, ids=[c.rule for c in CASES])
def test_bad_input_is_rejected_with_rule_record_and_fix(case: Case) -> None:
    rejects = case.run()
    rules = [r.rule for r in rejects]
    assert case.rule in rules, [r.message for r in rejects]
    assert set(rules) - {case.rule} <= case.others, [r.message for r in rejects]
    r = next(r for r in rejects if r.rule == case.rule)
    assert r.org == "demo" and r.reason and r.hint
    assert case.record in r.message, r.message
    assert f"Fix: {r.hint}" in r.message
    for text in case.hint:
        assert text in r.hint or text in r.reason, r.message
    assert "{" not in r.reason + r.hint, r.message  # every template placeholder was filled
