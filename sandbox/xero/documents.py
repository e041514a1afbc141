"""Invoices, credit notes and purchase orders (one engine), payments and credit-note allocations.

Rules and their sources (xero-api-notes.md): status lifecycle and transition table §5.3; what
may be edited when §5.4; numbering §5.5 and §8.3; per-line tax at 2 dp, unitdp=4 and line
amount types §5.6 and SPEC LineItem; payments §8.4; credit notes and allocations §8.5.
Each element is validated completely before anything changes, so a rejected element leaves no
trace (not even an inline-created contact).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sandbox.xero.books import CONTACT_FIELDS, CURRENT_APP, Books, Rejected, norm
from sandbox.xero.formats import ZERO, dec, new_id, parse_input_date, q2, q4

#: Day rates used when a foreign-currency document omits CurrencyRate (Xero uses XE.com's).
DAY_RATES = {"AUD": "0.930000", "USD": "0.610000", "GBP": "0.480000", "EUR": "0.560000"}

LINE_AMOUNT_TYPES = ("Exclusive", "Inclusive", "NoTax")
STATUS_MSG = "not of valid status for modification"
PAID_MSG = "This document cannot be edited as it has a payment or credit note allocated to it."


@dataclass(frozen=True)
class DocKind:
    """What differs between invoices, credit notes and purchase orders."""

    name: str              # message prefix: "Invoice"
    table: str             # store kind
    id_field: str
    number_field: str
    types: tuple[str, ...]
    statuses: tuple[str, ...]
    create_statuses: tuple[str, ...]
    transitions: dict[str, frozenset[str]]
    prefix: str
    counter: str
    ledger: bool           # posts to the ledger: lock dates, payments, contact roles

    def status_message(self) -> str:
        return f"{self.name} {STATUS_MSG}"


_DOC_TRANSITIONS = {
    "DRAFT": frozenset({"SUBMITTED", "AUTHORISED", "DELETED"}),
    "SUBMITTED": frozenset({"DRAFT", "AUTHORISED", "DELETED"}),
    "AUTHORISED": frozenset({"VOIDED"}),
    "PAID": frozenset(), "VOIDED": frozenset(), "DELETED": frozenset(),
}

INVOICE = DocKind("Invoice", "invoices", "InvoiceID", "InvoiceNumber", ("ACCREC", "ACCPAY"),
                  ("DRAFT", "SUBMITTED", "DELETED", "AUTHORISED", "PAID", "VOIDED"),
                  ("DRAFT", "SUBMITTED", "AUTHORISED"), _DOC_TRANSITIONS, "INV-", "invoice_next", True)
CREDIT_NOTE = DocKind("Credit Note", "creditnotes", "CreditNoteID", "CreditNoteNumber",
                      ("ACCRECCREDIT", "ACCPAYCREDIT"),
                      ("DRAFT", "SUBMITTED", "DELETED", "AUTHORISED", "PAID", "VOIDED"),
                      ("DRAFT", "SUBMITTED", "AUTHORISED"), _DOC_TRANSITIONS, "CN-", "credit_note_next", True)
PURCHASE_ORDER = DocKind("Purchase Order", "purchaseorders", "PurchaseOrderID", "PurchaseOrderNumber", (),
                         ("DRAFT", "SUBMITTED", "AUTHORISED", "BILLED", "DELETED"),
                         ("DRAFT", "SUBMITTED", "AUTHORISED"),
                         {"DRAFT": frozenset({"SUBMITTED", "AUTHORISED", "DELETED"}),
                          "SUBMITTED": frozenset({"DRAFT", "AUTHORISED", "DELETED"}),
                          "AUTHORISED": frozenset({"BILLED", "DELETED", "SUBMITTED", "DRAFT"}),
                          "BILLED": frozenset({"AUTHORISED"}), "DELETED": frozenset()},
                         "PO-", "purchase_order_next", False)

#: Header fields a client may write, per kind (SPEC Invoice / CreditNote / PurchaseOrder).
HEADER_FIELDS = {
    "invoices": ("Type", "InvoiceNumber", "Reference", "BrandingThemeID", "Url", "CurrencyCode", "CurrencyRate",
                 "Status", "SentToContact", "ExpectedPaymentDate", "PlannedPaymentDate", "LineAmountTypes",
                 "Date", "DueDate"),
    "creditnotes": ("Type", "CreditNoteNumber", "Reference", "BrandingThemeID", "CurrencyCode", "CurrencyRate",
                    "Status", "LineAmountTypes", "Date", "DueDate"),
    "purchaseorders": ("PurchaseOrderNumber", "Reference", "BrandingThemeID", "CurrencyCode", "CurrencyRate",
                       "Status", "SentToContact", "DeliveryAddress", "AttentionTo", "Telephone",
                       "DeliveryInstructions", "LineAmountTypes", "Date", "DeliveryDate", "ExpectedArrivalDate"),
}
DATE_FIELDS = ("Date", "DueDate", "ExpectedPaymentDate", "PlannedPaymentDate", "DeliveryDate",
               "ExpectedArrivalDate")
LINE_FIELDS = ("Description", "Quantity", "UnitAmount", "ItemCode", "AccountCode", "TaxType", "TaxAmount",
               "LineAmount", "DiscountRate", "DiscountAmount", "Tracking")


def _f(value: Decimal) -> float:
    return float(value)


def _sales(doc_type: str) -> bool:
    return doc_type in ("ACCREC", "ACCRECCREDIT")


# --- lines ---------------------------------------------------------------------------------------
def _line(books: Books, kind: DocKind, doc_type: str, src: dict[str, Any], base: dict[str, Any] | None,
          amount_types: str, status: str, unitdp: int, errors: list[str]) -> dict[str, Any]:
    """One line, validated and computed (tax per line at 2 dp)."""
    line: dict[str, Any] = dict(base) if base else {"LineItemID": new_id()}
    given = {f: src[f] for f in LINE_FIELDS if f in src and src[f] is not None}
    if "AccountID" in src and src["AccountID"] and "AccountCode" not in given:
        acc = books.account(account_id=src["AccountID"])
        if acc is None:
            errors.append("Account must be valid.")
        else:
            given["AccountCode"] = acc["Code"]
    if base is not None and "TaxAmount" not in given:
        line.pop("TaxAmount", None)  # recomputed unless sent again
        line.pop("_tax_override", None)
    line.update(given)
    if "TaxAmount" in given:
        line["_tax_override"] = True
    # Item defaults (SPEC LineItem.ItemCode; ITEMS-DOC): price, account, tax and description.
    item = None
    if line.get("ItemCode"):
        item = books.item_by_code(line["ItemCode"])
        if item is None:
            errors.append(f"Item code '{line['ItemCode']}' is not valid.")
        else:
            details = item.get("SalesDetails" if _sales(doc_type) else "PurchaseDetails") or {}
            if "UnitAmount" not in line and details.get("UnitPrice") is not None:
                line["UnitAmount"] = details["UnitPrice"]
            if "AccountCode" not in line and details.get("AccountCode"):
                line["AccountCode"] = details["AccountCode"]
            if "TaxType" not in line and details.get("TaxType"):
                line["TaxType"] = details["TaxType"]
            if "Description" not in line:
                desc = item.get("Description") if _sales(doc_type) else item.get("PurchaseDescription")
                if desc:
                    line["Description"] = desc
            line["ItemCode"] = item["Code"]
    # Discounts: ACCREC only (SPEC LineItem.DiscountRate/DiscountAmount).
    rate = line.get("DiscountRate")
    disc_amount = line.get("DiscountAmount")
    if (rate is not None or disc_amount is not None) and doc_type != "ACCREC":
        errors.append("Discounts are only supported on sales invoices (ACCREC).")
        rate = disc_amount = None
    try:
        qty = dec(line["Quantity"]) if line.get("Quantity") is not None else None
        unit = dec(line["UnitAmount"]) if line.get("UnitAmount") is not None else None
        la_in = dec(line["LineAmount"]) if line.get("LineAmount") is not None else None
        rate_d = dec(rate) if rate is not None else None
        disc_d = dec(disc_amount) if disc_amount is not None else None
    except ValueError:
        errors.append("Line amounts must be numbers.")
        return line
    unit_q = q4 if unitdp == 4 else q2
    if unit is not None:
        unit = unit_q(unit)
    if qty is not None:
        qty = q4(qty)
    if la_in is not None and (qty is None or unit is None):
        # "provide a LineAmount and Xero will calculate the missing amount" (SPEC LineItem.LineAmount)
        if qty is None and unit is None:
            qty, unit = Decimal(1), unit_q(la_in)
        elif unit is None:
            unit = unit_q(la_in / qty) if qty else ZERO
        else:
            qty = q4(la_in / unit) if unit else Decimal(1)
    if qty is None and unit is not None:
        qty = Decimal(1)
    if unit is None and qty is not None:
        unit = ZERO
    if qty is None:
        # A description-only line.
        line_amount = ZERO
        line.pop("Quantity", None)
        line.pop("UnitAmount", None)
    else:
        gross = q2(qty * unit)
        if rate_d is not None:
            if not ZERO <= rate_d <= 100:
                errors.append("Discount rate must be between 0 and 100.")
            line_amount = q2(qty * unit * (100 - rate_d) / 100)
        elif disc_d is not None:
            line_amount = gross - q2(disc_d)
        else:
            line_amount = gross
        line["Quantity"] = _f(qty)
        line["UnitAmount"] = _f(unit)
        if rate_d is not None or disc_d is not None:
            line["_gross"] = _f(gross)  # kept only where a discount needs it (TotalDiscount)
        else:
            line.pop("_gross", None)
    line["LineAmount"] = _f(q2(line_amount))
    # Account (SPEC LineItem.AccountCode; GH Xero-NetStandard#364, Xero-Java#353).
    account = None
    if line.get("AccountCode"):
        account = books.account(line["AccountCode"])
        if (account is None or account.get("Status") != "ACTIVE" or account.get("Type") == "BANK"
                or account.get("SystemAccount") not in (None, "", "ROUNDING")):
            errors.append(f"Account code '{line['AccountCode']}' is not a valid code for this document.")
            account = None
        else:
            line["AccountCode"] = account["Code"]
            line.pop("AccountID", None)  # rendered from the code: one less string per line in memory
    elif status == "AUTHORISED" and kind.ledger and qty is not None:
        errors.append("Account must be valid.")
    # Tax (notes §5.6; GH Xero-Java#336).
    if amount_types == "NoTax":
        line["TaxType"] = "NONE"
    elif not line.get("TaxType"):
        line["TaxType"] = (account or {}).get("TaxType") or "NONE"
    tax_rate = books.tax_rate(line["TaxType"])
    pct = ZERO
    if tax_rate is None or tax_rate.get("Status") != "ACTIVE":
        errors.append(f"The TaxType code {line['TaxType']} does not exist or cannot be used for this type "
                      "of transaction.")
    else:
        line["TaxType"] = tax_rate["TaxType"]
        pct = dec(tax_rate.get("EffectiveRate", 0))
        if account is not None:
            flag = {"REVENUE": "CanApplyToRevenue", "EXPENSE": "CanApplyToExpenses", "ASSET": "CanApplyToAssets",
                    "LIABILITY": "CanApplyToLiabilities", "EQUITY": "CanApplyToEquity"}.get(account.get("Class", ""))
            if flag and not tax_rate.get(flag, False):
                errors.append(f"The TaxType code '{tax_rate['TaxType']}' cannot be used with account code "
                              f"'{account['Code']}'.")
    la = q2(line_amount)
    if line.get("_tax_override") and line.get("TaxAmount") is not None and amount_types != "NoTax":
        try:
            tax = q2(dec(line["TaxAmount"]))
        except ValueError:
            errors.append("Tax amount must be a number.")
            tax = ZERO
    elif amount_types == "Exclusive":
        tax = q2(la * pct / 100)
    elif amount_types == "Inclusive":
        tax = q2(la * pct / (100 + pct)) if pct else ZERO
    else:
        tax = ZERO
    line["TaxAmount"] = _f(tax)
    # Tracking: at most 2, by name/option or ids, both must exist and be ACTIVE (SPEC LineItem.Tracking).
    tracking = line.get("Tracking") or []
    if not isinstance(tracking, list):
        errors.append("Tracking must be a list.")
        tracking = []
    if len(tracking) > 2:
        errors.append("A line item can have a maximum of 2 tracking categories.")
    resolved = []
    for t in tracking[:2]:
        if not isinstance(t, dict):
            errors.append("Tracking must be a list of objects.")
            continue
        cat = books.tracking_category(name=t.get("Name"), cat_id=t.get("TrackingCategoryID"))
        if cat is None or cat.get("Status") != "ACTIVE":
            errors.append(f"Tracking category '{t.get('Name') or t.get('TrackingCategoryID')}' does not exist "
                          "or is not active.")
            continue
        option = None
        for o in cat.get("Options", []):
            if (t.get("TrackingOptionID") and o["TrackingOptionID"] == str(t["TrackingOptionID"]).lower()) or \
                    (t.get("Option") is not None and norm(o["Name"]) == norm(t["Option"])):
                option = o
                break
        if option is None or option.get("Status") != "ACTIVE":
            errors.append(f"Tracking option '{t.get('Option') or t.get('TrackingOptionID')}' is not a valid "
                          f"option for tracking category '{cat['Name']}'.")
            continue
        resolved.append({"Name": cat["Name"], "Option": option["Name"],
                         "TrackingCategoryID": cat["TrackingCategoryID"],
                         "TrackingOptionID": option["TrackingOptionID"]})
    if resolved:
        line["Tracking"] = resolved
    else:
        line.pop("Tracking", None)
    if item is not None:
        line["_item"] = item["ItemID"]
    return line


def _lines(books: Books, kind: DocKind, doc_type: str, src_lines: Any, existing: list[dict[str, Any]],
           amount_types: str, status: str, unitdp: int, errors: list[str]) -> list[dict[str, Any]]:
    """Lines sent with a LineItemID keep it; lines without are new (placed first, as Xero does:
    GH Xero-NetStandard#374); existing lines not sent are deleted (INV-DOC via GH xeroizer#238)."""
    if not isinstance(src_lines, list):
        errors.append("LineItems must be a list.")
        return existing
    by_id = {line["LineItemID"]: line for line in existing}
    new, kept = [], []
    for src in src_lines:
        if not isinstance(src, dict):
            errors.append("LineItems must be a list of objects.")
            continue
        lid = str(src.get("LineItemID") or "").lower()
        base = by_id.get(lid)
        line = _line(books, kind, doc_type, src, base, amount_types, status, unitdp, errors)
        (kept if base is not None else new).append(line)
    return new + kept


def _recompute_lines(books: Books, kind: DocKind, doc_type: str, lines: list[dict[str, Any]],
                     amount_types: str, status: str, unitdp: int, errors: list[str]) -> list[dict[str, Any]]:
    """Existing lines re-validated under a new header (status, amount types)."""
    out = []
    for line in lines:
        src = {f: line[f] for f in LINE_FIELDS if f in line}
        if not line.get("_tax_override"):
            src.pop("TaxAmount", None)
        keep = {"LineItemID": line["LineItemID"]}
        out.append(_line(books, kind, doc_type, src, keep, amount_types, status, 4, errors))
    return out


def totals(doc: dict[str, Any], amount_types: str) -> None:
    """SubTotal/TotalTax/Total/TotalDiscount: read-only, always computed (SPEC Invoice.Total)."""
    la = sum((q2(dec(line["LineAmount"])) for line in doc["LineItems"]), ZERO)
    tax = sum((q2(dec(line.get("TaxAmount", 0))) for line in doc["LineItems"]), ZERO)
    if amount_types == "Inclusive":
        total, sub = la, la - tax
    else:
        sub, total = la, la + tax
    discount = sum((q2(dec(line["_gross"])) - q2(dec(line["LineAmount"])) for line in doc["LineItems"]
                    if "_gross" in line and (line.get("DiscountRate") is not None
                                             or line.get("DiscountAmount") is not None)), ZERO)
    doc["SubTotal"], doc["TotalTax"], doc["Total"] = _f(sub), _f(tax), _f(total)
    if discount != ZERO:
        doc["TotalDiscount"] = _f(discount)
    else:
        doc.pop("TotalDiscount", None)


def _settle(doc: dict[str, Any], kind: DocKind) -> None:
    """AmountDue / RemainingCredit and PAID from payments and allocations."""
    if kind is PURCHASE_ORDER:
        return
    total = dec(doc["Total"])
    paid = dec(doc.get("AmountPaid", 0))
    credited = dec(doc.get("AmountCredited", 0))
    due = total - paid - credited
    if kind is INVOICE:
        doc["AmountDue"] = _f(due)
    else:
        doc["RemainingCredit"] = _f(due)


def _has_money(doc: dict[str, Any]) -> bool:
    return bool(doc.get("Payments")) or bool(doc.get("Allocations"))


# --- the write of one element --------------------------------------------------------------------
def write_document(books: Books, kind: DocKind, src: dict[str, Any], *, mode: str, unitdp: int,
                   target: dict[str, Any] | None = None) -> dict[str, Any]:
    """Create (``mode`` "create"), update-or-create ("upsert") or update ("update", ``target``)."""
    if not isinstance(src, dict):
        raise Rejected([f"{kind.name} must be an object."])
    table = books.table(kind.table)
    existing = target
    if existing is None and src.get(kind.id_field):
        existing = table.get(str(src[kind.id_field]).lower())
        if existing is None:
            raise Rejected([f"An existing {kind.name} with the specified {kind.id_field} could not be found"])
    if existing is None and mode == "upsert" and src.get(kind.number_field):
        # POST matches ACCREC invoices (and POs) by number (GH Xero-NetStandard#127, pyxero#328).
        for cand in books.by_number(kind.table, src[kind.number_field]):
            live = cand.get("Status") != "DELETED"
            if live and (kind is PURCHASE_ORDER or (cand.get("Type") == "ACCREC"
                                                    and src.get("Type", "ACCREC") == "ACCREC")):
                existing = cand
                break
    errors: list[str] = []
    warnings: list[str] = []
    fields = HEADER_FIELDS[kind.table]
    doc: dict[str, Any] = dict(existing) if existing else {}
    for f in fields:
        if f in src and src[f] is not None:
            doc[f] = src[f]
    # Type
    if kind.types:
        if existing is not None and src.get("Type") and src["Type"] != existing["Type"]:
            errors.append(f"The {kind.name} Type cannot be changed.")
            doc["Type"] = existing["Type"]
        if doc.get("Type") not in kind.types:
            errors.append(f"{kind.name} Type must be one of {', '.join(kind.types)}.")
            doc["Type"] = kind.types[0]
    doc_type = doc.get("Type", "ACCPAY" if kind is PURCHASE_ORDER else "")
    if doc_type != "ACCREC" and kind is INVOICE:
        doc.pop("Reference", None)  # "ACCREC only" (SPEC Invoice.Reference)
    # Status and transitions (notes §5.3)
    old_status = existing.get("Status") if existing else None
    status = str(doc.get("Status") or "DRAFT").upper()
    doc["Status"] = status
    if status not in kind.statuses:
        errors.append(f"{kind.name} Status '{status}' is not valid.")
        status = doc["Status"] = old_status or "DRAFT"
    if existing is None and status not in kind.create_statuses:
        errors.append(kind.status_message())
    if existing is not None and status != old_status:
        if status not in kind.transitions.get(old_status, frozenset()):
            errors.append(kind.status_message())
        elif status == "VOIDED" and _has_money(existing):
            errors.extend([kind.status_message(), PAID_MSG])
    # Dates
    for f in DATE_FIELDS:
        if f in doc and doc[f] is not None and f in src:
            day = parse_input_date(doc[f])
            if day is None:
                errors.append(f"{f} is not a valid date.")
                doc.pop(f, None)
            else:
                doc[f] = day
    if not doc.get("Date"):
        doc["Date"] = books.today()
    # Contact (SPEC: "at least 1 of the following elements to identify the contact")
    contact = None
    new_contact_name = None
    csrc = src.get("Contact")
    if csrc is not None or existing is None:
        if not isinstance(csrc, dict) or not (csrc.get("ContactID") or csrc.get("ContactNumber") or csrc.get("Name")):
            errors.append("The Contact must contain at least 1 of the following elements to identify the contact: "
                          "Name, ContactID, ContactNumber")
        elif csrc.get("ContactID"):
            contact = books.contact(csrc["ContactID"])
            if contact is None:
                errors.append("The contact with the specified ContactID could not be found")
        elif csrc.get("ContactNumber"):
            contact = books.contact_by_number(csrc["ContactNumber"])
            if contact is None:
                if kind is PURCHASE_ORDER or not csrc.get("Name"):
                    errors.append(f"The contact with the specified ContactNumber '{csrc['ContactNumber']}' "
                                  "could not be found")
                else:
                    contact = books.contact_by_name(csrc["Name"])
                    if contact is None:
                        new_contact_name = csrc
        else:
            contact = books.contact_by_name(csrc["Name"])
            if contact is None:
                if kind is PURCHASE_ORDER:
                    errors.append(f"The contact '{csrc['Name']}' could not be found")
                else:
                    new_contact_name = csrc  # Xero creates the contact inline
        if contact is not None and contact.get("ContactStatus") != "ACTIVE":
            errors.append(f"The contact '{contact.get('Name')}' is archived and cannot be used on this document.")
    else:
        contact = books.contact(existing["ContactID"])
    # Other contact fields sent with a document update that contact, and ContactPersons not sent are
    # dropped (notes §5.2: "send only {ContactID}"). Applied with the document, or not at all.
    contact_changes = None
    if isinstance(csrc, dict) and contact is not None and kind.ledger:
        extra = {k: v for k, v in csrc.items() if k in CONTACT_FIELDS}
        if not csrc.get("ContactID") and not csrc.get("ContactNumber"):
            extra.pop("Name", None)  # the name identified the contact: not a rename
        if any(k not in ("ContactNumber", "Name") or norm(v) != norm(contact.get(k)) for k, v in extra.items()):
            contact_changes = {**extra, "ContactID": contact["ContactID"],
                               "ContactPersons": csrc.get("ContactPersons") or []}
    # Currency
    base = books.org["BaseCurrency"]
    currency = str(doc.get("CurrencyCode") or base).upper()
    doc["CurrencyCode"] = currency
    if not books.currency_enabled(currency):
        errors.append(f"Organisation is not subscribed to currency {currency}")
    if currency == base:
        doc["CurrencyRate"] = 1.0
    elif doc.get("CurrencyRate") in (None, "") or ("CurrencyCode" in src and "CurrencyRate" not in src):
        doc["CurrencyRate"] = float(DAY_RATES.get(currency, "1"))
    else:
        try:
            doc["CurrencyRate"] = float(dec(doc["CurrencyRate"]))
        except ValueError:
            errors.append("Currency rate must be a number.")
    # Branding theme
    if doc.get("BrandingThemeID") and str(doc["BrandingThemeID"]).lower() not in books.table("themes"):
        errors.append("Branding theme must be valid.")
    elif doc.get("BrandingThemeID"):
        doc["BrandingThemeID"] = str(doc["BrandingThemeID"]).lower()
    # Amount types
    amount_types = doc.get("LineAmountTypes") or "Exclusive"
    if amount_types not in LINE_AMOUNT_TYPES:
        errors.append(f"LineAmountTypes '{amount_types}' is not valid.")
        amount_types = "Exclusive"
    doc["LineAmountTypes"] = amount_types
    # Lines
    old_lines = existing.get("LineItems", []) if existing else []
    if "LineItems" in src:
        doc["LineItems"] = _lines(books, kind, doc_type, src["LineItems"], old_lines, amount_types, status,
                                  unitdp, errors)
    elif existing is None:
        doc["LineItems"] = []
    elif (amount_types != existing.get("LineAmountTypes") or status != old_status) and status not in (
            "DELETED", "VOIDED"):
        doc["LineItems"] = _recompute_lines(books, kind, doc_type, old_lines, amount_types, status, unitdp,
                                            errors)
    totals(doc, amount_types)
    # Lock dates (ledger documents; notes §5.4)
    dated = existing is None or doc["Date"] != existing.get("Date") or status != old_status
    if kind.ledger and status not in ("DELETED", "VOIDED") and dated:
        lock = books.lock_error(doc["Date"])
        if lock:
            errors.append(lock)
    # Numbers (notes §5.5, §8.3)
    number = doc.get(kind.number_field)
    if number is not None and not isinstance(number, str):
        number = doc[kind.number_field] = str(number)
    if number and len(number) > 255:
        errors.append(f"{kind.number_field} must not be more than 255 characters long.")
    unique = kind is PURCHASE_ORDER or doc_type == "ACCREC"
    if number and unique and (existing is None or norm(number) != norm(existing.get(kind.number_field))):
        for other in books.by_number(kind.table, number):
            if other is not existing and other.get("Status") != "DELETED" and (
                    kind is PURCHASE_ORDER or other.get("Type") == doc_type):
                errors.append("Order number must be unique" if kind is PURCHASE_ORDER
                              else f"{'Invoice' if kind is INVOICE else 'Credit Note'} # must be unique.")
                break
    # Edit locks (notes §5.4)
    if existing is not None and not errors:
        changed = _changed(existing, doc, fields)
        if changed:
            if old_status in ("VOIDED", "DELETED", "PAID", "BILLED") and status == old_status:
                errors.append(kind.status_message())
                if old_status == "PAID":
                    errors.append(PAID_MSG)
            elif old_status == "AUTHORISED" and _has_money(existing) and status == old_status:
                errors.extend([kind.status_message(), PAID_MSG])
        elif status == old_status:
            if contact_changes is not None:
                books.write_contact(contact_changes, allow_update=True)
            return existing  # nothing to change: no write, UpdatedDateUTC stays
    # SentToContact (only on approved documents; PO: a warning, SPEC PUT /PurchaseOrders example)
    if "SentToContact" in src:
        allowed = ("AUTHORISED", "BILLED") if kind is PURCHASE_ORDER else ("AUTHORISED", "PAID")
        if status not in allowed:
            doc.pop("SentToContact", None)
            if existing and "SentToContact" in existing:
                doc["SentToContact"] = existing["SentToContact"]
            if kind is PURCHASE_ORDER:
                warnings.append("Only AUTHORISED and BILLED purchase orders may have SentToContact updated.")
    if errors:
        raise Rejected(errors, warnings)
    # --- apply -----------------------------------------------------------------------------------
    if new_contact_name is not None:
        contact = books.write_contact({k: v for k, v in new_contact_name.items() if k in CONTACT_FIELDS},
                                      allow_update=False)
    elif contact_changes is not None:
        contact = books.write_contact(contact_changes, allow_update=True)  # may refuse: nothing applied yet
    assert contact is not None
    doc["ContactID"] = contact["ContactID"]
    if existing is None:
        doc_id = new_id()
        doc[kind.id_field] = doc_id
        doc["_id"] = doc_id
        doc["_seq"] = books.next_seq()
        if CURRENT_APP.get():
            doc["_app"] = CURRENT_APP.get()
        if kind.ledger:
            doc.setdefault("AmountPaid", 0.0)
            doc.setdefault("AmountCredited", 0.0)
        if not doc.get(kind.number_field) and (kind is not INVOICE or doc_type == "ACCREC") and (
                kind is not CREDIT_NOTE or doc_type == "ACCRECCREDIT"):
            doc[kind.number_field] = books.next_number(kind.table, kind.prefix, kind.counter)
    else:
        books.unindex_number(kind.table, existing.get(kind.number_field), existing["_id"])
    _settle(doc, kind)
    if kind is CREDIT_NOTE and status == "AUTHORISED" and dec(doc["RemainingCredit"]) == ZERO and _has_money(doc):
        doc["Status"] = "PAID"
    doc["UpdatedDateUTC"] = books.now_ms()
    if kind.ledger:
        books.mark_contact_role(contact, doc_type)
    books.put(kind.table, doc["_id"], doc)
    books.index_number(kind.table, doc.get(kind.number_field), doc["_id"])
    doc["_warnings"] = warnings
    return doc


def _changed(existing: dict[str, Any], doc: dict[str, Any], fields: tuple[str, ...]) -> bool:
    if doc.get("ContactID", existing.get("ContactID")) != existing.get("ContactID"):
        return True
    for f in fields:
        if existing.get(f) != doc.get(f):
            return True
    old = [{k: v for k, v in line.items() if k != "_gross"} for line in existing.get("LineItems", [])]
    new = [{k: v for k, v in line.items() if k != "_gross"} for line in doc.get("LineItems", [])]
    return old != new


# --- payments ------------------------------------------------------------------------------------
def find_document(books: Books, src: dict[str, Any]) -> tuple[DocKind, dict[str, Any]] | None:
    """The invoice or credit note a payment/allocation names (by id or number)."""
    inv = src.get("Invoice") if isinstance(src.get("Invoice"), dict) else None
    cn = src.get("CreditNote") if isinstance(src.get("CreditNote"), dict) else None
    if inv or src.get("InvoiceNumber"):
        inv = inv or {}
        if inv.get("InvoiceID"):
            doc = books.table("invoices").get(str(inv["InvoiceID"]).lower())
            return (INVOICE, doc) if doc else None
        number = inv.get("InvoiceNumber") or src.get("InvoiceNumber")
        if number:
            docs = [d for d in books.by_number("invoices", number) if d.get("Status") != "DELETED"]
            return (INVOICE, docs[0]) if docs else None
        return None
    if cn or src.get("CreditNoteNumber"):
        cn = cn or {}
        if cn.get("CreditNoteID"):
            doc = books.table("creditnotes").get(str(cn["CreditNoteID"]).lower())
            return (CREDIT_NOTE, doc) if doc else None
        number = cn.get("CreditNoteNumber") or src.get("CreditNoteNumber")
        if number:
            docs = [d for d in books.by_number("creditnotes", number) if d.get("Status") != "DELETED"]
            return (CREDIT_NOTE, docs[0]) if docs else None
    return None


def _outstanding(kind: DocKind, doc: dict[str, Any]) -> Decimal:
    return dec(doc["AmountDue"] if kind is INVOICE else doc["RemainingCredit"])


def _apply_money(books: Books, kind: DocKind, doc: dict[str, Any], field: str, delta: Decimal,
                 day: str | None) -> None:
    """Move AmountPaid/AmountCredited by ``delta``; PAID when nothing is outstanding, reopened otherwise."""
    doc[field] = _f(q2(dec(doc.get(field, 0)) + delta))
    _settle(doc, kind)
    if _outstanding(kind, doc) == ZERO and doc["Status"] == "AUTHORISED":
        doc["Status"] = "PAID"
        if kind is INVOICE:
            doc["FullyPaidOnDate"] = day or books.today()
    elif _outstanding(kind, doc) != ZERO and doc["Status"] == "PAID":
        doc["Status"] = "AUTHORISED"
        doc.pop("FullyPaidOnDate", None)
    doc["UpdatedDateUTC"] = books.now_ms()
    books.store.touch(books.tenant_id, kind.table, doc["_id"])


def write_payment(books: Books, src: dict[str, Any]) -> dict[str, Any]:
    """Create one payment (SPEC Payment; notes §8.4)."""
    if not isinstance(src, dict):
        raise Rejected(["Payment must be an object."])
    if src.get("PaymentID"):
        raise Rejected(["A payment cannot be updated; delete it and create a new one."])
    errors: list[str] = []
    found = find_document(books, src)
    if found is None:
        raise Rejected(["The document with the supplied id was not found for this endpoint."])
    kind, doc = found
    acc_src = src.get("Account") if isinstance(src.get("Account"), dict) else {}
    account = books.account(code=acc_src.get("Code") or src.get("Code"), account_id=acc_src.get("AccountID"))
    if account is None or account.get("Status") != "ACTIVE" or not (
            account.get("Type") == "BANK" or account.get("EnablePaymentsToAccount")):
        errors.append("Account must be valid.")
    day = parse_input_date(src.get("Date")) if src.get("Date") else books.today()
    if day is None:
        errors.append("Date is not a valid date.")
        day = books.today()
    try:
        amount = q2(dec(src.get("Amount")))
    except ValueError:
        errors.append("Payment amount must be a number.")
        amount = ZERO
    if doc["Status"] != "AUTHORISED":
        errors.append("Payments can only be made against Authorised documents.")
    elif amount > _outstanding(kind, doc):
        errors.append("Payment amount exceeds the amount outstanding on this document")
    if amount <= ZERO:
        errors.append("Payment amount must be greater than zero.")
    lock = books.lock_error(day)
    if lock:
        errors.append(lock)
    if errors:
        raise Rejected(errors)
    assert account is not None
    pid = new_id()
    sales = doc["Type"] in ("ACCREC", "ACCRECCREDIT")
    ptype = {("invoices", True): "ACCRECPAYMENT", ("invoices", False): "ACCPAYPAYMENT",
             ("creditnotes", True): "ARCREDITPAYMENT", ("creditnotes", False): "APCREDITPAYMENT"}[
        (kind.table, sales)]
    rate = src.get("CurrencyRate") or doc.get("CurrencyRate") or 1.0
    payment = {"PaymentID": pid, "_id": pid, "_seq": books.next_seq(), "Date": day, "Amount": _f(amount),
               "BankAmount": _f(amount), "CurrencyRate": float(rate), "Reference": src.get("Reference") or "",
               "IsReconciled": bool(src.get("IsReconciled", False)), "Status": "AUTHORISED", "PaymentType": ptype,
               "AccountID": account["AccountID"], "DocTable": kind.table, "DocID": doc["_id"],
               "UpdatedDateUTC": books.now_ms()}
    books.put("payments", pid, payment)
    doc.setdefault("Payments", []).append(pid)
    _apply_money(books, kind, doc, "AmountPaid", amount, day)
    return payment


def delete_payment(books: Books, payment: dict[str, Any]) -> dict[str, Any]:
    """``POST /Payments/{id}`` with Status DELETED: the document reopens (notes §8.4)."""
    if payment["Status"] != "AUTHORISED":
        raise Rejected(["Payment not of valid status for modification"])
    kind = INVOICE if payment["DocTable"] == "invoices" else CREDIT_NOTE
    doc = books.table(kind.table)[payment["DocID"]]
    payment["Status"] = "DELETED"
    payment["UpdatedDateUTC"] = books.now_ms()
    books.store.touch(books.tenant_id, "payments", payment["_id"])
    if payment["_id"] in doc.get("Payments", []):
        doc["Payments"].remove(payment["_id"])
    _apply_money(books, kind, doc, "AmountPaid", -dec(payment["Amount"]), None)
    return payment


# --- credit note allocations ---------------------------------------------------------------------
def allocate(books: Books, credit_note: dict[str, Any], src: dict[str, Any]) -> dict[str, Any]:
    """``PUT /CreditNotes/{id}/Allocations``: credit reduces the invoice's AmountDue and locks it."""
    if not isinstance(src, dict):
        raise Rejected(["Allocation must be an object."])
    errors: list[str] = []
    inv_src = src.get("Invoice") if isinstance(src.get("Invoice"), dict) else {}
    invoice = books.table("invoices").get(str(inv_src.get("InvoiceID") or "").lower())
    if invoice is None:
        raise Rejected(["The document with the supplied id was not found for this endpoint."])
    if credit_note["Status"] != "AUTHORISED":
        errors.append("Credit Note must be AUTHORISED before it can be allocated.")
    if invoice["Status"] != "AUTHORISED":
        errors.append("Payments can only be made against Authorised documents.")
    want_type = "ACCREC" if credit_note["Type"] == "ACCRECCREDIT" else "ACCPAY"
    if invoice["Type"] != want_type:
        errors.append("The credit note and the invoice must be of matching types (sales or purchases).")
    if invoice["ContactID"] != credit_note["ContactID"]:
        errors.append("The credit note and the invoice must belong to the same contact.")
    if invoice.get("CurrencyCode") != credit_note.get("CurrencyCode"):
        errors.append("The credit note and the invoice must be in the same currency.")
    try:
        amount = q2(dec(src.get("Amount")))
    except ValueError:
        errors.append("Allocation amount must be a number.")
        amount = ZERO
    if amount <= ZERO:
        errors.append("Allocation amount must be greater than zero.")
    if amount > dec(credit_note["RemainingCredit"]):
        errors.append("The amount being allocated exceeds the remaining credit on this credit note.")
    if invoice["Status"] == "AUTHORISED" and amount > dec(invoice["AmountDue"]):
        errors.append("Payment amount exceeds the amount outstanding on this document")
    day = parse_input_date(src.get("Date")) if src.get("Date") else books.today()
    if day is None:
        errors.append("Date is not a valid date.")
        day = books.today()
    lock = books.lock_error(day)
    if lock:
        errors.append(lock)
    if errors:
        raise Rejected(errors)
    allocation = {"AllocationID": new_id(), "Amount": _f(amount), "Date": day,
                  "InvoiceID": invoice["_id"], "CreditNoteID": credit_note["_id"]}
    credit_note.setdefault("Allocations", []).append(allocation)
    invoice.setdefault("Allocations", []).append(allocation)
    _apply_money(books, CREDIT_NOTE, credit_note, "AmountCredited", amount, day)
    _apply_money(books, INVOICE, invoice, "AmountCredited", amount, day)
    return allocation


def delete_allocation(books: Books, credit_note: dict[str, Any], allocation_id: str) -> dict[str, Any] | None:
    for allocation in credit_note.get("Allocations", []):
        if allocation["AllocationID"] == allocation_id.lower():
            invoice = books.table("invoices")[allocation["InvoiceID"]]
            credit_note["Allocations"].remove(allocation)
            invoice["Allocations"] = [a for a in invoice.get("Allocations", [])
                                      if a["AllocationID"] != allocation["AllocationID"]]
            amount = dec(allocation["Amount"])
            _apply_money(books, CREDIT_NOTE, credit_note, "AmountCredited", -amount, None)
            _apply_money(books, INVOICE, invoice, "AmountCredited", -amount, None)
            return allocation
    return None
