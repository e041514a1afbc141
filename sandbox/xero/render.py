"""Internal documents -> Xero's JSON (field names and shapes from the spec's schemas and examples)."""

from __future__ import annotations

from typing import Any

from sandbox.xero.books import Books
from sandbox.xero.documents import CREDIT_NOTE, INVOICE, PURCHASE_ORDER, DocKind
from sandbox.xero.formats import date_string, dec, ms_date, ms_date_time, q2, utc_string

_DOC_DATES = ("Date", "DueDate", "ExpectedPaymentDate", "PlannedPaymentDate", "DeliveryDate", "ExpectedArrivalDate")
_WITH_STRING = ("Date", "DueDate", "DeliveryDate", "ExpectedArrivalDate")
_HIDDEN = frozenset({"ContactID", "LineItems", "Payments", "Allocations"})
#: A credit note shows RemainingCredit; its AmountPaid/AmountCredited are the sandbox's bookkeeping.
_HIDDEN_CREDIT = _HIDDEN | {"AmountPaid", "AmountCredited"}


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """A copy without the sandbox's private keys (``_id``, ``_seq``…)."""
    return {k: v for k, v in doc.items() if not k.startswith("_")}


def updated(out: dict[str, Any], epoch_ms: int | None, with_string: bool = False) -> None:
    if epoch_ms is not None:
        out["UpdatedDateUTC"] = ms_date_time(epoch_ms)
        if with_string:
            out["UpdatedDateUTCString"] = utc_string(epoch_ms)


# --- reference data ------------------------------------------------------------------------------
def organisation(books: Books) -> dict[str, Any]:
    out = public(books.org)
    for f in ("PeriodLockDate", "EndOfYearLockDate"):
        if out.get(f):
            out[f] = ms_date(out[f])
    if "CreatedDateUTC" in out:
        out["CreatedDateUTC"] = ms_date_time(out["CreatedDateUTC"], offset=False)
    return out


def account(a: dict[str, Any]) -> dict[str, Any]:
    out = public(a)
    updated(out, a.get("UpdatedDateUTC"))
    return out


def theme(t: dict[str, Any]) -> dict[str, Any]:
    out = public(t)
    out["CreatedDateUTC"] = ms_date_time(t["CreatedDateUTC"])
    return out


def tracking(cat: dict[str, Any], include_archived: bool) -> dict[str, Any]:
    out = public(cat)
    out["Options"] = [dict(o) for o in cat.get("Options", []) if include_archived or o.get("Status") == "ACTIVE"]
    return out


# --- contacts and items --------------------------------------------------------------------------
def contact(c: dict[str, Any], summary: bool = False) -> dict[str, Any]:
    out = public(c)
    out.setdefault("Addresses", [])
    out.setdefault("Phones", [])
    out.setdefault("ContactPersons", [])
    out["ContactGroups"] = []
    out["HasAttachments"] = False
    out["HasValidationErrors"] = False
    updated(out, c.get("UpdatedDateUTC"))
    if summary:
        for heavy in ("Addresses", "Phones", "ContactPersons", "ContactGroups", "PaymentTerms",
                      "SalesTrackingCategories", "PurchasesTrackingCategories"):
            out.pop(heavy, None)
    return out


def contact_ref(books: Books, contact_id: str) -> dict[str, Any]:
    """The contact as embedded in documents (SPEC GET /Invoices example)."""
    c = books.contact(contact_id) or {}
    out: dict[str, Any] = {"ContactID": contact_id}
    if c.get("ContactNumber"):
        out["ContactNumber"] = c["ContactNumber"]
    out["Name"] = c.get("Name", "")
    out["ContactStatus"] = c.get("ContactStatus", "ACTIVE")
    out.update({"Addresses": [], "Phones": [], "ContactGroups": [], "ContactPersons": [],
                "HasValidationErrors": False})
    return out


def _price(value: Any, unitdp: int) -> float:
    if unitdp == 4 or round(value, 2) == value:
        return value
    return float(q2(dec(value)))


def item(i: dict[str, Any], unitdp: int) -> dict[str, Any]:
    out = public(i)
    for details in ("SalesDetails", "PurchaseDetails"):
        d = dict(out.get(details) or {})
        if d.get("UnitPrice") is not None:
            d["UnitPrice"] = _price(d["UnitPrice"], unitdp)
        out[details] = d
    out.setdefault("IsTrackedAsInventory", False)
    updated(out, i.get("UpdatedDateUTC"))
    return out


# --- documents -----------------------------------------------------------------------------------
def line(books: Books, ln: dict[str, Any], unitdp: int) -> dict[str, Any]:
    out = {k: v for k, v in ln.items() if k[0] != "_"}
    if "UnitAmount" in out:
        out["UnitAmount"] = _price(out["UnitAmount"], unitdp)
    if "AccountCode" in out and "AccountID" not in out:
        acc = books.account(out["AccountCode"])
        if acc is not None:
            out["AccountID"] = acc["AccountID"]
    if "Tracking" not in out:
        out["Tracking"] = []
    if ln.get("_item"):
        it = books.item(ln["_item"])
        if it is not None:
            out["Item"] = {"ItemID": it["ItemID"], "Name": it.get("Name", ""), "Code": it["Code"]}
    out["ValidationErrors"] = []
    return out


def _dates(out: dict[str, Any], doc: dict[str, Any]) -> None:
    for f in _DOC_DATES:
        if doc.get(f):
            out[f] = ms_date(doc[f])
            if f in _WITH_STRING:
                out[f + "String"] = date_string(doc[f])


def _payment_ref(books: Books, pid: str) -> dict[str, Any] | None:
    p = books.table("payments").get(pid)
    if p is None or p["Status"] != "AUTHORISED":
        return None
    return {"PaymentID": p["PaymentID"], "Date": ms_date(p["Date"]), "Amount": p["Amount"],
            "Reference": p.get("Reference", ""), "CurrencyRate": p["CurrencyRate"], "HasAccount": True,
            "HasValidationErrors": False}


def document(books: Books, kind: DocKind, doc: dict[str, Any], unitdp: int = 2, *, lines: bool = True,
             summary: bool = False) -> dict[str, Any]:
    """An invoice, credit note or purchase order as Xero answers it."""
    out: dict[str, Any] = {}
    if kind is PURCHASE_ORDER:
        out["Type"] = "PURCHASEORDER"
    hidden = _HIDDEN_CREDIT if kind is CREDIT_NOTE else _HIDDEN
    for k, v in doc.items():
        if k[0] == "_" or k in hidden:
            continue
        out[k] = v
    out["Contact"] = contact_ref(books, doc["ContactID"])
    _dates(out, doc)
    if doc.get("FullyPaidOnDate"):
        out["FullyPaidOnDate"] = ms_date(doc["FullyPaidOnDate"])
    out["HasAttachments"] = False
    out["HasErrors"] = False
    out["IsDiscounted"] = "TotalDiscount" in doc
    if kind is not PURCHASE_ORDER:
        pays = [r for r in (_payment_ref(books, pid) for pid in doc.get("Payments", [])) if r]
        if kind is INVOICE:
            out["Payments"] = pays
            out["CreditNotes"] = [_allocated_credit(books, a) for a in doc.get("Allocations", [])]
            out["Prepayments"] = []
            out["Overpayments"] = []
        else:
            out["Payments"] = pays
            out["Allocations"] = [_allocation_out(books, a) for a in doc.get("Allocations", [])]
            out["AppliedAmount"] = float(sum((dec(a["Amount"]) for a in doc.get("Allocations", [])), dec(0)))
    if not summary and lines:
        out["LineItems"] = [line(books, ln, unitdp) for ln in doc.get("LineItems", [])]
    elif not summary:
        out["LineItems"] = []
    updated(out, doc.get("UpdatedDateUTC"), with_string=kind is not PURCHASE_ORDER)
    return out


def _allocated_credit(books: Books, allocation: dict[str, Any]) -> dict[str, Any]:
    cn = books.table("creditnotes").get(allocation["CreditNoteID"], {})
    return {"CreditNoteID": allocation["CreditNoteID"], "CreditNoteNumber": cn.get("CreditNoteNumber", ""),
            "Type": cn.get("Type"), "AppliedAmount": allocation["Amount"], "Date": ms_date(allocation["Date"]),
            "Total": cn.get("Total"), "LineItems": []}


def _allocation_out(books: Books, allocation: dict[str, Any]) -> dict[str, Any]:
    inv = books.table("invoices").get(allocation["InvoiceID"], {})
    return {"AllocationID": allocation["AllocationID"], "Amount": allocation["Amount"],
            "Date": ms_date(allocation["Date"]),
            "Invoice": {"InvoiceID": allocation["InvoiceID"], "InvoiceNumber": inv.get("InvoiceNumber", ""),
                        "Type": inv.get("Type"), "LineItems": []}}


def allocation(books: Books, allocation_doc: dict[str, Any]) -> dict[str, Any]:
    out = _allocation_out(books, allocation_doc)
    cn = books.table("creditnotes").get(allocation_doc["CreditNoteID"], {})
    out["CreditNote"] = {"CreditNoteID": allocation_doc["CreditNoteID"],
                         "CreditNoteNumber": cn.get("CreditNoteNumber", ""), "LineItems": []}
    out["ValidationErrors"] = []
    return out


def payment(books: Books, p: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in p.items() if not k.startswith("_") and k not in ("AccountID", "DocTable", "DocID")}
    out["Date"] = ms_date(p["Date"])
    updated(out, p["UpdatedDateUTC"], with_string=True)
    acc = books.account(account_id=p["AccountID"]) or {}
    out["Account"] = {"AccountID": p["AccountID"], "Code": acc.get("Code", ""), "Name": acc.get("Name", "")}
    out["HasAccount"] = True
    out["HasValidationErrors"] = False
    kind = INVOICE if p["DocTable"] == "invoices" else CREDIT_NOTE
    doc = books.table(kind.table).get(p["DocID"], {})
    ref = {kind.id_field: p["DocID"], "Type": doc.get("Type"), kind.number_field: doc.get(kind.number_field, ""),
           "Contact": contact_ref(books, doc["ContactID"]) if doc.get("ContactID") else None,
           "Status": doc.get("Status"), "CurrencyCode": doc.get("CurrencyCode"), "Total": doc.get("Total"),
           "LineItems": []}
    if kind is INVOICE:
        ref["AmountDue"], ref["AmountPaid"] = doc.get("AmountDue"), doc.get("AmountPaid")
        out["Invoice"] = {k: v for k, v in ref.items() if v is not None}
    else:
        ref["RemainingCredit"] = doc.get("RemainingCredit")
        out["CreditNote"] = {k: v for k, v in ref.items() if v is not None}
    return out
