"""Pre-flight validation against the live reference data, before any API call.

The checks are column operations over the mapped header and line frames: a rule is a boolean
mask, and only the (few) failing rows are turned into :class:`Reject` objects with the record,
the field, a plain-language reason, a fix hint naming the org file and key, and the rule id.
:func:`check_config` runs the same reference checks over the org's mapping itself (used by
``zxsync mappings check``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from mappings.config import OrgConfig
from mappings.reference import ALLOWED_CLASSES, FORBIDDEN_SYSTEM_ACCOUNTS, ReferenceData
from mappings.rejects import Reject, make_reject

#: Xero rejects an EmailAddress that is not an address ("Email address must be valid."), but it
#: checks syntax loosely and never deliverability: one @, no spaces, a dot in the domain. Being
#: stricter than Xero would reject records Xero accepts.
EMAIL_RE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

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

    def reject(
        self,
        rule: str,
        record_id: str,
        *,
        field: str | None = None,
        line_id: str | None = None,
        **values: Any,
    ) -> Reject:
        return make_reject(
            rule,
            org=self.org.slug,
            module=self.module,
            record_id=record_id,
            record_number=self.numbers.get(record_id),
            field=field,
            line_id=line_id,
            file=self.file,
            doc_type=DOC_WORDS.get(self.doc_type, self.doc_type.lower()),
            **values,
        )


def emit(
    ctx: Ctx,
    rule: str,
    frame: pd.DataFrame | Callable[[], pd.DataFrame],
    mask: pd.Series | np.ndarray,
    values: Callable[[dict[str, Any]], dict[str, Any]],
    *,
    field: str | None = None,
    doc_col: str = "_doc",
    line_col: str | None = "_line",
) -> list[Reject]:
    """Rejects for the rows of ``frame`` where ``mask`` holds; ``values(row)`` fills the templates.

    ``frame`` may be a callable building the frame, so the extra columns a message needs are only
    computed when some row actually fails.
    """
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return []
    if callable(frame):
        frame = frame()
    out = []
    for row in frame.loc[mask].to_dict("records"):
        vals = values(row)
        f = vals.pop("field", field)
        line_id = row.get(line_col) if line_col else None
        out.append(
            ctx.reject(
                rule,
                str(row[doc_col]),
                field=f,
                line_id=line_id if isinstance(line_id, str) else None,
                **vals,
            )
        )
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


def _verdicts(values: pd.Series, judge: Callable[[Any], str | None]) -> pd.Series:
    """Judge each distinct value once (reference lookups) and spread the verdicts back by a map."""
    uniq = pd.unique(values.dropna())
    table = {v: judge(v) for v in uniq}
    table = {k: v for k, v in table.items() if v is not None}
    if not table:
        return pd.Series(np.nan, index=values.index, dtype="object")
    return values.map(table)


def check_accounts(
    ctx: Ctx,
    frame: pd.DataFrame,
    code_col: str,
    key_col: str,
    *,
    doc_type: str,
    exempt_col: str | None = None,
    field: str = "AccountCode",
) -> list[Reject]:
    """Account exists, is ACTIVE, is not a system account and has a class allowed for ``doc_type``.

    Exempt rows (the rounding line on the ROUNDING system account) only need an existing ACTIVE account.
    """
    if frame.empty:
        return []
    accounts = ctx.ref.accounts_by_code
    allowed = ALLOWED_CLASSES.get(doc_type, frozenset())

    def judge(code: Any, exempt: bool = False) -> str | None:
        a = accounts.get(code)
        if a is None:
            return "account.unknown"
        if a.Status != "ACTIVE":
            return "account.inactive"
        if exempt:
            return None
        if (a.SystemAccount or "").upper() in FORBIDDEN_SYSTEM_ACCOUNTS:
            return "account.system"
        if allowed and (a.Class or "").upper() not in allowed:
            return "account.wrong_class"
        return None

    codes = frame[code_col]
    verdict = _verdicts(codes, judge)
    if exempt_col and frame[exempt_col].fillna(False).astype(bool).any():
        exempt = frame[exempt_col].fillna(False).astype(bool)
        verdict = verdict.where(~exempt, _verdicts(codes, lambda c: judge(c, True)))
    if verdict.isna().all():
        return []

    def values(r: dict[str, Any], rule: str) -> dict[str, Any]:
        a = accounts.get(r[code_col])
        out = {"value": r[code_col], "key": r[key_col], "line": _label(r)}
        if rule == "account.unknown":
            out["choices"] = ctx.ref.choices("account")
        elif rule == "account.inactive":
            out["status"] = a.Status
        elif rule == "account.system":
            out["system"] = (a.SystemAccount or "").upper()
        else:
            out["account_class"] = (a.Class or "").upper()
            out["allowed"] = CLASS_WORDS.get(doc_type, "suitable")
        return out

    out: list[Reject] = []
    for rule in ("account.unknown", "account.inactive", "account.system", "account.wrong_class"):
        out += emit(ctx, rule, frame, verdict == rule, lambda r, rule=rule: values(r, rule), field=field)
    return out


def check_tax_types(
    ctx: Ctx,
    frame: pd.DataFrame,
    tax_col: str,
    key_col: str,
    code_col: str | None,
    *,
    field: str = "TaxType",
    zoho_pct_col: str | None = None,
    zoho_name_col: str | None = None,
    doc_type: str | None = None,
    exempt_col: str | None = None,
) -> list[Reject]:
    """TaxType exists, is ACTIVE, can apply to the account's class, and (optionally) has Zoho's rate.

    The class check only runs against usable accounts (a bad account has its own reject already).
    """
    if frame.empty:
        return []
    rates = ctx.ref.tax_rates_by_type
    accounts = ctx.ref.accounts_by_code
    allowed = ALLOWED_CLASSES.get(doc_type or "", frozenset())
    taxes = frame[tax_col]
    n = len(frame)
    codes = frame[code_col] if code_col is not None else pd.Series(np.nan, index=frame.index, dtype="object")
    exempt = (
        frame[exempt_col].fillna(False).astype(bool) if exempt_col else pd.Series(False, index=frame.index)
    )
    pct = (
        pd.to_numeric(frame[zoho_pct_col], errors="coerce")
        if zoho_pct_col is not None
        else pd.Series(np.nan, index=frame.index)
    )
    key = (
        taxes.astype("object").fillna("")
        + "\x1f"
        + codes.astype("object").fillna("")
        + "\x1f"
        + exempt.map({True: "1", False: "0"}).astype("object")
        + "\x1f"
        + pct.map(lambda v: "" if v != v else repr(round(float(v), 6))).astype("object")
    )
    key = key.where(taxes.notna())

    def judge(k: str) -> str | None:
        tax, code, ex, p = k.split("\x1f")
        t = rates.get(tax)
        if t is None:
            return "tax.unknown_type"
        if t.Status != "ACTIVE":
            return "tax.inactive"
        a = accounts.get(code) if code else None
        usable = (
            a is not None
            and a.Status == "ACTIVE"
            and (
                ex == "1"
                or (
                    (a.SystemAccount or "").upper() not in FORBIDDEN_SYSTEM_ACCOUNTS
                    and (not allowed or (a.Class or "").upper() in allowed)
                )
            )
        )
        if usable and not t.can_apply_to(a.Class):
            return "tax.not_applicable"
        if p and abs(float(t.rate) - float(p)) > 1e-9:
            return "tax.rate_mismatch"
        return None

    verdict = _verdicts(key, judge) if n else pd.Series(dtype="object")
    if verdict.isna().all():
        return []

    def values(r: dict[str, Any], rule: str) -> dict[str, Any]:
        t = rates.get(r[tax_col])
        out = {"value": r[tax_col], "key": r[key_col], "line": _label(r)}
        if rule == "tax.unknown_type":
            out["choices"] = ctx.ref.choices("tax")
        elif rule == "tax.inactive":
            out["status"] = t.Status
        elif rule == "tax.not_applicable":
            a = accounts[r[code_col]]
            out.update(account=r[code_col], account_class=(a.Class or "").upper())
        else:
            out.update(
                zoho_rate=_pct(r[zoho_pct_col]),
                xero_rate=_pct(t.rate),
                tax=r.get(zoho_name_col) if zoho_name_col else r[tax_col],
            )
        return out

    out: list[Reject] = []
    for rule in ("tax.unknown_type", "tax.inactive", "tax.not_applicable", "tax.rate_mismatch"):
        out += emit(ctx, rule, frame, verdict == rule, lambda r, rule=rule: values(r, rule), field=field)
    return out


def _pct(v: Any) -> str:
    return format(float(v), "g")


def check_tracking(ctx: Ctx, frame: pd.DataFrame, slots: list[tuple[str, str, str]]) -> list[Reject]:
    """Tracking category/option exist and are ACTIVE; at most 2 per line. ``slots``: (cat, opt, key) cols."""
    out: list[Reject] = []
    if frame.empty:
        return out
    cats = ctx.ref.tracking_by_name

    def judge(k: str) -> str | None:
        cat, opt = k.split("\x1f")
        c = cats.get(cat)
        if c is None:
            return "tracking.unknown_category"
        if c.Status != "ACTIVE":
            return "tracking.inactive_category"
        o = next((o for o in c.Options if o.Name == opt), None)
        if o is None:
            return "tracking.unknown_option"
        return "tracking.inactive" if o.Status != "ACTIVE" else None

    count = pd.Series(0, index=frame.index)
    for cat_col, opt_col, key_col in slots:
        cat, opt = frame[cat_col], frame[opt_col]
        used = cat.notna() & opt.notna()
        count += used.astype(int)
        verdict = _verdicts((cat.astype("object") + "\x1f" + opt.astype("object")).where(used), judge)
        if verdict.isna().all():
            continue

        def values(
            r: dict[str, Any], rule: str, c: str = cat_col, o: str = opt_col, k: str = key_col
        ) -> dict:
            category = cats.get(r[c])
            if rule == "tracking.unknown_category":
                return {"value": r[c], "key": r[k], "choices": ctx.ref.choices("tracking")}
            if rule == "tracking.inactive_category":
                return {"value": r[c], "category": r[c], "key": r[k], "status": category.Status}
            if rule == "tracking.unknown_option":
                return {
                    "value": r[o],
                    "category": r[c],
                    "key": r[k],
                    "choices": ", ".join(sorted(x.Name for x in category.Options if x.Status == "ACTIVE")),
                }
            status = next(x.Status for x in category.Options if x.Name == r[o])
            return {"value": r[o], "category": r[c], "key": r[k], "status": status}

        for rule in (
            "tracking.unknown_category",
            "tracking.inactive_category",
            "tracking.unknown_option",
            "tracking.inactive",
        ):
            out += emit(
                ctx,
                rule if rule != "tracking.inactive_category" else "tracking.inactive",
                frame,
                verdict == rule,
                lambda r, rule=rule: values(r, rule),
                field="Tracking",
            )
    if (count > 2).any():
        counted = frame.assign(_trk_count=count)
        out += emit(
            ctx,
            "tracking.too_many",
            counted,
            count > 2,
            lambda r: {"value": int(r["_trk_count"]), "line": _label(r)},
            field="Tracking",
        )
    return out


def check_lengths(
    ctx: Ctx, frame: pd.DataFrame, limits: Iterable[tuple[str, int, str]], *, line_col: str | None = None
) -> list[Reject]:
    """Text columns within Xero's limits. ``limits``: (column, max length, config key for the hint)."""
    out: list[Reject] = []
    for column, limit, key in limits:
        if column not in frame.columns:
            continue
        text = frame[column].astype("str").where(frame[column].notna())
        length = text.str.len()
        bad = length.notna() & (length > limit)
        out += emit(
            ctx,
            "length.exceeded",
            frame,
            bad,
            lambda r, c=column, k=key, lim=limit: {
                "field": c.replace("LineItems.", ""),
                "length": len(str(r[c])),
                "limit": lim,
                "key": k,
            },
            line_col=line_col,
        )
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
        out += emit(
            ctx,
            "date.before_year_lock",
            frame,
            year_bad,
            lambda r: {"value": _iso(r[date_col]), "lock": year.isoformat()},
            field=field,
            line_col=None,
        )
    if period is not None:
        bad = d.notna() & (d <= pd.Timestamp(period)) & ~year_bad
        out += emit(
            ctx,
            "date.before_period_lock",
            frame,
            bad,
            lambda r: {"value": _iso(r[date_col]), "lock": period.isoformat()},
            field=field,
            line_col=None,
        )
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
            rows.append(
                {
                    "kind": kind,
                    "value": value,
                    "key": key,
                    "doc_type": doc_type,
                    "_doc": key,
                    "_line": None,
                    "_pos": -1,
                }
            )

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
        (r.theme, f"branding.rules[{i}].theme") for i, r in enumerate(org.branding.rules)
    ]
    for name, key in themes:
        if name is not None and name not in ref.themes_by_name:
            out.append(
                ctx.reject(
                    "branding.unknown_theme",
                    key,
                    field="BrandingThemeID",
                    value=name,
                    key=key,
                    choices=ref.choices("theme"),
                )
            )
    # Tracking categories and mapped options
    tframe_rows = []
    for i, t in enumerate(org.tracking):
        values = set(t.options.values()) | ({t.default} if t.default else set())
        for opt in sorted(values) or [None]:
            tframe_rows.append(
                {
                    "_doc": f"tracking[{i}]",
                    "_line": None,
                    "_pos": -1,
                    "cat": t.category,
                    "opt": opt if opt is not None else "",
                    "key": f"tracking[{i}]",
                }
            )
    if tframe_rows:
        tfr = pd.DataFrame(tframe_rows)
        with_opt = tfr[tfr["opt"] != ""]
        out += check_tracking(ctx, with_opt, [("cat", "opt", "key")])
        cats_only = tfr[tfr["opt"] == ""]
        known = set(ref.tracking_by_name)
        for r in cats_only.to_dict("records"):
            if r["cat"] not in known:
                out.append(
                    ctx.reject(
                        "tracking.unknown_category",
                        r["_doc"],
                        field="Tracking",
                        value=r["cat"],
                        key=r["key"],
                        choices=ref.choices("tracking"),
                    )
                )
    # Currencies the map sends
    for zc, xc in org.currency.map.items():
        if xc not in ref.enabled_currencies:
            out.append(
                ctx.reject("currency.not_enabled", f"currency.map.{zc}", field="CurrencyCode", value=xc)
            )
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
                out.append(
                    ctx.reject(
                        "zoho.picklist_value",
                        key,
                        field="Status",
                        value=zoho_value,
                        key=key,
                        choices=", ".join(live),
                    )
                )
        for zoho_value in list(smap.to_xero) + list(smap.cancel):
            if live and zoho_value not in live:
                key = f"status.{section}.to_xero.{_q(zoho_value)}"
                out.append(
                    ctx.reject(
                        "zoho.picklist_value",
                        key,
                        field="Status",
                        value=zoho_value,
                        key=key,
                        choices=", ".join(live),
                    )
                )
        for live_value in live:
            if live_value == "-None-":  # Zoho's empty choice, not a status
                continue
            if (
                live_value not in smap.to_xero
                and live_value not in smap.cancel
                and (section == "invoices" or po.enabled)
            ):
                key = f"status.{section}.to_xero"
                out.append(
                    ctx.reject(
                        "status.unmapped",
                        f"{key}.{_q(live_value)}",
                        field="Status",
                        value=live_value,
                        key=key,
                        cancel_key=f"status.{section}.cancel",
                    )
                )
    if "Invoices" in ref.zoho_fields and ref.zoho_field("Invoices", org.numbering.xero_number_field) is None:
        out.append(
            ctx.reject(
                "zoho.field_missing",
                "numbering.xero_number_field",
                field=org.numbering.xero_number_field,
                zoho_module="Invoices",
            )
        )
    return out


def _q(key: Any) -> str:
    text = str(key)
    return text if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", text) else f"'{text}'"
