"""Shared builders for the mappings tests: the demo universe (docs/demo-universe.md) as the APIs
would return it, and Zoho records whose totals follow Zoho's own line arithmetic.

No tests live here; the other test_mappings*/test_validate*/test_rules* files import it.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from typing import Any

from mappings.config import OrgConfig, load_org_file, parse_org
from mappings.reference import ReferenceData
from zxsync.settings import REPO_ROOT

LOCK_MS = 1743379200000  # 2025-03-31T00:00:00Z, Xero's MS-JSON for the demo lock dates


def _acc(
    code: str,
    name: str,
    type_: str,
    cls: str,
    status: str = "ACTIVE",
    system: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "AccountID": f"acc-{code}",
        "Code": code,
        "Name": name,
        "Type": type_,
        "Class": cls,
        "Status": status,
        "SystemAccount": system,
        **extra,
    }


def _tax(tax_type: str, name: str, rate: str, status: str = "ACTIVE", **can: bool) -> dict[str, Any]:
    flags = {f"CanApplyTo{k}": v for k, v in can.items()}
    return {
        "TaxType": tax_type,
        "Name": name,
        "Status": status,
        "EffectiveRate": rate,
        "DisplayTaxRate": rate,
        "TaxComponents": [{"Name": name, "Rate": rate, "IsCompound": False}],
        **flags,
    }


XERO_ORGANISATION = {
    "Organisations": [
        {
            "OrganisationID": "org-demo",
            "Name": "Harbour Demo Ltd",
            "BaseCurrency": "NZD",
            "CountryCode": "NZ",
            "Version": "NZ",
            "Timezone": "NEWZEALANDSTANDARDTIME",
            "PeriodLockDate": f"/Date({LOCK_MS}+0000)/",
            "EndOfYearLockDate": f"/Date({LOCK_MS}+0000)/",
        }
    ]
}

XERO_ACCOUNTS = {
    "Accounts": [
        _acc("090", "Business Bank Account", "BANK", "ASSET", EnablePaymentsToAccount=True),
        _acc("091", "Business Savings Account", "BANK", "ASSET"),
        _acc("200", "Sales", "REVENUE", "REVENUE"),
        _acc("210", "Services Revenue", "REVENUE", "REVENUE"),
        _acc("220", "Software Revenue", "REVENUE", "REVENUE"),
        _acc("260", "Other Revenue", "REVENUE", "REVENUE"),
        _acc("270", "Interest Income", "REVENUE", "REVENUE"),
        _acc("205", "Old Sales", "REVENUE", "REVENUE", status="ARCHIVED"),
        _acc("300", "Purchases", "DIRECTCOSTS", "EXPENSE"),
        _acc("310", "Cost of Goods Sold", "DIRECTCOSTS", "EXPENSE"),
        _acc("400", "Advertising", "EXPENSE", "EXPENSE"),
        _acc("429", "General Expenses", "EXPENSE", "EXPENSE"),
        _acc("610", "Accounts Receivable", "CURRENT", "ASSET", system="DEBTORS"),
        _acc("630", "Inventory", "INVENTORY", "ASSET"),
        _acc("800", "Accounts Payable", "CURRLIAB", "LIABILITY", system="CREDITORS"),
        _acc("820", "GST", "CURRLIAB", "LIABILITY", system="GST"),
        _acc("860", "Rounding", "CURRLIAB", "LIABILITY", system="ROUNDING"),
        _acc("880", "Owner Drawings", "EQUITY", "EQUITY"),
    ]
}

XERO_TAX_RATES = {
    "TaxRates": [
        _tax("OUTPUT2", "GST on Income", "15.0", Revenue=True),
        _tax("INPUT2", "GST on Expenses", "15.0", Expenses=True, Assets=True),
        _tax("ZERORATED", "Zero Rated", "0.0", Revenue=True),
        _tax(
            "NONE", "No GST", "0.0", Revenue=True, Expenses=True, Assets=True, Liabilities=True, Equity=True
        ),
        _tax("GSTONIMPORTS", "GST on Imports", "0.0", Expenses=True, Liabilities=True),
        _tax("TAX001", "Old GST 12.5%", "12.5", status="DELETED", Revenue=True),
    ]
}

XERO_THEMES = {
    "BrandingThemes": [
        {"BrandingThemeID": "theme-standard", "Name": "Standard", "SortOrder": 0, "Type": "INVOICE"},
        {"BrandingThemeID": "theme-special", "Name": "Special Projects", "SortOrder": 1, "Type": "INVOICE"},
        {
            "BrandingThemeID": "theme-orange",
            "Name": "Very orange invoice!",
            "SortOrder": 2,
            "Type": "INVOICE",
        },
    ]
}

XERO_TRACKING = {
    "TrackingCategories": [
        {
            "TrackingCategoryID": "tc-region",
            "Name": "Region",
            "Status": "ACTIVE",
            "Options": [
                {"TrackingOptionID": f"to-{n}", "Name": n, "Status": "ACTIVE"}
                for n in ("North", "South", "Eastside", "West Coast")
            ],
        },
        {
            "TrackingCategoryID": "tc-dept",
            "Name": "Department",
            "Status": "ACTIVE",
            "Options": [
                {"TrackingOptionID": "to-sales", "Name": "Sales", "Status": "ACTIVE"},
                {"TrackingOptionID": "to-services", "Name": "Services", "Status": "ACTIVE"},
                {"TrackingOptionID": "to-support", "Name": "Support", "Status": "ACTIVE"},
                {"TrackingOptionID": "to-legacy", "Name": "Legacy", "Status": "ARCHIVED"},
            ],
        },
    ]
}

XERO_CURRENCIES = {
    "Currencies": [
        {"Code": "NZD", "Description": "New Zealand Dollar"},
        {"Code": "AUD", "Description": "Australian Dollar"},
        {"Code": "USD", "Description": "United States Dollar"},
    ]
}

XERO_ITEMS = {"Items": [{"ItemID": "item-hw-old", "Code": "HW-OLD", "Name": "Legacy cable"}]}

XERO_CONTACTS = {
    "Contacts": [
        {"ContactID": "xc-walkin", "Name": "Walk-in Customer", "ContactStatus": "ACTIVE"},
    ]
}


def _field(
    api_name: str,
    data_type: str = "text",
    length: int | None = 255,
    picklist: list[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    f: dict[str, Any] = {"api_name": api_name, "data_type": data_type, "length": length, **extra}
    if picklist is not None:
        f["pick_list_values"] = [{"actual_value": v, "display_value": v} for v in picklist]
    return f


INVOICE_WRITE_FIELDS = [
    _field("Xero_Invoice_ID", length=50),
    _field("Xero_Invoice_Number", length=255),
    _field("Xero_Status", length=50),
    _field("Xero_Amount_Paid", "currency", 16),
    _field("Xero_Amount_Due", "currency", 16),
    _field("Xero_Fully_Paid_On", "date", None),
    _field("Xero_Online_URL", "website", 255),
    _field("Xero_Payments", "textarea", 2000),
    _field("Xero_Sync_Status", length=255),
    _field("Xero_Last_Synced", "datetime", None),
]

ZOHO_FIELDS = {
    "Invoices": {
        "fields": [
            _field("Subject", system_mandatory=True),
            _field("Invoice_Number", "autonumber"),
            _field(
                "Status", "picklist", picklist=["Created", "Approved", "Delivered", "Cancelled", "On Hold"]
            ),
            _field("Account_Name", "lookup"),
            _field("Invoice_Date", "date", None),
            _field("Due_Date", "date", None),
            _field("Currency", "picklist", picklist=["NZD", "AUD", "USD", "GBP"]),
            *INVOICE_WRITE_FIELDS,
        ]
    },
    "Purchase_Orders": {
        "fields": [
            _field("Subject", system_mandatory=True),
            _field("PO_Number", "autonumber"),
            _field("Status", "picklist", picklist=["Created", "Approved", "Delivered", "Cancelled"]),
            _field("Vendor_Name", "lookup"),
            _field("Xero_PO_ID", length=50),
            _field("Xero_Bill_ID", length=50),
            _field("Xero_Number", length=255),
            _field("Xero_Status", length=50),
            _field("Xero_Sync_Status", length=255),
        ]
    },
    "Accounts": {
        "fields": [
            _field("Account_Name", system_mandatory=True),
            _field("Phone", "phone", 30),
            _field("Website", "website"),
            _field("Billing_Street"),
            _field("Billing_City"),
            _field("Xero_Contact_ID", length=50),
        ]
    },
    "Contacts": {
        "fields": [
            _field("Last_Name", system_mandatory=True),
            _field("First_Name"),
            _field("Email", "email"),
            _field("Account_Name", "lookup"),
            _field("Xero_Contact_ID", length=50),
        ]
    },
    "Vendors": {
        "fields": [_field("Vendor_Name", system_mandatory=True), _field("Xero_Contact_ID", length=50)]
    },
    "Products": {
        "fields": [
            _field("Product_Name", system_mandatory=True),
            _field("Product_Code"),
            _field("Xero_Item_ID", length=50),
        ]
    },
}


def demo_org() -> OrgConfig:
    """orgs/demo.yaml, loaded from the repository (not ZX_ORGS_DIR, which tests may move)."""
    return load_org_file(REPO_ROOT / "orgs" / "demo.yaml")


def org_with(**changes: Any) -> OrgConfig:
    """The demo org with top-level sections replaced/merged (dict values merge one level deep)."""
    import yaml

    data = yaml.safe_load((REPO_ROOT / "orgs" / "demo.yaml").read_text())
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_org(data, "orgs/demo.yaml")


@lru_cache(maxsize=1)
def demo_ref() -> ReferenceData:
    return ReferenceData.from_api(
        organisation=XERO_ORGANISATION,
        accounts=XERO_ACCOUNTS,
        tax_rates=XERO_TAX_RATES,
        branding_themes=XERO_THEMES,
        tracking_categories=XERO_TRACKING,
        currencies=XERO_CURRENCIES,
        items=XERO_ITEMS,
        contacts=XERO_CONTACTS,
        zoho_fields=ZOHO_FIELDS,
    )


def ref_with(**changes: Any) -> ReferenceData:
    """Demo reference data with some collections replaced (raw API JSON)."""
    base = dict(
        organisation=XERO_ORGANISATION,
        accounts=XERO_ACCOUNTS,
        tax_rates=XERO_TAX_RATES,
        branding_themes=XERO_THEMES,
        tracking_categories=XERO_TRACKING,
        currencies=XERO_CURRENCIES,
        items=XERO_ITEMS,
        contacts=XERO_CONTACTS,
        zoho_fields=ZOHO_FIELDS,
    )
    base.update(changes)
    return ReferenceData.from_api(**base)


# --------------------------------------------------------------------------------------------
# Zoho records
# --------------------------------------------------------------------------------------------

TAXES = {"GST 15%": Decimal("15.0"), "Zero Rated": Decimal("0.0"), "Luxury Tax 20%": Decimal("20.0")}

PRODUCTS = [
    {
        "id": "p-hw-001",
        "Product_Name": "Router",
        "Product_Code": "HW-001",
        "Product_Category": "Hardware",
        "Unit_Price": 120.0,
        "Tax": ["GST 15%"],
        "Description": "Edge router",
    },
    {
        "id": "p-hw-002",
        "Product_Name": "Cable",
        "Product_Code": "HW-002",
        "Product_Category": "Hardware",
        "Unit_Price": 0.1234,
        "Tax": ["GST 15%"],
    },
    {
        "id": "p-sw-001",
        "Product_Name": "Licence",
        "Product_Code": "SW-001",
        "Product_Category": "Software",
        "Unit_Price": 499.0,
        "Tax": ["GST 15%"],
    },
    {
        "id": "p-sv-001",
        "Product_Name": "Installation",
        "Product_Code": "SV-001",
        "Product_Category": "Services",
        "Unit_Price": 95.5,
        "Tax": ["GST 15%"],
    },
    {
        "id": "p-sv-002",
        "Product_Name": "Support hour",
        "Product_Code": "SV-002",
        "Product_Category": "Services",
        "Unit_Price": 150.0,
        "Tax": ["Zero Rated"],
    },
]
PRODUCT_BY_ID = {p["id"]: p for p in PRODUCTS}


def _r2(v: Decimal) -> Decimal:
    return v.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def zoho_line(
    product_id: str,
    qty: Any,
    price: Any | None = None,
    *,
    discount: Any = 0,
    taxes: list[str] | None = None,
    line_id: str | None = None,
    description: str | None = None,
    with_code: bool = True,
) -> dict[str, Any]:
    """One Invoiced_Items row, with Zoho's per-row arithmetic (docs/demo-universe.md)."""
    p = PRODUCT_BY_ID[product_id]
    price = p["Unit_Price"] if price is None else price
    taxes = ["GST 15%"] if taxes is None else taxes
    q, lp, d = Decimal(str(qty)), Decimal(str(price)), Decimal(str(discount))
    total = _r2(q * lp)
    after = total - d
    line_tax = [
        {"name": t, "percentage": float(TAXES[t]), "value": float(_r2(after * TAXES[t] / 100))} for t in taxes
    ]
    tax = _r2(after * sum((TAXES[t] for t in taxes), Decimal(0)) / 100)
    row = {
        "id": line_id or f"l-{product_id}-{qty}",
        "Product_Name": {"id": product_id, "name": p["Product_Name"]},
        "Quantity": float(q),
        "List_Price": float(lp),
        "Discount": float(d),
        "Total": float(total),
        "Total_After_Discount": float(after),
        "Line_Tax": line_tax,
        "Net_Total": float(after + tax),
    }
    if with_code:
        row["Product_Code"] = p["Product_Code"]
    if description is not None:
        row["Description"] = description
    return row


def zoho_invoice(
    inv_id: str,
    lines: list[dict[str, Any]],
    *,
    number: str | None = None,
    status: str = "Approved",
    account: tuple[str, str] | None = ("acc-1", "Acme Ltd"),
    date: str = "2025-07-01",
    due: str | None = "2025-07-31",
    currency: str = "NZD",
    discount: Any = 0,
    adjustment: Any = 0,
    excise: Any = 0,
    grand_total: Any = None,
    items_key: str = "Invoiced_Items",
    **extra: Any,
) -> dict[str, Any]:
    """A Zoho invoice record as the API returns it; Grand_Total per Zoho's header arithmetic."""
    sub = sum((Decimal(str(li["Net_Total"])) for li in lines), Decimal(0))
    d, a, e = Decimal(str(discount)), Decimal(str(adjustment)), Decimal(str(excise))
    grand = sub - d + a + e if grand_total is None else Decimal(str(grand_total))
    rec: dict[str, Any] = {
        "id": inv_id,
        "Subject": f"Invoice {inv_id}",
        "Invoice_Number": number or f"INV-{inv_id}",
        "Status": status,
        "Invoice_Date": date,
        "Due_Date": due,
        "Currency": currency,
        "Exchange_Rate": 1.0,
        items_key: lines,
        "Sub_Total": float(sub),
        "Discount": float(d),
        "Tax": 0.0,
        "Adjustment": float(a),
        "Excise_Duty": float(e),
        "Grand_Total": float(grand),
        "Billing_City": "Auckland",
    }
    rec["Account_Name"] = {"id": account[0], "name": account[1]} if account else None
    rec.update(extra)
    return rec


def zoho_purchase_order(
    po_id: str,
    lines: list[dict[str, Any]],
    *,
    vendor: tuple[str, str] | None = ("v-1", "Parts Co"),
    status: str = "Approved",
    number: str | None = None,
    **kw: Any,
) -> dict[str, Any]:
    rec = zoho_invoice(po_id, lines, status=status, account=None, items_key="Purchase_Items", **kw)
    for k in ("Invoice_Number", "Invoice_Date", "Account_Name"):
        rec.pop(k, None)
    rec["PO_Number"] = number or f"PO-{po_id}"
    rec["PO_Date"] = kw.get("date", "2025-07-01")
    rec["Vendor_Name"] = {"id": vendor[0], "name": vendor[1]} if vendor else None
    return rec


def zoho_account(acc_id: str, name: str, **extra: Any) -> dict[str, Any]:
    rec = {
        "id": acc_id,
        "Account_Name": name,
        "Account_Number": f"A{acc_id[-3:]}",
        "Phone": "+64 9 555 0100",
        "Website": "WWW.Example.CO.NZ ",
        "Billing_Street": "1 Queen St",
        "Billing_City": "Auckland",
        "Billing_State": "Auckland",
        "Billing_Code": "1010",
        "Billing_Country": "NZ",
        "Currency": "NZD",
    }
    rec.update(extra)
    return rec


def zoho_contact(
    contact_id: str,
    account_id: str,
    first: str,
    last: str,
    email: str | None,
    created: str = "2025-01-01T10:00:00+13:00",
    **extra: Any,
) -> dict[str, Any]:
    rec = {
        "id": contact_id,
        "Account_Name": {"id": account_id, "name": ""},
        "First_Name": first,
        "Last_Name": last,
        "Email": email,
        "Mobile": "+64 21 555 0100",
        "Created_Time": created,
    }
    rec.update(extra)
    return rec


def zoho_vendor(vendor_id: str, name: str, **extra: Any) -> dict[str, Any]:
    rec = {
        "id": vendor_id,
        "Vendor_Name": name,
        "Email": f"accounts@{vendor_id}.example.com",
        "Phone": "+64 9 555 0200",
        "Street": "2 Wharf Rd",
        "City": "Wellington",
        "State": "Wellington",
        "Zip_Code": "6011",
        "Country": "NZ",
    }
    rec.update(extra)
    return rec
