"""The convergence oracle: what both systems must hold once a sync has converged, and every way
they differ from it.

Independent of the product on purpose. It reads the Zoho org *as seeded* (:class:`Manifest`,
taken through Zoho's API before any sync), the Xero organisation's reference facts (currencies,
lock dates) and the org's YAML as plain data, and predicts with its own small arithmetic — never
the product's mapping engine — what Xero must hold for each Zoho record and what Zoho must show
back. :func:`compare` then reads both systems (with their own fresh tokens, not the product's) and
lists every duplicate, every missing record and every field that differs.

Only what a reviewer can predict by hand from the seed and the YAML is compared: per Zoho Account
one Xero contact (ContactNumber = the Zoho id, name, email); per Product one Xero item (code, name,
price); per Invoice exactly one ACCREC invoice (number, contact link, date, due date, currency,
status mapping, reference, total, line count and per line quantity, unit price, discount, tax
type, account and description) or a reject with its own reason; and the Xero_* write-back fields
in Zoho. Anything else found in either system (a second copy, a record nobody asked for) is a
duplicate.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, Literal

import yaml

#: Fields read from Zoho (as seeded and after the sync).
ACCOUNT_FIELDS = ["Account_Name", "Account_Number", "Xero_Contact_ID"]
CONTACT_FIELDS = ["First_Name", "Last_Name", "Email", "Account_Name", "Created_Time"]
PRODUCT_FIELDS = ["Product_Name", "Product_Code", "Unit_Price", "Product_Category", "Description", "Xero_Item_ID"]
INVOICE_FIELDS = ["Invoice_Number", "Subject", "Purchase_Order", "Description", "Status", "Invoice_Date", "Due_Date",
                  "Account_Name", "Currency", "Invoiced_Items", "Sub_Total", "Discount", "Adjustment",
                  "Excise_Duty", "Grand_Total", "Xero_Invoice_ID", "Xero_Invoice_Number", "Xero_Status",
                  "Xero_Amount_Due", "Xero_Sync_Status"]
#: Xero's per-element text limits the oracle knows (Xero's API docs): longer is a reject or a cut.
XERO_RATES = {"OUTPUT2": Decimal(15), "INPUT2": Decimal(15), "ZERORATED": Decimal(0), "NONE": Decimal(0)}
CENT = Decimal("0.01")

Outcome = Literal["synced", "rejected", "either", "skipped"]


def money(value: Any) -> Decimal:
    """Zoho/Xero amounts as cents (None and '' are zero)."""
    if value in (None, ""):
        return Decimal(0)
    return Decimal(str(value)).quantize(CENT, rounding=ROUND_HALF_UP)


def number(value: Any) -> Decimal | None:
    if value in (None, ""):
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


def xero_date(value: Any) -> str | None:
    """``2025-07-01`` from Xero's ``DateString`` / ISO text (the ``/Date(...)/`` form is not read)."""
    if not value:
        return None
    return str(value)[:10]


# --- what the Zoho org held before any sync --------------------------------------------------------
@dataclass
class Manifest:
    """The Zoho org as seeded, read through Zoho's own API before the first sync."""

    accounts: dict[str, dict[str, Any]]
    contacts: list[dict[str, Any]]
    products: dict[str, dict[str, Any]]
    invoices: dict[str, dict[str, Any]]

    @classmethod
    def read(cls, zoho: Any) -> Manifest:
        """``zoho`` is a :class:`tests.e2e_support.ZohoReader` of the org."""
        return cls(accounts={r["id"]: r for r in zoho.records("Accounts", ACCOUNT_FIELDS)},
                   contacts=zoho.records("Contacts", CONTACT_FIELDS),
                   products={r["id"]: r for r in zoho.records("Products", PRODUCT_FIELDS)},
                   invoices={r["id"]: r for r in zoho.records("Invoices", INVOICE_FIELDS)})

    def __len__(self) -> int:
        return len(self.accounts) + len(self.products) + len(self.invoices)


@dataclass
class XeroFacts:
    """What the oracle needs to know of the Xero organisation: enabled currencies and lock dates."""

    currencies: set[str]
    lock_date: date | None
    base_currency: str

    @classmethod
    def read(cls, xero: Any) -> XeroFacts:
        """``xero`` is a :class:`tests.e2e_support.XeroReader` of the tenant."""
        org = xero.get("Organisation")["Organisations"][0]
        locks = [date.fromisoformat(xero_date(org.get(k)) or "") for k in ("PeriodLockDate", "EndOfYearLockDate")
                 if _iso(org.get(k))]
        currencies = {c["Code"] for c in xero.get("Currencies")["Currencies"]}
        return cls(currencies=currencies | {org["BaseCurrency"]}, lock_date=max(locks) if locks else None,
                   base_currency=org["BaseCurrency"])


def _iso(value: Any) -> bool:
    try:
        date.fromisoformat(str(value)[:10])
        return True
    except ValueError:
        return False


# --- what must be true afterwards ------------------------------------------------------------------
@dataclass
class ExpectedLine:
    quantity: Decimal
    unit: Decimal
    discount: Decimal
    tax_type: str
    account: str
    description: str | None
    amount: Decimal  # Xero's LineAmount (exclusive)


@dataclass
class ExpectedInvoice:
    zoho_id: str
    number: str
    contact_zoho_id: str
    status: str
    currency: str
    date: str
    due_date: str | None
    reference: str | None
    total: Decimal
    lines: list[ExpectedLine]
    #: Lines the product adds for header amounts (discount, adjustment, excise duty) and rounding.
    extra_lines: int
    zoho_status: str


@dataclass
class ExpectedReject:
    zoho_id: str
    module: str
    #: Rule id prefixes any of which explains the reject (``status.``, ``tax.unmapped`` ...).
    rules: tuple[str, ...]


@dataclass
class Expected:
    contacts: dict[str, dict[str, Any]] = field(default_factory=dict)
    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    invoices: dict[str, ExpectedInvoice] = field(default_factory=dict)
    rejects: dict[str, ExpectedReject] = field(default_factory=dict)
    #: Records the sync must leave alone (before ``sync_from``): neither pushed nor rejected.
    skipped: set[str] = field(default_factory=set)
    #: Records whose outcome the caller fixed (hostile input): "synced", "rejected" or "either".
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    #: Records created in Xero by hand (Xero id -> Zoho module): each must appear once in Zoho.
    xero_born: dict[str, str] = field(default_factory=dict)

    def rejected_ids(self) -> set[str]:
        return set(self.rejects)


def load_org_yaml(path: Path) -> dict[str, Any]:
    """The org file as plain data (not through the product's config loader)."""
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _first_text(*values: Any) -> str | None:
    for value in values:
        text = value.get("name") if isinstance(value, dict) else value
        if text is not None and str(text).strip():
            return str(text).strip()
    return None


def mapped_text(record: dict[str, Any], org: dict[str, Any], section: str, target: str,
                default_sources: tuple[str, ...] = ()) -> str | None:
    """A text field as the org file maps it: the first non-empty source, trimmed, cut to any
    ``truncate`` (only those two transforms are modelled; others make the field unpredicted)."""
    mapping = next((m for m in (org.get("fields") or {}).get(section) or [] if m.get("target") == target), None)
    sources = mapping.get("source") if mapping else list(default_sources)
    if not sources:
        return None
    sources = [sources] if isinstance(sources, str) else list(sources)
    text = _first_text(*(record.get(s) for s in sources))
    for transform in (mapping or {}).get("transforms") or []:
        if isinstance(transform, dict) and "truncate" in transform and text is not None:
            text = text[: int(transform["truncate"])]
    return text


def _lookup_id(value: Any) -> str | None:
    if isinstance(value, dict):
        return str(value.get("id")) if value.get("id") else None
    return str(value) if value else None


def expect(manifest: Manifest, org: dict[str, Any], facts: XeroFacts) -> Expected:
    """The final state the seed and the org file call for (both directions of the push)."""
    out = Expected()
    people: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for person in manifest.contacts:
        account = _lookup_id(person.get("Account_Name"))
        if account:
            people[account].append(person)
    names = Counter(str(a["Account_Name"]).strip().casefold() for a in manifest.accounts.values())
    suffix = str((org.get("contacts") or {}).get("name_clash_suffix") or " ({Account_Number})")
    for zoho_id, account in manifest.accounts.items():
        persons = sorted(people.get(zoho_id, []), key=lambda p: (str(p.get("Created_Time")), p["id"]))
        email = persons[0].get("Email") if persons else None
        name = str(account["Account_Name"]).strip()
        allowed = {name}
        if names[name.casefold()] > 1:  # a name clash: one of them carries the org's suffix
            allowed.add(name + suffix.format(**{k: v or "" for k, v in account.items()}))
        out.contacts[zoho_id] = {"ContactNumber": zoho_id, "Name": name, "Names": allowed, "EmailAddress": email}
    for zoho_id, product in manifest.products.items():
        out.items[zoho_id] = {"Code": str(product.get("Product_Code") or "").strip(),
                              "Name": mapped_text(product, org, "products", "Name", ("Product_Name",)),
                              "UnitPrice": number(product.get("Unit_Price"))}
    for zoho_id, invoice in manifest.invoices.items():
        outcome = _expect_invoice(invoice, manifest, org, facts)
        if isinstance(outcome, ExpectedInvoice):
            out.invoices[zoho_id] = outcome
        elif isinstance(outcome, ExpectedReject):
            out.rejects[zoho_id] = outcome
        else:
            out.skipped.add(zoho_id)
    return out


def _expect_invoice(inv: dict[str, Any], manifest: Manifest, org: dict[str, Any],
                    facts: XeroFacts) -> ExpectedInvoice | ExpectedReject | None:
    zoho_id = inv["id"]
    status_map = org["status"]["invoices"]
    sync_from = org.get("sync_from")
    inv_date = str(inv.get("Invoice_Date") or "")
    if sync_from and inv_date and inv_date < str(sync_from):
        return None
    rules: list[str] = []
    zoho_status = inv.get("Status")
    if zoho_status in status_map.get("cancel", []):
        return None  # cancelled before it ever reached Xero: nothing to push
    if zoho_status not in status_map["to_xero"]:
        rules.append("status.")
    account = _lookup_id(inv.get("Account_Name"))
    if not account:
        rules.append("contact.missing")
    currency = (org.get("currency") or {}).get("map", {}).get(inv.get("Currency") or facts.base_currency)
    if currency is None or currency not in facts.currencies:
        rules.append("currency.")
    if facts.lock_date is not None and inv_date and date.fromisoformat(inv_date) <= facts.lock_date:
        rules.append("date.before_")
    lines: list[ExpectedLine] = []
    tax_cfg = org["tax"]
    accounts_cfg = org.get("accounts") or {}
    for row in inv.get("Invoiced_Items") or []:
        taxes = row.get("Line_Tax") or []
        if len(taxes) > 1:
            rules.append("tax.multiple")
            continue
        if taxes:
            name, pct = taxes[0].get("name"), number(taxes[0].get("percentage"))
            tax_type = tax_cfg.get("map", {}).get(name)
            if tax_type is None and pct is not None:
                tax_type = {Decimal(str(k)): v for k, v in (tax_cfg.get("by_rate") or {}).items()}.get(pct)
            if tax_type is None:
                rules.append("tax.unmapped")
                continue
        else:
            tax_type = tax_cfg.get("default")
        product_ref = row.get("Product_Name") if isinstance(row.get("Product_Name"), dict) else {}
        product = manifest.products.get(str(product_ref.get("id"))) or {}
        code = product.get("Product_Code") or product_ref.get("Product_Code")
        account_code = ((accounts_cfg.get("by_product_code") or {}).get(code)
                        or (accounts_cfg.get("by_category") or {}).get(product.get("Product_Category"))
                        or (accounts_cfg.get("defaults") or {}).get("invoices"))
        qty, unit = number(row.get("Quantity")), number(row.get("List_Price"))
        if qty is None or unit is None:
            rules.append("line.")
            continue
        discount = money(row.get("Discount"))
        amount = (qty * unit).quantize(CENT, rounding=ROUND_HALF_UP) - discount
        lines.append(ExpectedLine(quantity=qty, unit=unit, discount=discount, tax_type=str(tax_type),
                                  account=str(account_code),
                                  description=_first_text(row.get("Description"), product_ref.get("name")),
                                  amount=amount))
    if rules:
        return ExpectedReject(zoho_id=zoho_id, module="Invoices", rules=tuple(dict.fromkeys(rules)))
    # Xero's arithmetic: tax per line at 2 dp, summed; header amounts become untaxed lines.
    total = sum((ln.amount + (ln.amount * XERO_RATES.get(ln.tax_type, Decimal(0)) / 100).quantize(
        CENT, rounding=ROUND_HALF_UP) for ln in lines), Decimal(0))
    header = {"Discount": -money(inv.get("Discount")), "Adjustment": money(inv.get("Adjustment")),
              "Excise_Duty": money(inv.get("Excise_Duty"))}
    extra = sum(1 for v in header.values() if v != 0)
    total += sum(header.values(), Decimal(0))
    grand = money(inv.get("Grand_Total"))
    if total != grand:
        extra += 1  # the rounding line that makes Xero's total Zoho's Grand_Total
    if total < 0:
        return ExpectedReject(zoho_id=zoho_id, module="Invoices", rules=("totals.negative",))
    reference = mapped_text(inv, org, "invoices", "Reference")
    return ExpectedInvoice(zoho_id=zoho_id, number=str(inv["Invoice_Number"]), contact_zoho_id=str(account),
                           status=status_map["to_xero"][zoho_status], currency=str(currency), date=inv_date,
                           due_date=inv.get("Due_Date"), reference=reference,
                           total=grand, lines=lines, extra_lines=extra, zoho_status=str(zoho_status))


# --- what the two systems hold now -----------------------------------------------------------------
@dataclass
class Actual:
    """Both systems as they are, read with the oracle's own tokens."""

    xero_contacts: list[dict[str, Any]]
    xero_items: list[dict[str, Any]]
    xero_invoices: list[dict[str, Any]]
    zoho_accounts: dict[str, dict[str, Any]]
    zoho_products: dict[str, dict[str, Any]]
    zoho_invoices: dict[str, dict[str, Any]]

    @classmethod
    def read(cls, xero: Any, zoho: Any) -> Actual:
        return cls(
            xero_contacts=xero.all("Contacts", includeArchived="true"),
            xero_items=xero.get("Items", unitdp=4)["Items"],
            xero_invoices=xero.all("Invoices", where='Type=="ACCREC"', unitdp=4),
            zoho_accounts={r["id"]: r for r in zoho.records("Accounts", ACCOUNT_FIELDS)},
            zoho_products={r["id"]: r for r in zoho.records("Products", PRODUCT_FIELDS)},
            zoho_invoices={r["id"]: r for r in zoho.records("Invoices", INVOICE_FIELDS)})


# --- the comparison --------------------------------------------------------------------------------
FindingKind = Literal["duplicate", "missing", "differs"]


@dataclass(frozen=True)
class Finding:
    kind: FindingKind
    system: str
    entity: str
    record: str
    field: str = ""
    expected: Any = None
    actual: Any = None

    def __str__(self) -> str:
        where = f"{self.system} {self.entity} {self.record}" + (f" {self.field}" if self.field else "")
        if self.kind == "differs":
            return f"differs: {where}: expected {self.expected!r}, found {self.actual!r}"
        return f"{self.kind}: {where}" + (f" ({self.actual})" if self.actual is not None else "")


@dataclass
class Report:
    findings: list[Finding]
    checked: int

    def of(self, kind: FindingKind) -> list[Finding]:
        return [f for f in self.findings if f.kind == kind]

    @property
    def duplicates(self) -> int:
        return len(self.of("duplicate"))

    @property
    def missing(self) -> int:
        return len(self.of("missing"))

    @property
    def differing(self) -> int:
        return len(self.of("differs"))

    @property
    def converged(self) -> bool:
        return not self.findings

    def text(self, limit: int = 40) -> str:
        head = (f"{self.checked} records checked: {self.duplicates} duplicate(s), {self.missing} missing, "
                f"{self.differing} differing field(s)")
        return "\n".join([head, *(f"  {f}" for f in self.findings[:limit])]
                         + ([f"  ... {len(self.findings) - limit} more"] if len(self.findings) > limit else []))


class _Findings(list[Finding]):
    def differs(self, system: str, entity: str, record: str, name: str, expected: Any, actual: Any) -> None:
        if expected != actual:
            self.append(Finding("differs", system, entity, record, name, expected, actual))


def compare(expected: Expected, actual: Actual, manifest: Manifest) -> Report:
    """Every duplicate, missing record and differing field between what is and what must be."""
    found = _Findings()
    contacts = _compare_contacts(expected, actual, manifest, found)
    items = _compare_items(expected, actual, manifest, found)
    _compare_invoices(expected, actual, manifest, contacts, found)
    checked = len(expected.contacts) + len(expected.items) + len(expected.invoices) + len(expected.rejects)
    del items
    return Report(findings=list(found), checked=checked)


def _compare_contacts(expected: Expected, actual: Actual, manifest: Manifest,
                      found: _Findings) -> dict[str, dict[str, Any]]:
    """Zoho account id -> its one Xero contact."""
    by_number: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for contact in actual.xero_contacts:
        if contact.get("ContactNumber"):
            by_number[contact["ContactNumber"]].append(contact)
    by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for contact in actual.xero_contacts:
        if contact.get("ContactStatus", "ACTIVE") == "ACTIVE":
            by_name[str(contact.get("Name") or "").strip().casefold()].append(contact)
    wanted_names = Counter(want["Name"].casefold() for want in expected.contacts.values())
    for name, count in wanted_names.items():
        holders = {c["ContactID"] for n, cs in by_name.items() for c in cs
                   if n == name or (n.startswith(name + " (") and n.endswith(")"))}
        if len(holders) > count:
            found.append(Finding("duplicate", "xero", "Contact", name,
                                 actual=f"{len(holders)} Xero contacts for {count} Zoho account(s) of that name"))
    mine: dict[str, dict[str, Any]] = {}
    for zoho_id, want in expected.contacts.items():
        hits = by_number.get(zoho_id, [])
        outcome = expected.outcomes.get(zoho_id, "synced")
        if outcome == "rejected" and hits:
            found.append(Finding("duplicate", "xero", "Contact", zoho_id, actual="in Xero although it must be rejected"))
        if outcome in ("rejected", "either") and not hits:
            continue
        if not hits:
            found.append(Finding("missing", "xero", "Contact", zoho_id, actual=want["Name"]))
            continue
        if len(hits) > 1:
            found.append(Finding("duplicate", "xero", "Contact", zoho_id, actual=f"{len(hits)} copies"))
        contact = mine[zoho_id] = hits[0]
        name = str(contact.get("Name"))
        if name not in want["Names"]:
            found.differs("xero", "Contact", zoho_id, "Name", " or ".join(sorted(want["Names"])), name)
        if want["EmailAddress"]:
            found.differs("xero", "Contact", zoho_id, "EmailAddress", want["EmailAddress"],
                          contact.get("EmailAddress") or None)
        zoho = actual.zoho_accounts.get(zoho_id) or {}
        found.differs("zoho", "Accounts", zoho_id, "Xero_Contact_ID", contact["ContactID"], zoho.get("Xero_Contact_ID"))
    for number_, hits in by_number.items():
        if number_ in expected.contacts:
            continue
        copy = actual.zoho_accounts.get(number_) or {}
        if len(hits) == 1 and hits[0]["ContactID"] in expected.xero_born and \
                copy.get("Xero_Contact_ID") == hits[0]["ContactID"]:
            continue  # born in Xero, copied into Zoho, now numbered by its Zoho copy
        found.append(Finding("duplicate", "xero", "Contact", number_, actual="no Zoho account has this id"))
    _born_in_xero(expected, "Accounts", actual.zoho_accounts, manifest.accounts, "Xero_Contact_ID",
                  "Account_Name", found)
    return mine


def _born_in_xero(expected: Expected, module: str, records: dict[str, dict[str, Any]], seeded: dict[str, Any],
                  id_field: str, label: str, found: _Findings) -> None:
    """Zoho records nobody seeded must be copies of records born in Xero, one each."""
    wanted = {x for x, m in expected.xero_born.items() if m == module}
    copies: Counter[str] = Counter()
    for zoho_id, record in records.items():
        if zoho_id in seeded:
            continue
        xero_id = record.get(id_field)
        if xero_id in wanted and not copies[xero_id]:
            copies[xero_id] += 1
            continue
        found.append(Finding("duplicate", "zoho", module, zoho_id, actual=f"not seeded: {record.get(label)}"
                             + (f" (another copy of Xero {xero_id})" if xero_id in wanted else "")))
    for xero_id in sorted(wanted - set(copies)):
        found.append(Finding("missing", "zoho", module, xero_id, actual="created in Xero, never reached Zoho"))


def _compare_items(expected: Expected, actual: Actual, manifest: Manifest, found: _Findings) -> None:
    by_code: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in actual.xero_items:
        by_code[str(item.get("Code")).casefold()].append(item)
    wanted_codes = {w["Code"].casefold() for w in expected.items.values()}
    for zoho_id, want in expected.items.items():
        hits = by_code.get(want["Code"].casefold(), [])
        outcome = expected.outcomes.get(zoho_id, "synced")
        zoho = actual.zoho_products.get(zoho_id) or {}
        if outcome == "rejected" or (outcome == "either" and not zoho.get("Xero_Item_ID")):
            # Another product may own the code in Xero: what must hold is that this one is not linked.
            found.differs("zoho", "Products", zoho_id, "Xero_Item_ID", None, zoho.get("Xero_Item_ID") or None)
            continue
        if not hits:
            found.append(Finding("missing", "xero", "Item", zoho_id, actual=want["Code"]))
            continue
        if len(hits) > 1:
            found.append(Finding("duplicate", "xero", "Item", zoho_id, actual=f"{len(hits)} copies"))
        item = hits[0]
        found.differs("xero", "Item", zoho_id, "Name", want["Name"], item.get("Name"))
        price = number((item.get("SalesDetails") or {}).get("UnitPrice"))
        if want["UnitPrice"] is not None:
            found.differs("xero", "Item", zoho_id, "SalesDetails.UnitPrice", want["UnitPrice"], price)
        found.differs("zoho", "Products", zoho_id, "Xero_Item_ID", item["ItemID"], zoho.get("Xero_Item_ID"))
    for code, hits in by_code.items():
        if code not in wanted_codes:
            found.append(Finding("duplicate", "xero", "Item", code, actual="no Zoho product has this code"))
    for zoho_id in actual.zoho_products:
        if zoho_id not in manifest.products:
            found.append(Finding("duplicate", "zoho", "Products", zoho_id, actual="not seeded"))


def _compare_invoices(expected: Expected, actual: Actual, manifest: Manifest,
                      contacts: dict[str, dict[str, Any]], found: _Findings) -> None:
    by_number: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for invoice in actual.xero_invoices:
        by_number[str(invoice.get("InvoiceNumber"))].append(invoice)
    claimed: set[str] = set()
    for zoho_id, want in expected.invoices.items():
        outcome = expected.outcomes.get(zoho_id, "synced")
        hits = by_number.get(want.number, [])
        zoho = actual.zoho_invoices.get(zoho_id) or {}
        claimed.add(want.number)
        if outcome == "rejected" and hits:
            found.append(Finding("duplicate", "xero", "Invoice", zoho_id,
                                 actual=f"{want.number} is in Xero although it must be rejected"))
            continue
        if outcome == "skipped":
            if hits:
                found.append(Finding("duplicate", "xero", "Invoice", zoho_id, actual=f"{want.number} must be skipped"))
            continue
        if not hits:
            status = str(zoho.get("Xero_Sync_Status") or "")
            if outcome in ("rejected", "either"):
                # A reject (the caller checks its reason in the journal): Zoho must say so.
                if not status.startswith("rejected: "):
                    found.differs("zoho", "Invoices", zoho_id, "Xero_Sync_Status", "rejected: <reason>",
                                  status or None)
                continue
            found.append(Finding("missing", "xero", "Invoice", zoho_id, actual=want.number))
            continue
        if len(hits) > 1:
            found.append(Finding("duplicate", "xero", "Invoice", zoho_id, actual=f"{len(hits)} copies of {want.number}"))
        invoice = hits[0]
        _compare_invoice(want, invoice, contacts, found)
        found.differs("zoho", "Invoices", zoho_id, "Xero_Invoice_ID", invoice["InvoiceID"], zoho.get("Xero_Invoice_ID"))
        found.differs("zoho", "Invoices", zoho_id, "Xero_Invoice_Number", want.number, zoho.get("Xero_Invoice_Number"))
        found.differs("zoho", "Invoices", zoho_id, "Xero_Status", invoice.get("Status"), zoho.get("Xero_Status"))
        found.differs("zoho", "Invoices", zoho_id, "Xero_Sync_Status", "synced", zoho.get("Xero_Sync_Status"))
        found.differs("zoho", "Invoices", zoho_id, "Xero_Amount_Due", money(invoice.get("AmountDue")),
                      money(zoho.get("Xero_Amount_Due")))
        found.differs("zoho", "Invoices", zoho_id, "Status", want.zoho_status, zoho.get("Status"))
    for zoho_id, reject in expected.rejects.items():
        zoho = actual.zoho_invoices.get(zoho_id) or {}
        number_ = str(manifest.invoices[zoho_id].get("Invoice_Number"))
        claimed.add(number_)
        hits = by_number.get(number_, [])
        if hits and expected.outcomes.get(zoho_id) != "either":
            found.append(Finding("duplicate", "xero", "Invoice", zoho_id,
                                 actual=f"{number_} is in Xero although it must be rejected ({'/'.join(reject.rules)})"))
        if not hits:
            status = str(zoho.get("Xero_Sync_Status") or "")
            if not status.startswith("rejected: "):
                found.differs("zoho", "Invoices", zoho_id, "Xero_Sync_Status", "rejected: <reason>", status or None)
            if zoho.get("Xero_Invoice_ID"):
                found.differs("zoho", "Invoices", zoho_id, "Xero_Invoice_ID", None, zoho.get("Xero_Invoice_ID"))
    for zoho_id in expected.skipped:
        number_ = str(manifest.invoices[zoho_id].get("Invoice_Number"))
        claimed.add(number_)
        if by_number.get(number_):
            found.append(Finding("duplicate", "xero", "Invoice", zoho_id, actual=f"{number_} is before sync_from"))
    for number_, hits in by_number.items():
        if number_ not in claimed:
            for invoice in hits:
                if invoice["InvoiceID"] in expected.xero_born:
                    continue
                found.append(Finding("duplicate", "xero", "Invoice", invoice["InvoiceID"],
                                     actual=f"{number_}: no Zoho invoice has this number"))
    _born_in_xero(expected, "Invoices", actual.zoho_invoices, manifest.invoices, "Xero_Invoice_ID",
                  "Invoice_Number", found)


def _compare_invoice(want: ExpectedInvoice, invoice: dict[str, Any], contacts: dict[str, dict[str, Any]],
                     found: _Findings) -> None:
    rec = want.zoho_id
    contact = contacts.get(want.contact_zoho_id)
    found.differs("xero", "Invoice", rec, "Contact.ContactID", contact["ContactID"] if contact else
                  f"the contact of Zoho account {want.contact_zoho_id}", (invoice.get("Contact") or {}).get("ContactID"))
    found.differs("xero", "Invoice", rec, "Status", want.status, invoice.get("Status"))
    found.differs("xero", "Invoice", rec, "CurrencyCode", want.currency, invoice.get("CurrencyCode"))
    found.differs("xero", "Invoice", rec, "Date", want.date, xero_date(invoice.get("DateString")))
    if want.due_date:
        found.differs("xero", "Invoice", rec, "DueDate", want.due_date, xero_date(invoice.get("DueDateString")))
    found.differs("xero", "Invoice", rec, "Reference", want.reference, invoice.get("Reference") or None)
    found.differs("xero", "Invoice", rec, "Total", want.total, money(invoice.get("Total")))
    lines = invoice.get("LineItems") or []
    found.differs("xero", "Invoice", rec, "line count", len(want.lines) + want.extra_lines, len(lines))
    for n, (line, got) in enumerate(zip(want.lines, lines), start=1):
        found.differs("xero", "Invoice", rec, f"line {n} Quantity", line.quantity, number(got.get("Quantity")))
        found.differs("xero", "Invoice", rec, f"line {n} UnitAmount", line.unit, number(got.get("UnitAmount")))
        found.differs("xero", "Invoice", rec, f"line {n} DiscountAmount", line.discount,
                      money(got.get("DiscountAmount")))
        found.differs("xero", "Invoice", rec, f"line {n} TaxType", line.tax_type, got.get("TaxType"))
        found.differs("xero", "Invoice", rec, f"line {n} AccountCode", line.account, got.get("AccountCode"))
        found.differs("xero", "Invoice", rec, f"line {n} LineAmount", line.amount, money(got.get("LineAmount")))
        if line.description is not None:
            found.differs("xero", "Invoice", rec, f"line {n} Description", line.description, got.get("Description"))
