"""Business rules as pure functions: Xero lock rules, transitions, cancellations, numbering,
conflict policy; and the validators used on their own (tracking limit, mapping check)."""

from __future__ import annotations

import pandas as pd
import pytest

from mappings import check_config
from mappings.rules import (
    INVOICE_TRANSITIONS,
    can_transition,
    cancellation,
    lock_state,
    lock_states,
    numbering_fields,
    plan_status,
    resolve_conflict,
)
from mappings.validate import Ctx, check_tracking
from tests.test_mappings_data import ZOHO_FIELDS, demo_org, demo_ref, org_with, ref_with


@pytest.mark.parametrize(
    "status, paid, credited, state",
    [
        ("DRAFT", 0, 0, "editable"),
        ("SUBMITTED", 0, 0, "editable"),
        ("AUTHORISED", 0, 0, "editable"),
        ("AUTHORISED", 0.01, 0, "locked-part-paid"),
        ("AUTHORISED", 0, 3, "locked-part-paid"),
        ("PAID", 10, 0, "locked-paid"),
        ("VOIDED", 0, 0, "final"),
        ("DELETED", 0, 0, "final"),
        (None, 0, 0, "editable"),
    ],
)
def test_lock_state(status, paid, credited, state) -> None:
    assert lock_state(status, paid, credited) == state
    got = lock_states(pd.Series([status], dtype=object), pd.Series([paid]), pd.Series([credited]))
    assert got.tolist() == [state]


def test_purchase_order_lock_and_transitions() -> None:
    assert lock_state("BILLED", kind="purchase_order") == "final"
    assert lock_state("AUTHORISED", 10, kind="purchase_order") == "editable"
    assert can_transition("AUTHORISED", "BILLED", "purchase_order")
    assert not can_transition("BILLED", "AUTHORISED", "purchase_order")


@pytest.mark.parametrize(
    "current, desired, ok",
    [
        ("DRAFT", "SUBMITTED", True),
        ("DRAFT", "AUTHORISED", True),
        ("DRAFT", "DELETED", True),
        ("SUBMITTED", "DRAFT", True),
        ("SUBMITTED", "AUTHORISED", True),
        ("SUBMITTED", "DELETED", True),
        ("AUTHORISED", "VOIDED", True),
        ("AUTHORISED", "DRAFT", False),
        ("AUTHORISED", "DELETED", False),
        ("AUTHORISED", "AUTHORISED", True),
        ("PAID", "VOIDED", False),
        ("VOIDED", "DRAFT", False),
        ("DELETED", "DRAFT", False),
        ("DRAFT", "PAID", False),
    ],
)
def test_invoice_transitions(current, desired, ok) -> None:
    assert can_transition(current, desired) is ok


def test_no_transition_out_of_paid_voided_deleted() -> None:
    for status in ("PAID", "VOIDED", "DELETED"):
        assert INVOICE_TRANSITIONS[status] == frozenset()
    assert not can_transition("AUTHORISED", "VOIDED", amount_paid=5)  # a payment blocks voiding


def test_plan_status_keeps_an_approved_document_approved() -> None:
    assert plan_status("AUTHORISED", "DRAFT") == "AUTHORISED"
    assert plan_status("DRAFT", "AUTHORISED") == "AUTHORISED"
    assert plan_status(None, "SUBMITTED") == "SUBMITTED"


@pytest.mark.parametrize(
    "current, paid, credited, kind, expected",
    [
        ("DRAFT", 0, 0, "invoice", ("delete", "DELETED")),
        ("SUBMITTED", 0, 0, "invoice", ("delete", "DELETED")),
        ("AUTHORISED", 0, 0, "invoice", ("void", "VOIDED")),
        ("AUTHORISED", 1, 0, "invoice", ("report", None)),
        ("AUTHORISED", 0, 1, "invoice", ("report", None)),
        ("PAID", 9, 0, "invoice", ("report", None)),
        ("VOIDED", 0, 0, "invoice", ("skip", None)),
        (None, 0, 0, "invoice", ("skip", None)),
        ("AUTHORISED", 0, 0, "purchase_order", ("delete", "DELETED")),
        ("BILLED", 0, 0, "purchase_order", ("report", None)),
    ],
)
def test_cancellation_decision(current, paid, credited, kind, expected) -> None:
    assert cancellation(current, paid, credited, kind) == expected


def test_numbering_authority() -> None:
    assert numbering_fields("invoice", "zoho", "INV-1") == {"InvoiceNumber": "INV-1"}
    assert numbering_fields("invoice", "xero", "INV-1") == {"Reference": "INV-1"}
    assert numbering_fields("bill", "xero", "PO-1") == {"InvoiceNumber": "PO-1"}
    assert numbering_fields("purchase_order", "zoho", "PO-1") == {"PurchaseOrderNumber": "PO-1"}
    assert numbering_fields("purchase_order", "xero", "PO-1") == {"Reference": "PO-1"}
    assert numbering_fields("quote", "zoho", "Q-1") == {"Reference": "Q-1"}
    assert numbering_fields("invoice", "zoho", None) == {}


def test_conflict_policy() -> None:
    policy = {"sales": "zoho", "payments": "xero"}
    assert resolve_conflict("sales", True, True, policy) == "zoho"
    assert resolve_conflict("payments", True, True, policy) == "xero"
    assert resolve_conflict("sales", False, True, policy) == "xero"
    assert resolve_conflict("payments", True, False, policy) == "zoho"
    assert resolve_conflict("sales", False, False, policy) is None


def test_more_than_two_tracking_categories_per_line_is_rejected() -> None:
    ctx = Ctx(org=demo_org(), ref=demo_ref(), module="Invoices", numbers={"i1": "INV-1"})
    frame = pd.DataFrame(
        [
            {
                "_doc": "i1",
                "_line": "L1",
                "_pos": 0,
                "c0": "Region",
                "o0": "North",
                "k0": "tracking[0]",
                "c1": "Department",
                "o1": "Sales",
                "k1": "tracking[1]",
                "c2": "Region",
                "o2": "South",
                "k2": "tracking[2]",
            }
        ]
    )
    rejects = check_tracking(ctx, frame, [("c0", "o0", "k0"), ("c1", "o1", "k1"), ("c2", "o2", "k2")])
    assert [r.rule for r in rejects] == ["tracking.too_many"] and "INV-1" in rejects[0].message


def test_the_demo_mapping_checks_clean_against_the_demo_reference_data() -> None:
    found = check_config(demo_org(), demo_ref())
    # The only gap is the deliberate one: the live picklist's "On Hold" has no mapping.
    assert [(r.rule, r.record_id) for r in found] == [
        ("status.unmapped", "status.invoices.to_xero.'On Hold'")
    ]


def test_mapping_check_lists_each_gap_with_its_key_and_fix() -> None:
    org = org_with(
        tax={"map": {"GST 15%": "OUTPUT9"}, "default": "TAX001"},
        accounts={"by_category": {"Hardware": "300"}, "defaults": {"invoices": "205"}},
        branding={"default": "Pink"},
        tracking=[
            {"category": "Project", "source": "Subject"},
            {"category": "Region", "source": "Billing_State", "options": {"A": "Nowhere"}},
        ],
        currency={"map": {"GBP": "GBP"}},
        numbering={"xero_number_field": "Xero_No"},
        status={
            "invoices": {
                "to_xero": {
                    "Created": "DRAFT",
                    "Approved": "AUTHORISED",
                    "Delivered": "AUTHORISED",
                    "On Hold": "DRAFT",
                },
                "cancel": ["Cancelled"],
                "to_zoho": {"PAID": "Paid"},
            }
        },
    )
    ref = ref_with(
        accounts={
            "Accounts": [
                a
                for a in __import__("tests.test_mappings_data", fromlist=["x"]).XERO_ACCOUNTS["Accounts"]
                if a.get("SystemAccount") != "ROUNDING"
            ]
        }
    )
    found = {(r.rule, r.record_id) for r in check_config(org, ref)}
    assert found == {
        ("tax.unknown_type", "tax.map.'GST 15%'"),
        ("tax.inactive", "tax.default"),
        ("account.wrong_class", "accounts.by_category.Hardware"),
        ("account.inactive", "accounts.defaults.invoices"),
        ("branding.unknown_theme", "branding.default"),
        ("tracking.unknown_category", "tracking[0]"),
        ("tracking.unknown_option", "tracking[1]"),
        ("currency.not_enabled", "currency.map.GBP"),
        ("rounding.no_account", "rounding.policy"),
        ("zoho.field_missing", "numbering.xero_number_field"),
        ("zoho.picklist_value", "status.invoices.to_zoho.PAID"),
    }
    for r in check_config(org, ref):
        assert r.record_id in r.message and f"Fix: {r.hint}" in r.message, r.message


def test_picklist_values_come_from_live_metadata_only() -> None:
    fields = {
        **ZOHO_FIELDS,
        "Invoices": {
            "fields": [
                dict(
                    f,
                    pick_list_values=[
                        {"actual_value": v}
                        for v in ("Created", "Approved", "Delivered", "Cancelled", "On Hold", "Disputed")
                    ],
                )
                if f["api_name"] == "Status"
                else f
                for f in ZOHO_FIELDS["Invoices"]["fields"]
            ]
        },
    }
    found = {r.record_id for r in check_config(demo_org(), ref_with(zoho_fields=fields))}
    assert "status.invoices.to_xero.Disputed" in found
