"""Zoho Accounts (+ primary Contact) and Vendors -> Xero Contacts; first-sync matching; name clashes;
Products -> Items."""

from __future__ import annotations

import pandas as pd

from mappings import Link, map_accounts, map_products, map_vendors
from mappings.rules import match_contacts, normalise_name, resolve_name_clashes
from tests.test_mappings_data import (
    PRODUCTS,
    XERO_CONTACTS,
    demo_org,
    demo_ref,
    org_with,
    ref_with,
    zoho_account,
    zoho_contact,
    zoho_vendor,
)

XERO_WITH_PEOPLE = {
    "Contacts": XERO_CONTACTS["Contacts"]
    + [
        {
            "ContactID": "xc-num",
            "Name": "Numbered Ltd",
            "ContactNumber": "acc-010",
            "ContactStatus": "ACTIVE",
        },
        {
            "ContactID": "xc-mail",
            "Name": "Mail Match Ltd",
            "EmailAddress": "Ap@Beta.example.com",
            "ContactStatus": "ACTIVE",
        },
        {"ContactID": "xc-name", "Name": "Gamma  Industries, Ltd", "ContactStatus": "ACTIVE"},
        {"ContactID": "xc-other", "Name": "Delta Ltd", "ContactNumber": "acc-999", "ContactStatus": "ACTIVE"},
        {"ContactID": "xc-arch", "Name": "Epsilon Ltd", "ContactStatus": "ARCHIVED"},
    ]
}


def test_account_and_primary_contact_to_xero_contact() -> None:
    accounts = [
        zoho_account(
            "4150868000000101001",
            "Acme Ltd",
            Shipping_Street="9 Dock Rd",
            Shipping_City="Napier",
            Fax="+64 9 555 0199",
        )
    ]
    contacts = [
        zoho_contact(
            "c2",
            "4150868000000101001",
            "Ann",
            "Smith",
            "ann@acme.example.com",
            created="2025-03-01T09:00:00+13:00",
        ),
        zoho_contact(
            "c1",
            "4150868000000101001",
            "Bob",
            "Jones",
            "bob@acme.example.com",
            created="2025-02-01T09:00:00+13:00",
        ),
    ]
    res = map_accounts(accounts, org=demo_org(), ref=demo_ref(), contacts=contacts)
    assert res.rejects == []
    (doc,) = res.documents
    assert doc.action == "create" and doc.entity == "Contacts" and doc.module == "Accounts"
    p = doc.payload
    assert p["ContactNumber"] == "4150868000000101001" and doc.natural_key == {
        "ContactNumber": p["ContactNumber"]
    }
    assert (p["Name"], p["FirstName"], p["LastName"], p["EmailAddress"]) == (
        "Acme Ltd",
        "Bob",
        "Jones",
        "bob@acme.example.com",
    )  # the earliest Contact is the primary one
    assert p["Website"] == "www.example.co.nz"  # trim + lower from demo.yaml
    assert p["AccountNumber"] == "A001" and p["DefaultCurrency"] == "NZD"
    assert p["Addresses"] == [
        {
            "AddressType": "POBOX",
            "AddressLine1": "1 Queen St",
            "City": "Auckland",
            "Region": "Auckland",
            "PostalCode": "1010",
            "Country": "New Zealand",
        },  # lookup NZ -> New Zealand from demo.yaml
        {"AddressType": "STREET", "AddressLine1": "9 Dock Rd", "City": "Napier"},
    ]
    assert p["Phones"] == [
        {"PhoneType": "DEFAULT", "PhoneNumber": "+64 9 555 0100"},
        {"PhoneType": "MOBILE", "PhoneNumber": "+64 21 555 0100"},
        {"PhoneType": "FAX", "PhoneNumber": "+64 9 555 0199"},
    ]


def test_primary_contact_from_a_lookup_field() -> None:
    org = org_with(contacts={"primary_contact": "Primary_Contact"})
    acc = zoho_account("acc-001", "Acme Ltd", Primary_Contact={"id": "c2", "name": "Ann Smith"})
    contacts = [
        zoho_contact("c1", "acc-001", "Bob", "Jones", "bob@x.example.com", created="2020-01-01T00:00:00Z"),
        zoho_contact("c2", "acc-001", "Ann", "Smith", "ann@x.example.com"),
    ]
    p = map_accounts([acc], org=org, ref=demo_ref(), contacts=contacts).documents[0].payload
    assert p["FirstName"] == "Ann"


def test_vendor_to_supplier_contact() -> None:
    res = map_vendors(
        [zoho_vendor("v-77", "Parts Co", Website="HTTPS://Parts.example.com")], org=demo_org(), ref=demo_ref()
    )
    p = res.documents[0].payload
    assert (
        p["ContactNumber"] == "v-77"
        and p["Name"] == "Parts Co"
        and p["Website"] == "https://parts.example.com"
    )
    assert p["Addresses"][0]["City"] == "Wellington" and p["EmailAddress"] == "accounts@v-77.example.com"


def test_first_sync_matching_order() -> None:
    ref = ref_with(contacts=XERO_WITH_PEOPLE)
    accounts = [
        zoho_account("acc-001", "Linked Ltd"),
        zoho_account("acc-010", "Renamed Numbered"),
        zoho_account("acc-020", "Beta Ltd"),
        zoho_account("acc-030", "gamma industries ltd"),
        zoho_account("acc-040", "Delta Ltd"),
        zoho_account("acc-050", "Epsilon Ltd"),
        zoho_account("acc-060", "Brand New"),
    ]
    contacts = [zoho_contact("c20", "acc-020", "A", "P", "ap@beta.example.com")]
    links = {"acc-001": Link(xero_id="xc-linked")}
    res = map_accounts(accounts, org=demo_org(), ref=ref, contacts=contacts, links=links)
    got = {d.zoho_id: (d.action, d.xero_id, d.matched_by) for d in res.documents}
    assert got["acc-001"] == ("update", "xc-linked", "link")
    assert got["acc-010"] == ("update", "xc-num", "contact_number")
    assert got["acc-020"] == ("update", "xc-mail", "email")  # email match is case-insensitive
    assert got["acc-030"] == ("update", "xc-name", "name")  # punctuation/space/case-insensitive
    # Delta's Xero namesake belongs to another Zoho record (ContactNumber): a new contact, suffixed.
    assert got["acc-040"][0] == "create"
    assert (
        res.documents[[d.zoho_id for d in res.documents].index("acc-040")].payload["Name"]
        == "Delta Ltd (A040)"
    )
    # An archived namesake is never matched by name; names only clash with ACTIVE contacts.
    assert got["acc-050"] == ("create", None, None)
    assert got["acc-060"] == ("create", None, None)
    assert res.rejects == []
    for d in res.documents:
        if d.action == "update":
            assert d.payload["ContactID"] == d.xero_id and d.payload["ContactNumber"] == d.zoho_id


def test_matching_order_is_configurable_and_ties_are_deterministic() -> None:
    xero = pd.DataFrame(
        [
            {
                "ContactID": "x1",
                "ContactNumber": None,
                "Name": "Same",
                "EmailAddress": None,
                "ContactStatus": "ACTIVE",
            }
        ]
    )
    cands = pd.DataFrame({"zoho_id": ["z2", "z1"], "name": ["Same", "same"], "email": [None, None]})
    out = match_contacts(cands, xero, {}, ["link", "contact_number", "email", "name"]).set_index("zoho_id")
    assert out.loc["z1", "xero_id"] == "x1" and out.loc["z1", "matched_by"] == "name"
    assert pd.isna(out.loc["z2", "xero_id"])  # the smaller Zoho id wins a shared name
    out = match_contacts(cands.reset_index(drop=True), xero, {}, ["link", "contact_number", "email"])
    assert out["xero_id"].isna().all()  # name matching switched off


def test_name_clash_suffix_falls_back_to_the_id_tail_and_report_policy() -> None:
    ref = ref_with(contacts=XERO_WITH_PEOPLE)
    org = org_with(contacts={"match_order": ["link", "contact_number"]})
    acc = zoho_account("4150868000000123456", "Walk-in Customer", Account_Number=None)
    p = map_accounts([acc], org=org, ref=ref).documents[0].payload
    assert p["Name"] == "Walk-in Customer (123456)"
    org = org_with(contacts={"match_order": ["link", "contact_number"], "name_clash": "report"})
    res = map_accounts([acc], org=org, ref=ref)
    assert res.documents == [] and [r.rule for r in res.rejects] == ["contact.name_clash"]
    # Two Zoho records with the same name in one page: the smaller id keeps it.
    frame = pd.DataFrame(
        {
            "zoho_id": ["b", "a"],
            "name": ["Twin", "Twin"],
            "xero_id": [None, None],
            "Account_Number": ["B1", "A1"],
        }
    )
    out = resolve_name_clashes(frame, ref.contacts_frame, "suffix", " ({Account_Number})")
    assert out["name"].tolist() == ["Twin (B1)", "Twin"] and not out["clash"].any()


def test_unchanged_contact_is_not_rewritten() -> None:
    acc = zoho_account("acc-001", "Acme Ltd")
    first = map_accounts([acc], org=demo_org(), ref=demo_ref()).documents[0]
    res = map_accounts(
        [acc],
        org=demo_org(),
        ref=demo_ref(),
        links={"acc-001": Link(xero_id="xc-1", content_hash=first.content_hash)},
    )
    assert res.documents == [] and res.unchanged[0].xero_id == "xc-1"


def test_normalise_name() -> None:
    s = normalise_name(pd.Series(["  Smith & Sons, Ltd. ", "SMITH AND SONS LTD", None]))
    assert s.iloc[0] == s.iloc[1] == "smith and sons ltd" and pd.isna(s.iloc[2])


def test_products_to_items() -> None:
    res = map_products(PRODUCTS, org=demo_org(), ref=demo_ref())
    assert res.rejects == []
    by_code = {d.payload["Code"]: d for d in res.documents}
    cable = by_code["HW-002"].payload
    assert cable["SalesDetails"] == {"UnitPrice": 0.1234, "AccountCode": "200", "TaxType": "OUTPUT2"}
    assert cable["PurchaseDetails"] == {"AccountCode": "300", "TaxType": "INPUT2"}
    assert cable["Description"] == "Cable (HW-002)"  # template from demo.yaml
    assert by_code["SV-001"].payload["SalesDetails"]["AccountCode"] == "210"
    assert by_code["SV-002"].payload["SalesDetails"]["TaxType"] == "ZERORATED"
    assert all(d.natural_key == {"Code": d.payload["Code"]} for d in res.documents)
    # An item Xero already has (same Code) is updated and linked, not duplicated.
    res = map_products([dict(PRODUCTS[0], id="p-old", Product_Code="HW-OLD")], org=demo_org(), ref=demo_ref())
    assert res.documents[0].action == "update" and res.documents[0].payload["ItemID"] == "item-hw-old"
    assert res.documents[0].matched_by == "code"


def test_item_name_length_and_truncate_transform() -> None:
    long = dict(PRODUCTS[0], Product_Name="X" * 60)
    assert map_products([long], org=demo_org(), ref=demo_ref()).documents[0].payload["Name"] == "X" * 50
    org = org_with(fields={"products": []})
    res = map_products([long], org=org, ref=demo_ref())
    assert [r.rule for r in res.rejects] == ["length.exceeded"] and "50" in res.rejects[0].reason
