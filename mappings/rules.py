"""Business rules as pure functions: Xero lock rules and status transitions, cancellations,
invoice-number authority, conflict policy and contact matching for the first sync.
"""

from __future__ import annotations

import string
from typing import Literal

import numpy as np
import pandas as pd

from mappings.fields import _template, source_column
from mappings.frames import as_text

DocKindName = Literal["invoice", "bill", "purchase_order"]
LockState = Literal["editable", "locked-paid", "locked-part-paid", "final"]

#: Status changes Xero accepts through the API (xero-api-notes §5.3: transitions confirmed by Xero
#: support). AUTHORISED -> VOIDED only without payments or allocated credit notes (checked apart).
INVOICE_TRANSITIONS: dict[str, frozenset[str]] = {
    "DRAFT": frozenset({"SUBMITTED", "AUTHORISED", "DELETED"}),
    "SUBMITTED": frozenset({"DRAFT", "AUTHORISED", "DELETED"}),
    "AUTHORISED": frozenset({"VOIDED"}),
    "PAID": frozenset(),
    "VOIDED": frozenset(),
    "DELETED": frozenset(),
}
#: Purchase orders are non-ledger documents (no journals): an approved PO can still be deleted or
#: marked billed; BILLED and DELETED are final for the sync.
PURCHASE_ORDER_TRANSITIONS: dict[str, frozenset[str]] = {
    "DRAFT": frozenset({"SUBMITTED", "AUTHORISED", "DELETED"}),
    "SUBMITTED": frozenset({"DRAFT", "AUTHORISED", "DELETED"}),
    "AUTHORISED": frozenset({"BILLED", "DELETED"}),
    "BILLED": frozenset(),
    "DELETED": frozenset(),
}


def transitions(kind: DocKindName) -> dict[str, frozenset[str]]:
    return PURCHASE_ORDER_TRANSITIONS if kind == "purchase_order" else INVOICE_TRANSITIONS


def lock_state(
    status: str | None, amount_paid: float = 0.0, amount_credited: float = 0.0, kind: DocKindName = "invoice"
) -> LockState:
    """Whether Xero lets us edit the document.

    DRAFT/SUBMITTED: editable. AUTHORISED: editable while nothing is paid or credited. PAID:
    locked-paid. AUTHORISED with a payment or credit note: locked-part-paid. VOIDED/DELETED (and a
    BILLED purchase order): final.
    """
    s = (status or "DRAFT").upper()
    if s in ("VOIDED", "DELETED") or (kind == "purchase_order" and s == "BILLED"):
        return "final"
    if s == "PAID":
        return "locked-paid"
    if (
        s == "AUTHORISED"
        and kind != "purchase_order"
        and ((amount_paid or 0) > 0 or (amount_credited or 0) > 0)
    ):
        return "locked-part-paid"
    return "editable"


def lock_states(
    status: pd.Series, amount_paid: pd.Series, amount_credited: pd.Series, kind: DocKindName = "invoice"
) -> pd.Series:
    """Vectorised :func:`lock_state`."""
    s = status.fillna("DRAFT").astype("str").str.upper()
    paid = pd.to_numeric(amount_paid, errors="coerce").fillna(0) > 0
    credited = pd.to_numeric(amount_credited, errors="coerce").fillna(0) > 0
    final = s.isin(["VOIDED", "DELETED"]) | ((s == "BILLED") if kind == "purchase_order" else False)
    part = (s == "AUTHORISED") & (paid | credited) & (kind != "purchase_order")
    out = np.select([final, s == "PAID", part], ["final", "locked-paid", "locked-part-paid"], "editable")
    return pd.Series(out, index=status.index, dtype="str")


LOCK_RULE = {"final": "lock.final", "locked-paid": "lock.paid", "locked-part-paid": "lock.part_paid"}


def can_transition(
    current: str | None,
    desired: str,
    kind: DocKindName = "invoice",
    amount_paid: float = 0.0,
    amount_credited: float = 0.0,
) -> bool:
    """Whether Xero accepts moving ``current`` to ``desired`` (same status is always fine if editable)."""
    if current is None:
        return True
    if lock_state(current, amount_paid, amount_credited, kind) not in ("editable",):
        return False
    if current == desired:
        return True
    return desired in transitions(kind).get(current, frozenset())


def plan_status(current: str | None, desired: str, kind: DocKindName = "invoice") -> str:
    """Status to send on an update of an editable document.

    Xero cannot move an AUTHORISED document back to DRAFT/SUBMITTED, and an edit that changes the
    status that way is refused; keeping the current status is what Xero allows (an approved
    invoice is edited with ``Status: AUTHORISED``), so a downgrade is not sent.
    """
    if current is None or current == desired:
        return desired
    return desired if desired in transitions(kind).get(current, frozenset()) else current


def plan_statuses(current: pd.Series, desired: pd.Series, kind: DocKindName = "invoice") -> pd.Series:
    """Vectorised :func:`plan_status`."""
    table = transitions(kind)
    allowed = pd.Series(
        [
            d in table.get(c, frozenset()) if isinstance(c, str) else True
            for c, d in zip(current.tolist(), desired.tolist())
        ],
        index=current.index,
    )
    keep = current.notna() & (current != desired) & ~allowed
    return desired.where(~keep, current)


CancelAction = Literal["delete", "void", "skip", "report"]


def cancellation(
    current: str | None, amount_paid: float = 0.0, amount_credited: float = 0.0, kind: DocKindName = "invoice"
) -> tuple[CancelAction, str | None]:
    """What a Zoho cancellation does in Xero: DRAFT/SUBMITTED -> DELETED; AUTHORISED without
    payments -> VOIDED (purchase orders: DELETED); already gone -> skip; otherwise report."""
    if current is None or current in ("DELETED", "VOIDED"):
        return "skip", None
    if current in ("DRAFT", "SUBMITTED"):
        return "delete", "DELETED"
    if current == "AUTHORISED":
        if kind == "purchase_order":
            return "delete", "DELETED"
        if (amount_paid or 0) <= 0 and (amount_credited or 0) <= 0:
            return "void", "VOIDED"
    return "report", None


def numbering_fields(
    kind: Literal["invoice", "sales_order", "quote", "bill", "purchase_order"],
    authority: Literal["zoho", "xero"],
    number: str | None,
) -> dict[str, str]:
    """Where the Zoho document number goes in Xero.

    Invoices: authority zoho -> InvoiceNumber (unique in Xero); xero -> Reference (Xero numbers it,
    and its number is written back to Zoho). Bills always carry the PO number in InvoiceNumber
    (not unique for ACCPAY). Purchase orders: PurchaseOrderNumber (zoho) or Reference (xero).
    Sales orders and quotes become drafts whose Zoho number is the Reference.
    """
    if not number:
        return {}
    if kind == "invoice":
        return {"InvoiceNumber": number} if authority == "zoho" else {"Reference": number}
    if kind == "bill":
        return {"InvoiceNumber": number}
    if kind == "purchase_order":
        return {"PurchaseOrderNumber": number} if authority == "zoho" else {"Reference": number}
    return {"Reference": number}


FieldGroup = Literal["sales", "payments"]
#: Which Zoho/Xero fields belong to which conflict group.
FIELD_GROUPS: dict[FieldGroup, frozenset[str]] = {
    "sales": frozenset(
        {
            "Contact",
            "LineItems",
            "Date",
            "DueDate",
            "Reference",
            "InvoiceNumber",
            "Status",
            "CurrencyCode",
            "BrandingThemeID",
            "LineAmountTypes",
        }
    ),
    "payments": frozenset(
        {
            "Xero_Amount_Paid",
            "Xero_Amount_Due",
            "Xero_Fully_Paid_On",
            "Xero_Payments",
            "Xero_Status",
            "AmountPaid",
            "AmountDue",
            "Payments",
            "CreditNotes",
        }
    ),
}


def resolve_conflict(
    group: FieldGroup, zoho_changed: bool, xero_changed: bool, policy: dict[str, str]
) -> Literal["zoho", "xero"] | None:
    """Which side's values to apply for a field group: the only side that changed, else the policy."""
    if zoho_changed and xero_changed:
        return policy[group]  # type: ignore[return-value]
    if zoho_changed:
        return "zoho"
    if xero_changed:
        return "xero"
    return None


# --------------------------------------------------------------------------------------------
# Contact matching for the first sync
# --------------------------------------------------------------------------------------------


def normalise_name(names: pd.Series) -> pd.Series:
    """Case-, accent-width-, punctuation- and space-insensitive form of a name."""
    text = names.astype("str").str.normalize("NFKC").str.casefold()
    text = text.str.replace("&", " and ", regex=False)
    text = text.str.replace(r"[^\w\s]", " ", regex=True).str.replace(r"\s+", " ", regex=True).str.strip()
    return text.where(names.notna() & (text != ""))


def normalise_email(emails: pd.Series) -> pd.Series:
    text = emails.astype("str").str.strip().str.lower()
    return text.where(emails.notna() & (text != ""))


def match_contacts(
    candidates: pd.DataFrame, xero_contacts: pd.DataFrame, linked: dict[str, str], order: list[str]
) -> pd.DataFrame:
    """Find the Xero contact for each Zoho record, in the configured order.

    ``candidates``: columns ``zoho_id``, ``name``, ``email``. ``xero_contacts``: ReferenceData's
    contacts frame. ``linked``: zoho id -> xero id from the ledger (every link, not just these).
    Returns ``zoho_id``, ``xero_id`` (NaN when new), ``matched_by``. A Xero contact is matched at
    most once: it is taken if linked, if its ContactNumber names another Zoho id, and ties between
    Zoho records go to the smallest Zoho id, so the outcome is deterministic. Email and name only
    match a Xero value that is unique among the eligible contacts, and never an ARCHIVED one.
    """
    out = pd.DataFrame({"zoho_id": candidates["zoho_id"].astype("str")})
    out["xero_id"] = pd.Series(np.nan, index=out.index, dtype="object")
    out["matched_by"] = pd.Series(np.nan, index=out.index, dtype="object")
    taken: set[str] = set(linked.values())
    xc = xero_contacts.copy()
    xc["_num"] = xc["ContactNumber"].astype("str").where(xc["ContactNumber"].notna())
    for key in order:
        todo = out["xero_id"].isna()
        if not todo.any():
            break
        if key == "link":
            hit = out["zoho_id"].map(linked)
            out.loc[todo & hit.notna(), "matched_by"] = "link"
            out["xero_id"] = out["xero_id"].where(~(todo & hit.notna()), hit)
            continue
        if key == "contact_number":
            by_num = xc.dropna(subset=["_num"]).drop_duplicates("_num").set_index("_num")["ContactID"]
            hit = out["zoho_id"].map(by_num)
            ok = todo & hit.notna() & ~hit.isin(list(taken))
            out.loc[ok, "matched_by"] = "contact_number"
            out["xero_id"] = out["xero_id"].where(~ok, hit)
            taken |= set(hit[ok])
            continue
        source = {
            "email": ("email", "EmailAddress", normalise_email),
            "name": ("name", "Name", normalise_name),
        }[key]
        cand_col, xero_col, norm = source
        eligible = xc[
            xc["_num"].isna() & (xc["ContactStatus"] != "ARCHIVED") & ~xc["ContactID"].isin(list(taken))
        ]
        xk = norm(eligible[xero_col])
        xe = pd.DataFrame({"k": xk, "ContactID": eligible["ContactID"]}).dropna(subset=["k"])
        xe = xe[~xe["k"].duplicated(keep=False)]  # ambiguous in Xero: no automatic match
        ck = pd.DataFrame({"zoho_id": out["zoho_id"], "k": norm(candidates[cand_col])})[todo.to_numpy()]
        ck = ck.dropna(subset=["k"]).sort_values("zoho_id", kind="stable")
        ck = ck[~ck["k"].duplicated(keep="first")]  # the smallest Zoho id wins a shared value
        pairs = ck.merge(xe, on="k", how="inner")
        hit = out["zoho_id"].map(pairs.set_index("zoho_id")["ContactID"])
        ok = todo & hit.notna()
        out.loc[ok, "matched_by"] = key
        out["xero_id"] = out["xero_id"].where(~ok, hit)
        taken |= set(hit[ok])
    return out


def resolve_name_clashes(
    docs: pd.DataFrame, xero_contacts: pd.DataFrame, policy: Literal["suffix", "report"], suffix_template: str
) -> pd.DataFrame:
    """Make every outgoing contact name unique among ACTIVE Xero contacts and within the batch.

    ``docs``: ``zoho_id``, ``name``, ``xero_id`` (own Xero contact or NaN) plus any Zoho fields the
    suffix template names. Returns ``name`` (possibly suffixed), ``clash`` (True when still
    clashing: a reject under policy report, or when the suffix did not help) and ``other``.
    """
    active = xero_contacts[xero_contacts["ContactStatus"] != "ARCHIVED"]
    owners = pd.Series(active["ContactID"].to_numpy(), index=normalise_name(active["Name"]).to_numpy())
    owners = owners[owners.index.notna()]
    owners = owners[~owners.index.duplicated()]

    def clashes(names: pd.Series) -> tuple[pd.Series, pd.Series]:
        key = normalise_name(names)
        owner = key.map(owners)
        with_xero = owner.notna() & (owner != docs["xero_id"])
        order = docs.assign(_k=key).sort_values("zoho_id", kind="stable")
        dup = order["_k"].notna() & order["_k"].duplicated(keep="first")
        in_batch = dup.reindex(docs.index)
        first = order.drop_duplicates("_k").set_index("_k")["zoho_id"]
        other = owner.where(with_xero, key.map(first).where(in_batch))
        return with_xero | in_batch, other

    names = docs["name"]
    clash, other = clashes(names)
    if policy == "suffix" and clash.any():
        frame = docs.copy()
        frame["zoho_id_tail"] = frame["zoho_id"].astype("str").str[-6:]
        suffix = _template(frame, suffix_template)
        # A suffix whose fields are empty would not tell the records apart: use the id tail.
        fields = [f for _, f, _, _ in string.Formatter().parse(suffix_template) if f]
        incomplete = pd.Series(False, index=frame.index)
        for f in fields:
            incomplete |= as_text(source_column(frame, f)).isna()
        fallback = " (" + frame["zoho_id_tail"] + ")"
        suffix = suffix.where(~incomplete & suffix.notna(), fallback)
        names = names.where(~clash, names.astype("str") + suffix)
        clash, other = clashes(names)
    return pd.DataFrame(
        {"name": names, "clash": clash.fillna(False).astype(bool), "other": other}, index=docs.index
    )
