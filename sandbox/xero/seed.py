"""Seeds: the demo organisation of docs/demo-universe.md, ``empty`` (reference data only) and
``<n>`` (reference data plus n ACCREC invoices over generated contacts: a deterministic generator
for benchmarks up to 50,000 invoices and more).

Ids of reference data are uuid5 of (tenant, code) so a reset or a second tenant is reproducible.
"""

from __future__ import annotations

import random
import uuid
from datetime import date, timedelta
from typing import Any

from sandbox.xero.books import Books, norm

DEMO_TENANT_ID = "3a1f6c2e-7b4d-4e8a-9c5f-1d2e3f4a5b6c"
DEMO_TENANT_NAME = "Harbour Demo Ltd"
DEMO_CLIENT_ID = "5A6E0B1D2C3F4A5B6C7D8E9F0A1B2C3D"
DEMO_CLIENT_SECRET = "sandbox-demo-secret-Harbour-Demo-Ltd-do-not-use-in-production"
DEMO_APP_NAME = "zoho-xero-sync (sandbox app)"

# (Code, Name, Type, Class, Status, SystemAccount, TaxType, extra)
ACCOUNTS: list[tuple[str, str, str, str, str, str | None, str, dict[str, Any]]] = [
    ("090", "Business Bank Account", "BANK", "ASSET", "ACTIVE", None, "NONE",
     {"EnablePaymentsToAccount": True, "BankAccountType": "BANK", "BankAccountNumber": "0201000123456700",
      "CurrencyCode": "NZD"}),
    ("091", "Business Savings Account", "BANK", "ASSET", "ACTIVE", None, "NONE",
     {"EnablePaymentsToAccount": True, "BankAccountType": "BANK", "BankAccountNumber": "0201000123456701",
      "CurrencyCode": "NZD"}),
    ("200", "Sales", "REVENUE", "REVENUE", "ACTIVE", None, "OUTPUT2", {}),
    ("205", "Old Sales", "REVENUE", "REVENUE", "ARCHIVED", None, "OUTPUT2", {}),
    ("210", "Services Revenue", "REVENUE", "REVENUE", "ACTIVE", None, "OUTPUT2", {}),
    ("220", "Software Revenue", "REVENUE", "REVENUE", "ACTIVE", None, "OUTPUT2", {}),
    ("260", "Other Revenue", "REVENUE", "REVENUE", "ACTIVE", None, "OUTPUT2", {}),
    ("270", "Interest Income", "REVENUE", "REVENUE", "ACTIVE", None, "NONE", {}),
    ("300", "Purchases", "DIRECTCOSTS", "EXPENSE", "ACTIVE", None, "INPUT2", {}),
    ("310", "Cost of Goods Sold", "DIRECTCOSTS", "EXPENSE", "ACTIVE", None, "INPUT2", {}),
    ("400", "Advertising", "EXPENSE", "EXPENSE", "ACTIVE", None, "INPUT2", {}),
    ("429", "General Expenses", "EXPENSE", "EXPENSE", "ACTIVE", None, "INPUT2", {}),
    ("610", "Accounts Receivable", "CURRENT", "ASSET", "ACTIVE", "DEBTORS", "NONE", {}),
    ("630", "Inventory", "INVENTORY", "ASSET", "ACTIVE", None, "NONE", {}),
    ("800", "Accounts Payable", "CURRLIAB", "LIABILITY", "ACTIVE", "CREDITORS", "NONE", {}),
    ("820", "GST", "CURRLIAB", "LIABILITY", "ACTIVE", "GST", "NONE", {}),
    ("860", "Rounding", "CURRLIAB", "LIABILITY", "ACTIVE", "ROUNDING", "NONE", {}),
    ("880", "Owner Drawings", "EQUITY", "EQUITY", "ACTIVE", None, "NONE", {}),
]

# (TaxType, Name, rate, status, ReportTaxType, applies-to)
TAX_RATES = [
    ("OUTPUT2", "GST on Income", "15", "ACTIVE", "OUTPUT", {"Revenue"}),
    ("INPUT2", "GST on Expenses", "15", "ACTIVE", "INPUT", {"Expenses", "Assets"}),
    ("ZERORATED", "Zero Rated", "0", "ACTIVE", "OUTPUT", {"Revenue"}),
    ("NONE", "No GST", "0", "ACTIVE", "NONE", {"Assets", "Equity", "Expenses", "Liabilities", "Revenue"}),
    ("GSTONIMPORTS", "GST on Imports", "0", "ACTIVE", "GSTONIMPORTS", {"Expenses", "Liabilities"}),
    ("TAX001", "Old GST 12.5%", "12.5", "DELETED", "OUTPUT", {"Revenue"}),
]

THEMES = [("Standard", 0), ("Special Projects", 1), ("Very orange invoice!", 2)]

TRACKING = [("Region", [("North", "ACTIVE"), ("South", "ACTIVE"), ("Eastside", "ACTIVE"), ("West Coast", "ACTIVE")]),
            ("Department", [("Sales", "ACTIVE"), ("Services", "ACTIVE"), ("Support", "ACTIVE"),
                            ("Legacy", "ARCHIVED")])]

CURRENCIES = [("NZD", "New Zealand Dollar"), ("AUD", "Australian Dollar"), ("USD", "United States Dollar")]


#: A new organisation's invoice settings (documented default; ``/_sandbox/orgs`` takes no numbering):
#: ``INV-0001``, ``CN-0001``, ``PO-0001``. Stored in the org's ``settings`` and read by
#: ``Books.next_number``.
DEFAULT_NUMBERING = {"invoice_prefix": "INV-", "invoice_next": 1, "credit_note_prefix": "CN-",
                     "credit_note_next": 1, "purchase_order_prefix": "PO-", "purchase_order_next": 1}


def stable_id(tenant_id: str, *parts: str) -> str:
    return str(uuid.uuid5(uuid.UUID(tenant_id) if _is_uuid(tenant_id) else uuid.NAMESPACE_URL,
                          "/".join(parts)))


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
        return True
    except ValueError:
        return False


def reference_data(books: Books, name: str, created_ms: int) -> None:
    """Organisation, accounts, tax rates, themes, tracking categories and currencies."""
    t = books.tenant_id
    books.put("org", "org", {
        "OrganisationID": t, "APIKey": stable_id(t, "apikey").replace("-", "")[:30].upper(), "Name": name,
        "LegalName": name, "PaysTax": True, "Version": "NZ", "OrganisationType": "COMPANY", "BaseCurrency": "NZD",
        "CountryCode": "NZ", "IsDemoCompany": False, "OrganisationStatus": "ACTIVE", "TaxNumber": "123-456-789",
        "FinancialYearEndDay": 31, "FinancialYearEndMonth": 3, "SalesTaxBasis": "INVOICE",
        "SalesTaxPeriod": "TWOMONTHS", "DefaultSalesTax": "Tax Exclusive", "DefaultPurchasesTax": "Tax Exclusive",
        "PeriodLockDate": "2025-03-31", "EndOfYearLockDate": "2025-03-31", "CreatedDateUTC": created_ms,
        "OrganisationEntityType": "COMPANY", "Timezone": "NEWZEALANDSTANDARDTIME",
        "ShortCode": "!" + stable_id(t, "short")[:5], "Edition": "BUSINESS", "Class": "PREMIUM",
        "LineOfBusiness": "Software and services", "Addresses": [], "Phones": [], "ExternalLinks": [],
        "PaymentTerms": {"Sales": {"Day": 20, "Type": "OFFOLLOWINGMONTH"},
                         "Bills": {"Day": 20, "Type": "OFFOLLOWINGMONTH"}}})
    # Organisation invoice settings (notes §5.5): prefix and next number per numbered document.
    books.put("org", "settings", dict(DEFAULT_NUMBERING))
    for code, acc_name, typ, cls, status, system, tax, extra in ACCOUNTS:
        aid = stable_id(t, "account", code)
        doc = {"AccountID": aid, "Code": code, "Name": acc_name, "Type": typ, "Status": status, "Class": cls,
               "TaxType": tax, "EnablePaymentsToAccount": False, "ShowInExpenseClaims": typ in ("EXPENSE",),
               "ReportingCode": cls[:3], "HasAttachments": False, "AddToWatchlist": False,
               "UpdatedDateUTC": created_ms, **extra}
        if typ != "BANK":
            doc["Description"] = ""
        if system:
            doc["SystemAccount"] = system
        books.put("accounts", aid, doc)
    for tax_type, tax_name, rate, status, report, applies in TAX_RATES:
        books.put("taxrates", tax_type, {
            "Name": tax_name, "TaxType": tax_type, "ReportTaxType": report, "Status": status,
            "TaxComponents": [{"Name": "GST", "Rate": float(rate), "IsCompound": False, "IsNonRecoverable": False}],
            "CanApplyToAssets": "Assets" in applies, "CanApplyToEquity": "Equity" in applies,
            "CanApplyToExpenses": "Expenses" in applies, "CanApplyToLiabilities": "Liabilities" in applies,
            "CanApplyToRevenue": "Revenue" in applies, "DisplayTaxRate": float(rate), "EffectiveRate": float(rate)})
    for theme_name, order in THEMES:
        tid = stable_id(t, "theme", theme_name)
        books.put("themes", tid, {"BrandingThemeID": tid, "Name": theme_name, "Type": "INVOICE",
                                  "LogoUrl": "", "SortOrder": order, "CreatedDateUTC": created_ms})
    for cat_name, options in TRACKING:
        cid = stable_id(t, "tracking", cat_name)
        books.put("tracking", cid, {
            "TrackingCategoryID": cid, "Name": cat_name, "Status": "ACTIVE",
            "Options": [{"TrackingOptionID": stable_id(t, "tracking", cat_name, o), "Name": o, "Status": s}
                        for o, s in options]})
    for code, description in CURRENCIES:
        books.put("currencies", code, {"Code": code, "Description": description})
    books.reindex()


def demo_extras(books: Books) -> None:
    """What exists directly in the demo Xero org (docs/demo-universe.md)."""
    books.write_item({"Code": "HW-OLD", "Name": "Legacy cable", "Description": "Legacy cable",
                      "SalesDetails": {"UnitPrice": 12.5, "AccountCode": "200", "TaxType": "OUTPUT2"},
                      "PurchaseDetails": {"UnitPrice": 6.0, "AccountCode": "300", "TaxType": "INPUT2"}},
                     allow_update=False, unitdp=2)
    books.write_contact({"Name": "Walk-in Customer"}, allow_update=False)


def generate_invoices(books: Books, count: int) -> None:
    """``count`` ACCREC invoices over ~count/25 contacts, deterministic (seeded by ``count``), built
    without per-element validation (valid by construction) and in integer cents, so 50,000
    invoices take seconds. Tax is per line, half up, as the API computes it."""
    rng = random.Random(count)

    def rid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    n_contacts = max(5, min(2000, count // 25))
    contacts = [books.write_contact({"Name": f"Customer {i:05d}", "ContactNumber": f"GEN-{i:05d}",
                                     "EmailAddress": f"customer{i:05d}@example.com"}, allow_update=False)
                for i in range(n_contacts)]
    codes = ("200", "210", "220")
    start = date(2025, 6, 1)
    days = [(start + timedelta(days=k)).isoformat() for k in range(365 + 30)]
    now = books.now_ms()
    table = books.table("invoices")
    numbers = books.numbers["invoices"]
    prefix = str(books.settings.get("invoice_prefix", DEFAULT_NUMBERING["invoice_prefix"]))
    for n in range(count):
        contact = contacts[n % n_contacts]
        lines = []
        sub = tax = 0
        for k in range(rng.randint(1, 3)):
            qty = rng.randint(1, 10)
            unit = rng.randint(100, 50000)  # cents
            la = qty * unit
            line_tax = (la * 15 + 50) // 100  # 15 %, half up, in cents
            sub += la
            tax += line_tax
            lines.append({"LineItemID": rid(), "Description": f"Service {k + 1}", "Quantity": float(qty),
                          "UnitAmount": unit / 100, "AccountCode": codes[k % 3], "TaxType": "OUTPUT2",
                          "TaxAmount": line_tax / 100, "LineAmount": la / 100})
        inv_id = rid()
        total = (sub + tax) / 100
        number = f"{prefix}{n + 1:04d}"
        doc = {"Type": "ACCREC", "InvoiceNumber": number, "Reference": f"GEN-{n + 1}",
               "Status": "AUTHORISED" if n % 3 else "DRAFT", "LineAmountTypes": "Exclusive",
               "Date": days[n % 365], "DueDate": days[n % 365 + 30], "CurrencyCode": "NZD", "CurrencyRate": 1.0,
               "LineItems": lines, "SubTotal": sub / 100, "TotalTax": tax / 100, "Total": total,
               "AmountPaid": 0.0, "AmountCredited": 0.0, "AmountDue": total, "ContactID": contact["ContactID"],
               "InvoiceID": inv_id, "_id": inv_id, "_seq": books.next_seq(), "UpdatedDateUTC": now + n}
        table[inv_id] = doc
        books.store.touch(books.tenant_id, "invoices", inv_id)
        numbers[norm(number)] = [inv_id]
    books._last_ms = now + count
    for contact in contacts:
        books.mark_contact_role(contact, "ACCREC")
    books.settings["invoice_next"] = count + 1
    books.save_settings()
