"""An org's mapping from its real codes: ``zxsync mappings discover`` and ``zxsync mappings check``.

:func:`fetch_live` reads what the mapping refers to, once: the Xero organisation, accounts, tax
rates, branding themes, tracking categories and currencies, and the Zoho fields (with their
picklists: Invoice Status, PO Status, product categories), taxes and currencies.

:func:`starter_mapping` turns that into the mapping sections of ``orgs/<slug>.yaml``. Each value is
a best guess; a guess that is not an exact match carries a ``# REVIEW:`` comment saying what it was
guessed from, and what could not be guessed is named in a ``# REVIEW:`` comment too.

:func:`check_mapping` lists every gap between a mapping and the live systems — each with its key
in the org file, what is wrong and the fix — using :func:`mappings.check_config` plus what only the
live Zoho org can tell: its tax names, its currencies and the Xero_* fields the sync writes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from decimal import Decimal, InvalidOperation
from io import StringIO
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, Field

from connectors.errors import ApiError
from ledger import Ledger, LedgerCredentialStore
from mappings import OrgConfig, ReferenceData
from mappings.config import ConfigError, load_org_file, parse_org
from mappings.reference import iana_timezone
from mappings.rejects import make_reject
from mappings.validate import check_config
from zxsync.onboarding import OnboardingError, _ledger, required_zoho_fields
from zxsync.settings import get_settings

#: Zoho modules whose metadata the mapping needs (status picklists, categories, the Xero_* fields).
BASE_ZOHO_MODULES = ("Accounts", "Contacts", "Vendors", "Products", "Invoices", "Purchase_Orders")
#: The mapping sections ``discover`` writes (the rest of the org file is kept as it is).
MAPPING_SECTIONS = ("status", "tax", "branding", "accounts", "tracking", "currency", "header_amounts", "rounding")


class LiveMetadata(BaseModel):
    """What the org's mapping refers to, read from both systems."""

    xero: dict[str, Any]
    zoho_fields: dict[str, list[dict[str, Any]]] = Field(default_factory=dict)
    zoho_taxes: list[dict[str, Any]] = Field(default_factory=list)
    zoho_currencies: list[dict[str, Any]] = Field(default_factory=list)
    zoho_org: dict[str, Any] = Field(default_factory=dict)
    #: Zoho modules whose metadata could not be read (e.g. not in the org's edition), with the reason.
    unreadable: dict[str, str] = Field(default_factory=dict)

    def reference(self) -> ReferenceData:
        """The live data as the sync's validators see it."""
        return ReferenceData.from_api(**self.xero, zoho_fields=self.zoho_fields)

    def picklist(self, module: str, field: str) -> list[str]:
        for f in self.zoho_fields.get(module, []):
            if f.get("api_name") == field:
                return [str(v.get("actual_value")) for v in f.get("pick_list_values") or []
                        if str(v.get("actual_value")) != "-None-"]
        return []

    def zoho_currency_codes(self) -> list[str]:
        codes = [str(c.get("iso_code")) for c in self.zoho_currencies if c.get("iso_code") and
                 c.get("is_active", True)]
        home = self.zoho_org.get("iso_code")
        if home and home not in codes:
            codes.insert(0, str(home))
        return codes


def fetch_live(org: str, config: OrgConfig | None = None, *, ledger: Ledger | None = None) -> LiveMetadata:
    """Read the live metadata of ``org`` through its stored connections (a few dozen calls)."""
    from connectors.xero import XeroClient
    from connectors.zoho import ZohoClient

    modules = list(BASE_ZOHO_MODULES)
    for module in required_zoho_fields(config):
        if module not in modules:
            modules.append(module)
    with _ledger(ledger) as led:
        store = LedgerCredentialStore(led)
        try:
            xc = XeroClient(store, org)
        except KeyError:
            raise OnboardingError(f"{org} has no Xero connection: run `zxsync connect xero {org}`") from None
        try:
            zc = ZohoClient(store, org)
        except KeyError:
            raise OnboardingError(f"{org} has no Zoho CRM connection: run `zxsync connect zoho {org}`") from None
        try:
            xero = {"organisation": xc.organisation(), "accounts": xc.accounts(), "tax_rates": xc.tax_rates(),
                    "branding_themes": xc.branding_themes(),
                    "tracking_categories": xc.tracking_categories(include_archived=True),
                    "currencies": xc.currencies()}
            live = LiveMetadata(xero=xero, zoho_org=zc.org(), zoho_taxes=zc.org_taxes())
            try:
                live.zoho_currencies = zc.currencies()
            except ApiError as exc:  # single-currency orgs may answer with an error
                live.unreadable["currencies"] = exc.message
            for module in modules:
                try:
                    live.zoho_fields[module] = zc.fields(module)
                except ApiError as exc:
                    live.unreadable[module] = exc.message
        finally:
            xc.session.close()
            zc.session.close()
    return live


# --- guessing --------------------------------------------------------------------------------------
def _words(text: str) -> set[str]:
    return {w for w in re.split(r"[^a-z0-9]+", text.lower()) if w}


_INVOICE_WORDS: list[tuple[set[str], str]] = [
    ({"draft", "created", "new", "open", "pending", "unsent"}, "DRAFT"),
    ({"submitted", "awaiting"}, "SUBMITTED"),
    ({"approved", "sent", "delivered", "confirmed", "issued", "overdue", "unpaid", "paid", "partially",
      "billed", "received", "ordered"}, "AUTHORISED"),
]
_CANCEL_WORDS = {"cancelled", "canceled", "void", "voided", "rejected", "declined", "deleted"}


def guess_status(value: str) -> tuple[str | None, str | None]:
    """('cancel' | a Xero status, None) for a well-known Zoho status; (DRAFT, why) for the rest."""
    words = _words(value)
    if words & _CANCEL_WORDS:
        return "cancel", None
    for known, xero in _INVOICE_WORDS:
        if words & known:
            note = ("REVIEW: Xero sets PAID itself once payments cover the invoice; AUTHORISED is what we send"
                    if "paid" in words else None)
            return xero, note
    return "DRAFT", f"REVIEW: no obvious Xero status for '{value}'; DRAFT keeps it editable in Xero"


def _rate(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)).normalize()
    except (InvalidOperation, ValueError):
        return None


def _pct(rate: Decimal | None) -> str:
    """15 -> '15%', 12.50 -> '12.5%' (never '2E+1%')."""
    return "?%" if rate is None else f"{rate.normalize():f}%"


def guess_tax_type(name: str, rate: Decimal, ref: ReferenceData, *, sales: bool) -> tuple[str | None, str]:
    """The Xero TaxType for a Zoho tax (name, %), and the comment saying how it was chosen."""
    candidates = [t for t in ref.tax_rates if t.Status == "ACTIVE"
                  and (t.CanApplyToRevenue if sales else t.CanApplyToExpenses) and t.rate.normalize() == rate]
    if not candidates:
        return None, (f"REVIEW: Xero has no active {'sales' if sales else 'purchases'} tax rate of {_pct(rate)} for "
                      f"Zoho tax '{name}': map it by hand (lines taxed with it are rejected until then)")
    wanted = "OUTPUT" if sales else "INPUT"

    def score(t: Any) -> tuple[int, int, int, str]:
        exact = int(t.Name.strip().lower() == name.strip().lower())
        overlap = len(_words(t.Name) & _words(name))
        kind = int(wanted in (t.TaxType or "").upper() or wanted in (getattr(t, "ReportTaxType", "") or "").upper())
        odd = -int("import" in t.Name.lower() or "reverse" in t.Name.lower())
        return exact, overlap + odd, kind, t.TaxType

    best = max(candidates, key=score)
    if best.Name.strip().lower() == name.strip().lower():
        return best.TaxType, "matched by name and rate"
    return best.TaxType, f"REVIEW: guessed from the rate {_pct(rate)} ('{best.Name}')"


def _active_accounts(ref: ReferenceData, classes: set[str]) -> list[Any]:
    return [a for a in ref.accounts if a.Code and a.Status == "ACTIVE" and (a.Class or "").upper() in classes
            and not a.SystemAccount and (a.Type or "").upper() != "BANK"]


def guess_account(ref: ReferenceData, *, sales: bool) -> tuple[str | None, str]:
    """The default GL account for sales (REVENUE) or purchases (EXPENSE) lines."""
    pool = _active_accounts(ref, {"REVENUE"} if sales else {"EXPENSE"})
    if not pool:
        return None, f"REVIEW: Xero has no active {'REVENUE' if sales else 'EXPENSE'} account"
    names = ("sales",) if sales else ("purchases", "cost of goods sold", "cost of sales")
    for wanted in names:
        for a in sorted(pool, key=lambda a: a.Code):
            if a.Name.strip().lower() == wanted:
                return a.Code, f"REVIEW: guessed: the {'REVENUE' if sales else 'EXPENSE'} account '{a.Name}'"
    if not sales:
        direct = [a for a in pool if (a.Type or "").upper() == "DIRECTCOSTS"]
        pool = direct or pool
    first = min(pool, key=lambda a: a.Code)
    return first.Code, f"REVIEW: guessed: the first {'REVENUE' if sales else 'EXPENSE'} account '{first.Name}'"


def guess_category_accounts(categories: Iterable[str], ref: ReferenceData, *, sales: bool,
                            default: str | None) -> dict[str, tuple[str, str]]:
    """Product category -> (account code, comment) where an account's name names the category."""
    pool = _active_accounts(ref, {"REVENUE"} if sales else {"EXPENSE"})
    out: dict[str, tuple[str, str]] = {}
    for category in categories:
        words = _words(category) - {"and", "the", "other"}
        matches = [a for a in pool if words and words <= _words(a.Name)]
        if matches:
            best = min(matches, key=lambda a: (len(a.Name), a.Code))
            if best.Code != default:
                out[category] = (best.Code, f"REVIEW: guessed from the account name '{best.Name}'")
    return out


def _cm(items: Iterable[tuple[str, Any, str | None]] = ()) -> Any:
    """A ruamel mapping with end-of-line comments: ``items`` are (key, value, comment or None)."""
    from ruamel.yaml.comments import CommentedMap

    out = CommentedMap()
    for key, value, comment in items:
        out[key] = value
        if comment:
            out.yaml_add_eol_comment(comment, key)
    return out


def _note(mapping: Any, key: str, lines: Sequence[str], indent: int) -> None:
    if lines:
        mapping.yaml_set_comment_before_after_key(key, before="\n".join(lines), indent=indent)


def _status_section(live: LiveMetadata, module: str, purchases: bool, billed_ok: bool) -> tuple[Any, int]:
    values = live.picklist(module, "Status")
    to_xero, cancel, reviews = [], [], 0
    for value in values:
        guess, note = guess_status(value)
        if guess == "cancel":
            cancel.append(value)
            continue
        if purchases and guess == "AUTHORISED" and "billed" in _words(value) and billed_ok:
            guess = "BILLED"
        reviews += bool(note and note.startswith("REVIEW"))
        to_xero.append((value, guess, note))
    to_zoho: list[tuple[str, Any, str | None]] = []
    mapped = {v: g for v, g, _ in to_xero}
    approved = [v for v in values if mapped.get(v) == "AUTHORISED" and "approved" in _words(v)]
    if approved and not purchases:
        to_zoho.append(("AUTHORISED", approved[0], None))
    paid = [v for v in values if _words(v) == {"paid"}]
    if paid and not purchases:
        to_zoho.append(("PAID", paid[0], None))
    if billed_ok:
        billed = [v for v in values if mapped.get(v) == "BILLED"]
        if billed:
            to_zoho.append(("BILLED", billed[0], None))
    if cancel:
        to_zoho += [("VOIDED", cancel[0], None), ("DELETED", cancel[0], None)]
    section = _cm([("to_xero", _cm(to_xero), None), ("cancel", list(cancel), None),
                   ("to_zoho", _cm(to_zoho), None)])
    if not values:
        _note(section, "to_xero", [f"REVIEW: the Zoho {module} Status picklist could not be read"], 4)
    return section, reviews


def starter_mapping(live: LiveMetadata, config: OrgConfig | None = None) -> tuple[dict[str, Any], int]:
    """The mapping sections (ruamel maps with comments) guessed from the live data, and how many
    values are marked ``REVIEW``."""
    ref = live.reference()
    reviews = 0
    out: dict[str, Any] = {}

    # Statuses: every live picklist value is mapped (or cancels), so no record is refused for it.
    po_target = config.modules.purchase_orders.target if config else "bill"
    inv, n = _status_section(live, "Invoices", False, False)
    reviews += n
    po, n = _status_section(live, "Purchase_Orders", True, po_target == "purchase_order")
    reviews += n
    out["status"] = _cm([("invoices", inv, None), ("purchase_orders", po, None)])

    # Taxes: by name and rate, else by rate; untaxed lines get Xero's no-tax rate.
    sales_map, purchases_map, notes = [], [], []
    for tax in live.zoho_taxes:
        name, rate = str(tax.get("name") or "").strip(), _rate(tax.get("value"))
        if not name or rate is None:
            continue
        for sales, target in ((True, sales_map), (False, purchases_map)):
            code, comment = guess_tax_type(name, rate, ref, sales=sales)
            if code is None:
                notes.append(comment)
                reviews += 1
            else:
                target.append((name, code, comment))
                reviews += comment.startswith("REVIEW")
    none_sales = next((t for t in ref.tax_rates if t.TaxType == "NONE" and t.Status == "ACTIVE"), None)
    tax = _cm([("line_amount_types", "Exclusive", "Zoho line amounts are tax-exclusive"),
               ("map", _cm(sales_map), None),
               ("default", none_sales.TaxType if none_sales else None,
                f"untaxed lines: Xero's '{none_sales.Name}'" if none_sales else
                "REVIEW: Xero has no NONE tax rate; set the TaxType of untaxed lines"),
               ("purchases_map", _cm(purchases_map), None),
               ("purchases_default", none_sales.TaxType if none_sales and none_sales.CanApplyToExpenses else None,
                None)])
    reviews += none_sales is None
    _note(tax, "map", notes, 2)
    out["tax"] = tax

    # Branding: Xero's default theme; the others are listed for rules.
    theme = ref.default_theme
    branding = _cm([("default", theme.Name if theme else None, "Xero's default theme" if theme else
                     "REVIEW: Xero lists no branding theme"), ("rules", [], None)])
    others = [t.Name for t in ref.branding_themes if theme is None or t.Name != theme.Name]
    if others:
        _note(branding, "rules", [f"other Xero themes: {', '.join(others)} (rules: field + equals/in + theme)"], 2)
    out["branding"] = branding

    # Accounts: the default sales and purchases accounts, and categories whose names match accounts.
    sales_code, sales_note = guess_account(ref, sales=True)
    buy_code, buy_note = guess_account(ref, sales=False)
    reviews += 2
    categories = live.picklist("Products", "Product_Category")
    by_cat = guess_category_accounts(categories, ref, sales=True, default=sales_code)
    buy_cat = guess_category_accounts(categories, ref, sales=False, default=buy_code)
    reviews += len(by_cat) + len(buy_cat)
    defaults = _cm([("invoices", sales_code, sales_note), ("sales_orders", sales_code, None),
                    ("quotes", sales_code, None), ("purchase_orders", buy_code, buy_note),
                    ("products_sales", sales_code, None), ("products_purchases", buy_code, None)])
    accounts = _cm([("by_product_code", _cm(), None),
                    ("by_category", _cm((k, v[0], v[1]) for k, v in by_cat.items()), None),
                    ("purchases_by_category", _cm((k, v[0], v[1]) for k, v in buy_cat.items()), None),
                    ("defaults", defaults, None)])
    if categories:
        _note(accounts, "by_category", [f"Zoho product categories: {', '.join(categories)}"], 2)
    out["accounts"] = accounts

    # Tracking: nothing is guessed (which CRM field feeds a category is the org's choice).
    out["tracking"] = []
    tracking_notes = [f"{c.Name}: {', '.join(o.Name for o in c.Options if o.Status == 'ACTIVE')}"
                      for c in ref.tracking_categories if c.Status == "ACTIVE"]

    # Currencies: the Zoho currencies Xero has enabled; the others are named for review.
    enabled = ref.enabled_currencies
    zoho_codes = live.zoho_currency_codes()
    cmap = _cm((code, code, None) for code in zoho_codes if code in enabled)
    missing = [code for code in zoho_codes if code not in enabled]
    currency = _cm([("map", cmap, None), ("rate", "xero", "Xero's daily rate")])
    if missing:
        reviews += len(missing)
        note = (f"REVIEW: {', '.join(missing)} not enabled in Xero: enable it there (Settings > Currencies), "
                "or its records are rejected")
        _note(currency, "map", [note], 2)
    out["currency"] = currency

    # Header amounts Xero has no field for (discount, adjustment, excise duty): a line on the default
    # accounts, so such documents are not refused.
    header = []
    for name, label in (("discount", "Discount"), ("adjustment", "Adjustment"), ("excise_duty", "Excise duty")):
        if sales_code and buy_code:
            header.append((name, _cm([("policy", "line", None), ("account", sales_code, None),
                                      ("purchases_account", buy_code, None), ("description", label, None)]),
                           f"REVIEW: sent as a line '{label}' on account {sales_code} (purchases {buy_code})"))
            reviews += 1
        else:
            header.append((name, _cm([("policy", "reject", None), ("description", label, None)]), None))
    out["header_amounts"] = _cm(header)

    # Rounding: a rounding line when Xero has its ROUNDING account, else refuse mismatching totals.
    if ref.rounding_account_code:
        out["rounding"] = _cm([("tolerance", 0.01, None), ("policy", "rounding_line",
                               f"REVIEW: posts to Xero's rounding account {ref.rounding_account_code}"),
                               ("max_rounding_line", 0.05, None), ("description", "Rounding", None)])
        reviews += 1
    else:
        out["rounding"] = _cm([("tolerance", 0.01, None), ("policy", "reject", None)])
    out["_tracking_notes"] = tracking_notes
    return out, reviews


def _has_mapping(config: OrgConfig) -> bool:
    default = OrgConfig.model_validate({"slug": config.slug, "name": config.name, "timezone": config.timezone,
                                        "xero": {"connection": "x"}, "zoho": {"connection": "z"}})
    return any(getattr(config, s) != getattr(default, s) for s in MAPPING_SECTIONS)


def discover(org: str, *, output: Path | None = None, force: bool = False,
             live: LiveMetadata | None = None, ledger: Ledger | None = None) -> tuple[Path, int]:
    """Write ``org``'s starter mapping (to ``orgs/<org>.yaml`` unless ``output``); returns the file and
    the number of REVIEW marks. An existing file keeps its other sections (and comments); one that
    already holds a mapping is only replaced with ``force`` (the old one is kept as ``.bak``)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    settings = get_settings()
    source = settings.orgs_dir / f"{org}.yaml"
    target = output or source
    config: OrgConfig | None = None
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 110
    if source.exists():
        try:
            config = load_org_file(source)
        except ConfigError as exc:
            raise OnboardingError(f"fix the org file first:\n{exc}") from None
        data = rt.load(source.read_text(encoding="utf-8"))
    else:
        raise OnboardingError(f"{source} does not exist: run `zxsync org add {org}` first")
    if target.exists() and not force:
        existing = config if target == source else load_org_file(target) if target.suffix == ".yaml" else None
        if existing is not None and _has_mapping(existing):
            raise OnboardingError(f"{target} holds a mapping already; use --force to replace it (kept as "
                                  f"{target.name}.bak) or --output another file")
    live = live or fetch_live(org, config, ledger=ledger)
    sections, reviews = starter_mapping(live, config)
    tracking_notes = sections.pop("_tracking_notes")
    organisation = live.reference().organisation
    if not isinstance(data, CommentedMap):
        data = CommentedMap()
    if not data.get("timezone") and organisation.Timezone:
        data["timezone"] = iana_timezone(organisation.Timezone)
    for name in MAPPING_SECTIONS:
        data[name] = sections[name]
    data.yaml_set_comment_before_after_key(
        "status", before=f"--- mapping discovered by `zxsync mappings discover {org}` from Xero '{organisation.Name}' "
        f"and Zoho CRM '{live.zoho_org.get('company_name') or live.zoho_org.get('name') or ''}'.\n"
        "Lines marked REVIEW are guesses: check them, then run `zxsync mappings check " + org + "`.", indent=0)
    if tracking_notes:
        data.yaml_set_comment_before_after_key(
            "tracking", before="Xero tracking categories (map a Zoho field to one: category, source, options):\n"
            + "\n".join(f"  {n}" for n in tracking_notes), indent=0)
    buffer = StringIO()
    rt.dump(data, buffer)
    text = buffer.getvalue()
    try:
        checked = parse_org(yaml.safe_load(text), str(target))
    except ConfigError as exc:  # a bug of ours: never write an invalid org file
        raise OnboardingError(f"the discovered mapping is not a valid org file:\n{exc}") from None
    if checked.slug != org:
        raise OnboardingError(f"{source} names slug {checked.slug!r}, not {org!r}")
    if target.exists():
        target.with_name(target.name + ".bak").write_bytes(target.read_bytes())
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return target, reviews


# --- checking ----------------------------------------------------------------------------------------
class Gap(BaseModel):
    """One difference between the mapping and the live systems."""

    key: str
    problem: str
    fix: str
    rule: str
    blocking: bool = True


def _q(key: str) -> str:
    return key if re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key) else f"'{key}'"


def check_mapping(config: OrgConfig, live: LiveMetadata) -> list[Gap]:
    """Every gap of ``config`` against the live metadata: blocking ones first, then warnings."""
    ref = live.reference()
    file = config.config_file
    gaps = [Gap(key=r.record_id, problem=r.reason, fix=r.hint, rule=r.rule, blocking=r.blocking)
            for r in check_config(config, ref)]
    # Zoho taxes: names the mapping uses must exist; taxes nobody maps will reject their lines.
    zoho_taxes = {str(t.get("name")).strip(): _rate(t.get("value")) for t in live.zoho_taxes if t.get("name")}
    names = ", ".join(f"'{n}'" for n in zoho_taxes) or "none"
    for section, mapping in (("map", config.tax.map), ("purchases_map", config.tax.purchases_map)):
        for name in mapping:
            if name not in zoho_taxes:
                gaps.append(Gap(key=f"tax.{section}.{_q(name)}", rule="zoho.tax_unknown",
                                problem=f"Zoho CRM has no tax named '{name}'",
                                fix=f"Use a Zoho tax name ({names}) in {file} under tax.{section}"))
    if live.zoho_taxes:
        for name, rate in zoho_taxes.items():
            for section, mapping, by_rate in (("map", config.tax.map, config.tax.by_rate),
                                              ("purchases_map", config.tax.purchases_map,
                                               config.tax.purchases_by_rate)):
                if section == "purchases_map" and not (config.modules.purchase_orders.enabled
                                                       or config.modules.vendors.enabled):
                    continue
                if name not in mapping and not any(rate is not None and Decimal(r) == rate for r in by_rate):
                    gaps.append(Gap(key=f"tax.{section}.{_q(name)}", rule="tax.unmapped", blocking=False,
                                    problem=f"Zoho tax '{name}' ({_pct(rate)}) has no Xero TaxType: "
                                            f"{'sales' if section == 'map' else 'purchase'} lines taxed with it "
                                            "are rejected",
                                    fix=f"Map '{name}' to a Xero TaxType ({ref.choices('tax')}) in {file} under "
                                        f"tax.{section}"))
    # Currencies: a Zoho currency that reaches Xero unmapped and not enabled rejects its records.
    zoho_codes = live.zoho_currency_codes()
    for code in zoho_codes:
        target = config.currency.map.get(code, code)
        if target not in ref.enabled_currencies and code not in config.currency.map:
            gaps.append(Gap(key=f"currency.map.{code}", rule="currency.not_enabled", blocking=False,
                            problem=f"Zoho currency {code} is not enabled in Xero: records in {code} are rejected",
                            fix=f"Enable {code} in Xero (Settings > Currencies), or map it in {file} under "
                                "currency.map"))
    for code in config.currency.map:
        if zoho_codes and code not in zoho_codes:
            gaps.append(Gap(key=f"currency.map.{code}", rule="zoho.currency_unknown", blocking=False,
                            problem=f"Zoho CRM has no currency {code}",
                            fix=f"Remove it from {file} under currency.map, or add the currency in Zoho CRM"))
    # Product categories the account maps name must be values of Zoho's picklist (else a typo
    # silently sends those products' lines to the default account).
    categories = live.picklist("Products", "Product_Category")
    if categories:
        for section in ("by_category", "purchases_by_category"):
            for name in getattr(config.accounts, section):
                if name not in categories:
                    gaps.append(Gap(key=f"accounts.{section}.{_q(name)}", rule="zoho.picklist_value", blocking=False,
                                    problem=f"'{name}' is not a value of the Zoho Products Product_Category "
                                            "picklist: no product matches it",
                                    fix=f"Use one of {', '.join(categories)} in {file} under accounts.{section}"))
    # The Xero_* fields the sync writes.
    for module, specs in required_zoho_fields(config).items():
        if module in live.unreadable:
            gaps.append(Gap(key=f"zoho.{module}", rule="zoho.module_unreadable",
                            problem=f"Zoho {module} metadata could not be read ({live.unreadable[module]})",
                            fix=f"Check the module exists in Zoho CRM and the connection's scopes, or disable "
                                f"the module in {file} under modules"))
            continue
        present = {f.get("api_name") for f in live.zoho_fields.get(module, [])}
        missing = [s.api_name for s in specs if s.api_name not in present]
        if missing:
            r = make_reject("zoho.field_missing", org=config.slug, module="config", record_id=module,
                            field=", ".join(missing), zoho_module=module)
            gaps.append(Gap(key=f"{module}: {', '.join(missing)}", problem=r.reason, fix=r.hint, rule=r.rule))
    gaps.sort(key=lambda g: not g.blocking)
    return gaps


def format_gaps(config: OrgConfig, gaps: Sequence[Gap], live: LiveMetadata | None = None) -> str:
    """The readable report: one block per gap (key, what is wrong, the fix)."""
    blocking = [g for g in gaps if g.blocking]
    warnings = [g for g in gaps if not g.blocking]
    head = f"{config.config_file}"
    if live is not None:
        head += (f" against Xero '{live.reference().organisation.Name}' and Zoho CRM "
                 f"'{live.zoho_org.get('company_name') or live.zoho_org.get('zgid') or ''}'")
    lines = [f"{head}: {len(blocking)} gap(s), {len(warnings)} warning(s)"]
    for gap in gaps:
        lines += ["", f"{'GAP ' if gap.blocking else 'WARN'}  {gap.key}", f"      {gap.problem}",
                  f"      fix: {gap.fix}"]
    if not blocking:
        lines += ["", "OK: every code and value the mapping uses exists in the live systems."]
    return "\n".join(lines)
