"""`zxsync mappings discover` (a starter mapping from live codes, guesses marked REVIEW) and
`zxsync mappings check` (every gap with its key and fix)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_onboarding_support import (  # noqa: F401  (fixtures are requested by their names)
    demo_file_fixture,
    invoke,
    orgs_dir_fixture,
    sandboxes_fixture,
)

from mappings.config import load_org_file
from tests.e2e_support import Sandboxes
from zxsync.discover import LiveMetadata, check_mapping, discover, guess_status
from zxsync.onboarding import OnboardingError, connect_sandbox, write_org_file


def _picklist(api_name: str, values: list[str]) -> dict[str, Any]:
    return {"api_name": api_name, "data_type": "picklist",
            "pick_list_values": [{"actual_value": v, "display_value": v} for v in values]}


def _tax(tax_type: str, name: str, rate: float, *, sales: bool, purchases: bool, status: str = "ACTIVE") -> dict:
    return {"TaxType": tax_type, "Name": name, "Status": status, "EffectiveRate": rate, "CanApplyToRevenue": sales,
            "CanApplyToExpenses": purchases, "CanApplyToAssets": purchases}


def _account(code: str, name: str, cls: str, typ: str, system: str | None = None) -> dict:
    return {"Code": code, "Name": name, "Class": cls, "Type": typ, "Status": "ACTIVE", "SystemAccount": system}


def live_metadata(*, rounding: bool = True) -> LiveMetadata:
    """An org unlike the demo: its own statuses, taxes, accounts and currencies."""
    accounts = [_account("4000", "Sales", "REVENUE", "REVENUE"), _account("4100", "Consulting Services", "REVENUE",
                                                                          "REVENUE"),
                _account("5000", "Cost of Goods Sold", "EXPENSE", "DIRECTCOSTS"),
                _account("6000", "Office Expenses", "EXPENSE", "EXPENSE"),
                _account("1100", "Accounts Receivable", "ASSET", "CURRENT", "DEBTORS")]
    if rounding:
        accounts.append(_account("2900", "Rounding", "LIABILITY", "CURRLIAB", "ROUNDING"))
    return LiveMetadata(
        xero={"organisation": {"Name": "Tui Tech Ltd", "BaseCurrency": "AUD", "Timezone": "AUSEASTERNSTANDARDTIME"},
              "accounts": accounts,
              "tax_rates": [_tax("OUTPUT", "GST on Income", 10, sales=True, purchases=False),
                            _tax("INPUT", "GST on Expenses", 10, sales=False, purchases=True),
                            _tax("EXEMPTOUTPUT", "GST Free Income", 0, sales=True, purchases=False),
                            _tax("EXEMPTEXPENSES", "GST Free Expenses", 0, sales=False, purchases=True),
                            _tax("BASEXCLUDED", "BAS Excluded", 0, sales=True, purchases=True),
                            _tax("OLD", "Old 12.5%", 12.5, sales=True, purchases=True, status="DELETED")],
              "branding_themes": [{"BrandingThemeID": "t2", "Name": "Modern", "SortOrder": 1},
                                  {"BrandingThemeID": "t1", "Name": "Classic", "SortOrder": 0}],
              "tracking_categories": [{"Name": "Branch", "Status": "ACTIVE",
                                       "Options": [{"Name": "Sydney"}, {"Name": "Perth"}]}],
              "currencies": [{"Code": "AUD"}, {"Code": "NZD"}]},
        zoho_fields={"Invoices": [_picklist("Status", ["-None-", "Draft", "Sent", "Paid", "Void", "Disputed"])],
                     "Purchase_Orders": [_picklist("Status", ["Created", "Billed", "Cancelled"])],
                     "Products": [_picklist("Product_Category", ["Consulting", "Hardware"])]},
        zoho_taxes=[{"name": "GST Free", "value": 0}, {"name": "GST", "value": 10},
                    {"name": "Tourism Levy", "value": 7.5}],
        zoho_currencies=[{"iso_code": "AUD", "is_active": True}, {"iso_code": "NZD", "is_active": True},
                         {"iso_code": "USD", "is_active": True}],
        zoho_org={"company_name": "Tui Tech", "zgid": "123", "iso_code": "AUD"})


def _comment(text: str, key: str) -> str:
    """The end-of-line comment of the (first) line that starts with ``key:``."""
    line = next(line for line in text.splitlines() if line.strip().startswith(f"{key}:"))
    return line.partition("#")[2].strip()


def test_statuses_are_guessed_by_their_words() -> None:
    assert guess_status("Cancelled") == ("cancel", None) and guess_status("Voided")[0] == "cancel"
    assert guess_status("Draft") == ("DRAFT", None) and guess_status("Awaiting Approval") == ("SUBMITTED", None)
    assert guess_status("Delivered") == ("AUTHORISED", None)
    paid, note = guess_status("Paid")
    assert paid == "AUTHORISED" and note and "PAID" in note
    odd, note = guess_status("On Hold")
    assert odd == "DRAFT" and note and note.startswith("REVIEW") and "'On Hold'" in note


def test_discover_writes_a_valid_starter_mapping_with_reviews_marked(orgs_dir: Path) -> None:
    write_org_file("tui", name="Tui Tech", timezone="Australia/Sydney", data_centre_code="com.au")
    path, reviews = discover("tui", live=live_metadata())
    text = path.read_text()
    org = load_org_file(path)  # valid for OrgConfig, slug and connections kept
    assert (org.slug, org.xero.connection, org.zoho.data_centre) == ("tui", "tui-xero", "com.au")
    assert "# Tui Tech: written by `zxsync org add tui`." in text  # the file's own comments survive

    inv = org.status.invoices
    assert inv.to_xero == {"Draft": "DRAFT", "Sent": "AUTHORISED", "Paid": "AUTHORISED", "Disputed": "DRAFT"}
    assert inv.cancel == ["Void"] and dict(inv.to_zoho) == {"PAID": "Paid", "VOIDED": "Void", "DELETED": "Void"}
    assert _comment(text, "Disputed").startswith("REVIEW: no obvious Xero status")
    po = org.status.purchase_orders  # bills: "Billed" cannot be BILLED
    assert po.to_xero == {"Created": "DRAFT", "Billed": "AUTHORISED"} and po.cancel == ["Cancelled"]

    assert org.tax.map == {"GST Free": "EXEMPTOUTPUT", "GST": "OUTPUT"}
    assert org.tax.purchases_map == {"GST Free": "EXEMPTEXPENSES", "GST": "INPUT"}
    assert _comment(text, "GST") == "REVIEW: guessed from the rate 10% ('GST on Income')"
    assert "REVIEW: Xero has no active sales tax rate of 7.5% for Zoho tax 'Tourism Levy'" in text
    assert org.tax.default is None and "REVIEW: Xero has no NONE tax rate" in text

    assert org.branding.default == "Classic" and "other Xero themes: Modern" in text
    d = org.accounts.defaults
    assert (d.invoices, d.products_sales, d.purchase_orders, d.products_purchases) == ("4000", "4000", "5000", "5000")
    assert org.accounts.by_category == {"Consulting": "4100"}
    assert _comment(text, "Consulting").startswith("REVIEW: guessed from the account name")
    assert org.currency.map == {"AUD": "AUD", "NZD": "NZD"} and "REVIEW: USD not enabled in Xero" in text
    assert org.rounding.policy == "rounding_line" and org.header_amounts.discount.account == "4000"
    assert "Branch: Sydney, Perth" in text and org.tracking == []
    assert reviews == len(re.findall(r"# REVIEW", text))  # the count printed is the count marked


def test_discover_keeps_a_mapping_unless_forced_and_can_write_elsewhere(orgs_dir: Path) -> None:
    write_org_file("tui", name="Tui Tech", timezone="Australia/Sydney", modules=["invoices", "payments"],
                   purchase_target="purchase_order")
    path, _ = discover("tui", live=live_metadata(rounding=False))
    first = path.read_text()
    assert load_org_file(path).rounding.policy == "reject"
    assert load_org_file(path).status.purchase_orders.to_xero["Billed"] == "BILLED"  # purchase orders: yes
    with pytest.raises(OnboardingError, match="holds a mapping already"):
        discover("tui", live=live_metadata())
    other = orgs_dir.parent / "elsewhere" / "tui.yaml"
    discover("tui", live=live_metadata(), output=other)
    assert path.read_text() == first and load_org_file(other).rounding.policy == "rounding_line"
    discover("tui", live=live_metadata(), force=True)
    assert (orgs_dir / "tui.yaml.bak").read_text() == first and load_org_file(path).rounding.policy == "rounding_line"
    with pytest.raises(OnboardingError, match="zxsync org add nobody"):
        discover("nobody", live=live_metadata())


def test_check_lists_gaps_in_a_hand_edited_mapping_against_the_same_metadata(orgs_dir: Path) -> None:
    write_org_file("tui", name="Tui Tech", timezone="Australia/Sydney")
    path, _ = discover("tui", live=live_metadata())
    live = live_metadata()
    for module in ("Accounts", "Contacts", "Vendors", "Invoices", "Purchase_Orders", "Products"):
        from connectors.zoho import XERO_SYNC_FIELDS

        live.zoho_fields.setdefault(module, []).extend({"api_name": f.api_name} for f in XERO_SYNC_FIELDS[module])
    assert [g for g in check_mapping(load_org_file(path), live) if g.blocking] == []
    data = yaml.safe_load(path.read_text())
    data["tax"]["map"]["GST"] = "OUTPUT3"
    data["status"]["invoices"]["to_xero"].pop("Disputed")
    data["accounts"]["by_category"]["Consultng"] = "4100"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    gaps = {g.key: g for g in check_mapping(load_org_file(path), live)}
    assert gaps["tax.map.GST"].rule == "tax.unknown_type" and "OUTPUT" in gaps["tax.map.GST"].fix
    assert gaps["status.invoices.to_xero.Disputed"].blocking
    assert not gaps["tax.map.'Tourism Levy'"].blocking  # unmapped Zoho tax: its lines are rejected, a warning
    typo = gaps["accounts.by_category.Consultng"]
    assert not typo.blocking and "Consulting, Hardware" in typo.fix


def test_mappings_check_lists_every_gap_of_a_broken_mapping_with_its_key_and_fix(
        sandboxes: Sandboxes, demo_file: Path) -> None:
    connect_sandbox("demo")  # connected, but `setup zoho-fields` was never run
    data = yaml.safe_load(demo_file.read_text())
    data["tax"]["map"]["GST 15%"] = "OUTPUT9"
    data["tax"]["map"]["Made-up Tax"] = "OUTPUT2"
    data["accounts"]["defaults"]["invoices"] = "999"
    data["branding"]["default"] = "Nope Theme"
    data["tracking"][0]["category"] = "Departmint"
    data["currency"]["map"]["GBP"] = "GBP"
    demo_file.write_text(yaml.safe_dump(data, sort_keys=False))
    out = invoke("mappings", "check", "demo", code=1)
    blocks = {block.splitlines()[0].split(None, 1)[1]: block for block in out.split("\n\n")[1:]
              if block.startswith(("GAP", "WARN"))}
    expected = {
        "tax.map.'GST 15%'": "TaxType 'OUTPUT9' does not exist",
        "tax.map.'Made-up Tax'": "Zoho CRM has no tax named 'Made-up Tax'",
        "accounts.defaults.invoices": "account code '999' does not exist",
        "branding.default": "branding theme 'Nope Theme' does not exist",
        "tracking[0]": "tracking category 'Departmint' does not exist",
        "currency.map.GBP": "currency GBP is not enabled",
        "status.invoices.to_xero.'On Hold'": "Zoho status 'On Hold' has no Xero status mapping",
        "Invoices: Xero_Invoice_ID, Xero_Invoice_Number, Xero_Status, Xero_Amount_Paid, Xero_Amount_Due, "
        "Xero_Fully_Paid_On, Xero_Online_URL, Xero_Payments, Xero_Sync_Status, Xero_Last_Synced": "Zoho Invoices has no",
    }
    for key, problem in expected.items():
        assert key in blocks, f"{key} missing from:\n{out}"
        assert problem in blocks[key] and "fix: " in blocks[key], blocks[key]
    assert "zxsync setup zoho-fields demo" in blocks["Accounts: Xero_Contact_ID"]
    assert re.search(r"demo\.yaml.*: \d+ gap\(s\), \d+ warning\(s\)", out.splitlines()[0])
