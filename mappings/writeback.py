"""Xero -> Zoho: what Xero decided, written back into Zoho records; and records created in Xero.

* :func:`writeback_documents` — for linked invoices / bills / purchase orders: Xero id, number,
  status, amounts paid and due, fully-paid date, online link, a payments and credit-notes
  summary, ``Xero_Sync_Status`` (synced / locked-paid / locked-part-paid), ``Xero_Last_Synced``,
  and optionally the Zoho Status from the reverse status map (only values in the live picklist,
  and only when Zoho's current status does not already stand for Xero's).
* :func:`writeback_rejects` — ``Xero_Sync_Status`` "rejected: <reason>" (or locked-*) for records
  that were not pushed.
* :func:`xero_contacts_to_zoho`, :func:`xero_contact_people_to_zoho`,
  :func:`xero_invoices_to_zoho` — contacts and invoices created in Xero become Zoho records
  (Xero's number in its own field: Zoho's auto-number cannot be written).

Every result carries a content hash that excludes ``Xero_Last_Synced``, so an unchanged
write-back is skipped and our own writes never bounce back as changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import pandas as pd

from mappings import money
from mappings.config import FieldMapping, OrgConfig
from mappings.fields import apply, present, resolve
from mappings.reference import ReferenceData, parse_xero_date, parse_xero_datetime
from mappings.rejects import Reject
from mappings.results import ZohoWrite, ZohoWriteResult, content_hash
from mappings.rules import lock_state, resolve_conflict
from mappings.validate import Ctx

DATE_FIELDS = (
    "Date",
    "DueDate",
    "FullyPaidOnDate",
    "ExpectedPaymentDate",
    "PlannedPaymentDate",
    "DeliveryDate",
    "ExpectedArrivalDate",
)
DATETIME_FIELDS = ("UpdatedDateUTC",)
NOT_HASHED = ("Xero_Last_Synced",)
#: Write-back fields of the "payments" conflict group.
PAYMENT_FIELDS = ("Xero_Amount_Paid", "Xero_Amount_Due", "Xero_Fully_Paid_On", "Xero_Payments")


# --------------------------------------------------------------------------------------------
# Xero JSON -> flat frame
# --------------------------------------------------------------------------------------------


def _flatten(rec: Mapping[str, Any]) -> dict[str, Any]:
    """One Xero element as flat columns: Contact.ContactID, Phones.DEFAULT.PhoneNumber, ISO dates."""
    out: dict[str, Any] = {}
    for k, v in rec.items():
        if k in ("Phones", "Addresses") and isinstance(v, list):
            type_key = "PhoneType" if k == "Phones" else "AddressType"
            for item in v:
                if isinstance(item, Mapping) and item.get(type_key):
                    for ik, iv in item.items():
                        if ik != type_key:
                            out[f"{k}.{item[type_key]}.{ik}"] = iv
            continue
        if isinstance(v, Mapping):
            for ik, iv in v.items():
                if not isinstance(iv, (Mapping, list)):
                    out[f"{k}.{ik}"] = iv
            continue
        if k in DATE_FIELDS:
            d = parse_xero_date(v)
            out[k] = d.isoformat() if d else None
        elif k in DATETIME_FIELDS:
            d = parse_xero_datetime(v)
            out[k] = d.isoformat() if d else None
        else:
            out[k] = v
    return out


def xero_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Xero elements -> one flat row each (the source frame of the to-Zoho mappings)."""
    return pd.DataFrame([_flatten(r) for r in records])


# --------------------------------------------------------------------------------------------
# Payments summary
# --------------------------------------------------------------------------------------------


def _money(v: Any) -> str:
    return f"{money.decimal_round2(Decimal(str(v or 0))):.2f}"


def payments_summary(
    doc: Mapping[str, Any],
    payments: Iterable[Mapping[str, Any]] = (),
    credit_notes: Iterable[Mapping[str, Any]] = (),
) -> str:
    """A deterministic text summary: one ``date kind amount CUR (ref)`` entry per payment/credit.

    Uses the document's own ``Payments``, ``CreditNotes``, ``Prepayments`` and ``Overpayments``
    plus separately polled payments and credit notes (matched by the document id); deleted
    payments are left out and each id appears once.
    """
    doc_id = doc.get("InvoiceID")
    cur = doc.get("CurrencyCode") or ""
    entries: dict[str, tuple[str, str, str, str]] = {}

    def add(kind: str, key: str | None, when: Any, amount: Any, ref: Any = None) -> None:
        d = parse_xero_date(when)
        text = f"{d.isoformat() if d else '?'} {kind} {_money(amount)} {cur}".rstrip()
        if ref:
            text += f" ({ref})"
        entries[f"{kind}:{key or text}"] = (d.isoformat() if d else "", kind, key or "", text)

    for p in list(doc.get("Payments") or []) + [
        p for p in payments if (p.get("Invoice") or {}).get("InvoiceID") == doc_id
    ]:
        if (p.get("Status") or "AUTHORISED") == "DELETED":
            continue
        add("payment", p.get("PaymentID"), p.get("Date"), p.get("Amount"), p.get("Reference"))
    for c in doc.get("CreditNotes") or []:
        add(
            "credit note",
            c.get("CreditNoteID"),
            c.get("Date"),
            c.get("AppliedAmount", c.get("Total")),
            c.get("CreditNoteNumber"),
        )
    for c in credit_notes:
        for a in c.get("Allocations") or []:
            if (a.get("Invoice") or {}).get("InvoiceID") == doc_id and not a.get("IsDeleted"):
                add(
                    "credit note",
                    c.get("CreditNoteID"),
                    a.get("Date"),
                    a.get("Amount"),
                    c.get("CreditNoteNumber"),
                )
    for kind, key, id_field in (
        ("prepayment", "Prepayments", "PrepaymentID"),
        ("overpayment", "Overpayments", "OverpaymentID"),
    ):
        for p in doc.get(key) or []:
            add(
                kind,
                p.get(id_field),
                p.get("Date"),
                p.get("AppliedAmount", p.get("Total")),
                p.get("Reference"),
            )
    return "; ".join(e[3] for e in sorted(entries.values()))


def sync_status(doc: Mapping[str, Any]) -> str:
    """synced / locked-paid / locked-part-paid from Xero's status and allocations."""
    credited = float(doc.get("AmountCredited") or 0)
    state = lock_state(doc.get("Status"), float(doc.get("AmountPaid") or 0), credited)
    return state if state in ("locked-paid", "locked-part-paid") else "synced"


# --------------------------------------------------------------------------------------------
# Write-back of linked documents
# --------------------------------------------------------------------------------------------

DocModule = Literal["Invoices", "Sales_Orders", "Quotes", "Purchase_Orders"]


def _builtins(org: OrgConfig, module: str, entity: str) -> list[FieldMapping]:
    if module == "Purchase_Orders":
        if entity == "PurchaseOrders":
            ids = [
                FieldMapping(target="Xero_PO_ID", source="PurchaseOrderID"),
                FieldMapping(target="Xero_Number", source="PurchaseOrderNumber"),
            ]
        else:
            ids = [
                FieldMapping(target="Xero_Bill_ID", source="InvoiceID"),
                FieldMapping(target="Xero_Number", source="InvoiceNumber"),
            ]
        return ids + [
            FieldMapping(target="Xero_Status", source="Status"),
            FieldMapping(target="Xero_Sync_Status", source="_sync_status"),
        ]
    return [
        FieldMapping(target="Xero_Invoice_ID", source="InvoiceID"),
        FieldMapping(target=org.numbering.xero_number_field, source="InvoiceNumber"),
        FieldMapping(target="Xero_Status", source="Status"),
        FieldMapping(target="Xero_Amount_Paid", source="AmountPaid"),
        FieldMapping(target="Xero_Amount_Due", source="AmountDue"),
        FieldMapping(target="Xero_Fully_Paid_On", source="FullyPaidOnDate"),
        FieldMapping(target="Xero_Online_URL", source="_online_url"),
        FieldMapping(target="Xero_Payments", source="_payments"),
        FieldMapping(target="Xero_Sync_Status", source="_sync_status"),
    ]


def _fit(
    ctx: Ctx,
    module: str,
    z: str,
    record: dict[str, Any],
    ref: ReferenceData,
    rejects: list[Reject],
    skip: tuple[str, ...] = (),
    creating: bool = False,
) -> bool:
    """Check targets exist in the live Zoho fields and trim text to their length; on create, the
    module's mandatory fields must be filled. False = blocked."""
    fields = ref.zoho_field_map.get(module)
    if fields is None:
        return True  # metadata not loaded: nothing to check against
    if creating:
        for f in fields.values():
            if f.system_mandatory and not present(record.get(f.api_name)):
                section = (
                    "contacts_to_zoho"
                    if module in ("Accounts", "Vendors", "Contacts")
                    else ("invoices_to_zoho")
                )
                rejects.append(ctx.reject("field.required", z, field=f.api_name, key=f"fields.{section}"))
                return False
    for key in list(record):
        if key == "id" or key in skip:
            continue
        f = fields.get(key)
        if f is None:
            rejects.append(ctx.reject("zoho.field_missing", z, field=key, zoho_module=module))
            return False
        v = record[key]
        if f.data_type == "picklist" and f.picklist and present(v) and v not in f.picklist:
            # Nothing picklist-like is hard-coded: a value the live picklist lacks is not written.
            section = (
                "contacts_to_zoho" if module in ("Accounts", "Vendors", "Contacts") else "invoices_to_zoho"
            )
            rejects.append(
                ctx.reject(
                    "zoho.picklist_value",
                    z,
                    field=key,
                    value=v,
                    key=f"fields.{section}",
                    choices=", ".join(f.picklist),
                )
            )
            del record[key]
            continue
        if (
            isinstance(v, str)
            and f.length
            and len(v) > f.length
            and f.data_type in ("text", "textarea", "website", "email", "phone", None)
        ):
            record[key] = v[: max(f.length - 1, 0)] + "…"
    return True


def _reverse_status(
    ctx: Ctx,
    org: OrgConfig,
    ref: ReferenceData,
    module: str,
    section: str,
    z: str,
    xero_status: str | None,
    current: str | None,
    rejects: list[Reject],
    creating: bool = False,
) -> str | None:
    """Zoho Status to write, or None: mapped, in the live picklist, and not already equivalent.

    On an update the record's current Zoho status must be known (``zoho_status``): without it the
    user's own value could be overwritten, so nothing is written.
    """
    smap = getattr(org.status, section, None)
    if smap is None or not xero_status or (current is None and not creating):
        return None
    wanted = smap.to_zoho.get(xero_status)  # type: ignore[call-overload]
    if wanted is None or wanted == current:
        return None
    if current is not None and (
        smap.to_xero.get(current) == xero_status
        or (current in smap.cancel and xero_status in ("VOIDED", "DELETED"))
    ):
        return None  # Zoho's status already stands for Xero's: don't overwrite the user's choice
    live = ref.picklist(module, "Status")
    if live is not None and wanted not in live:
        key = f"status.{section}.to_zoho.{xero_status}"
        rejects.append(
            ctx.reject(
                "zoho.picklist_value", z, field="Status", value=wanted, key=key, choices=", ".join(live)
            )
        )
        return None
    return wanted


def writeback_documents(
    xero_docs: Sequence[Mapping[str, Any]],
    *,
    org: OrgConfig,
    ref: ReferenceData,
    links: Mapping[str, str],
    module: DocModule = "Invoices",
    zoho_status: Mapping[str, str] | None = None,
    online_urls: Mapping[str, str] | None = None,
    payments: Sequence[Mapping[str, Any]] = (),
    credit_notes: Sequence[Mapping[str, Any]] = (),
    written_hashes: Mapping[str, str] | None = None,
    zoho_edited: Iterable[str] = (),
    now: datetime | None = None,
) -> ZohoWriteResult:
    """Xero invoices/bills/POs (as GET returns them) -> Zoho updates for their linked records.

    ``links``: Xero id (InvoiceID / PurchaseOrderID) -> Zoho id. ``zoho_status``: Zoho id -> its
    current Status (to avoid overwriting an equivalent one). ``online_urls``: InvoiceID -> online
    invoice URL. ``written_hashes``: Zoho id -> hash of the last write-back (unchanged = no write).
    ``zoho_edited``: Zoho ids whose payment fields were edited in Zoho since our last write; with
    ``conflicts.payments: zoho`` their payment fields are left as Zoho has them.
    """
    result = ZohoWriteResult(module=module)
    if not xero_docs:
        return result
    now = now or datetime.now(UTC)
    zoho_status = dict(zoho_status or {})
    online_urls = dict(online_urls or {})
    written = dict(written_hashes or {})
    edited = set(zoho_edited)
    section = "purchase_orders" if module == "Purchase_Orders" else "invoices"
    custom = (
        org.fields.purchase_orders_to_zoho if module == "Purchase_Orders" else org.fields.invoices_to_zoho
    )
    entity = "PurchaseOrders" if "PurchaseOrderID" in xero_docs[0] else "Invoices"
    id_field = "PurchaseOrderID" if entity == "PurchaseOrders" else "InvoiceID"
    ctx = Ctx(org=org, ref=ref, module=module, doc_type="ZOHO")
    docs = [d for d in xero_docs if d.get(id_field) in links]
    if not docs:
        return result
    F = xero_frame(docs)
    F["_payments"] = [payments_summary(d, payments, credit_notes) for d in docs]
    F["_sync_status"] = [sync_status(d) for d in docs]
    F["_online_url"] = [online_urls.get(d.get(id_field)) for d in docs]
    maps = resolve(_builtins(org, module, entity), custom, f"{section}_to_zoho")
    mapped, _ = apply(F, maps)
    ctx.numbers = {links[d[id_field]]: d.get("InvoiceNumber") or d.get("PurchaseOrderNumber") for d in docs}
    stamp = now.astimezone(org.tz).isoformat(timespec="seconds")
    rows = mapped.astype(object).where(mapped.notna(), None).to_dict("records")
    for d, row in zip(docs, rows):
        z = links[d[id_field]]
        record: dict[str, Any] = {"id": z}
        for k, v in row.items():
            record[k] = v.item() if isinstance(v, np.generic) else v
        if z in edited and resolve_conflict("payments", True, True, org.conflicts.model_dump()) == "zoho":
            for key in PAYMENT_FIELDS:
                record.pop(key, None)
        status = _reverse_status(
            ctx, org, ref, module, section, z, d.get("Status"), zoho_status.get(z), result.rejects
        )
        if status is not None:
            record["Status"] = status
        if not _fit(ctx, module, z, record, ref, result.rejects):
            continue
        digest = content_hash({k: v for k, v in record.items() if k not in NOT_HASHED})
        if written.get(z) == digest:
            result.unchanged.append(ZohoWrite(module, "unchanged", z, d[id_field], record, digest))
            continue
        record["Xero_Last_Synced"] = stamp
        if (
            ref.zoho_field_map.get(module) is not None
            and "Xero_Last_Synced" not in ref.zoho_field_map[module]
        ):
            record.pop("Xero_Last_Synced")
        result.writes.append(ZohoWrite(module, "update", z, d[id_field], record, digest))
    return result


LOCK_TEXT = {"lock.paid": "locked-paid", "lock.part_paid": "locked-part-paid"}


def writeback_rejects(
    rejects: Iterable[Reject],
    *,
    org: OrgConfig,
    ref: ReferenceData,
    written_hashes: Mapping[str, str] | None = None,
) -> list[ZohoWriteResult]:
    """``Xero_Sync_Status`` for records not pushed: locked-paid / locked-part-paid / "rejected: <reason>".

    One result per Zoho module that has the field; the first blocking reject per record wins.
    """
    written = dict(written_hashes or {})
    by_module: dict[str, dict[str, Reject]] = {}
    for r in rejects:
        if not r.blocking or r.module not in ("Invoices", "Sales_Orders", "Quotes", "Purchase_Orders"):
            continue
        by_module.setdefault(r.module, {}).setdefault(r.record_id, r)
    out = []
    for module, per_record in sorted(by_module.items()):
        res = ZohoWriteResult(module=module)
        f = ref.zoho_field(module, "Xero_Sync_Status")
        if module in ref.zoho_fields and f is None:
            out.append(res)
            continue
        limit = f.length if f and f.length else 255
        for z, r in sorted(per_record.items()):
            text = LOCK_TEXT.get(r.rule) or f"rejected: {r.reason}"
            if len(text) > limit:
                text = text[: limit - 1] + "…"
            record = {"id": z, "Xero_Sync_Status": text}
            digest = content_hash(record)
            if written.get(z) == digest:
                res.unchanged.append(ZohoWrite(module, "unchanged", z, None, record, digest))
            else:
                res.writes.append(ZohoWrite(module, "update", z, None, record, digest))
        out.append(res)
    return out


# --------------------------------------------------------------------------------------------
# Records created in Xero -> new Zoho records
# --------------------------------------------------------------------------------------------


def _account_builtins() -> list[FieldMapping]:
    m = [
        FieldMapping(target="Account_Name", source="Name", transforms=["trim"]),
        FieldMapping(target="Phone", source="Phones.DEFAULT.PhoneNumber", transforms=["trim"]),
        FieldMapping(target="Website", source="Website", transforms=["trim"]),
        FieldMapping(target="Xero_Contact_ID", source="ContactID"),
    ]
    for prefix, kind in (("Billing", "POBOX"), ("Shipping", "STREET")):
        for zoho, xero in zip(
            ("Street", "City", "State", "Code", "Country"),
            ("AddressLine1", "City", "Region", "PostalCode", "Country"),
        ):
            m.append(
                FieldMapping(
                    target=f"{prefix}_{zoho}", source=f"Addresses.{kind}.{xero}", transforms=["trim"]
                )
            )
    return m


def _vendor_builtins() -> list[FieldMapping]:
    m = [
        FieldMapping(target="Vendor_Name", source="Name", transforms=["trim"]),
        FieldMapping(target="Email", source="EmailAddress", transforms=["trim"]),
        FieldMapping(target="Phone", source="Phones.DEFAULT.PhoneNumber", transforms=["trim"]),
        FieldMapping(target="Website", source="Website", transforms=["trim"]),
        FieldMapping(target="Xero_Contact_ID", source="ContactID"),
    ]
    for zoho, xero in zip(
        ("Street", "City", "State", "Zip_Code", "Country"),
        ("AddressLine1", "City", "Region", "PostalCode", "Country"),
    ):
        m.append(FieldMapping(target=zoho, source=f"Addresses.POBOX.{xero}", transforms=["trim"]))
    return m


def xero_contacts_to_zoho(
    xero_contacts: Sequence[Mapping[str, Any]], *, org: OrgConfig, ref: ReferenceData, linked: Iterable[str]
) -> list[ZohoWriteResult]:
    """Contacts created in Xero (ACTIVE, unlinked, no ContactNumber) -> new Zoho Accounts / Vendors.

    Suppliers only (IsSupplier and not IsCustomer) go to Vendors when ``modules.vendors`` syncs
    to Zoho; the others to Accounts when ``modules.contacts`` does. Returns one result per module.
    """
    linked = set(linked)
    out = []
    fresh = [
        c
        for c in xero_contacts
        if c.get("ContactID") not in linked
        and not c.get("ContactNumber")
        and (c.get("ContactStatus") or "ACTIVE") == "ACTIVE"
    ]
    groups = {
        "Vendors": [c for c in fresh if c.get("IsSupplier") and not c.get("IsCustomer")],
        "Accounts": [c for c in fresh if not (c.get("IsSupplier") and not c.get("IsCustomer"))],
    }
    for module, items in groups.items():
        setting = org.modules.vendors if module == "Vendors" else org.modules.contacts
        res = ZohoWriteResult(module=module)
        out.append(res)
        if not items or not setting.enabled or setting.direction not in ("to-zoho", "both"):
            continue
        builtins = _vendor_builtins() if module == "Vendors" else _account_builtins()
        maps = resolve(builtins, org.fields.contacts_to_zoho, "contacts_to_zoho")
        F = xero_frame(items)
        mapped, _ = apply(F, maps)
        ctx = Ctx(
            org=org,
            ref=ref,
            module=module,
            doc_type="ZOHO",
            numbers={c["ContactID"]: c.get("Name") for c in items},
        )
        name_field = "Vendor_Name" if module == "Vendors" else "Account_Name"
        for c, row in zip(items, mapped.astype(object).where(mapped.notna(), None).to_dict("records")):
            xid = c["ContactID"]
            record = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items() if present(v)}
            if not record.get(name_field):
                res.rejects.append(ctx.reject("contact.name_missing", xid, field=name_field))
                continue
            if not _fit(ctx, module, xid, record, ref, res.rejects, creating=True):
                continue
            res.writes.append(ZohoWrite(module, "create", None, xid, record, content_hash(record)))
    return out


def xero_contact_people_to_zoho(
    xero_contacts: Sequence[Mapping[str, Any]],
    *,
    org: OrgConfig,
    ref: ReferenceData,
    account_links: Mapping[str, str],
) -> ZohoWriteResult:
    """The person on each new Xero contact -> a Zoho Contact under its (just created) Account.

    ``account_links``: Xero ContactID -> Zoho Account id (call after the Accounts exist).
    """
    res = ZohoWriteResult(module="Contacts")
    ctx = Ctx(org=org, ref=ref, module="Contacts", doc_type="ZOHO")
    for c in xero_contacts:
        xid = c.get("ContactID")
        account = account_links.get(xid)
        if account is None or not (c.get("FirstName") or c.get("LastName") or c.get("EmailAddress")):
            continue
        record = {
            "Last_Name": (c.get("LastName") or c.get("Name") or "").strip(),
            "First_Name": (c.get("FirstName") or "").strip() or None,
            "Email": (c.get("EmailAddress") or "").strip() or None,
            "Account_Name": {"id": account},
            "Xero_Contact_ID": xid,
        }
        record = {k: v for k, v in record.items() if v}
        if not _fit(ctx, "Contacts", xid, record, ref, res.rejects, creating=True):
            continue
        res.writes.append(ZohoWrite("Contacts", "create", None, xid, record, content_hash(record)))
    return res


def xero_invoices_to_zoho(
    xero_invoices: Sequence[Mapping[str, Any]],
    *,
    org: OrgConfig,
    ref: ReferenceData,
    linked: Iterable[str],
    contact_links: Mapping[str, str],
    item_links: Mapping[str, str],
) -> ZohoWriteResult:
    """ACCREC invoices created in Xero -> new Zoho Invoices (Xero's number in its own field).

    ``contact_links``: Xero ContactID -> Zoho Account id; ``item_links``: Xero ItemCode -> Zoho
    Product id. A line without a linked item uses ``zoho.fallback_product_id`` or defers the invoice.
    """
    res = ZohoWriteResult(module="Invoices")
    setting = org.modules.invoices
    if not setting.enabled or setting.direction not in ("to-zoho", "both"):
        return res
    linked = set(linked)
    docs = [
        d
        for d in xero_invoices
        if d.get("Type") == "ACCREC"
        and d.get("InvoiceID") not in linked
        and d.get("Status") not in ("DELETED", "VOIDED")
    ]
    if org.sync_from is not None:
        docs = [d for d in docs if (parse_xero_date(d.get("Date")) or org.sync_from) >= org.sync_from]
    if not docs:
        return res
    ctx = Ctx(
        org=org,
        ref=ref,
        module="Invoices",
        doc_type="ZOHO",
        numbers={d["InvoiceID"]: d.get("InvoiceNumber") for d in docs},
    )
    reverse_tax: dict[str, str] = {}
    for name in sorted(org.tax.map):
        reverse_tax.setdefault(org.tax.map[name], name)
    rates = {t.TaxType: t.rate for t in ref.tax_rates}
    builtins = [
        FieldMapping(target="Subject", source=["Reference", "InvoiceNumber"], transforms=["trim"]),
        FieldMapping(target="Invoice_Date", source="Date"),
        FieldMapping(target="Due_Date", source="DueDate"),
        FieldMapping(target="Currency", source="CurrencyCode"),
        FieldMapping(target="Xero_Invoice_ID", source="InvoiceID"),
        FieldMapping(target=org.numbering.xero_number_field, source="InvoiceNumber"),
    ]
    maps = resolve(builtins, org.fields.invoices_to_zoho, "invoices_to_zoho")
    F = xero_frame(docs)
    mapped, _ = apply(F, maps)
    rows = mapped.astype(object).where(mapped.notna(), None).to_dict("records")
    for d, row in zip(docs, rows):
        xid = d["InvoiceID"]
        contact = (d.get("Contact") or {}).get("ContactID")
        account = contact_links.get(contact)
        if account is None:
            res.rejects.append(
                ctx.reject(
                    "zoho.contact_missing",
                    xid,
                    field="Account_Name",
                    value=(d.get("Contact") or {}).get("Name") or contact,
                )
            )
            continue
        lines, ok = [], True
        inclusive = d.get("LineAmountTypes") == "Inclusive"
        for i, li in enumerate(d.get("LineItems") or []):
            code = li.get("ItemCode")
            product = item_links.get(code) if code else None
            product = product or org.zoho.fallback_product_id
            if product is None:
                res.rejects.append(
                    ctx.reject(
                        "zoho.product_missing",
                        xid,
                        field="Invoiced_Items",
                        line=i + 1,
                        value=li.get("Description") or code or "",
                    )
                )
                ok = False
                break
            tax_type = li.get("TaxType")
            rate = rates.get(tax_type, Decimal(0)) if tax_type else Decimal(0)
            unit = Decimal(str(li.get("UnitAmount") or 0))
            if inclusive and rate:
                unit = (unit * 100 / (100 + rate)).quantize(Decimal("0.0001"))
            row_out: dict[str, Any] = {
                "Product_Name": {"id": product},
                "Quantity": float(li.get("Quantity") or 0),
                "List_Price": float(unit),
            }
            if li.get("Description"):
                row_out["Description"] = li["Description"]
            if li.get("DiscountAmount"):
                row_out["Discount"] = float(li["DiscountAmount"])
            elif li.get("DiscountRate"):
                gross = Decimal(str(li.get("Quantity") or 0)) * unit
                row_out["Discount"] = float(
                    money.decimal_round2(gross * Decimal(str(li["DiscountRate"])) / 100)
                )
            if tax_type and rate:
                name = reverse_tax.get(tax_type)
                if name is None:
                    res.rejects.append(
                        ctx.reject(
                            "tax.reverse_unmapped",
                            xid,
                            field="Line_Tax",
                            line=i + 1,
                            value=tax_type,
                            key="tax.map",
                        )
                    )
                    ok = False
                    break
                row_out["Line_Tax"] = [{"name": name, "percentage": float(rate)}]
            lines.append(row_out)
        if not ok:
            continue
        record = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items() if present(v)}
        record["Account_Name"] = {"id": account}
        status = _reverse_status(
            ctx, org, ref, "Invoices", "invoices", xid, d.get("Status"), None, res.rejects, creating=True
        )
        if status is not None:
            record["Status"] = status
        record["Invoiced_Items"] = lines
        if not _fit(
            ctx,
            "Invoices",
            xid,
            record,
            ref,
            res.rejects,
            skip=("Account_Name", "Invoiced_Items"),
            creating=True,
        ):
            continue
        res.writes.append(ZohoWrite("Invoices", "create", None, xid, record, content_hash(record)))
    return res
