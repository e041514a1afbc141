"""Pre-flight validation against the live reference data, before any API call.

The checks are column operations over the mapped header and line frames: a rule is a boolean
mask, and only the (few) failing rows are turned into :class:`Reject` objects with the record,
the field, a plain-language reason, a fix hint naming the org file and key, and the rule id.
:func:`check_config` runs the same reference checks over the org's mapping itself (used by
``zxsync mappings check``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Callable, Iterable

import numpy as np
import pandas as pd

from mappings.config import OrgConfig
from mappings.reference import ALLOWED_CLASSES, FORBIDDEN_SYSTEM_ACCOUNTS, ReferenceData
from mappings.rejects import Reject, make_reject

#: Pragmatic syntax check (Xero rejects addresses that are not syntactically valid; it does not
#: check deliverability). Vectorised, unlike per-address validators.
EMAIL_RE = r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"

CLASS_WORDS = {"ACCREC": "revenue", "ACCPAY": "expense or asset", "PURCHASEORDER": "expense or asset"}
DOC_WORDS = {"ACCREC": "sales invoice", "ACCPAY": "bill", "PURCHASEORDER": "purchase order"}


@dataclass
class Ctx:
    """Who is being validated: the org, reference data, the Zoho module and the Xero document type."""

    org: OrgConfig
    ref: ReferenceData
    module: str
    doc_type: str = "ACCREC"  # ACCREC, ACCPAY, PURCHASEORDER, CONTACT, ITEM
    numbers: dict[str, str | None] = field(default_factory=dict)  # zoho id -> record number

    @property
    def file(self) -> str:
        return self.org.config_file

    def reject(self, rule: str, record_id: str, *, field: str | None = None, line_id: str | None = None,
               **values: Any) -> Reject:
        return make_reject(rule, org=self.org.slug, module=self.module, record_id=record_id,
                           record_number=self.numbers.get(record_id), field=field, line_id=line_id,
                           file=self.file, doc_type=DOC_WORDS.get(self.doc_type, self.doc_type.lower()),
                           **values)


def emit(ctx: Ctx, rule: str, frame: pd.DataFrame, mask: pd.Series | np.ndarray,
         values: Callable[[dict[str, Any]], dict[str, Any]], *, field: str | None = None,
         doc_col: str = "_doc", line_col: str | None = "_line") -> list[Reject]:
    """Rejects for the rows of ``frame`` where ``mask`` holds; ``values(row)`` fills the templates."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return []
    out = []
    for row in frame.loc[mask].to_dict("records"):
        vals = values(row)
        f = vals.pop("field", field)
        line_id = row.get(line_col) if line_col else None
        out.append(ctx.reject(rule, str(row[doc_col]), field=f, line_id=line_id if isinstance(line_id, str) else None,
                              **vals))
    return out


def _line_no(row: dict[str, Any]) -> int:
    pos = row.get("_pos")
    return int(pos) + 1 if isinstance(pos, (int, np.integer)) and pos >= 0 else 0


def _label(row: dict[str, Any]) -> str:
    n = _line_no(row)
    return str(n) if n else str(row.get("_label") or "added")


# --------------------------------------------------------------------------------------------
# Account and TaxType checks (lines, items, config)
# --------------------------------------------------------------------------------------------


def check_accounts(ctx: Ctx, frame: pd.DataFrame, code_col: str, key_col: str, *, doc_type: str,
                   exempt_col: str | None = None, field: str = "AccountCode") -> list[Reject]:
    """Account exists, is ACTIVE, is not a system account and has a class allowed for ``doc_type``."""
    if frame.empty:
        return []
    codes = frame[code_col]
    acc = ctx.ref.accounts_frame.set_index("code")
    has = codes.notna()
    known = codes.isin(acc.index)
    status = codes.map(acc["acc_status"])
    klass = codes.map(acc["acc_class"])
    system = codes.map(acc["acc_system"]).fillna("")
    exempt = frame[exempt_col].fillna(False).astype(bool) if exempt_col else pd.Series(False, index=frame.index)
    allowed = ALLOWED_CLASSES.get(doc_type, frozenset())
    label = _label
    out = emit(ctx, "account.unknown", frame, has & ~known,
               lambda r: {"value": r[code_col], "key": r[key_col], "line": label(r),
                          "choices": ctx.ref.choices("account")}, field=field)
    out += emit(ctx, "account.inactive", frame, known & (status != "ACTIVE"),
                lambda r: {"value": r[code_col], "key": r[key_col], "status": acc.at[r[code_col], "acc_status"]},
                field=field)
    sys_bad = known & (status == "ACTIVE") & system.isin(list(FORBIDDEN_SYSTEM_ACCOUNTS)) & ~exempt
    out += emit(ctx, "account.system", frame, sys_bad,
                lambda r: {"value": r[code_col], "key": r[key_col], "system": acc.at[r[code_col], "acc_system"]},
                field=field)
    if allowed:
        cls_bad = known & (status == "ACTIVE") & ~sys_bad & ~klass.isin(list(allowed)) & ~exempt
        out += emit(ctx, "account.wrong_class", frame, cls_bad,
                    lambda r: {"value": r[code_col], "key": r[key_col],
                               "account_class": acc.at[r[code_col], "acc_class"],
                               "allowed": CLASS_WORDS.get(doc_type, "suitable")}, field=field)
    return out


def check_tax_types(ctx: Ctx, frame: pd.DataFrame, tax_col: str, key_col: str, code_col: str | None,
                    *, field: str = "TaxType", zoho_pct_col: str | None = None,
                    zoho_name_col: str | None = None, doc_type: str | None = None,
                    exempt_col: str | None = None) -> list[Reject]:
    """TaxType exists, is ACTIVE, can apply to the account's class, and (optionally) has Zoho's rate."""
    if frame.empty:
        return []
    taxes = frame[tax_col]
    tf = ctx.ref.tax_frame.set_index("tax_type")
    has = taxes.notna()
    known = taxes.isin(tf.index)
    status = taxes.map(tf["tax_status"])
    out = emit(ctx, "tax.unknown_type", frame, has & ~known,
               lambda r: {"value": r[tax_col], "key": r[key_col], "line": _label(r),
                          "choices": ctx.ref.choices("tax")}, field=field)
    out += emit(ctx, "tax.inactive", frame, known & (status != "ACTIVE"),
                lambda r: {"value": r[tax_col], "key": r[key_col], "status": tf.at[r[tax_col], "tax_status"]},
                field=field)
    ok = known & (status == "ACTIVE")
    if code_col is not None:
        acc = ctx.ref.accounts_frame.set_index("code")
        # Only against accounts that are usable; a bad account has its own reject already.
        exempt = frame[exempt_col].fillna(False).astype(bool) if exempt_col else pd.Series(False, index=frame.index)
        klass = frame[code_col].map(acc["acc_class"])
        usable = (frame[code_col].map(acc["acc_status"]) == "ACTIVE") & (exempt | ~(
            frame[code_col].map(acc["acc_system"]).isin(list(FORBIDDEN_SYSTEM_ACCOUNTS))))
        if doc_type in ALLOWED_CLASSES:
            usable &= exempt | klass.isin(list(ALLOWED_CLASSES[doc_type]))
        klass = klass.where(usable)
        applies = pd.Series(True, index=frame.index)
        for cls in ("REVENUE", "EXPENSE", "ASSET", "LIABILITY", "EQUITY"):
            is_cls = klass == cls
            if is_cls.any():
                flag = taxes.map(tf[cls]).fillna(False).astype(bool)
                applies = applies & ~(is_cls & ~flag)
        bad = ok & klass.notna() & ~applies
        out += emit(ctx, "tax.not_applicable", frame, bad,
                    lambda r: {"value": r[tax_col], "key": r[key_col], "account": r[code_col],
                               "account_class": acc.at[r[code_col], "acc_class"]}, field=field)
        ok = ok & ~bad
    if zoho_pct_col is not None:
        xero_rate = taxes.map(tf["tax_rate"]).astype("float64")
        zoho_rate = pd.to_numeric(frame[zoho_pct_col], errors="coerce")
        mismatch = ok & zoho_rate.notna() & ((xero_rate - zoho_rate).abs() > 1e-9)
        out += emit(ctx, "tax.rate_mismatch", frame, mismatch,
                    lambda r: {"value": r[tax_col], "key": r[key_col], "line": _label(r),
                               "zoho_rate": _pct(r[zoho_pct_col]), "xero_rate": _pct(tf.at[r[tax_col], "tax_rate"]),
                               "tax": r.get(zoho_name_col) if zoho_name_col else r[tax_col]}, field=field)
    return out


def _pct(v: Any) -> str:
    return format(float(v), "g")


def check_tracking(ctx: Ctx, frame: pd.DataFrame, slots: list[tuple[str, str, str]]) -> list[Reject]:
    """Tracking category/option exist and are ACTIVE; at most 2 per line. ``slots``: (cat, opt, key) cols."""
    out: list[Reject] = []
    if frame.empty:
        return out
    tf = ctx.ref.tracking_frame
    cats = tf.drop_duplicates("category").set_index("category")["cat_status"]
    opts = tf.set_index(["category", "option"])["opt_status"]
    count = pd.Series(0, index=frame.index)
    for cat_col, opt_col, key_col in slots:
        cat, opt = frame[cat_col], frame[opt_col]
        used = cat.notna() & opt.notna()
        count += used.astype(int)
        cat_known = cat.isin(cats.index)
        out += emit(ctx, "tracking.unknown_category", frame, used & ~cat_known,
                    lambda r, c=cat_col, k=key_col: {"value": r[c], "key": r[k],
                                                     "choices": ctx.ref.choices("tracking")}, field="Tracking")
        cat_inactive = used & cat_known & (cat.map(cats) != "ACTIVE")
        out += emit(ctx, "tracking.inactive", frame, cat_inactive,
                    lambda r, c=cat_col, k=key_col: {"value": r[c], "category": r[c], "key": r[k],
                                                     "status": cats.get(r[c])}, field="Tracking")
        pair = pd.MultiIndex.from_arrays([cat.fillna(""), opt.fillna("")])
        status = pd.Series(opts.reindex(pair).to_numpy(), index=frame.index)
        unknown = used & cat_known & ~cat_inactive & status.isna()
        out += emit(ctx, "tracking.unknown_option", frame, unknown,
                    lambda r, c=cat_col, o=opt_col, k=key_col: {
                        "value": r[o], "category": r[c], "key": r[k],
                        "choices": ", ".join(sorted(tf.loc[(tf["category"] == r[c]) & (tf["opt_status"] == "ACTIVE"),
                                                           "option"]))}, field="Tracking")
        inactive = used & cat_known & ~cat_inactive & status.notna() & (status != "ACTIVE")
        out += emit(ctx, "tracking.inactive", frame, inactive,
                    lambda r, c=cat_col, o=opt_col, k=key_col: {"value": r[o], "category": r[c], "key": r[k],
                                                                "status": opts.get((r[c], r[o]))}, field="Tracking")
    counted = frame.assign(_trk_count=count)
    out += emit(ctx, "tracking.too_many", counted, count > 2,
                lambda r: {"value": int(r["_trk_count"]), "line": _label(r)}, field="Tracking")
    return out


def check_lengths(ctx: Ctx, frame: pd.DataFrame, limits: Iterable[tuple[str, int, str]],
                  *, line_col: str | None = None) -> list[Reject]:
    """Text columns within Xero's limits. ``limits``: (column, max length, config key for the hint)."""
    out: list[Reject] = []
    for column, limit, key in limits:
        if column not in frame.columns:
            continue
        text = frame[column].astype("str").where(frame[column].notna())
        length = text.str.len()
        bad = length.notna() & (length > limit)
        out += emit(ctx, "length.exceeded", frame, bad,
                    lambda r, c=column, k=key, lim=limit: {"field": c.replace("LineItems.", ""),
                                                           "length": len(str(r[c])), "limit": lim, "key": k},
                    line_col=line_col)
    return out


def check_emails(ctx: Ctx, frame: pd.DataFrame, column: str) -> list[Reject]:
    if column not in frame.columns:
        return []
    text = frame[column].astype("str").where(frame[column].notna())
    bad = text.notna() & ~text.str.match(EMAIL_RE).fillna(False).astype(bool)
    return emit(ctx, "email.invalid", frame, bad, lambda r: {"value": r[column]}, field=column, line_col=None)


def check_lock_dates(ctx: Ctx, frame: pd.DataFrame, date_col: str, *, field: str) -> list[Reject]:
    """Dates on or before the lock dates are refused by Xero (end of year lock first)."""
    org = ctx.ref.organisation
    out: list[Reject] = []
    d = pd.to_datetime(frame[date_col], errors="coerce")
    year = org.EndOfYearLockDate
    period = org.PeriodLockDate
    year_bad = pd.Series(False, index=frame.index)
    if year is not None:
        year_bad = d.notna() & (d <= pd.Timestamp(year))
        out += emit(ctx, "date.before_year_lock", frame, year_bad,
                    lambda r: {"value": _iso(r[date_col]), "lock": year.isoformat()}, field=field, line_col=None)
    if period is not None:
        bad = d.notna() & (d <= pd.Timestamp(period)) & ~year_bad
        out += emit(ctx, "date.before_period_lock", frame, bad,
                    lambda r: {"value": _iso(r[date_col]), "lock": period.isoformat()}, field=field, line_col=None)
    return out


def _iso(v: Any) -> str:
    if isinstance(v, (pd.Timestamp, date)):
        return v.strftime("%Y-%m-%d")
    return str(v)


# --------------------------------------------------------------------------------------------
# The org's mapping against reference data (zxsync mappings check)
# --------------------------------------------------------------------------------------------


def check_config(org: OrgConfig, ref: ReferenceData) -> list[Reject]:
    """Every code, name and picklist value the mapping refers to, checked against the live systems.

    Returns rejects whose ``module`` is ``config`` and ``record_id`` the key path, so the report of
    ``zxsync mappings check`` lists each gap with its key and fix.
    """
    ctx = Ctx(org=org, ref=ref, module="config", doc_type="CONFIG")
    rows: list[dict[str, Any]] = []

    def add(kind: str, value: str | None, key: str, doc_type: str | None = None) -> None:
        if value is not None:
            rows.append({"kind": kind, "value": value, "key": key, "doc_type": doc_type, "_doc": key,
                         "_line": None, "_pos": -1})

    po = org.modules.purchase_orders
    purchase_doc = "ACCPAY" if po.target == "bill" else "PURCHASEORDER"
    for name, code in org.tax.map.items():
        add("tax", code, f"tax.map.{_q(name)}")
    for rate, code in org.tax.by_rate.items():
        add("tax", code, f"tax.by_rate.{rate}")
    add("tax", org.tax.default, "tax.default")
    for name, code in org.tax.purchases_map.items():
        add("tax", code, f"tax.purchases_map.{_q(name)}")
    for rate, code in org.tax.purchases_by_rate.items():
        add("tax", code, f"tax.purchases_by_rate.{rate}")
    add("tax", org.tax.purchases_default, "tax.purchases_default")
    for k, code in org.accounts.by_product_code.items():
        add("account", code, f"accounts.by_product_code.{_q(k)}", "ACCREC")
    for k, code in org.accounts.by_category.items():
        add("account", code, f"accounts.by_category.{_q(k)}", "ACCREC")
    for k, code in org.accounts.purchases_by_product_code.items():
        add("account", code, f"accounts.purchases_by_product_code.{_q(k)}", purchase_doc)
    for k, code in org.accounts.purchases_by_category.items():
        add("account", code, f"accounts.purchases_by_category.{_q(k)}", purchase_doc)
    d = org.accounts.defaults
    for m in ("invoices", "sales_orders", "quotes", "products_sales"):
        add("account", getattr(d, m), f"accounts.defaults.{m}", "ACCREC")
    for m in ("purchase_orders", "products_purchases"):
        add("account", getattr(d, m), f"accounts.defaults.{m}", purchase_doc)
    for name in ("discount", "adjustment", "excise_duty"):
        h = getattr(org.header_amounts, name)
        if h.policy != "reject":
            add("account", h.account, f"header_amounts.{name}.account", "ACCREC")
            add("account", h.purchases_account, f"header_amounts.{name}.purchases_account", purchase_doc)
            add("tax", h.tax_type, f"header_amounts.{name}.tax_type")
    frame = pd.DataFrame(rows, columns=["kind", "value", "key", "doc_type", "_doc", "_line", "_pos"])
    out: list[Reject] = []
    accounts = frame[frame["kind"] == "account"]
    for doc_type, part in accounts.groupby("doc_type", sort=True):
        sub = Ctx(org=org, ref=ref, module="config", doc_type=str(doc_type))
        out += check_accounts(sub, part, "value", "key", doc_type=str(doc_type))
    taxes = frame[frame["kind"] == "tax"]
    out += check_tax_types(ctx, taxes, "value", "key", None)
    # Branding themes
    themes = [(org.branding.default, "branding.default")] + [
        (r.theme, f"branding.rules[{i}].theme") for i, r in enumerate(org.branding.rules)]
    for name, key in themes:
        if name is not None and name not in ref.themes_by_name:
            out.append(ctx.reject("branding.unknown_theme", key, field="BrandingThemeID", value=name, key=key,
                                  choices=ref.choices("theme")))
    # Tracking categories and mapped options
    tframe_rows = []
    for i, t in enumerate(org.tracking):
        values = set(t.options.values()) | ({t.default} if t.default else set())
        for opt in sorted(values) or [None]:
            tframe_rows.append({"_doc": f"tracking[{i}]", "_line": None, "_pos": -1, "cat": t.category,
                                "opt": opt if opt is not None else "", "key": f"tracking[{i}]"})
    if tframe_rows:
        tfr = pd.DataFrame(tframe_rows)
        with_opt = tfr[tfr["opt"] != ""]
        out += check_tracking(ctx, with_opt, [("cat", "opt", "key")])
        cats_only = tfr[tfr["opt"] == ""]
        known = set(ref.tracking_by_name)
        for r in cats_only.to_dict("records"):
            if r["cat"] not in known:
                out.append(ctx.reject("tracking.unknown_category", r["_doc"], field="Tracking", value=r["cat"],
                                      key=r["key"], choices=ref.choices("tracking")))
    # Currencies the map sends
    for zc, xc in org.currency.map.items():
        if xc not in ref.enabled_currencies:
            out.append(ctx.reject("currency.not_enabled", f"currency.map.{zc}", field="CurrencyCode", value=xc))
    # Rounding account
    if org.rounding.policy == "rounding_line" and ref.rounding_account_code is None:
        out.append(ctx.reject("rounding.no_account", "rounding.policy", field="AccountCode", value="any"))
    # Values written to Zoho: picklists and fields
    for section, module in (("invoices", "Invoices"), ("purchase_orders", "Purchase_Orders")):
        smap = getattr(org.status, section)
        live = ref.picklist(module, "Status")
        if live is None:
            continue
        for xero_status, zoho_value in smap.to_zoho.items():
            if zoho_value not in live:
                key = f"status.{section}.to_zoho.{xero_status}"
                out.append(ctx.reject("zoho.picklist_value", key, field="Status", value=zoho_value,
                                      key=key, choices=", ".join(live)))
        for zoho_value in list(smap.to_xero) + list(smap.cancel):
            if live and zoho_value not in live:
                key = f"status.{section}.to_xero.{_q(zoho_value)}"
                out.append(ctx.reject("zoho.picklist_value", key, field="Status", value=zoho_value, key=key,
                                      choices=", ".join(live)))
        for live_value in live:
            if live_value not in smap.to_xero and live_value not in smap.cancel and (
                    section == "invoices" or po.enabled):
                key = f"status.{section}.to_xero"
                out.append(ctx.reject("status.unmapped", f"{key}.{_q(live_value)}", field="Status",
                                      value=live_value, key=key, cancel_key=f"status.{section}.cancel"))
    if "Invoices" in ref.zoho_fields and ref.zoho_field("Invoices", org.numbering.xero_number_field) is None:
        out.append(ctx.reject("zoho.field_missing", "numbering.xero_number_field",
                              field=org.numbering.xero_number_field, zoho_module="Invoices"))
    return out


def _q(key: Any) -> str:
    text = str(key)
    return text if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", text) else f"'{text}'"
