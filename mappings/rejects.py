"""Rejects: a record that cannot be written, with a plain-language reason and a fix hint.

Every reject carries a stable rule id from :data:`RULES` (``tax.unmapped``, ``date.before_year_lock``
...), so the sync log, the CRM status field and ``zxsync mappings check`` speak the same language
and tests can assert on ids instead of wording. Rejects never block other records; a *deferred*
reject means "waiting for a dependency" and the record is picked up again by the next run.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict


@dataclass(frozen=True)
class Rule:
    """A validation or mapping rule: stable id, reason and hint templates (``str.format`` style)."""

    id: str
    reason: str
    hint: str
    deferred: bool = False
    blocking: bool = True


_RULE_LIST: list[Rule] = [
    # --- mapping gaps -------------------------------------------------------------------------
    Rule(
        "status.unmapped",
        "Zoho status '{value}' has no Xero status mapping",
        "Map Zoho status '{value}' to a Xero status in {file} under {key} (or list it under {cancel_key})",
    ),
    Rule(
        "tax.unmapped",
        "{where} is taxed '{value}', which has no Xero TaxType mapping",
        "Map Zoho tax '{value}' to a Xero TaxType in {file} under {key}",
    ),
    Rule(
        "tax.multiple",
        "{where} carries several taxes ({value}) but Xero allows one TaxType per line",
        "Map the combination '{value}' to one Xero TaxType in {file} under {key}",
    ),
    Rule(
        "tax.no_default",
        "{where} has no tax and no default TaxType is configured",
        "Set a TaxType for untaxed lines in {file} under {key}",
    ),
    Rule(
        "account.unmapped",
        "{where} (product '{value}') has no account (GL) mapping",
        "Map the product in {file} under accounts.by_product_code or accounts.by_category, "
        "or set accounts.defaults.{module_key}",
    ),
    Rule(
        "contact.missing",
        "the record has no customer or supplier ({field} is empty)",
        "Set {field} on the Zoho record",
    ),
    Rule(
        "contact.not_linked",
        "'{value}' (Zoho id {ref_id}) is not in Xero yet",
        "Sync the contact first (modules.{contact_module} in {file}); the record is retried next run",
        deferred=True,
    ),
    Rule(
        "dependency.contact_failed",
        "its contact '{value}' was rejected in this run: {cause}",
        "Fix the contact's reject first; the record is retried next run",
        deferred=True,
    ),
    Rule(
        "dependency.item_failed",
        "its product '{value}' was rejected in this run: {cause}",
        "Fix the product's reject first; the record is retried next run",
        deferred=True,
    ),
    Rule(
        "currency.rate_missing",
        "the record is in {value} but has no usable Exchange_Rate",
        "Set Exchange_Rate on the Zoho record, or set currency.rate: xero in {file}",
    ),
    Rule(
        "header.discount",
        "the header Discount of {value} has nowhere to go in Xero",
        "Set header_amounts.discount.policy to spread or line in {file}",
    ),
    Rule(
        "header.adjustment",
        "the header Adjustment of {value} has nowhere to go in Xero",
        "Set header_amounts.adjustment.policy to line (with an account) in {file}",
    ),
    Rule(
        "header.excise_duty",
        "the header Excise_Duty of {value} has nowhere to go in Xero",
        "Set header_amounts.excise_duty.policy to line (with an account) in {file}",
    ),
    Rule(
        "field.lookup_missing",
        "{field} value '{value}' is not in the lookup table",
        "Add '{value}' to the lookup in {file} under {key}",
    ),
    Rule(
        "field.required",
        "{field} is empty, and it is mandatory",
        "Fill the field behind {field}, or give it a default in {file} under {key}",
    ),
    # --- reference data (pre-flight) ----------------------------------------------------------
    Rule(
        "account.unknown",
        "account code '{value}' does not exist in Xero",
        "Use an existing account code in {file} under {key} (Xero has: {choices})",
    ),
    Rule(
        "account.inactive",
        "account '{value}' is {status} in Xero",
        "Use an ACTIVE account in {file} under {key}, or restore the account in Xero",
    ),
    Rule(
        "account.wrong_class",
        "account '{value}' ({account_class}) cannot be used on a {doc_type}",
        "Use a {allowed} account in {file} under {key}",
    ),
    Rule(
        "account.system",
        "account '{value}' is Xero's {system} system account",
        "Use an ordinary account, not {system}, in {file} under {key}",
    ),
    Rule(
        "tax.unknown_type",
        "TaxType '{value}' does not exist in the Xero organisation",
        "Use an existing TaxType in {file} under {key} (Xero has: {choices})",
    ),
    Rule(
        "tax.inactive",
        "TaxType '{value}' is {status} in Xero",
        "Map to an ACTIVE TaxType in {file} under {key}",
    ),
    Rule(
        "tax.not_applicable",
        "TaxType '{value}' cannot be used with account {account} ({account_class})",
        "Choose a TaxType allowed on {account_class} accounts in {file} under {key}, or change the account",
    ),
    Rule(
        "tax.rate_mismatch",
        "{where} is taxed {zoho_rate}% in Zoho but Xero TaxType '{value}' is {xero_rate}%",
        "Map Zoho tax '{tax}' to a Xero TaxType of {zoho_rate}% in {file} under {key}",
    ),
    Rule(
        "currency.not_enabled",
        "currency {value} is not enabled in the Xero organisation",
        "Enable {value} in Xero (Settings > Currencies), or map it in {file} under currency.map",
    ),
    Rule(
        "branding.unknown_theme",
        "branding theme '{value}' does not exist in Xero",
        "Use one of the Xero themes ({choices}) in {file} under {key}",
    ),
    Rule(
        "tracking.unknown_category",
        "tracking category '{value}' does not exist in Xero",
        "Use an existing tracking category ({choices}) in {file} under {key}",
    ),
    Rule(
        "tracking.unknown_option",
        "'{value}' is not an option of tracking category '{category}'",
        "Map '{value}' to one of {choices} in {file} under {key}, or add the option in Xero",
    ),
    Rule(
        "tracking.inactive",
        "tracking option '{value}' of '{category}' is {status} in Xero",
        "Map it to an ACTIVE option in {file} under {key}",
    ),
    Rule(
        "tracking.too_many",
        "line {line} carries {value} tracking categories; Xero allows 2",
        "Keep at most two entries in {file} under tracking",
    ),
    Rule(
        "contact.archived",
        "Xero contact '{value}' is ARCHIVED and cannot receive documents",
        "Restore the contact in Xero, or link the Zoho record to an active contact",
    ),
    Rule("contact.name_missing", "the record has no name ({field} is empty)", "Fill {field} in Zoho"),
    Rule(
        "contact.name_clash",
        "the name '{value}' is already used by another Xero contact ({other})",
        "Set contacts.name_clash: suffix in {file}, or rename one of the two records",
    ),
    Rule("date.missing", "{field} is empty", "Fill {field} on the Zoho record"),
    Rule(
        "date.invalid", "{field} '{value}' is not a date", "Correct {field} on the Zoho record (YYYY-MM-DD)"
    ),
    Rule(
        "date.before_year_lock",
        "date {value} is on or before Xero's end of year lock date {lock}",
        "Date the record after {lock} in Zoho, or have the Xero adviser move the lock date",
    ),
    Rule(
        "date.before_period_lock",
        "date {value} is on or before Xero's period lock date {lock}",
        "Date the record after {lock} in Zoho, or have the Xero adviser move the lock date",
    ),
    Rule(
        "date.due_missing",
        "the record would be {value} in Xero but has no due date",
        "Set {field} on the Zoho record",
    ),
    Rule("lines.missing", "the record has no line items", "Add at least one line item in Zoho"),
    Rule(
        "line.quantity_invalid",
        "line {line} has no usable quantity ('{value}')",
        "Set Quantity on line {line} in Zoho",
    ),
    Rule(
        "line.price_invalid",
        "line {line} has no usable unit price ('{value}')",
        "Set List_Price on line {line} in Zoho",
    ),
    Rule(
        "line.description_missing",
        "line {line} has neither a product nor a description",
        "Pick a product or write a description on line {line} in Zoho",
    ),
    Rule(
        "length.exceeded",
        "{field} is {length} characters; Xero allows {limit}",
        "Shorten {field} in Zoho, or add a truncate transform in {file} under {key}",
    ),
    Rule("email.invalid", "'{value}' is not a valid email address", "Correct {field} in Zoho"),
    Rule(
        "item.code_missing",
        "the product has no Product_Code (Xero Item Code is required)",
        "Set Product_Code on the product in Zoho",
    ),
    Rule(
        "item.code_duplicate",
        "Product_Code '{value}' is also used by product {other}",
        "Give each product a unique Product_Code in Zoho",
    ),
    Rule(
        "bill.discount",
        "line {line} has a discount of {value}; Xero {doc_type}s take no discounts",
        "Remove the discount in Zoho, or set purchases.discounts: net in {file}",
    ),
    Rule(
        "totals.variance",
        "Xero would total {xero_total} but Zoho's Grand_Total is {zoho_total} "
        "(difference {value}, tolerance {tolerance})",
        "Check the tax and account mappings in {file}, or allow rounding in {file} under rounding",
    ),
    Rule(
        "totals.negative",
        "the record totals {value}; Xero takes no negative {doc_type}s",
        "Raise a credit note instead of a negative document",
    ),
    Rule(
        "rounding.no_account",
        "a rounding line of {value} is needed but Xero has no ROUNDING system account",
        "Create the rounding account in Xero, or set rounding.policy: reject in {file}",
    ),
    # --- Xero lock rules -------------------------------------------------------------------------
    Rule(
        "lock.paid",
        "the Xero {doc_type} {xero_number} is paid; the Zoho edit was not pushed",
        "Remove the payment in Xero first, or record the change with a credit note",
    ),
    Rule(
        "lock.part_paid",
        "the Xero {doc_type} {xero_number} is part-paid or credited; the Zoho edit was not pushed",
        "Remove the payment/allocation in Xero first, or record the change with a credit note",
    ),
    Rule(
        "lock.final",
        "the Xero {doc_type} {xero_number} is {status} and can no longer change",
        "Create a new record in Zoho if the document is still needed",
    ),
    Rule(
        "cancel.not_enabled",
        "the record is '{value}' (cancelled) but deletes are not enabled",
        "Set deletes.enabled: true in {file} to delete or void cancelled documents in Xero",
    ),
    Rule(
        "cancel.locked",
        "the record was cancelled in Zoho but the Xero {doc_type} {xero_number} is {status}",
        "Void or credit the document in Xero by hand",
    ),
    # --- values written to Zoho ------------------------------------------------------------------
    Rule(
        "zoho.picklist_value",
        "'{value}' is not a value of the live Zoho {field} picklist",
        "Use one of {choices} in {file} under {key}",
        blocking=False,
    ),
    Rule(
        "zoho.field_missing",
        "Zoho {zoho_module} has no field '{field}'",
        "Run `zxsync setup zoho-fields {org}`, or create the field in Zoho",
    ),
    Rule(
        "zoho.product_missing",
        "Xero line {line} ('{value}') has no Zoho product to point at",
        "Sync the item to Zoho first, or set zoho.fallback_product_id in {file}",
        deferred=True,
    ),
    Rule(
        "tax.reverse_unmapped",
        "Xero TaxType '{value}' on {where} has no Zoho tax mapped to it",
        "Map a Zoho tax name to {value} in {file} under {key}",
    ),
    Rule(
        "conflict.xero_wins",
        "the document changed in Xero and in Zoho; the org lets Xero win {group} fields",
        "Edit the document in Xero, or set conflicts.{group}: zoho in {file}",
    ),
    Rule(
        "zoho.contact_missing",
        "Xero contact '{value}' is not in Zoho yet",
        "Enable modules.contacts direction both in {file}; the record is retried next run",
        deferred=True,
    ),
]

#: rule id -> Rule
RULES: dict[str, Rule] = {r.id: r for r in _RULE_LIST}


class _Safe(dict[str, Any]):
    """``format_map`` mapping that renders a missing placeholder visibly instead of raising."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def render(template: str, values: dict[str, Any]) -> str:
    """Fill a rule template; missing values stay visible as ``{name}`` (never a crash mid-run)."""
    return string.Formatter().vformat(template, (), _Safe(values))


class Reject(BaseModel):
    """One record that cannot be written (or one warning about it when ``blocking`` is False)."""

    model_config = ConfigDict(frozen=True)

    org: str
    module: str  # Zoho module API name (Invoices, Accounts, ...) or Xero entity for reverse syncs
    record_id: str
    record_number: str | None = None
    field: str | None = None
    rule: str
    reason: str
    hint: str
    line_id: str | None = None
    deferred: bool = False
    blocking: bool = True

    @property
    def message(self) -> str:
        """One line naming the record, the reason and the fix."""
        who = (
            f"{self.module} {self.record_number} ({self.record_id})"
            if self.record_number
            else (f"{self.module} {self.record_id}")
        )
        return f"{self.org}: {who}: {self.reason}. Fix: {self.hint}"

    def short(self) -> str:
        """Reason without the record (fits Zoho's Xero_Sync_Status field)."""
        return self.reason


def make_reject(
    rule_id: str,
    *,
    org: str,
    module: str,
    record_id: str,
    record_number: str | None = None,
    field: str | None = None,
    line_id: str | None = None,
    **values: Any,
) -> Reject:
    """Build a reject from the catalogue; ``values`` fill the reason and hint templates."""
    rule = RULES[rule_id]
    vals = {"field": field, "org": org, "module": module, **values}
    if "where" not in vals:
        line = vals.get("line")
        vals["where"] = f"line {line}" if line not in (None, "", "-") else "the record"
    return Reject(
        org=org,
        module=module,
        record_id=str(record_id),
        record_number=None if record_number is None else str(record_number),
        field=field,
        rule=rule.id,
        reason=render(rule.reason, vals),
        hint=render(rule.hint, vals),
        line_id=line_id,
        deferred=rule.deferred,
        blocking=rule.blocking,
    )
