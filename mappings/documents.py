"""Zoho documents -> Xero documents: Invoices -> ACCREC, Purchase_Orders -> PurchaseOrders or
ACCPAY bills, Sales_Orders and Quotes -> DRAFT ACCREC invoices.

One page at a time, vectorised: headers and exploded lines are mapped as columns (status, contact,
dates, currency, branding, field mappings; item, account, tax, tracking per line), Xero's
arithmetic predicts the total, the pre-flight checks run over the same frames, and only then is
one payload dict built per good document. Inputs from outside (org, reference data, links) are
arguments; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from mappings import limits, money
from mappings.config import FieldMapping, OrgConfig
from mappings.fields import ActiveMapping, apply, present, resolve, source_column
from mappings.frames import DOC, LINE, POS, as_text, col, header_frame, key_part, lines_frame, to_date
from mappings.reference import ReferenceData
from mappings.rejects import Reject
from mappings.results import Document, Link, MappingResult, Skip, content_hash, normalize_links
from mappings.rules import LOCK_RULE, cancellation, lock_states, numbering_fields, plan_statuses
from mappings.validate import (
    Ctx,
    check_accounts,
    check_lengths,
    check_lock_dates,
    check_tax_types,
    check_tracking,
    emit,
)

KindName = Literal["invoice", "sales_order", "quote", "bill", "purchase_order"]


@dataclass(frozen=True)
class DocKind:
    """How one Zoho module becomes one Xero document type."""

    name: KindName
    zoho_module: str
    section: str  # config section: invoices, sales_orders, quotes, purchase_orders
    items_key: str
    number_field: str
    contact_field: str
    contact_module: str  # config module of the contact: contacts / vendors
    date_field: str
    due_field: str | None
    entity: str  # Xero collection
    xero_type: str | None  # Invoice.Type
    doc_type: str  # ACCREC / ACCPAY / PURCHASEORDER (validation)
    side: Literal["sales", "purchases"]
    status_section: str | None  # status map used; None = always DRAFT
    due_target: str  # DueDate or DeliveryDate
    supports_url: bool
    allows_discount: bool
    id_field: str  # InvoiceID / PurchaseOrderID

    @property
    def lock_kind(self) -> Literal["invoice", "purchase_order"]:
        return "purchase_order" if self.name == "purchase_order" else "invoice"


KINDS: dict[KindName, DocKind] = {
    "invoice": DocKind(
        "invoice",
        "Invoices",
        "invoices",
        "Invoiced_Items",
        "Invoice_Number",
        "Account_Name",
        "contacts",
        "Invoice_Date",
        "Due_Date",
        "Invoices",
        "ACCREC",
        "ACCREC",
        "sales",
        "invoices",
        "DueDate",
        True,
        True,
        "InvoiceID",
    ),
    "sales_order": DocKind(
        "sales_order",
        "Sales_Orders",
        "sales_orders",
        "Ordered_Items",
        "SO_Number",
        "Account_Name",
        "contacts",
        "Created_Time",
        "Due_Date",
        "Invoices",
        "ACCREC",
        "ACCREC",
        "sales",
        None,
        "DueDate",
        True,
        True,
        "InvoiceID",
    ),
    "quote": DocKind(
        "quote",
        "Quotes",
        "quotes",
        "Quoted_Items",
        "Quote_Number",
        "Account_Name",
        "contacts",
        "Created_Time",
        "Valid_Till",
        "Invoices",
        "ACCREC",
        "ACCREC",
        "sales",
        None,
        "DueDate",
        True,
        True,
        "InvoiceID",
    ),
    "bill": DocKind(
        "bill",
        "Purchase_Orders",
        "purchase_orders",
        "Purchase_Items",
        "PO_Number",
        "Vendor_Name",
        "vendors",
        "PO_Date",
        "Due_Date",
        "Invoices",
        "ACCPAY",
        "ACCPAY",
        "purchases",
        "purchase_orders",
        "DueDate",
        True,
        False,
        "InvoiceID",
    ),
    "purchase_order": DocKind(
        "purchase_order",
        "Purchase_Orders",
        "purchase_orders",
        "Purchase_Items",
        "PO_Number",
        "Vendor_Name",
        "vendors",
        "PO_Date",
        "Due_Date",
        "PurchaseOrders",
        None,
        "PURCHASEORDER",
        "purchases",
        "purchase_orders",
        "DeliveryDate",
        False,
        False,
        "PurchaseOrderID",
    ),
}

#: Built-in line mapping: Zoho's line description, else the product's name.
LINE_BUILTINS = [FieldMapping(target="LineItems.Description", source=["Description", "Product_Name.name"])]
EXTRA_ORDER = {"$discount": 1, "$adjustment": 2, "$excise_duty": 3, "$rounding": 4}


def map_invoices(
    records: Sequence[Mapping[str, Any]],
    *,
    org: OrgConfig,
    ref: ReferenceData,
    links: Any = None,
    contact_links: Mapping[str, str] | None = None,
    item_links: Mapping[str, str] | None = None,
    products: Any = None,
    failed: Mapping[str, str] | None = None,
) -> MappingResult:
    """Zoho Invoices -> Xero ACCREC invoices (create / update / unchanged / delete / void) + rejects."""
    return map_documents(
        "invoice",
        records,
        org=org,
        ref=ref,
        links=links,
        contact_links=contact_links,
        item_links=item_links,
        products=products,
        failed=failed,
    )


def map_sales_orders(records: Sequence[Mapping[str, Any]], **kw: Any) -> MappingResult:
    """Zoho Sales_Orders -> DRAFT ACCREC invoices (Reference = SO_Number)."""
    return map_documents("sales_order", records, **kw)


def map_quotes(records: Sequence[Mapping[str, Any]], **kw: Any) -> MappingResult:
    """Zoho Quotes -> DRAFT ACCREC invoices (Reference = Quote_Number, DueDate = Valid_Till)."""
    return map_documents("quote", records, **kw)


def map_purchase_orders(records: Sequence[Mapping[str, Any]], *, org: OrgConfig, **kw: Any) -> MappingResult:
    """Zoho Purchase_Orders -> Xero PurchaseOrders or ACCPAY bills (``modules.purchase_orders.target``)."""
    kind: KindName = "bill" if org.modules.purchase_orders.target == "bill" else "purchase_order"
    return map_documents(kind, records, org=org, **kw)


def _tail(mapping: Mapping[Any, Any]) -> dict[float, Any]:
    return {round(float(k), 4): v for k, v in mapping.items()}


def map_documents(
    kind_name: KindName,
    records: Sequence[Mapping[str, Any]],
    *,
    org: OrgConfig,
    ref: ReferenceData,
    links: Any = None,
    contact_links: Mapping[str, str] | None = None,
    item_links: Mapping[str, str] | None = None,
    products: Any = None,
    failed: Mapping[str, str] | None = None,
) -> MappingResult:
    """The engine behind the ``map_*`` functions; see the module docstring."""
    kind = KINDS[kind_name]
    result = MappingResult(entity=kind.entity, module=kind.zoho_module)
    if not records:
        return result
    links_d = normalize_links(links)
    contact_links = dict(contact_links or {})
    item_links = dict(item_links or {})
    failed = dict(failed or {})
    mode = org.tax.line_amount_types

    H = header_frame(records)
    H[DOC] = H["id"]
    zid = H[DOC]
    number = as_text(col(H, kind.number_field))
    numbers = dict(zip(zid.tolist(), number.astype(object).where(number.notna(), None).tolist()))
    ctx = Ctx(org=org, ref=ref, module=kind.zoho_module, doc_type=kind.doc_type, numbers=numbers)
    rejects: list[Reject] = []
    linked = zid.isin(list(links_d))
    link_status = zid.map({k: v.xero_status for k, v in links_d.items()})

    # --- field mappings (header) -------------------------------------------------------------------------
    custom: list[FieldMapping] = getattr(org.fields, kind.section)
    header_maps = [
        a for a in resolve([], custom, kind.section) if not a.mapping.target.startswith("LineItems.")
    ]
    mapped, misses = apply(H, header_maps)
    for miss in misses:
        sub = H.assign(_v=miss.values)
        rejects += emit(
            ctx,
            "field.lookup_missing",
            sub,
            miss.mask,
            lambda r, m=miss: {"value": r["_v"], "key": m.key, "field": m.target},
            line_col=None,
        )

    # --- status and cancellations ------------------------------------------------------------------------
    zstatus = as_text(col(H, "Status"))
    if kind.status_section:
        smap = getattr(org.status, kind.status_section)
        cancelled = zstatus.isin(list(smap.cancel))
        desired = zstatus.map(dict(smap.to_xero))
        unmapped = ~cancelled & desired.isna()
        rejects += emit(
            ctx,
            "status.unmapped",
            lambda: H.assign(_s=zstatus.fillna("(empty)")),
            unmapped,
            lambda r: {
                "value": r["_s"],
                "key": f"status.{kind.status_section}.to_xero",
                "cancel_key": f"status.{kind.status_section}.cancel",
            },
            field="Status",
            line_col=None,
        )
    else:
        cancelled = pd.Series(False, index=H.index)
        desired = pd.Series("DRAFT", index=H.index, dtype="str")
    if cancelled.any():
        _cancellations(kind, H[cancelled], org, links_d, ctx, result, rejects, numbers)

    # --- contact -----------------------------------------------------------------------------------------
    cz = as_text(col(H, f"{kind.contact_field}.id"))
    cname = as_text(col(H, f"{kind.contact_field}.name"))
    cid = cz.map(contact_links)
    missing_contact = cz.isna()
    contact_failed = cz.isin(list(failed))
    frame = H.assign(_cz=cz, _cn=cname.fillna(cz))
    rejects += emit(
        ctx, "contact.missing", frame, missing_contact, lambda r: {}, field=kind.contact_field, line_col=None
    )
    rejects += emit(
        ctx,
        "dependency.contact_failed",
        frame,
        contact_failed,
        lambda r: {"value": r["_cn"], "cause": failed.get(r["_cz"], "")},
        field=kind.contact_field,
        line_col=None,
    )
    rejects += emit(
        ctx,
        "contact.not_linked",
        frame,
        ~missing_contact & ~contact_failed & cid.isna(),
        lambda r: {"value": r["_cn"], "ref_id": r["_cz"], "contact_module": kind.contact_module},
        field=kind.contact_field,
        line_col=None,
    )
    statuses = {c.ContactID: c.ContactStatus for c in ref.contacts}
    archived = cid.map(statuses) == "ARCHIVED"
    rejects += emit(
        ctx,
        "contact.archived",
        frame,
        archived,
        lambda r: {"value": r["_cn"]},
        field=kind.contact_field,
        line_col=None,
    )

    # --- dates -------------------------------------------------------------------------------------------
    date_src = mapped["Date"] if "Date" in mapped else col(H, kind.date_field)
    date_field = "Date" if "Date" in mapped else kind.date_field
    doc_date, date_invalid = to_date(date_src)
    rejects += emit(
        ctx, "date.missing", H, doc_date.isna() & ~date_invalid, lambda r: {}, field=date_field, line_col=None
    )
    rejects += emit(
        ctx,
        "date.invalid",
        lambda: H.assign(_d=as_text(date_src)),
        date_invalid,
        lambda r: {"value": r["_d"]},
        field=date_field,
        line_col=None,
    )
    due_name = "DueDate" if "DueDate" in mapped else kind.due_field
    due_src = (
        mapped["DueDate"]
        if "DueDate" in mapped
        else (col(H, kind.due_field) if kind.due_field else pd.Series(np.nan, index=H.index))
    )
    due_date, due_invalid = to_date(due_src)
    terms = getattr(org.due_days, kind.section)
    if terms is not None:
        due_date = due_date.where(due_date.notna() | due_invalid, doc_date + pd.Timedelta(days=terms))
    rejects += emit(
        ctx,
        "date.invalid",
        lambda: H.assign(_d=as_text(due_src)),
        due_invalid,
        lambda r: {"value": r["_d"]},
        field=due_name,
        line_col=None,
    )
    if kind.name in ("invoice", "bill"):
        needs_due = desired.isin(["SUBMITTED", "AUTHORISED"]) & due_date.isna() & ~due_invalid
        rejects += emit(
            ctx,
            "date.due_missing",
            lambda: H.assign(_s=desired),
            needs_due,
            lambda r: {"value": r["_s"]},
            field=due_name,
            line_col=None,
        )
    rejects += check_lock_dates(ctx, H.assign(_date=doc_date), "_date", field=date_field)
    before_sync = pd.Series(False, index=H.index)
    if org.sync_from is not None:
        before_sync = doc_date.notna() & (doc_date < pd.Timestamp(org.sync_from)) & ~linked

    # --- currency ----------------------------------------------------------------------------------------
    base = ref.organisation.BaseCurrency
    zcur = as_text(col(H, "Currency")).fillna(base)
    xcur = zcur.map(dict(org.currency.map)).fillna(zcur)
    rejects += emit(
        ctx,
        "currency.not_enabled",
        lambda: H.assign(_c=xcur),
        ~xcur.isin(list(ref.enabled_currencies)),
        lambda r: {"value": r["_c"]},
        field="Currency",
        line_col=None,
    )
    rate = pd.Series(np.nan, index=H.index)
    if org.currency.rate == "zoho":
        foreign = xcur != base
        rate = pd.to_numeric(col(H, "Exchange_Rate"), errors="coerce")
        bad_rate = foreign & ~(rate > 0)
        rejects += emit(
            ctx,
            "currency.rate_missing",
            lambda: H.assign(_c=xcur),
            bad_rate,
            lambda r: {"value": r["_c"]},
            field="Exchange_Rate",
            line_col=None,
        )
        rate = rate.where(foreign)

    # --- branding ----------------------------------------------------------------------------------------
    theme = pd.Series(org.branding.default, index=H.index, dtype="object")
    theme_key = pd.Series("branding.default", index=H.index, dtype="object")
    for i in range(len(org.branding.rules) - 1, -1, -1):
        rule = org.branding.rules[i]
        value = as_text(col(H, rule.field))
        hit = value == rule.equals if rule.equals is not None else value.isin(list(rule.in_ or []))
        hit = hit.fillna(False).astype(bool)
        theme = theme.where(~hit, rule.theme)
        theme_key = theme_key.where(~hit, f"branding.rules[{i}].theme")
    theme_id = theme.map(lambda n: ref.theme_id(n) if isinstance(n, str) else None)
    rejects += emit(
        ctx,
        "branding.unknown_theme",
        lambda: H.assign(_t=theme, _k=theme_key),
        theme.notna() & theme_id.isna(),
        lambda r: {"value": r["_t"], "key": r["_k"], "choices": ref.choices("theme")},
        field="BrandingThemeID",
        line_col=None,
    )

    # --- header amounts ----------------------------------------------------------------------------------
    extras: dict[str, np.ndarray] = {}
    for name, zoho_field in (
        ("discount", "Discount"),
        ("adjustment", "Adjustment"),
        ("excise_duty", "Excise_Duty"),
    ):
        cents, ok = money.to_cents(col(H, zoho_field))
        cents = np.where(ok, cents, 0).astype(object)
        extras[name] = cents
        policy = getattr(org.header_amounts, name).policy
        if policy == "reject":
            nonzero = pd.Series(cents != 0, index=H.index)
            rejects += emit(
                ctx,
                f"header.{name}",
                lambda c=cents: H.assign(_a=money.from_units(c, 2)),
                nonzero,
                lambda r: {"value": f"{r['_a']:.2f}"},
                field=zoho_field,
                line_col=None,
            )

    # --- lines -------------------------------------------------------------------------------------------
    L = lines_frame(records, kind.items_key)
    no_lines = ~zid.isin(L[DOC].unique().tolist()) if not L.empty else pd.Series(True, index=H.index)
    rejects += emit(ctx, "lines.missing", H, no_lines, lambda r: {}, field=kind.items_key, line_col=None)
    L, line_rejects = _map_lines(kind, L, H, org, ref, ctx, item_links, products, failed, mode)
    rejects += line_rejects

    # --- arithmetic --------------------------------------------------------------------------------------
    L, arith_rejects, totals = _arithmetic(kind, L, H, org, ref, ctx, extras, mode, rejected_so_far=rejects)
    rejects += arith_rejects

    # --- pre-flight checks on the final lines ------------------------------------------------------------
    real = L
    acc_rejects = check_accounts(
        ctx, real, "AccountCode", "_acct_key", doc_type=kind.doc_type, exempt_col="_exempt"
    )
    rejects += acc_rejects
    rejects += check_tax_types(
        ctx,
        real,
        "TaxType",
        "_tax_key",
        "AccountCode",
        zoho_pct_col="_zoho_pct",
        zoho_name_col="_tax_names",
        doc_type=kind.doc_type,
        exempt_col="_exempt",
    )
    slots = [(f"_trk{i}_cat", f"_trk{i}_opt", f"_trk{i}_key") for i in range(_tracking_count(org, kind))]
    rejects += check_tracking(ctx, real, slots)
    rejects += check_lengths(
        ctx, real, [("Description", limits.LINE_DESCRIPTION_MAX, "fields." + kind.section)]
    )

    numbering = pd.DataFrame(
        [
            numbering_fields(kind.name, org.numbering.authority, n if isinstance(n, str) else None)
            for n in number.tolist()
        ],
        index=H.index,
    )
    head_limits = H.assign(
        **{c: numbering[c] for c in numbering.columns},
        **{c: mapped[c] for c in ("Reference",) if c in mapped},
    )
    rejects += check_lengths(
        ctx,
        head_limits,
        [
            ("InvoiceNumber", limits.INVOICE_NUMBER_MAX, kind.number_field),
            ("PurchaseOrderNumber", limits.PURCHASE_ORDER_NUMBER_MAX, kind.number_field),
            ("Reference", limits.REFERENCE_MAX, f"fields.{kind.section}"),
        ],
    )

    # --- variance and sign (only documents with no other problem: one root cause, one reject) ------------
    L, total_rejects, totals = _totals_check(kind, L, H, org, ref, ctx, totals, mode, rejects)
    rejects += total_rejects

    # --- decide ------------------------------------------------------------------------------------------
    # Dated before sync_from and never linked: out of scope whatever else is wrong with it (its date is
    # usually before a lock date too). History is skipped, never flagged rejected in Zoho nor re-read
    # by every run as a pending reject.
    out_of_scope = set(zid[before_sync].tolist())
    rejects = [r for r in rejects if r.record_id not in out_of_scope]
    blocked = {r.record_id for r in rejects if r.blocking}
    result.rejects.extend(rejects)
    skip_mask = before_sync & ~zid.isin(list(blocked)) & ~cancelled
    for z, n in zip(zid[skip_mask].tolist(), number[skip_mask].tolist()):
        result.skipped.append(
            Skip(
                kind.zoho_module,
                z,
                n if isinstance(n, str) else None,
                f"dated before sync_from {org.sync_from}",
            )
        )
    good = ~cancelled & ~skip_mask & ~zid.isin(list(blocked))
    if not good.any():
        return result
    Hg = H.loc[good]
    head = pd.DataFrame(
        {
            DOC: Hg[DOC],
            "number": number[good],
            "ContactID": cid[good],
            "Date": doc_date[good].dt.strftime("%Y-%m-%d"),
            "Due": due_date[good].dt.strftime("%Y-%m-%d").where(due_date[good].notna()),
            "Status": desired[good],
            "CurrencyCode": xcur[good],
            "CurrencyRate": rate[good],
            "BrandingThemeID": theme_id[good],
            "link_status": link_status[good],
        },
        index=Hg.index,
    )
    extra_fields = {c: mapped.loc[good, c] for c in mapped.columns if c not in ("Date", "DueDate")}
    _build(kind, head, extra_fields, numbering.loc[good], L, totals, org, links_d, ctx, result)
    return result


def map_deletions(
    deleted: Sequence[Mapping[str, Any]] | Sequence[str],
    *,
    kind: KindName,
    org: OrgConfig,
    ref: ReferenceData,
    links: Any = None,
) -> MappingResult:
    """Records deleted in Zoho (``GET /{module}/deleted``) -> DELETED / VOIDED in Xero, opt-in.

    The same rules as a cancellation: DRAFT/SUBMITTED -> DELETED, AUTHORISED without payments ->
    VOIDED (purchase orders: DELETED), anything else reported; without ``deletes.enabled`` every
    linked deletion is reported, never acted on. ``deleted``: ids or the API's entries (``id``,
    ``display_name``).
    """
    k = KINDS[kind]
    result = MappingResult(entity=k.entity, module=k.zoho_module)
    rows = [d if isinstance(d, Mapping) else {"id": d} for d in deleted]
    if not rows:
        return result
    H = pd.DataFrame({DOC: [str(r["id"]) for r in rows], "Status": "deleted"})
    numbers = {str(r["id"]): r.get("display_name") for r in rows}
    ctx = Ctx(org=org, ref=ref, module=k.zoho_module, doc_type=k.doc_type, numbers=numbers)
    links_d = normalize_links(links)
    linked = H[H[DOC].isin(list(links_d))]
    _cancellations(k, linked, org, links_d, ctx, result, result.rejects, numbers)
    return result


def _tracking_count(org: OrgConfig, kind: DocKind) -> int:
    return len([t for t in org.tracking if kind.section in t.modules])


def _cancellations(
    kind: DocKind,
    Hc: pd.DataFrame,
    org: OrgConfig,
    links: dict[str, Link],
    ctx: Ctx,
    result: MappingResult,
    rejects: list[Reject],
    numbers: dict[str, str | None],
) -> None:
    """Zoho statuses the org maps to 'cancel': delete/void in Xero when opted in, else report."""
    for z, zstatus in zip(Hc[DOC].tolist(), as_text(col(Hc, "Status")).tolist()):
        link = links.get(z)
        if link is None:
            result.skipped.append(
                Skip(kind.zoho_module, z, numbers.get(z), f"'{zstatus}' before it reached Xero")
            )
            continue
        action, status = cancellation(
            link.xero_status, link.amount_paid, link.amount_credited, kind.lock_kind
        )
        if action == "skip":
            result.skipped.append(
                Skip(kind.zoho_module, z, numbers.get(z), f"already {link.xero_status} in Xero")
            )
            continue
        if not org.deletes.enabled:
            rejects.append(ctx.reject("cancel.not_enabled", z, field="Status", value=zstatus))
            continue
        if action == "report":
            rejects.append(
                ctx.reject(
                    "cancel.locked",
                    z,
                    field="Status",
                    status=link.xero_status,
                    xero_number=link.xero_number or link.xero_id,
                )
            )
            continue
        payload = {kind.id_field: link.xero_id, "Status": status}
        result.documents.append(
            Document(
                entity=kind.entity,
                module=kind.zoho_module,
                zoho_id=z,
                number=numbers.get(z),
                action=action,
                xero_id=link.xero_id,
                payload=payload,
                content_hash=content_hash(payload),
            )
        )


def _map_lines(
    kind: DocKind,
    L: pd.DataFrame,
    H: pd.DataFrame,
    org: OrgConfig,
    ref: ReferenceData,
    ctx: Ctx,
    item_links: dict[str, str],
    products: Any,
    failed: dict[str, str],
    mode: str,
) -> tuple[pd.DataFrame, list[Reject]]:
    """Item, description, quantity, price, discount, account, tax and tracking per line."""
    rejects: list[Reject] = []
    if L.empty:
        return L, rejects
    L = L.copy()
    L["_order"] = L[POS].astype("int64")
    L["_label"] = (L[POS] + 1).astype("str")
    L["_exempt"] = False
    # Product data the line does not carry itself (code, category, any product.<field> mapping source).
    pid = as_text(col(L, "Product_Name.id"))
    L["_pid"] = pid
    P = (
        header_frame(list(products))
        if products is not None and not isinstance(products, pd.DataFrame)
        else products
    )
    wanted = {"Product_Code", "Product_Category"}
    for t in org.tracking:
        if t.level == "line" and t.source.startswith("product."):
            wanted.add(t.source[len("product.") :])
    for m in getattr(org.fields, kind.section):
        for s in m.sources:
            if s.startswith("product."):
                wanted.add(s[len("product.") :])
    if P is not None and len(P):
        P = P.assign(id=P["id"].astype("str")).drop_duplicates("id").set_index("id")
        for f in sorted(wanted):
            L[f"product.{f}"] = pid.map(P[f]) if f in P.columns else np.nan
    else:
        for f in sorted(wanted):
            L[f"product.{f}"] = np.nan
    code = as_text(col(L, "Product_Code"))
    code = code.where(code.notna(), as_text(L["product.Product_Code"]))
    category = as_text(col(L, "Product_Category"))
    category = category.where(category.notna(), as_text(L["product.Product_Category"]))
    pname = as_text(col(L, "Product_Name.name"))
    L["_product"] = pname.fillna(code)
    # Header fields a line mapping or tracking may name as doc.<field>.
    doc_cols = {s for m in getattr(org.fields, kind.section) for s in m.sources if s.startswith("doc.")}
    doc_cols |= {t.source for t in org.tracking if t.level == "line" and t.source.startswith("doc.")}
    by_doc = H.set_index(DOC)
    for c in doc_cols:
        src = c[len("doc.") :]
        L[c] = L[DOC].map(by_doc[src]) if src in by_doc.columns else np.nan

    # Field mappings on lines (built-in description, overrides for ItemCode/AccountCode/Description).
    custom = [m for m in getattr(org.fields, kind.section) if m.target.startswith("LineItems.")]
    line_maps = resolve(LINE_BUILTINS, custom, kind.section)
    # Keys of custom line mappings keep their index in the org's list.
    line_maps = [
        ActiveMapping(a.mapping, _custom_key(a, getattr(org.fields, kind.section), kind.section))
        for a in line_maps
    ]
    mapped, misses = apply(L, line_maps)
    for miss in misses:
        rejects += emit(
            ctx,
            "field.lookup_missing",
            lambda m=miss: L.assign(_v=m.values),
            miss.mask,
            lambda r, m=miss: {"value": r["_v"], "key": m.key, "field": m.target},
        )
    L["Description"] = (
        as_text(mapped["LineItems.Description"]) if "LineItems.Description" in mapped else np.nan
    )

    # Item: the code when Xero has (or this run created) the item; deferred when the product failed.
    known_item = code.isin(list(ref.items_by_code)) | pid.isin(list(item_links))
    item_code = code.where(known_item)
    if "LineItems.ItemCode" in mapped:
        item_code = as_text(mapped["LineItems.ItemCode"]).where(lambda s: s.notna(), item_code)
    L["ItemCode"] = item_code
    rejects += emit(
        ctx,
        "dependency.item_failed",
        L,
        pid.isin(list(failed)),
        lambda r: {"value": r["_product"], "cause": failed.get(r["_pid"], "")},
        field="Product_Name",
    )
    rejects += emit(
        ctx,
        "line.description_missing",
        L,
        L["Description"].isna() & L["ItemCode"].isna(),
        lambda r: {"line": r["_label"]},
        field="Description",
    )

    # Quantity, unit price (4 dp), discount (2 dp).
    qty_raw, price_raw = col(L, "Quantity"), col(L, "List_Price")
    qty4, ok_q = money.to_units4(qty_raw)
    unit4, ok_p = money.to_units4(price_raw)
    disc, ok_d = money.to_cents(col(L, "Discount"))
    disc = np.where(ok_d, disc, 0).astype(object)
    rejects += emit(
        ctx,
        "line.quantity_invalid",
        lambda: L.assign(_v=as_text(qty_raw).fillna("")),
        ~ok_q,
        lambda r: {"line": r["_label"], "value": r["_v"]},
        field="Quantity",
    )
    rejects += emit(
        ctx,
        "line.price_invalid",
        lambda: L.assign(_v=as_text(price_raw).fillna("")),
        ~ok_p,
        lambda r: {"line": r["_label"], "value": r["_v"]},
        field="List_Price",
    )
    L["_qty4"] = np.where(ok_q, qty4, 0).astype(object)
    L["_unit4"] = np.where(ok_p, unit4, 0).astype(object)
    L["_disc"] = disc

    # Account: product code, then category, then the module default.
    purchases = kind.side == "purchases"
    by_code = org.accounts.purchases_by_product_code if purchases else org.accounts.by_product_code
    by_cat = org.accounts.purchases_by_category if purchases else org.accounts.by_category
    code_key = "accounts.purchases_by_product_code" if purchases else "accounts.by_product_code"
    cat_key = "accounts.purchases_by_category" if purchases else "accounts.by_category"
    default_acc = getattr(org.accounts.defaults, kind.section)
    a1, a2 = code.map(dict(by_code)), category.map(dict(by_cat))
    account = a1.where(a1.notna(), a2)
    key = pd.Series(
        np.where(a1.notna(), code_key + "." + key_part(code), cat_key + "." + key_part(category)),
        index=L.index,
        dtype="object",
    )
    if default_acc is not None:
        key = key.where(account.notna(), f"accounts.defaults.{kind.section}")
        account = account.where(account.notna(), default_acc)
    if "LineItems.AccountCode" in mapped:
        override = as_text(mapped["LineItems.AccountCode"])
        key = key.where(override.isna(), f"fields.{kind.section}")
        account = override.where(override.notna(), account)
    L["AccountCode"] = account
    L["_acct_key"] = key
    rejects += emit(
        ctx,
        "account.unmapped",
        L,
        account.isna(),
        lambda r: {
            "line": r["_label"],
            "value": r["_product"] if isinstance(r["_product"], str) else "",
            "module_key": kind.section,
        },
        field="AccountCode",
    )

    # Tax: by Zoho tax name (combined names for several), then by rate, then the default.
    names = L["_tax_names"]
    count = L["_tax_count"]
    pct = L["_tax_pct"].astype("float64").round(4)
    tmap = dict(org.tax.purchases_map if purchases else org.tax.map)
    rmap = _tail(org.tax.purchases_by_rate if purchases else org.tax.by_rate)
    default_tax = org.tax.purchases_default if purchases else org.tax.default
    map_key = "tax.purchases_map" if purchases else "tax.map"
    rate_key = "tax.purchases_by_rate" if purchases else "tax.by_rate"
    default_key = "tax.purchases_default" if purchases else "tax.default"
    taxed = count > 0
    t_name = names.map(tmap).where(taxed)
    t_rate = pct.map(rmap).where(taxed)
    tax_type = t_name.where(t_name.notna(), t_rate)
    tax_key = pd.Series(
        np.where(
            t_name.notna(),
            map_key + "." + key_part(names),
            rate_key + "." + pct.map(lambda v: format(v, "g")),
        ),
        index=L.index,
        dtype="object",
    )
    if mode == "NoTax":
        L["TaxType"] = pd.Series(np.nan, index=L.index, dtype="object")
        L["_tax_key"] = map_key
        L["_zoho_pct"] = np.nan
    else:
        untaxed = ~taxed
        if default_tax is not None:
            tax_type = tax_type.where(taxed, default_tax)
        tax_key = tax_key.where(taxed, default_key)
        L["TaxType"] = tax_type
        L["_tax_key"] = tax_key
        L["_zoho_pct"] = pct.where(taxed & tax_type.notna())
        rejects += emit(
            ctx,
            "tax.multiple",
            L,
            taxed & tax_type.isna() & (count > 1),
            lambda r: {"line": r["_label"], "value": r["_tax_names"], "key": map_key},
            field="Line_Tax",
        )
        rejects += emit(
            ctx,
            "tax.unmapped",
            L,
            taxed & tax_type.isna() & (count == 1),
            lambda r: {"line": r["_label"], "value": r["_tax_names"], "key": map_key},
            field="Line_Tax",
        )
        if default_tax is None:
            rejects += emit(
                ctx,
                "tax.no_default",
                L,
                untaxed,
                lambda r: {"line": r["_label"], "key": default_key},
                field="Line_Tax",
            )

    # Tracking: header or line field -> option (table, else as is; default when empty).
    for i, t in enumerate([t for t in org.tracking if kind.section in t.modules]):
        idx = org.tracking.index(t)
        if t.level == "header":
            src = pd.Series(as_text(source_column(H, t.source)).to_numpy(), index=H[DOC].to_numpy())
            value = L[DOC].map(src)
        else:
            value = source_column(L, t.source)
        value = as_text(value)
        listed = value.isin(list(t.options))
        option = value.map(dict(t.options))
        if t.unmatched == "as_is":
            option = option.where(listed, value)
        elif t.unmatched == "default":
            option = option.where(listed, t.default)
        if t.default is not None:
            option = option.where(value.notna(), t.default)
        L[f"_trk{i}_cat"] = pd.Series(t.category, index=L.index, dtype="object").where(option.notna())
        L[f"_trk{i}_opt"] = option
        L[f"_trk{i}_key"] = f"tracking[{idx}].options"
    return L, rejects


def _custom_key(active: ActiveMapping, custom: list[FieldMapping], section: str) -> str:
    if active.key == "built-in":
        return f"fields.{section}"
    return active.key if active.key.startswith("fields.") else f"fields.{section}"


def _tax_rate_units(ref: ReferenceData, tax_types: pd.Series) -> np.ndarray:
    """Xero's rate of each line's TaxType as percent * 10_000 (0 when unknown; such lines are rejected)."""
    units = {t.TaxType: int((t.rate * money.RATE).to_integral_value()) for t in ref.tax_rates}
    return tax_types.map(units).fillna(0).astype("int64").to_numpy().astype(object)


def _extra_lines(
    kind: DocKind, H: pd.DataFrame, org: OrgConfig, extras: dict[str, np.ndarray], mode: str
) -> pd.DataFrame:
    """Header Discount (policy line), Adjustment and Excise_Duty as lines to their accounts."""
    rows = []
    purchases = kind.side == "purchases"
    default_tax = org.tax.purchases_default if purchases else org.tax.default
    default_key = "tax.purchases_default" if purchases else "tax.default"
    for name, sign in (("discount", -1), ("adjustment", 1), ("excise_duty", 1)):
        h = getattr(org.header_amounts, name)
        if h.policy != "line":
            continue
        cents = extras[name]
        account = (h.purchases_account or h.account) if purchases else h.account
        acct_key = (
            f"header_amounts.{name}.purchases_account"
            if purchases and h.purchases_account
            else (f"header_amounts.{name}.account")
        )
        tax = None if mode == "NoTax" else (h.tax_type or default_tax)
        tax_key = f"header_amounts.{name}.tax_type" if h.tax_type else default_key
        for doc, c in zip(H[DOC].tolist(), cents.tolist()):
            if c == 0:
                continue
            rows.append(
                {
                    DOC: doc,
                    POS: -EXTRA_ORDER[f"${name}"],
                    LINE: f"${name}",
                    "_order": 10_000 + EXTRA_ORDER[f"${name}"],
                    "_label": name.replace("_", " "),
                    "Description": h.description,
                    "_qty4": money.U4,
                    "_unit4": sign * c * 100,
                    "_disc": 0,
                    "AccountCode": account,
                    "_acct_key": acct_key,
                    "TaxType": tax,
                    "_tax_key": tax_key,
                    "_exempt": False,
                    "_zoho_pct": np.nan,
                    "_tax_names": np.nan,
                    "ItemCode": np.nan,
                }
            )
    return pd.DataFrame(rows)


def _arithmetic(
    kind: DocKind,
    L: pd.DataFrame,
    H: pd.DataFrame,
    org: OrgConfig,
    ref: ReferenceData,
    ctx: Ctx,
    extras: dict[str, np.ndarray],
    mode: str,
    rejected_so_far: list[Reject],
) -> tuple[pd.DataFrame, list[Reject], pd.DataFrame]:
    """Xero line amounts and tax; header discount spread or added as a line; adjustment lines."""
    rejects: list[Reject] = []
    extra = _extra_lines(kind, H, org, extras, mode)
    if not extra.empty:
        L = pd.concat([L, extra], ignore_index=True) if not L.empty else extra
    if L.empty:
        return L, rejects, pd.DataFrame(columns=["subtotal", "tax", "total"])
    L = L.sort_values([DOC, "_order"], kind="stable").reset_index(drop=True)
    L["_exempt"] = L["_exempt"].fillna(False).astype(bool)
    rate = _tax_rate_units(ref, L["TaxType"]) if mode != "NoTax" else np.zeros(len(L), dtype=object)
    L["_rate"] = rate
    qty = L["_qty4"].to_numpy(dtype=object)
    unit = L["_unit4"].to_numpy(dtype=object)
    disc = L["_disc"].to_numpy(dtype=object)
    amount = money.line_amounts(qty, unit, disc)
    tax = money.line_tax(amount, rate, mode)
    if org.header_amounts.discount.policy == "spread":
        total_disc = pd.Series(extras["discount"], index=H[DOC].to_numpy())
        real = ~L[LINE].astype("str").str.startswith("$")
        weights = np.where(real, amount + tax if mode == "Exclusive" else amount, 0).astype(object)
        share = money.allocate(L[DOC].to_numpy(), weights, total_disc)
        share = np.where(real, share, 0).astype(object)
        if mode == "Exclusive":
            share = money.exclusive_share(share, rate)
        disc = (disc + share).astype(object)
        amount = money.line_amounts(qty, unit, disc)
        tax = money.line_tax(amount, rate, mode)
    if not kind.allows_discount:
        has_disc = pd.Series(disc != 0, index=L.index)
        if org.purchases.discounts == "net":
            # Bills and POs take no discounts: fold the discount into a 4 dp unit amount.
            gross8 = (qty * unit).astype(object)
            net8 = gross8 - disc * 10**6
            safe_q = np.where(qty == 0, 1, qty).astype(object)
            unit = np.where(has_disc & (qty != 0), money.div_round(net8, safe_q), unit).astype(object)
            disc = np.where(has_disc & (qty != 0), 0, disc).astype(object)
            amount = money.line_amounts(qty, unit, disc)
            tax = money.line_tax(amount, rate, mode)
        else:
            rejects += emit(
                ctx,
                "bill.discount",
                lambda: L.assign(_d=money.from_units(disc, 2)),
                has_disc,
                lambda r: {"line": r["_label"], "value": f"{r['_d']:.2f}"},
                field="Discount",
            )
    drate = np.zeros(len(L), dtype=object)
    if kind.allows_discount and org.line_discounts == "rate":
        # DiscountRate instead of DiscountAmount: the percentage of the line (2 dp) Xero then applies.
        gross8 = (qty * unit).astype(object)
        has = (disc != 0) & (gross8 != 0)
        safe = np.where(gross8 == 0, 1, gross8).astype(object)
        pct = money.div_round(money.div_round(disc * 10**6 * 100 * money.RATE, safe), 100) * 100
        drate = np.where(has, pct, 0).astype(object)
        disc = np.where(has, 0, disc).astype(object)
        amount = money.line_amounts(qty, unit, disc, drate)
        tax = money.line_tax(amount, rate, mode)
    L["_unit4"] = unit
    L["_disc"] = disc
    L["_drate"] = drate
    L["_amount"] = amount
    L["_tax"] = tax
    totals = money.document_totals(L[DOC].to_numpy(), amount, tax, mode)
    return L, rejects, totals


def _totals_check(
    kind: DocKind,
    L: pd.DataFrame,
    H: pd.DataFrame,
    org: OrgConfig,
    ref: ReferenceData,
    ctx: Ctx,
    totals: pd.DataFrame,
    mode: str,
    rejects: list[Reject],
) -> tuple[pd.DataFrame, list[Reject], pd.DataFrame]:
    """Predicted Xero total vs Zoho's Grand_Total: tolerance, rounding line, or reject."""
    out: list[Reject] = []
    blocked = {r.record_id for r in rejects if r.blocking}
    grand, ok = money.to_cents(col(H, "Grand_Total"))
    grand_by_doc = pd.Series(grand, index=H[DOC].to_numpy())
    ok_by_doc = pd.Series(ok, index=H[DOC].to_numpy())
    docs = [d for d in H[DOC].tolist() if d in totals.index and d not in blocked]
    if not docs:
        return L, out, totals
    predicted = totals.loc[docs, "total"]
    zoho = grand_by_doc.loc[docs]
    has_grand = ok_by_doc.loc[docs].to_numpy()
    variance = (zoho.to_numpy(dtype=object) - predicted.to_numpy(dtype=object)).astype(object)
    tol = int((org.rounding.tolerance * 100).to_integral_value())
    limit = int((org.rounding.max_rounding_line * 100).to_integral_value())
    abs_var = np.abs(variance)
    over = has_grand & (abs_var > tol)
    rounding_code = ref.rounding_account_code
    want_line = over & (org.rounding.policy == "rounding_line") & (abs_var <= limit)
    frame = pd.DataFrame(
        {
            DOC: docs,
            "_v": money.from_units(variance, 2),
            "_x": money.from_units(predicted.to_numpy(dtype=object), 2),
            "_z": money.from_units(zoho.to_numpy(dtype=object), 2),
        }
    )
    no_account = want_line & (rounding_code is None)
    out += emit(
        ctx,
        "rounding.no_account",
        frame,
        no_account,
        lambda r: {"value": f"{r['_v']:.2f}"},
        field="Grand_Total",
        line_col=None,
    )
    out += emit(
        ctx,
        "totals.variance",
        frame,
        over & ~want_line,
        lambda r: {
            "value": f"{r['_v']:.2f}",
            "xero_total": f"{r['_x']:.2f}",
            "zoho_total": f"{r['_z']:.2f}",
            "tolerance": f"{org.rounding.tolerance}",
        },
        field="Grand_Total",
        line_col=None,
    )
    add = want_line & (rounding_code is not None)
    if add.any():
        tax_type = None if mode == "NoTax" else _zero_tax(ref)
        rows = [
            {
                DOC: d,
                POS: -EXTRA_ORDER["$rounding"],
                LINE: "$rounding",
                "_order": 10_000 + EXTRA_ORDER["$rounding"],
                "_label": "rounding",
                "Description": org.rounding.description,
                "_qty4": money.U4,
                "_unit4": v * 100,
                "_disc": 0,
                "_drate": 0,
                "_amount": v,
                "_tax": 0,
                "_rate": 0,
                "AccountCode": rounding_code,
                "_acct_key": "rounding",
                "TaxType": tax_type,
                "_tax_key": "rounding",
                "_exempt": True,
                "_zoho_pct": np.nan,
                "ItemCode": np.nan,
            }
            for d, v in zip(np.asarray(docs)[add].tolist(), variance[add].tolist())
        ]
        L = pd.concat([L, pd.DataFrame(rows)], ignore_index=True)
        L = L.sort_values([DOC, "_order"], kind="stable").reset_index(drop=True)
        totals = money.document_totals(
            L[DOC].to_numpy(), L["_amount"].to_numpy(dtype=object), L["_tax"].to_numpy(dtype=object), mode
        )
    negative = totals.loc[docs, "total"].to_numpy(dtype=object) < 0
    frame["_t"] = money.from_units(totals.loc[docs, "total"].to_numpy(dtype=object), 2)
    out += emit(
        ctx,
        "totals.negative",
        frame,
        negative & ~(over & ~add),
        lambda r: {"value": f"{r['_t']:.2f}"},
        field="Grand_Total",
        line_col=None,
    )
    return L, out, totals


def _clean(series: pd.Series) -> list[Any]:
    """Column values for JSON: NaN -> None, numpy scalars -> Python."""
    values = series.tolist()
    return [None if (v is None or (isinstance(v, float) and v != v)) else v for v in values]


def _zero_tax(ref: ReferenceData) -> str | None:
    """A 0% TaxType usable on the ROUNDING (liability) account: NONE when the org has it."""
    zero = [t for t in ref.tax_rates if t.Status == "ACTIVE" and t.rate == 0 and t.CanApplyToLiabilities]
    zero.sort(key=lambda t: (t.TaxType != "NONE", t.TaxType))
    return zero[0].TaxType if zero else None


def _build(
    kind: DocKind,
    head: pd.DataFrame,
    extra_fields: dict[str, pd.Series],
    numbering: pd.DataFrame,
    L: pd.DataFrame,
    totals: pd.DataFrame,
    org: OrgConfig,
    links: dict[str, Link],
    ctx: Ctx,
    result: MappingResult,
) -> None:
    """One payload per good document; hash decides unchanged; lock rules decide what may be pushed."""
    docs = set(head[DOC].tolist())
    lines = L[L[DOC].isin(docs)]
    n_track = _tracking_count(org, kind)
    cols = {
        "Description": lines["Description"],
        "Quantity": pd.Series(money.from_units(lines["_qty4"].to_numpy(dtype=object), 4), index=lines.index),
        "UnitAmount": pd.Series(
            money.from_units(lines["_unit4"].to_numpy(dtype=object), 4), index=lines.index
        ),
        "ItemCode": lines["ItemCode"],
        "AccountCode": lines["AccountCode"],
        "TaxType": lines["TaxType"],
        "DiscountAmount": pd.Series(
            money.from_units(lines["_disc"].to_numpy(dtype=object), 2), index=lines.index
        ).where(lines["_disc"].to_numpy(dtype=object) != 0),
        "DiscountRate": pd.Series(
            money.from_units(lines["_drate"].fillna(0).to_numpy(dtype=object), 4), index=lines.index
        ).where(lines["_drate"].fillna(0).to_numpy(dtype=object) != 0),
    }
    names = list(cols)
    columns = [_clean(c) for c in cols.values()]
    for i in range(n_track):
        names.append(f"_trk{i}")
        columns.append(
            [
                (c, o) if present(c) and present(o) else None
                for c, o in zip(lines[f"_trk{i}_cat"].tolist(), lines[f"_trk{i}_opt"].tolist())
            ]
        )
    keys = lines[LINE].tolist()
    doc_of = lines[DOC].tolist()
    n_fields = len(cols)
    per_doc: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for key, doc, *values in zip(keys, doc_of, *columns):
        item = {k: v for k, v in zip(names[:n_fields], values[:n_fields]) if v is not None}
        trk = [{"Name": t[0], "Option": t[1]} for t in values[n_fields:] if t is not None]
        if trk:
            item["Tracking"] = trk
        per_doc.setdefault(doc, []).append((key, item))

    head = head.astype(object).where(head.notna(), None)
    extra = pd.DataFrame(extra_fields, index=head.index).astype(object) if extra_fields else None
    if extra is not None:
        extra = extra.where(extra.notna(), None)
    numbering = numbering.astype(object).where(numbering.notna(), None)
    mode = org.tax.line_amount_types
    total_map = totals["total"].to_dict() if "total" in totals else {}
    editable_states = lock_states(
        head["link_status"].astype(object),
        head[DOC].map({k: v.amount_paid for k, v in links.items()}).fillna(0),
        head[DOC].map({k: v.amount_credited for k, v in links.items()}).fillna(0),
        kind.lock_kind,
    )
    planned = plan_statuses(head["link_status"], head["Status"], kind.lock_kind)
    head_rows = head.to_dict("records")
    extra_rows = extra.to_dict("records") if extra is not None else [{}] * len(head_rows)
    num_rows = numbering.to_dict("records") if len(numbering.columns) else [{}] * len(head_rows)
    for row, ext, num, state, send_status in zip(
        head_rows, extra_rows, num_rows, editable_states.tolist(), planned.tolist()
    ):
        z = row[DOC]
        items = per_doc.get(z, [])
        payload: dict[str, Any] = {}
        if kind.xero_type:
            payload["Type"] = kind.xero_type
        payload["Contact"] = {"ContactID": row["ContactID"]}
        payload["Date"] = row["Date"]
        if row["Due"]:
            payload[kind.due_target] = row["Due"]
        payload["LineAmountTypes"] = mode
        payload["Status"] = row["Status"]
        payload["CurrencyCode"] = row["CurrencyCode"]
        if row["CurrencyRate"] is not None:
            payload["CurrencyRate"] = float(row["CurrencyRate"])
        if row["BrandingThemeID"]:
            payload["BrandingThemeID"] = row["BrandingThemeID"]
        for k, v in num.items():
            if v is not None:
                payload[k] = v
        url = org.record_url(kind.zoho_module, z) if kind.supports_url else None
        if url:
            payload["Url"] = url
        for k, v in ext.items():
            if present(v):
                payload[k] = v.item() if isinstance(v, np.generic) else v
        payload["LineItems"] = [item for _, item in items]
        digest = content_hash(payload)
        natural = {k: v for k, v in num.items() if v is not None}
        if url and kind.name in ("bill", "invoice", "sales_order", "quote"):
            natural["Url"] = url
        total = total_map.get(z)
        doc = dict(
            entity=kind.entity,
            module=kind.zoho_module,
            zoho_id=z,
            number=row["number"],
            content_hash=digest,
            natural_key=natural,
            line_keys=tuple(k for k, _ in items),
            total=float(total) / 100 if total is not None else None,
        )
        link = links.get(z)
        if link is None:
            result.documents.append(Document(action="create", xero_id=None, payload=payload, **doc))
            continue
        if link.content_hash == digest:
            result.unchanged.append(
                Document(action="unchanged", xero_id=link.xero_id, payload=payload, **doc)
            )
            continue
        if state != "editable":
            result.rejects.append(
                ctx.reject(
                    LOCK_RULE[state],
                    z,
                    field="Status",
                    status=link.xero_status,
                    xero_number=link.xero_number or link.xero_id,
                )
            )
            continue
        if link.xero_changed and org.conflicts.sales == "xero":
            result.rejects.append(ctx.reject("conflict.xero_wins", z, field="Status", group="sales"))
            continue
        update = dict(payload)
        update[kind.id_field] = link.xero_id
        update["Status"] = send_status
        update["LineItems"] = [
            dict(item, LineItemID=link.line_ids[k]) if k in link.line_ids else item for k, item in items
        ]
        result.documents.append(Document(action="update", xero_id=link.xero_id, payload=update, **doc))


def match_line_ids(document: Document, xero_line_items: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Zoho line id -> Xero LineItemID after a create/update, matching by content, then position.

    Xero does not promise to return lines in the order sent, so each sent line is matched to the
    first unused returned line with the same (ItemCode, Description, Quantity, UnitAmount,
    AccountCode); lines left over are paired by position.
    """
    sent = document.payload.get("LineItems", [])

    def sig(li: Mapping[str, Any]) -> tuple[Any, ...]:
        return (
            li.get("ItemCode"),
            li.get("Description"),
            round(float(li.get("Quantity") or 0), 4),
            round(float(li.get("UnitAmount") or 0), 4),
            li.get("AccountCode"),
        )

    pool: dict[tuple[Any, ...], list[int]] = {}
    for j, li in enumerate(xero_line_items):
        pool.setdefault(sig(li), []).append(j)
    used: set[int] = set()
    out: dict[str, str] = {}
    pending: list[tuple[int, str]] = []
    for i, (key, li) in enumerate(zip(document.line_keys, sent)):
        if key is None:
            continue
        candidates = [j for j in pool.get(sig(li), []) if j not in used]
        if candidates:
            used.add(candidates[0])
            out[key] = str(xero_line_items[candidates[0]].get("LineItemID"))
        else:
            pending.append((i, key))
    for i, key in pending:
        if i < len(xero_line_items) and i not in used:
            used.add(i)
            out[key] = str(xero_line_items[i].get("LineItemID"))
    return out
