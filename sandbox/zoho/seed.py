"""Seeds: the demo organisation of docs/demo-universe.md, an empty org, and a deterministic generator
of ``n`` invoices for benchmarks (``POST /_sandbox/orgs {"seed": "50000"}``).

Seeded records are written directly (as if entered in the CRM over time), so a seeded record may
break a rule the API enforces today — the demo's invoice without an Account_Name is such a record,
like one created before the field was made mandatory.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from sandbox.zoho.oauth import Accounts, stable_client_id, stable_secret
from sandbox.zoho.org import Org
from sandbox.zoho.records import compute_totals, dec, num, q
from sandbox.zoho.schema import INVENTORY, XERO_FIELDS, FieldDef

DEMO_ORG_ID = "810000001"
DEMO_CLIENT_ID = stable_client_id("harbour-demo")
DEMO_CLIENT_SECRET = stable_secret("harbour-demo")

DEMO_TAXES = [("GST 15%", 15.0), ("Zero Rated", 0.0), ("Luxury Tax 20%", 20.0)]
DEMO_CURRENCIES = [("NZD", "New Zealand Dollar", "$", "1.000000000", True),
                   ("AUD", "Australian Dollar", "A$", "0.910000000", False),
                   ("USD", "US Dollar", "US$", "0.590000000", False),
                   ("GBP", "Pound Sterling", "£", "0.470000000", False)]
INVOICE_STATUS_DEMO = ["Created", "Approved", "Delivered", "Cancelled", "On Hold"]

PRODUCTS = [
    ("HW-001", "Industrial Router", "Hardware", 1249.00), ("HW-002", "Managed Switch 24-port", "Hardware", 689.50),
    ("HW-003", "Rack Cabinet 42U", "Hardware", 1890.00), ("HW-004", "Patch Cable 2m", "Hardware", 7.95),
    ("HW-005", "Cable Tie Pack", "Hardware", 2.3456),
    ("SW-001", "Harbour ERP Licence", "Software", 450.00), ("SW-002", "Backup Suite Annual", "Software", 129.99),
    ("SW-003", "Security Add-on", "Software", 89.00), ("SW-004", "Reporting Module", "Software", 249.00),
    ("SW-005", "Mobile App Seat", "Software", 19.90),
    ("SV-001", "Installation Service", "Services", 150.00), ("SV-002", "Consulting Hour", "Services", 185.00),
    ("SV-003", "Support Retainer Monthly", "Services", 950.00), ("SV-004", "Data Processing per Record", "Services",
                                                                   0.1234),
    ("SV-005", "Training Day", "Services", 1200.00),
]
VENDORS = ["Southern Cross Supplies", "Kiwi Components Ltd", "Tasman Software Distribution", "Pacific Freight Co",
           "Aotearoa Office Supplies"]
_PREFIX = ["Kauri", "Rimu", "Totara", "Harbour", "Tasman", "Southern", "Pohutukawa", "Summit", "Coastal", "Ruapehu",
           "Waitemata", "Kowhai", "Manuka", "Pacific", "Alpine", "Matai", "Tui", "Kea", "Silverfern", "Takahe"]
_SUFFIX = ["Timber Co", "Engineering Ltd", "Logistics", "Design Studio", "Builders", "Traders", "Consulting",
           "Hospitality Group", "Medical Centre", "Marine Services"]
FIRST = ["Aroha", "Liam", "Mere", "Oliver", "Ngaio", "Jack", "Anahera", "Noah", "Kiri", "Leo", "Sophie", "Tama",
         "Isla", "Hemi", "Charlotte", "Wiremu", "Amelia", "Rangi", "Grace", "Manaia"]
LAST = ["Ngata", "Smith", "Parata", "Wilson", "Tane", "Brown", "Walker", "Taylor", "Williams", "Thompson",
        "Henare", "Clarke", "Martin", "Anderson", "Harris", "Kereama", "Young", "Scott", "King", "Campbell"]
CITIES = [("Auckland", "Auckland", "1010"), ("Wellington", "Wellington", "6011"),
          ("Christchurch", "Canterbury", "8011"), ("Hamilton", "Waikato", "3204"), ("Tauranga", "Bay of Plenty", "3110"),
          ("Dunedin", "Otago", "9016"), ("Napier", "Hawke's Bay", "4110"), ("Nelson", "Nelson", "7010")]
STREETS = ["Queen Street", "Lambton Quay", "Colombo Street", "Victoria Street", "Cameron Road", "George Street",
           "Emerson Street", "Trafalgar Street"]

#: Demo invoices that break a rule on purpose (docs/demo-universe.md), by position in the seed.
BAD_STATUS, BAD_TAX, BAD_NO_ACCOUNT, BAD_CURRENCY, BAD_DATE = 17, 42, 77, 101, 128


def new_org(org: Org, name: str, *, now: int, time_zone: str = "Pacific/Auckland", currency: str = "NZD",
            user: tuple[str, str, str] = ("Aroha", "Ngata", "aroha@harbourdemo.example"),
            xero_fields: bool = True, invoice_status: list[str] | None = None) -> None:
    """Create an org's settings: user, currencies, taxes, picklists and (optionally) the Xero_* fields."""
    org.doc = {"id": org.id, "name": name, "time_zone": time_zone, "currency": currency, "seq": 0, "auto": {},
               "created_time": now, "picklists": {}}
    first, last, email = user
    org.doc["user"] = {"id": org.next_id(), "zuid": f"9{org.id}", "first_name": first, "last_name": last,
                       "full_name": f"{first} {last}", "email": email}
    org.doc["taxes"] = [{"id": org.next_id(), "name": n, "display_label": f"{n} - {v} %", "value": v,
                         "sequence_number": i} for i, (n, v) in enumerate(DEMO_TAXES, start=1)]
    org.doc["currencies"] = [
        {"id": org.next_id(), "iso_code": code, "name": cname, "symbol": symbol, "exchange_rate": rate,
         "is_base": base, "is_active": True, "created_time": now}
        for code, cname, symbol, rate, base in DEMO_CURRENCIES
    ]
    if invoice_status is not None:
        org.doc["picklists"]["Invoices.Status"] = list(invoice_status)
    if xero_fields:
        add_xero_fields(org, now)
    org.save()


def add_xero_fields(org: Org, now: int) -> None:
    for module, fields in XERO_FIELDS.items():
        existing = {f.api_name for f in org.custom_fields(module)}
        for f in fields:
            if f.api_name not in existing:
                org.add_custom_field(module, FieldDef(**{**f.__dict__, "id": org.next_id(), "created_time": now}))


def _put(org: Org, module: str, rec: dict[str, Any], created: int, modified: int | None = None) -> dict[str, Any]:
    user = org.user["id"]
    rec["id"] = org.next_id()
    rec.setdefault("Owner", user)
    rec.update(Created_By=user, Modified_By=user, Created_Time=created, Modified_Time=modified or created)
    if "Currency" not in rec and module != "Products":
        rec["Currency"], rec["Exchange_Rate"] = "NZD", 1.0
    org.store.put(org.id, module, rec["id"], rec)
    return rec


def _document(org: Org, module: str, rec: dict[str, Any], lines: list[dict[str, Any]], created: int,
              modified: int | None = None) -> dict[str, Any]:
    for n, line in enumerate(lines, start=1):
        line["id"] = org.next_id()
        line["Sequence_Number"] = n
    rec[INVENTORY[module]] = lines
    numbering = {"Invoices": ("INV-", "Invoice_Number"), "Purchase_Orders": ("PO-", "PO_Number"),
                 "Sales_Orders": ("SO-", "SO_Number"), "Quotes": ("QT-", "Quote_Number")}[module]
    counters = org.doc.setdefault("auto", {})
    n = counters.get(module, 1001)
    counters[module] = n + 1
    rec[numbering[1]] = f"{numbering[0]}{n}"
    rec = _put(org, module, rec, created, modified)
    compute_totals(org, module, rec)
    return rec


def _done(org: Org) -> None:
    org.save()
    org._indexes.clear()  # rebuilt from the store on first use


def seed_demo(org: Org, accounts: Accounts, *, now: int, xero_fields: bool = True, stable_client: bool = True) -> None:
    """The demo organisation of docs/demo-universe.md."""
    new_org(org, "Harbour Demo Ltd", now=now, xero_fields=xero_fields, invoice_status=INVOICE_STATUS_DEMO)
    rng = random.Random(20250601)
    gst, zero, luxury = (t["id"] for t in org.taxes)
    start = now - 30 * 86400
    tick = iter(range(start, now, 600))

    vendors = [_put(org, "Vendors", {"Vendor_Name": name, "Email": f"accounts@{name.split()[0].lower()}.example",
                                     "Phone": f"+64 9 555 {1000 + i:04d}", "City": CITIES[i % len(CITIES)][0],
                                     "Country": "New Zealand", "Category": "Supplier"}, next(tick))
               for i, name in enumerate(VENDORS)]
    products = []
    for i, (code, name, category, price) in enumerate(PRODUCTS):
        rec = {"Product_Name": name, "Product_Code": code, "Product_Category": category, "Unit_Price": price,
               "Product_Active": True, "Taxable": True, "Tax": ["GST 15%"],
               "Usage_Unit": "Hours" if code in ("SV-002",) else "Each",
               "Vendor_Name": vendors[i % len(vendors)]["id"] if category == "Hardware" else None,
               "Description": f"{name} ({category.lower()})"}
        products.append(_put(org, "Products", {k: v for k, v in rec.items() if v is not None}, next(tick)))
    names = [f"{_PREFIX[i % 20]} {_SUFFIX[(i * 7 + i // 20) % 10]}" for i in range(39)]
    names.insert(5, "O'Brien Plumbing Ltd")
    account_recs, contacts = [], []
    for i, name in enumerate(names):
        city, region, code = CITIES[i % len(CITIES)]
        acc = _put(org, "Accounts", {
            "Account_Name": name, "Account_Number": f"C{1000 + i}", "Account_Type": "Customer",
            "Phone": f"+64 4 555 {2000 + i:04d}", "Website": f"https://{name.split()[0].lower()}{i}.example",
            "Billing_Street": f"{10 + i} {STREETS[i % len(STREETS)]}", "Billing_City": city, "Billing_State": region,
            "Billing_Code": code, "Billing_Country": "New Zealand", "Industry": "Services",
        }, next(tick))
        first, last = (("Sean", "O'Brien") if name.startswith("O'Brien") else (FIRST[i % 20], LAST[(i * 3) % 20]))
        con = _put(org, "Contacts", {
            "First_Name": first, "Last_Name": last, "Account_Name": acc["id"],
            "Email": f"{first.lower()}.{last.lower().replace(chr(39), '')}{i}@{name.split()[0].lower()}.example",
            "Phone": f"+64 21 555 {3000 + i:04d}", "Mailing_Street": acc["Billing_Street"], "Mailing_City": city,
            "Mailing_State": region, "Mailing_Zip": code, "Mailing_Country": "New Zealand",
        }, next(tick))
        account_recs.append(acc)
        contacts.append(con)

    inv_start = date(2025, 6, 2)
    for i in range(150):
        acc, con = account_recs[i % len(account_recs)], contacts[i % len(contacts)]
        currency = "NZD"
        if i % 10 == 3:
            currency = "AUD"
        elif i % 10 == 7:
            currency = "USD"
        if i == BAD_CURRENCY:
            currency = "GBP"
        lines = []
        for k in range(rng.randint(1, 6)):
            product = products[rng.randrange(len(products))]
            qty: float = rng.randint(1, 20)
            if product["Product_Code"] == "SV-002":
                qty = rng.choice([1.5, 2, 2.5, 4, 7.5])
            if product["Product_Code"] == "SV-004":
                qty = rng.choice([250, 1000, 1234])
            line: dict[str, Any] = {"Product_Name": product["id"], "Quantity": float(qty),
                                    "List_Price": product["Unit_Price"],
                                    "Line_Tax": [zero if currency in ("AUD", "USD") else gst]}
            if rng.random() < 0.15:
                line["Discount"] = float(round(product["Unit_Price"] * qty * 0.1, 2))
            if i == BAD_TAX and k == 0:
                line["Line_Tax"] = [luxury]
            lines.append(line)
        status = rng.choice(["Created", "Approved", "Approved", "Delivered"])
        if i == BAD_STATUS:
            status = "On Hold"
        inv_date = inv_start + timedelta(days=i)
        if i == BAD_DATE:
            inv_date = date(2025, 2, 14)
        rate = next(float(c["exchange_rate"]) for c in org.currencies if c["iso_code"] == currency)
        rec: dict[str, Any] = {
            "Subject": f"{acc['Account_Name']} - order {i + 1:03d}", "Invoice_Date": inv_date.isoformat(),
            "Due_Date": (inv_date + timedelta(days=20)).isoformat(), "Status": status,
            "Account_Name": acc["id"], "Contact_Name": con["id"], "Currency": currency, "Exchange_Rate": rate,
            "Billing_Street": acc["Billing_Street"], "Billing_City": acc["Billing_City"],
            "Billing_Code": acc["Billing_Code"], "Billing_Country": "New Zealand",
            "Terms_and_Conditions": "Payment due within 20 days.",
        }
        if i % 15 == 8:
            rec["Adjustment"] = -0.05 if i % 2 else 2.5
        if i == BAD_NO_ACCOUNT:
            del rec["Account_Name"], rec["Contact_Name"]
            rec["Subject"] = f"Walk-in sale - order {i + 1:03d}"
        rec = _document(org, "Invoices", rec, lines, next(tick))
        if i % 12 == 5:
            # A header discount of 5 % of the sub-total (an amount, as Zoho stores it).
            rec["Discount"] = num(q(dec(rec["Sub_Total"]) * Decimal("0.05")))
            compute_totals(org, "Invoices", rec)

    for i in range(4):
        vendor = vendors[i % len(vendors)]
        lines = [{"Product_Name": products[(i + k) % 5]["id"], "Quantity": float(5 + k * 5),
                  "List_Price": round(products[(i + k) % 5]["Unit_Price"] * 0.6, 2), "Line_Tax": [gst]}
                 for k in range(1 + i % 3)]
        _document(org, "Purchase_Orders", {
            "Subject": f"Restock from {vendor['Vendor_Name']} #{i + 1}", "Vendor_Name": vendor["id"],
            "PO_Date": (date(2025, 7, 1) + timedelta(days=14 * i)).isoformat(),
            "Status": "Created" if i % 2 == 0 else "Approved", "Currency": "NZD", "Exchange_Rate": 1.0,
        }, lines, next(tick))
    for i in range(2):
        acc = account_recs[i]
        lines = [{"Product_Name": products[5 + i]["id"], "Quantity": 2.0, "List_Price": products[5 + i]["Unit_Price"],
                  "Line_Tax": [gst]}]
        _document(org, "Quotes", {"Subject": f"Proposal for {acc['Account_Name']}", "Account_Name": acc["id"],
                                  "Quote_Stage": "Draft", "Valid_Till": "2025-12-31"}, lines, next(tick))
        _document(org, "Sales_Orders", {"Subject": f"Order for {acc['Account_Name']}", "Account_Name": acc["id"],
                                        "Status": "Created"}, [dict(line) for line in lines], next(tick))
    _done(org)
    if stable_client:
        accounts.add_client(org.id, DEMO_CLIENT_ID, DEMO_CLIENT_SECRET)


def seed_empty(org: Org, *, now: int, name: str = "Empty Org Ltd", xero_fields: bool = True) -> None:
    new_org(org, name, now=now, xero_fields=xero_fields, invoice_status=INVOICE_STATUS_DEMO)
    _done(org)


def seed_generated(org: Org, n: int, *, now: int, name: str, xero_fields: bool = True) -> None:
    """``n`` invoices with 1-8 lines, n/5 accounts with a contact each, n/10 products: deterministic
    and written straight to the store (50,000 invoices take seconds)."""
    new_org(org, name, now=now, xero_fields=xero_fields, invoice_status=INVOICE_STATUS_DEMO)
    rng = random.Random(n)
    rand = rng.random  # int(rand() * k) is several times faster than randrange on 300,000 draws

    def pick(k: int) -> int:
        return int(rand() * k)
    gst = org.taxes[0]["id"]
    zero = org.taxes[1]["id"]
    n_products, n_accounts = max(1, n // 10), max(1, n // 5)
    total = n_products + 2 * n_accounts + n
    start = now - total - 60
    user = org.user["id"]
    store, oid = org.store, org.id
    seq = org.doc["seq"]

    def next_id() -> str:
        nonlocal seq
        seq += 1
        return f"{oid}{seq:010d}"

    clock = iter(range(start, now))

    def put(module: str, rec: dict[str, Any]) -> dict[str, Any]:
        t = next(clock)
        rec.update(id=next_id(), Owner=user, Created_By=user, Modified_By=user, Created_Time=t, Modified_Time=t)
        store.put(oid, module, rec["id"], rec)
        return rec

    prices = []
    product_ids = []
    for p in range(n_products):
        cents = 100 + pick(249901)
        prices.append(cents / 100)
        rec = put("Products", {"Product_Name": f"Product {p + 1:06d}", "Product_Code": f"GEN-{p + 1:06d}",
                               "Unit_Price": cents / 100, "Product_Active": True, "Taxable": True})
        product_ids.append(rec["id"])
    accounts_ids, contact_ids = [], []
    for a in range(n_accounts):
        acc = put("Accounts", {"Account_Name": f"Customer {a + 1:06d} Ltd", "Account_Number": f"G{a + 1:06d}",
                               "Billing_City": CITIES[a % len(CITIES)][0], "Billing_Country": "New Zealand",
                               "Currency": "NZD", "Exchange_Rate": 1.0})
        con = put("Contacts", {"First_Name": FIRST[a % 20], "Last_Name": f"{LAST[(a * 7) % 20]} {a + 1}",
                               "Email": f"buyer{a + 1}@customer{a + 1}.example", "Account_Name": acc["id"],
                               "Currency": "NZD", "Exchange_Rate": 1.0})
        accounts_ids.append(acc["id"])
        contact_ids.append(con["id"])
    statuses = ["Created", "Approved", "Approved", "Delivered"]
    first_day = date(2025, 6, 2)
    tax_cache = {gst: 15, zero: 0}
    # Shared immutable values keep 50,000 invoices lean (rows are replaced, never edited in place).
    tax_lists = {gst: [gst], zero: [zero]}
    quantities = {q: float(q) for q in range(1, 21)}
    days = [((first_day + timedelta(days=d)).isoformat(), (first_day + timedelta(days=d + 20)).isoformat())
            for d in range(300)]
    for i in range(n):
        lines, sub_cents = [], 0
        for k in range(1 + pick(8)):
            p = pick(n_products)
            qty = 1 + pick(20)
            price_cents = round(prices[p] * 100)
            tax = gst if rand() < 0.9 else zero
            # Integer cents: Total = qty * price; Tax = round half up (Total * pct / 100).
            line_total = qty * price_cents
            sub_cents += line_total + (line_total * tax_cache[tax] + 50) // 100
            lines.append({"id": next_id(), "Product_Name": product_ids[p], "Quantity": quantities[qty],
                          "List_Price": prices[p], "Line_Tax": tax_lists[tax], "Sequence_Number": k + 1})
        a = pick(n_accounts)
        invoice_date, due_date = days[i % 300]
        put("Invoices", {
            "Subject": f"Invoice {i + 1:06d} for Customer {a + 1:06d}", "Invoice_Date": invoice_date,
            "Due_Date": due_date, "Status": statuses[i % 4],
            "Account_Name": accounts_ids[a], "Contact_Name": contact_ids[a], "Currency": "NZD", "Exchange_Rate": 1.0,
            "Invoiced_Items": lines, "Invoice_Number": f"INV-{1001 + i}",
            "Sub_Total": sub_cents / 100, "Tax": 0.0, "Grand_Total": sub_cents / 100,
        })
    org.doc["seq"] = seq
    org.doc.setdefault("auto", {})["Invoices"] = 1001 + n
    _done(org)
