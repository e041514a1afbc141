"""Xero -> Zoho: write-back of linked documents (amounts, payments, credit notes, lock status,
reverse status only from the live picklist), rejects into Xero_Sync_Status, records created in Xero."""

from __future__ import annotations

from datetime import UTC, datetime

from mappings import (
    payments_summary,
    writeback_documents,
    writeback_rejects,
    xero_contact_people_to_zoho,
    xero_contacts_to_zoho,
    xero_invoices_to_zoho,
)
from mappings.rejects import make_reject
from tests.test_mappings_data import demo_org, demo_ref, org_with

NOW = datetime(2025, 7, 20, 1, 2, 3, tzinfo=UTC)
MS = {"2025-07-10": "/Date(1752105600000+0000)/", "2025-07-15": "/Date(1752537600000+0000)/"}


def xero_invoice(**kw):
    base = {
        "InvoiceID": "xi-1",
        "InvoiceNumber": "INV-0042",
        "Type": "ACCREC",
        "Status": "AUTHORISED",
        "CurrencyCode": "NZD",
        "Total": 276.0,
        "AmountPaid": 0.0,
        "AmountDue": 276.0,
        "AmountCredited": 0.0,
        "Contact": {"ContactID": "xc-acme", "Name": "Acme Ltd"},
        "Date": "/Date(1751328000000+0000)/",
        "DueDate": "/Date(1753920000000+0000)/",
        "LineAmountTypes": "Exclusive",
        "LineItems": [
            {
                "LineItemID": "li-1",
                "ItemCode": "HW-001",
                "Description": "Router",
                "Quantity": 2.0,
                "UnitAmount": 120.0,
                "TaxType": "OUTPUT2",
                "AccountCode": "200",
                "DiscountAmount": 5,
            }
        ],
    }
    base.update(kw)
    return base


def part_paid():
    return xero_invoice(
        Status="AUTHORISED",
        AmountPaid=100.0,
        AmountDue=176.0,
        Payments=[{"PaymentID": "pay-1", "Date": MS["2025-07-10"], "Amount": 100.0, "Reference": "DEP 1"}],
    )


def test_writeback_of_a_part_paid_invoice() -> None:
    res = writeback_documents(
        [part_paid()],
        org=demo_org(),
        ref=demo_ref(),
        links={"xi-1": "z-1"},
        now=NOW,
        online_urls={"xi-1": "https://in.xero.com/abc"},
    )
    (w,) = res.writes
    assert w.action == "update" and w.zoho_id == "z-1" and w.xero_id == "xi-1"
    assert w.record == {
        "id": "z-1",
        "Xero_Invoice_ID": "xi-1",
        "Xero_Invoice_Number": "INV-0042",
        "Xero_Status": "AUTHORISED",
        "Xero_Amount_Paid": 100.0,
        "Xero_Amount_Due": 176.0,
        "Xero_Fully_Paid_On": None,
        "Xero_Online_URL": "https://in.xero.com/abc",
        "Xero_Payments": "2025-07-10 payment 100.00 NZD (DEP 1)",
        "Xero_Sync_Status": "locked-part-paid",
        "Xero_Last_Synced": "2025-07-20T13:02:03+12:00",
    }
    assert res.rejects == []


def test_paid_invoice_with_credit_note_and_polled_payments() -> None:
    inv = xero_invoice(
        Status="PAID",
        AmountPaid=256.0,
        AmountDue=0.0,
        AmountCredited=20.0,
        FullyPaidOnDate=MS["2025-07-15"],
        Payments=[{"PaymentID": "pay-1", "Date": MS["2025-07-10"], "Amount": 100.0}],
        CreditNotes=[
            {
                "CreditNoteID": "cn-1",
                "CreditNoteNumber": "CN-0001",
                "AppliedAmount": 20.0,
                "Date": MS["2025-07-10"],
            }
        ],
    )
    polled = [
        {"PaymentID": "pay-2", "Date": MS["2025-07-15"], "Amount": 156.0, "Invoice": {"InvoiceID": "xi-1"}},
        {"PaymentID": "pay-1", "Date": MS["2025-07-10"], "Amount": 100.0, "Invoice": {"InvoiceID": "xi-1"}},
        {
            "PaymentID": "pay-x",
            "Date": MS["2025-07-10"],
            "Amount": 5.0,
            "Invoice": {"InvoiceID": "xi-1"},
            "Status": "DELETED",
        },
    ]
    res = writeback_documents(
        [inv], org=demo_org(), ref=demo_ref(), links={"xi-1": "z-1"}, payments=polled, now=NOW
    )
    rec = res.writes[0].record
    assert rec["Xero_Sync_Status"] == "locked-paid" and rec["Xero_Fully_Paid_On"] == "2025-07-15"
    assert rec["Xero_Payments"] == (
        "2025-07-10 credit note 20.00 NZD (CN-0001); 2025-07-10 payment 100.00 NZD; "
        "2025-07-15 payment 156.00 NZD"
    )


def test_unchanged_writeback_is_skipped_and_ignores_the_timestamp() -> None:
    first = writeback_documents([part_paid()], org=demo_org(), ref=demo_ref(), links={"xi-1": "z-1"}, now=NOW)
    digest = first.writes[0].content_hash
    later = datetime(2025, 8, 1, tzinfo=UTC)
    again = writeback_documents(
        [part_paid()],
        org=demo_org(),
        ref=demo_ref(),
        links={"xi-1": "z-1"},
        now=later,
        written_hashes={"z-1": digest},
    )
    assert again.writes == [] and len(again.unchanged) == 1
    assert writeback_documents(
        [xero_invoice(Status="PAID")],
        org=demo_org(),
        ref=demo_ref(),
        links={"xi-1": "z-1"},
        written_hashes={"z-1": digest},
    ).writes  # changed -> written


def test_reverse_status_only_when_zoho_does_not_already_stand_for_it() -> None:
    inv = xero_invoice(Status="AUTHORISED")
    kw = dict(org=demo_org(), ref=demo_ref(), links={"xi-1": "z-1"}, now=NOW)
    # Approved in Xero while Zoho still says Created: Zoho becomes Approved (a live picklist value).
    assert (
        writeback_documents([inv], zoho_status={"z-1": "Created"}, **kw).writes[0].record["Status"]
        == "Approved"
    )
    # Zoho's Delivered already maps to AUTHORISED: the user's value is kept.
    assert "Status" not in writeback_documents([inv], zoho_status={"z-1": "Delivered"}, **kw).writes[0].record
    voided = xero_invoice(Status="VOIDED")
    assert writeback_documents([voided], zoho_status={"z-1": "Approved"}, **kw).writes[0].record[
        "Status"
    ] == ("Cancelled")
    # A value the live picklist lacks is never written: a non-blocking reject, the rest still goes.
    org = org_with(
        status={"invoices": {"to_xero": {"Created": "DRAFT"}, "to_zoho": {"AUTHORISED": "Invoiced"}}}
    )
    res = writeback_documents(
        [inv], org=org, ref=demo_ref(), links={"xi-1": "z-1"}, zoho_status={"z-1": "Created"}
    )
    assert "Status" not in res.writes[0].record and [r.rule for r in res.rejects] == ["zoho.picklist_value"]
    assert res.rejects[0].blocking is False


def test_purchase_order_writeback_for_bills_and_orders() -> None:
    bill = {
        "InvoiceID": "xb-1",
        "InvoiceNumber": "PO-0009",
        "Type": "ACCPAY",
        "Status": "AUTHORISED",
        "AmountPaid": 0,
    }
    res = writeback_documents(
        [bill], org=demo_org(), ref=demo_ref(), links={"xb-1": "po-1"}, module="Purchase_Orders", now=NOW
    )
    rec = res.writes[0].record
    assert (
        rec["Xero_Bill_ID"] == "xb-1"
        and rec["Xero_Number"] == "PO-0009"
        and rec["Xero_Sync_Status"] == "synced"
    )
    assert "Xero_Last_Synced" not in rec  # the module has no such field in the live metadata
    order = {"PurchaseOrderID": "xp-1", "PurchaseOrderNumber": "PO-1", "Status": "BILLED"}
    rec = (
        writeback_documents(
            [order], org=demo_org(), ref=demo_ref(), links={"xp-1": "po-2"}, module="Purchase_Orders", now=NOW
        )
        .writes[0]
        .record
    )
    assert rec["Xero_PO_ID"] == "xp-1" and rec["Xero_Status"] == "BILLED"


def test_rejects_become_sync_status_text() -> None:
    org, ref = demo_org(), demo_ref()
    rejects = [
        make_reject(
            "tax.unmapped",
            org="demo",
            module="Invoices",
            record_id="z-1",
            value="Luxury Tax 20%",
            line=1,
            file="orgs/demo.yaml",
            key="tax.map",
        ),
        make_reject(
            "lock.paid",
            org="demo",
            module="Invoices",
            record_id="z-2",
            doc_type="sales invoice",
            xero_number="INV-1",
        ),
        make_reject("zoho.picklist_value", org="demo", module="Invoices", record_id="z-3", value="x"),
        make_reject("contact.name_missing", org="demo", module="Accounts", record_id="a-1"),
    ]
    (res,) = writeback_rejects(rejects, org=org, ref=ref)
    assert res.module == "Invoices"
    assert {w.zoho_id: w.record["Xero_Sync_Status"] for w in res.writes} == {
        "z-1": "rejected: line 1 is taxed 'Luxury Tax 20%', which has no Xero TaxType mapping",
        "z-2": "locked-paid",
    }
    again = writeback_rejects(
        rejects, org=org, ref=ref, written_hashes={w.zoho_id: w.content_hash for w in res.writes}
    )
    assert again[0].writes == [] and len(again[0].unchanged) == 2


def test_contacts_created_in_xero_become_zoho_accounts_and_vendors() -> None:
    contacts = [
        {
            "ContactID": "xc-new",
            "Name": "New Customer",
            "ContactStatus": "ACTIVE",
            "IsCustomer": True,
            "FirstName": "Nia",
            "LastName": "Ngata",
            "EmailAddress": "nia@new.example.com",
            "Phones": [{"PhoneType": "DEFAULT", "PhoneNumber": " 09 555 0300 "}],
            "Addresses": [{"AddressType": "POBOX", "AddressLine1": "3 Shore Rd", "City": "Tauranga"}],
        },
        {"ContactID": "xc-ours", "Name": "From Zoho", "ContactNumber": "acc-1", "ContactStatus": "ACTIVE"},
        {"ContactID": "xc-linked", "Name": "Linked", "ContactStatus": "ACTIVE"},
        {"ContactID": "xc-sup", "Name": "Supplier Only", "IsSupplier": True, "ContactStatus": "ACTIVE"},
        {"ContactID": "xc-arch", "Name": "Gone", "ContactStatus": "ARCHIVED"},
    ]
    accounts, vendors = sorted(
        xero_contacts_to_zoho(contacts, org=demo_org(), ref=demo_ref(), linked=["xc-linked"]),
        key=lambda r: r.module,
    )
    assert [w.xero_id for w in accounts.writes] == ["xc-new"]
    assert accounts.writes[0].record == {
        "Account_Name": "New Customer",
        "Phone": "09 555 0300",
        "Xero_Contact_ID": "xc-new",
        "Billing_Street": "3 Shore Rd",
        "Billing_City": "Tauranga",
    }
    assert vendors.writes == []  # demo.yaml: vendors sync to-xero only
    people = xero_contact_people_to_zoho(
        contacts, org=demo_org(), ref=demo_ref(), account_links={"xc-new": "z-9"}
    )
    assert people.writes[0].record == {
        "Last_Name": "Ngata",
        "First_Name": "Nia",
        "Email": "nia@new.example.com",
        "Account_Name": {"id": "z-9"},
        "Xero_Contact_ID": "xc-new",
    }


def test_invoices_created_in_xero_become_zoho_invoices() -> None:
    inv = xero_invoice(InvoiceID="xi-9", InvoiceNumber="INV-0900", Reference="Walk-in sale", Status="PAID")
    res = xero_invoices_to_zoho(
        [inv, xero_invoice(InvoiceID="xi-linked"), xero_invoice(InvoiceID="xb", Type="ACCPAY")],
        org=demo_org(),
        ref=demo_ref(),
        linked=["xi-linked"],
        contact_links={"xc-acme": "z-acc"},
        item_links={"HW-001": "z-prod"},
    )
    (w,) = res.writes
    assert w.action == "create" and w.xero_id == "xi-9"
    assert w.record == {
        "Subject": "Walk-in sale",
        "Invoice_Date": "2025-07-01",
        "Due_Date": "2025-07-31",
        "Currency": "NZD",
        "Xero_Invoice_ID": "xi-9",
        "Xero_Invoice_Number": "INV-0900",
        "Xero_Amount_Due": 276.0,  # the demo's invoices_to_zoho mapping (rounded to 2 dp)
        "Account_Name": {"id": "z-acc"},
        "Invoiced_Items": [
            {
                "Product_Name": {"id": "z-prod"},
                "Quantity": 2.0,
                "List_Price": 120.0,
                "Description": "Router",
                "Discount": 5.0,
                "Line_Tax": [{"name": "GST 15%", "percentage": 15.0}],
            }
        ],
    }
    assert res.rejects == []


def test_payments_summary_is_deterministic() -> None:
    inv = part_paid()
    assert payments_summary(inv) == payments_summary(dict(reversed(list(inv.items()))))
    assert payments_summary(xero_invoice()) == ""


def test_values_missing_from_a_live_picklist_are_not_written() -> None:
    inv = xero_invoice(InvoiceID="xi-9", CurrencyCode="JPY")
    res = xero_invoices_to_zoho(
        [inv],
        org=demo_org(),
        ref=demo_ref(),
        linked=[],
        contact_links={"xc-acme": "z"},
        item_links={"HW-001": "p"},
    )
    assert "Currency" not in res.writes[0].record
    assert [(r.rule, r.field, r.blocking) for r in res.rejects] == [
        ("zoho.picklist_value", "Currency", False)
    ]


def test_payments_conflict_policy_zoho_keeps_zoho_edits() -> None:
    org = org_with(conflicts={"payments": "zoho"})
    res = writeback_documents(
        [part_paid()], org=org, ref=demo_ref(), links={"xi-1": "z-1"}, zoho_edited=["z-1"]
    )
    rec = res.writes[0].record
    assert "Xero_Amount_Paid" not in rec and "Xero_Payments" not in rec and rec["Xero_Status"] == "AUTHORISED"
    rec = (
        writeback_documents(
            [part_paid()], org=demo_org(), ref=demo_ref(), links={"xi-1": "z-1"}, zoho_edited=["z-1"]
        )
        .writes[0]
        .record
    )
    assert rec["Xero_Amount_Paid"] == 100.0  # the demo lets Xero win payment fields
