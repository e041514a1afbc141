"""Per-organisation configuration: one YAML file per org in ``get_settings().orgs_dir``.

The schema is pydantic v2 and strict (unknown keys are errors) so a typo fails at load time with
the file, the key path and what was expected::

    orgs/acme.yaml: tax.map.'GST 10%': expected a Xero TaxType code (e.g. OUTPUT2), got 10

Only *names* of stored credentials live here; secrets stay encrypted in the ledger. Loading the
YAML is the only I/O anywhere in ``mappings/``.
"""

from __future__ import annotations

import re
import string
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from cronsim import CronSim, CronSimError
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


class ConfigError(ValueError):
    """An org file that cannot be used. ``str(err)`` lists one ``file: key: problem`` per line."""

    def __init__(self, file: str, problems: list[tuple[str, str]]):
        self.file = file
        self.problems = problems
        super().__init__(
            "\n".join(f"{file}: {key}: {msg}" if key else f"{file}: {msg}" for key, msg in problems)
        )


_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def format_key_path(loc: tuple[Any, ...]) -> str:
    """('tax', 'map', 'GST 10%') -> "tax.map.'GST 10%'"; list indices become ``[i]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = str(part)
        text = text if _IDENT.match(text) else "'" + text.replace("'", "\\'") + "'"
        out += ("." if out else "") + text
    return out


def _got(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _explain(err: dict[str, Any]) -> str:
    """Turn one pydantic error into 'expected ..., got ...' wording."""
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key (check the spelling against the documented keys)"
    if kind in ("literal_error", "enum"):
        return f"expected one of {ctx.get('expected')}, got {_got(value)}"
    if kind in ("string_type", "str_type"):
        return f"expected text, got {_got(value)}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {_got(value)}"
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return f"expected a whole number, got {_got(value)}"
    if kind in ("float_type", "float_parsing", "decimal_type", "decimal_parsing"):
        return f"expected a number, got {_got(value)}"
    if kind.startswith("date") or kind.startswith("datetime"):
        return f"expected a date (YYYY-MM-DD), got {_got(value)}"
    if kind in ("list_type",):
        return f"expected a list, got {_got(value)}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping (key: value), got {_got(value)}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return f"{err['msg'][0].lower()}{err['msg'][1:]}, got {_got(value)}"
    if kind in ("too_long",):
        count = len(value) if value is not None else "?"
        return f"expected at most {ctx.get('max_length')} entries, got {count}"
    msg = str(err["msg"])
    msg = msg.removeprefix("Value error, ")
    return msg


# --------------------------------------------------------------------------------------------
# Constrained scalar types (custom messages read like the fix)
# --------------------------------------------------------------------------------------------

_TAX_TYPE = re.compile(r"^[A-Z0-9]{2,50}$")
_ACCOUNT_CODE = re.compile(r"^[A-Za-z0-9._-]{1,10}$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_SLUG = re.compile(r"^[a-z0-9-]+$")
_CREDENTIAL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$")
_ZOHO_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _tax_type(value: Any) -> str:
    if not isinstance(value, str) or not _TAX_TYPE.match(value):
        raise PydanticCustomError(
            "tax_type", "expected a Xero TaxType code (e.g. OUTPUT2), got {got}", {"got": _got(value)}
        )
    return value


def _account_code(value: Any) -> str:
    if not isinstance(value, str) or not _ACCOUNT_CODE.match(value):
        raise PydanticCustomError(
            "account_code",
            "expected a Xero account code as quoted text of at most 10 characters (e.g. '200'), got {got}",
            {"got": _got(value)},
        )
    return value


def _currency(value: Any) -> str:
    if not isinstance(value, str) or not _CURRENCY.match(value):
        raise PydanticCustomError(
            "currency_code",
            "expected a 3-letter ISO currency code (e.g. NZD), got {got}",
            {"got": _got(value)},
        )
    return value


def _text(value: Any) -> str:
    """Keys and values that are names in the other system: YAML may parse 15 or 'yes' as non-text."""
    if isinstance(value, bool) or value is None or isinstance(value, (dict, list)):
        raise PydanticCustomError("text", "expected text, got {got}", {"got": _got(value)})
    return str(value)


def _zoho_api_name(value: Any) -> str:
    if not isinstance(value, str) or not _ZOHO_API_NAME.match(value):
        raise PydanticCustomError(
            "zoho_api_name",
            "expected a Zoho field API name (e.g. Xero_Status), got {got}",
            {"got": _got(value)},
        )
    return value


TaxTypeCode = Annotated[str, BeforeValidator(_tax_type), Field(json_schema_extra={"examples": ["OUTPUT2"]})]
AccountCode = Annotated[str, BeforeValidator(_account_code), Field(json_schema_extra={"examples": ["200"]})]
CurrencyCode = Annotated[str, BeforeValidator(_currency), Field(json_schema_extra={"examples": ["NZD"]})]
Text = Annotated[str, BeforeValidator(_text)]
ZohoApiName = Annotated[str, BeforeValidator(_zoho_api_name)]

Direction = Literal["to-xero", "to-zoho", "both"]
DataCentre = Literal["com", "eu", "in", "com.au", "jp", "zohocloud.ca", "sa", "com.cn"]
XeroInvoiceTarget = Literal["DRAFT", "SUBMITTED", "AUTHORISED"]
XeroInvoiceStatus = Literal["DRAFT", "SUBMITTED", "AUTHORISED", "PAID", "VOIDED", "DELETED"]
XeroPurchaseTarget = Literal["DRAFT", "SUBMITTED", "AUTHORISED", "BILLED"]
XeroPurchaseStatus = Literal["DRAFT", "SUBMITTED", "AUTHORISED", "BILLED", "PAID", "VOIDED", "DELETED"]
DocumentModule = Literal["invoices", "purchase_orders", "sales_orders", "quotes"]

_CRON_ALIASES = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}


def _cron(value: Any) -> str:
    if not isinstance(value, str):
        raise PydanticCustomError(
            "cron", "expected a cron expression like '0 7 * * *', got {got}", {"got": _got(value)}
        )
    try:
        CronSim(_CRON_ALIASES.get(value.strip(), value), datetime(2025, 1, 1))
    except CronSimError as exc:
        raise PydanticCustomError(
            "cron",
            "expected a cron expression like '0 7 * * *', got {got} ({why})",
            {"got": _got(value), "why": str(exc)},
        ) from None
    return value


CronExpr = Annotated[str, BeforeValidator(_cron)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------


class XeroConnection(_Strict):
    """Which Xero tenant and which stored connection (by name, never the secret)."""

    tenant_id: str | None = Field(
        default=None, description="Xero tenant id; discovered at connect when empty"
    )
    connection: str = Field(description="name of the stored Xero connection in the ledger")

    @field_validator("connection")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _CREDENTIAL.match(v):
            raise ValueError(f"expected a connection name (letters, digits, . _ : -), got {v!r}")
        return v


class ZohoConnection(_Strict):
    """Zoho data centre, stored connection name, and how to link back to a record."""

    data_centre: DataCentre = "com"
    connection: str = Field(description="name of the stored Zoho connection in the ledger")
    org_id: str | None = Field(default=None, description="Zoho org id, used in record links")
    record_url: str | None = Field(
        default=None,
        description="template of a link to a Zoho record: {module}, {id}, {org_id}, {dc}; "
        "default https://crm.zoho.<dc>/crm/[org<org_id>/]tab/<module>/<id>",
    )
    fallback_product_id: str | None = Field(
        default=None, description="Zoho product used for Xero lines without a linked item (Xero -> Zoho)"
    )

    @field_validator("connection")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _CREDENTIAL.match(v):
            raise ValueError(f"expected a connection name (letters, digits, . _ : -), got {v!r}")
        return v

    @field_validator("record_url")
    @classmethod
    def _template(cls, v: str | None) -> str | None:
        if v is not None:
            _check_placeholders(v, {"module", "id", "org_id", "dc"})
        return v


class ModuleSetting(_Strict):
    enabled: bool = True
    direction: Direction = "to-xero"


class PurchaseOrderModule(ModuleSetting):
    target: Literal["purchase_order", "bill"] = Field(
        default="purchase_order", description="Xero purchase orders or ACCPAY bills"
    )


class Modules(_Strict):
    """Which modules sync, and in which direction."""

    contacts: ModuleSetting = ModuleSetting(enabled=True, direction="both")
    vendors: ModuleSetting = ModuleSetting(enabled=True, direction="to-xero")
    products: ModuleSetting = ModuleSetting(enabled=True, direction="to-xero")
    invoices: ModuleSetting = ModuleSetting(enabled=True, direction="both")
    purchase_orders: PurchaseOrderModule = PurchaseOrderModule(enabled=True, direction="to-xero")
    sales_orders: ModuleSetting = ModuleSetting(enabled=False, direction="to-xero")
    quotes: ModuleSetting = ModuleSetting(enabled=False, direction="to-xero")
    payments: ModuleSetting = ModuleSetting(enabled=True, direction="to-zoho")

    @model_validator(mode="after")
    def _directions(self) -> Modules:
        for name in ("sales_orders", "quotes"):
            if getattr(self, name).direction != "to-xero":
                raise ValueError(f"{name}: expected direction to-xero (they become DRAFT invoices in Xero)")
        if self.payments.direction != "to-zoho":
            raise ValueError(
                "payments: expected direction to-zoho (payments and credit notes are read from Xero)"
            )
        return self


class InvoiceStatusMap(_Strict):
    """Zoho Invoice Status <-> Xero invoice status; Zoho values listed in ``cancel`` mean cancel."""

    to_xero: dict[Text, XeroInvoiceTarget] = Field(default_factory=dict)
    cancel: list[Text] = Field(default_factory=list)
    to_zoho: dict[XeroInvoiceStatus, Text] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _no_overlap(self) -> InvoiceStatusMap:
        both = sorted(set(self.to_xero) & set(self.cancel))
        if both:
            raise ValueError(f"Zoho status {both[0]!r} is both mapped (to_xero) and listed under cancel")
        return self


class PurchaseStatusMap(_Strict):
    """Zoho PO Status <-> Xero purchase order / bill status."""

    to_xero: dict[Text, XeroPurchaseTarget] = Field(default_factory=dict)
    cancel: list[Text] = Field(default_factory=list)
    to_zoho: dict[XeroPurchaseStatus, Text] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _no_overlap(self) -> PurchaseStatusMap:
        both = sorted(set(self.to_xero) & set(self.cancel))
        if both:
            raise ValueError(f"Zoho status {both[0]!r} is both mapped (to_xero) and listed under cancel")
        return self


class StatusMaps(_Strict):
    invoices: InvoiceStatusMap = Field(default_factory=InvoiceStatusMap)
    purchase_orders: PurchaseStatusMap = Field(default_factory=PurchaseStatusMap)


class TaxConfig(_Strict):
    """Zoho tax (by name, else by rate) -> Xero TaxType; sales and purchases separately."""

    line_amount_types: Literal["Exclusive", "Inclusive", "NoTax"] = "Exclusive"
    map: dict[Text, TaxTypeCode] = Field(default_factory=dict, description="Zoho tax name -> sales TaxType")
    by_rate: dict[Decimal, TaxTypeCode] = Field(
        default_factory=dict, description="Zoho tax % -> sales TaxType"
    )
    default: TaxTypeCode | None = Field(default=None, description="sales TaxType for untaxed lines")
    purchases_map: dict[Text, TaxTypeCode] = Field(default_factory=dict)
    purchases_by_rate: dict[Decimal, TaxTypeCode] = Field(default_factory=dict)
    purchases_default: TaxTypeCode | None = None


class BrandingRule(_Strict):
    field: str = Field(description="Zoho field (dotted for lookups, e.g. Layout.name)")
    equals: Text | None = None
    in_: list[Text] | None = Field(default=None, alias="in")
    theme: Text

    @model_validator(mode="after")
    def _one_test(self) -> BrandingRule:
        if (self.equals is None) == (self.in_ is None):
            raise ValueError("expected exactly one of 'equals' or 'in'")
        return self


class BrandingConfig(_Strict):
    default: Text | None = Field(default=None, description="Xero branding theme name")
    rules: list[BrandingRule] = Field(default_factory=list, description="first match wins")


# --- field mappings ---------------------------------------------------------------------------


class DateTransform(_Strict):
    date: str = Field(description="strftime format of the output, e.g. %d/%m/%Y")

    @field_validator("date")
    @classmethod
    def _fmt(cls, v: str) -> str:
        try:
            datetime(2025, 1, 31).strftime(v)
        except ValueError as exc:
            raise ValueError(f"expected a strftime format, got {v!r}") from exc
        if "%" not in v:
            raise ValueError(f"expected a strftime format with % codes, got {v!r}")
        return v


class LookupTransform(_Strict):
    lookup: dict[Text, Text | None]
    default: Text | None = None
    strict: bool = Field(default=False, description="a value missing from the table rejects the record")


class RoundTransform(_Strict):
    round: int = Field(ge=0, le=6)


class TruncateTransform(_Strict):
    truncate: int = Field(ge=1)


SimpleTransform = Literal["trim", "upper", "lower", "title"]
_TRANSFORM_KEYS = ("date", "lookup", "round", "truncate")


def _transform_tag(value: Any) -> str | None:
    """Pick the transform model from its key, so an error names one model, not all five."""
    if isinstance(value, str):
        return "simple"
    if isinstance(value, dict):
        for key in _TRANSFORM_KEYS:
            if key in value:
                return key
        return None
    for key in _TRANSFORM_KEYS:
        if hasattr(value, key):
            return key
    return None


Transform = Annotated[
    Annotated[SimpleTransform, Tag("simple")]
    | Annotated[DateTransform, Tag("date")]
    | Annotated[LookupTransform, Tag("lookup")]
    | Annotated[RoundTransform, Tag("round")]
    | Annotated[TruncateTransform, Tag("truncate")],
    Discriminator(
        _transform_tag,
        custom_error_type="transform",
        custom_error_message="expected trim, upper, lower, title, {date: FORMAT}, {lookup: {...}}, "
        "{round: N} or {truncate: N}",
    ),
]


def _check_placeholders(template: str, allowed: set[str] | None = None) -> list[str]:
    try:
        names = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    except ValueError as exc:
        raise ValueError(
            f"expected a template like '{{Subject}} ({{Invoice_Number}})', got {template!r}"
        ) from exc
    for n in names:
        if not n or not re.match(r"^[A-Za-z_$][A-Za-z0-9_.$]*$", n):
            raise ValueError(f"expected field names in {{}}, got {{{n}}} in {template!r}")
        if allowed is not None and n not in allowed:
            raise ValueError(f"expected placeholders among {sorted(allowed)}, got {{{n}}}")
    return names


class FieldMapping(_Strict):
    """One target field from a source field (or first non-empty of several), a template or a constant."""

    target: str
    source: str | list[str] | None = Field(
        default=None, description="field path; a list means first non-empty"
    )
    template: str | None = Field(
        default=None, description="concatenation, e.g. '{Subject} ({Invoice_Number})'"
    )
    value: str | float | int | bool | None = Field(default=None, description="a constant")
    default: str | float | int | None = None
    transforms: list[Transform] = Field(default_factory=list)
    drop: bool = Field(default=False, description="remove a built-in mapping of this target")

    @model_validator(mode="after")
    def _one_source(self) -> FieldMapping:
        given = [k for k in ("source", "template", "value") if getattr(self, k) is not None]
        if self.drop:
            if given:
                raise ValueError("a mapping with drop: true takes no source/template/value")
            return self
        if len(given) != 1:
            raise ValueError(f"expected exactly one of source, template or value for target {self.target!r}")
        if self.template is not None:
            _check_placeholders(self.template)
        return self

    @property
    def sources(self) -> list[str]:
        """Every field path the mapping reads."""
        if self.source is not None:
            return [self.source] if isinstance(self.source, str) else list(self.source)
        if self.template is not None:
            return _check_placeholders(self.template)
        return []


_ADDRESS_KEYS = [
    "AddressLine1",
    "AddressLine2",
    "AddressLine3",
    "AddressLine4",
    "City",
    "Region",
    "PostalCode",
    "Country",
    "AttentionTo",
]
_PHONE_KEYS = ["PhoneNumber", "PhoneAreaCode", "PhoneCountryCode"]
CONTACT_TARGETS = frozenset(
    [
        "Name",
        "FirstName",
        "LastName",
        "EmailAddress",
        "AccountNumber",
        "CompanyNumber",
        "TaxNumber",
        "DefaultCurrency",
        "Website",
        "SalesDefaultAccountCode",
        "PurchasesDefaultAccountCode",
        "AccountsReceivableTaxType",
        "AccountsPayableTaxType",
        "BankAccountDetails",
    ]
    + [f"Addresses.{t}.{k}" for t in ("POBOX", "STREET") for k in _ADDRESS_KEYS]
    + [f"Phones.{t}.{k}" for t in ("DEFAULT", "DDI", "MOBILE", "FAX", "OFFICE") for k in _PHONE_KEYS]
)
ITEM_TARGETS = frozenset(
    ["Name", "Description", "PurchaseDescription", "IsSold", "IsPurchased", "InventoryAssetAccountCode"]
    + [f"SalesDetails.{k}" for k in ("UnitPrice", "AccountCode", "TaxType")]
    + [f"PurchaseDetails.{k}" for k in ("UnitPrice", "AccountCode", "TaxType", "COGSAccountCode")]
)
LINE_TARGETS = frozenset(["LineItems.Description", "LineItems.ItemCode", "LineItems.AccountCode"])
INVOICE_TARGETS = (
    frozenset(
        [
            "Reference",
            "InvoiceNumber",
            "Date",
            "DueDate",
            "ExpectedPaymentDate",
            "PlannedPaymentDate",
            "SentToContact",
        ]
    )
    | LINE_TARGETS
)
PURCHASE_ORDER_TARGETS = (
    frozenset(
        [
            "Reference",
            "PurchaseOrderNumber",
            "InvoiceNumber",
            "Date",
            "DueDate",
            "DeliveryDate",
            "DeliveryAddress",
            "AttentionTo",
            "Telephone",
            "DeliveryInstructions",
            "ExpectedArrivalDate",
            "PlannedPaymentDate",
        ]
    )
    | LINE_TARGETS
)


class FieldsConfig(_Strict):
    """Field mappings per module; ``*_to_zoho`` write Xero values into Zoho (custom) fields."""

    contacts: list[FieldMapping] = Field(default_factory=list)
    vendors: list[FieldMapping] = Field(default_factory=list)
    products: list[FieldMapping] = Field(default_factory=list)
    invoices: list[FieldMapping] = Field(default_factory=list)
    purchase_orders: list[FieldMapping] = Field(default_factory=list)
    sales_orders: list[FieldMapping] = Field(default_factory=list)
    quotes: list[FieldMapping] = Field(default_factory=list)
    invoices_to_zoho: list[FieldMapping] = Field(default_factory=list)
    purchase_orders_to_zoho: list[FieldMapping] = Field(default_factory=list)
    contacts_to_zoho: list[FieldMapping] = Field(default_factory=list)

    @model_validator(mode="after")
    def _targets(self) -> FieldsConfig:
        allowed = {
            "contacts": CONTACT_TARGETS,
            "vendors": CONTACT_TARGETS,
            "products": ITEM_TARGETS,
            "invoices": INVOICE_TARGETS,
            "sales_orders": INVOICE_TARGETS,
            "quotes": INVOICE_TARGETS,
            "purchase_orders": PURCHASE_ORDER_TARGETS,
        }
        for module, targets in allowed.items():
            for i, m in enumerate(getattr(self, module)):
                if m.target not in targets:
                    raise PydanticCustomError(
                        "field_target",
                        "{where}: expected a writable Xero field ({some}, ...), got {got}",
                        {
                            "where": f"{module}[{i}].target",
                            "some": ", ".join(sorted(targets)[:6]),
                            "got": repr(m.target),
                        },
                    )
        for module in ("invoices_to_zoho", "purchase_orders_to_zoho", "contacts_to_zoho"):
            for i, m in enumerate(getattr(self, module)):
                if not _ZOHO_API_NAME.match(m.target):
                    raise PydanticCustomError(
                        "field_target",
                        "{where}: expected a Zoho field API name, got {got}",
                        {"where": f"{module}[{i}].target", "got": repr(m.target)},
                    )
        return self


class AccountDefaults(_Strict):
    invoices: AccountCode | None = None
    sales_orders: AccountCode | None = None
    quotes: AccountCode | None = None
    purchase_orders: AccountCode | None = None
    products_sales: AccountCode | None = None
    products_purchases: AccountCode | None = None


class AccountsConfig(_Strict):
    """GL account per line: by product code, then by product category, then the module default."""

    by_product_code: dict[Text, AccountCode] = Field(default_factory=dict)
    by_category: dict[Text, AccountCode] = Field(default_factory=dict)
    purchases_by_product_code: dict[Text, AccountCode] = Field(default_factory=dict)
    purchases_by_category: dict[Text, AccountCode] = Field(default_factory=dict)
    defaults: AccountDefaults = Field(default_factory=AccountDefaults)


class TrackingMapping(_Strict):
    """A CRM field -> a Xero tracking category option."""

    category: Text = Field(max_length=100, description="Xero tracking category name")
    source: str = Field(
        description="header field (level header) or line field / product.<field> (level line)"
    )
    level: Literal["header", "line"] = "header"
    options: dict[Text, Text] = Field(
        default_factory=dict, description="CRM value -> option name (else as is)"
    )
    default: Text | None = Field(default=None, description="option when the CRM value is empty")
    unmatched: Literal["as_is", "default", "skip"] = Field(
        default="as_is",
        description="a value not in options: used as the option name, the default, or untracked",
    )
    modules: list[DocumentModule] = Field(
        default_factory=lambda: ["invoices", "purchase_orders", "sales_orders", "quotes"]
    )


class CurrencyConfig(_Strict):
    map: dict[CurrencyCode, CurrencyCode] = Field(default_factory=dict, description="Zoho -> Xero code")
    rate: Literal["xero", "zoho"] = Field(
        default="xero", description="xero: Xero's daily rate; zoho: the record's Exchange_Rate"
    )


class HeaderAmount(_Strict):
    """What to do with a Zoho header amount Xero has no field for."""

    policy: Literal["line", "spread", "reject"] = "line"
    account: AccountCode | None = Field(default=None, description="account of the line on sales documents")
    purchases_account: AccountCode | None = Field(default=None, description="account on POs and bills")
    description: Text = "Adjustment"
    tax_type: TaxTypeCode | None = Field(default=None, description="TaxType of the line; default tax.default")


class HeaderAmounts(_Strict):
    discount: HeaderAmount = Field(
        default_factory=lambda: HeaderAmount(policy="reject", description="Discount")
    )
    adjustment: HeaderAmount = Field(
        default_factory=lambda: HeaderAmount(policy="reject", description="Adjustment")
    )
    excise_duty: HeaderAmount = Field(
        default_factory=lambda: HeaderAmount(policy="reject", description="Excise duty")
    )

    @model_validator(mode="after")
    def _accounts(self) -> HeaderAmounts:
        for name in ("discount", "adjustment", "excise_duty"):
            h: HeaderAmount = getattr(self, name)
            if h.policy == "spread" and name != "discount":
                raise ValueError(
                    f"{name}.policy: expected line or reject (only discount can be spread), got 'spread'"
                )
            if h.policy == "line" and h.account is None:
                raise ValueError(f"{name}.account: expected an account code for policy line, got nothing")
        return self


class RoundingConfig(_Strict):
    tolerance: Decimal = Field(
        default=Decimal("0.01"), ge=0, description="accepted |Xero total - Grand_Total|"
    )
    policy: Literal["reject", "rounding_line"] = "reject"
    max_rounding_line: Decimal = Field(
        default=Decimal("1.00"), ge=0, description="largest rounding line allowed"
    )
    description: Text = "Rounding"


class NumberingConfig(_Strict):
    authority: Literal["zoho", "xero"] = Field(
        default="zoho", description="zoho: push Invoice_Number; xero: Xero numbers, Zoho's goes to Reference"
    )
    xero_number_field: ZohoApiName = Field(
        default="Xero_Invoice_Number", description="Zoho field for Xero's number"
    )


MatchKey = Literal["link", "contact_number", "email", "name"]


class ContactsConfig(_Strict):
    primary_contact: str = Field(
        default="earliest",
        description="'earliest' Contact of the Account, or an Accounts lookup field API name",
    )
    match_order: list[MatchKey] = Field(default_factory=lambda: ["link", "contact_number", "email", "name"])
    name_clash: Literal["suffix", "report"] = "suffix"
    name_clash_suffix: str = Field(
        default=" ({zoho_id_tail})",
        description="appended on a name clash; Zoho fields, {zoho_id}, {zoho_id_tail}",
    )

    @field_validator("match_order")
    @classmethod
    def _order(cls, v: list[str]) -> list[str]:
        if not v or v[0] != "link":
            raise ValueError(f"expected 'link' first (a stored link always wins), got {v}")
        if len(set(v)) != len(v):
            raise ValueError(f"expected each match key once, got {v}")
        return v

    @field_validator("name_clash_suffix")
    @classmethod
    def _suffix(cls, v: str) -> str:
        if not _check_placeholders(v):
            raise ValueError(f"expected at least one placeholder so the suffix differs per record, got {v!r}")
        return v


class ConflictPolicy(_Strict):
    """Which system wins when both changed a field group since the last run."""

    sales: Literal["zoho", "xero"] = Field(
        default="zoho", description="contact, lines, amounts, dates, status"
    )
    payments: Literal["zoho", "xero"] = Field(
        default="xero", description="payments, credit notes, paid amounts"
    )


class DeletesConfig(_Strict):
    enabled: bool = Field(
        default=False, description="delete/void in Xero what was cancelled or deleted in Zoho"
    )


class DueDays(_Strict):
    """Payment terms used when a Zoho record has no due date (Xero needs one to approve a document)."""

    invoices: int | None = Field(default=None, ge=0)
    sales_orders: int | None = Field(default=None, ge=0)
    quotes: int | None = Field(default=None, ge=0)
    purchase_orders: int | None = Field(default=None, ge=0)


class PurchasesConfig(_Strict):
    discounts: Literal["reject", "net"] = Field(
        default="reject", description="bills/POs take no discounts: reject, or net them into UnitAmount"
    )


class WebhooksConfig(_Strict):
    """Event-driven sync (docs/events.md): only names of secrets stored in the ledger, never secrets."""

    xero_key: str | None = Field(
        default=None,
        description="name of the stored Xero webhook key (`zxsync webhooks xero-key NAME`); "
        "orgs connected through one Xero app share it",
    )
    zoho_notifications: bool = Field(
        default=False,
        description="watch the org's enabled Zoho modules (/actions/watch); `zxsync webhooks` "
        "creates the channel and renews it before it expires",
    )
    trigger_key: str | None = Field(
        default=None,
        description="name of the stored key that signs the org's record trigger URLs "
        "(`zxsync webhooks trigger-key ORG`), used by a Zoho button or workflow rule",
    )

    @field_validator("xero_key", "trigger_key")
    @classmethod
    def _name(cls, v: str | None) -> str | None:
        if v is not None and not _CREDENTIAL.match(v):
            raise ValueError(f"expected a secret's name (letters, digits, . _ : -), got {v!r}")
        return v


# --------------------------------------------------------------------------------------------
# The org
# --------------------------------------------------------------------------------------------


class OrgConfig(_Strict):
    """One organisation: a Zoho CRM org, a Xero tenant, and every customisation between them."""

    slug: str = Field(description="[a-z0-9-]+, also the file name")
    name: Text = Field(description="display name")
    timezone: str = Field(description="IANA timezone, e.g. Pacific/Auckland")
    xero: XeroConnection
    zoho: ZohoConnection
    schedules: list[CronExpr] = Field(
        default_factory=lambda: ["0 7 * * *", "0 19 * * *"],
        description="cron expressions in the org's timezone",
    )
    sync_from: date | None = Field(default=None, description="documents dated before this are never pushed")
    retention_days: int = Field(default=30, ge=1, description="journal retention")
    modules: Modules = Field(default_factory=Modules)
    status: StatusMaps = Field(default_factory=StatusMaps)
    tax: TaxConfig = Field(default_factory=TaxConfig)
    branding: BrandingConfig = Field(default_factory=BrandingConfig)
    fields: FieldsConfig = Field(default_factory=FieldsConfig)
    accounts: AccountsConfig = Field(default_factory=AccountsConfig)
    tracking: list[TrackingMapping] = Field(default_factory=list)
    currency: CurrencyConfig = Field(default_factory=CurrencyConfig)
    header_amounts: HeaderAmounts = Field(default_factory=HeaderAmounts)
    rounding: RoundingConfig = Field(default_factory=RoundingConfig)
    numbering: NumberingConfig = Field(default_factory=NumberingConfig)
    contacts: ContactsConfig = Field(default_factory=ContactsConfig)
    conflicts: ConflictPolicy = Field(default_factory=ConflictPolicy)
    deletes: DeletesConfig = Field(default_factory=DeletesConfig)
    purchases: PurchasesConfig = Field(default_factory=PurchasesConfig)
    due_days: DueDays = Field(
        default_factory=lambda: DueDays(),
        description="days after the document date for a missing due date (None: none)",
    )
    line_discounts: Literal["amount", "rate"] = Field(
        default="amount",
        description="Zoho line discounts sent as Xero DiscountAmount or DiscountRate (2 dp %)",
    )
    webhooks: WebhooksConfig = Field(
        default_factory=WebhooksConfig, description="event-driven sync (off unless configured)"
    )

    _file: str | None = PrivateAttr(default=None)

    @field_validator("slug")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not _SLUG.match(v):
            raise ValueError(f"expected lowercase letters, digits and '-', got {v!r}")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"expected an IANA timezone (e.g. Pacific/Auckland), got {v!r}") from exc
        return v

    @model_validator(mode="after")
    def _cross(self) -> OrgConfig:
        if self.modules.purchase_orders.target == "bill":
            for zoho, xero in self.status.purchase_orders.to_xero.items():
                if xero == "BILLED":
                    raise ValueError(
                        f"status.purchase_orders.to_xero.{zoho!r}: expected DRAFT, SUBMITTED or "
                        "AUTHORISED for bills (BILLED is a purchase-order status), got 'BILLED'"
                    )
        if self.modules.purchase_orders.target == "bill":
            for i, m in enumerate(self.fields.purchase_orders):
                if (
                    m.target
                    in (
                        "Reference",
                        "PurchaseOrderNumber",
                        "DeliveryDate",
                        "DeliveryAddress",
                        "AttentionTo",
                        "Telephone",
                        "DeliveryInstructions",
                        "ExpectedArrivalDate",
                    )
                    and not m.drop
                ):
                    raise ValueError(
                        f"fields.purchase_orders[{i}].target: {m.target!r} is not a field of ACCPAY bills "
                        "(modules.purchase_orders.target is bill)"
                    )
        per_module: dict[str, list[str]] = {}
        for t in self.tracking:
            for m in t.modules:
                per_module.setdefault(m, []).append(t.category)
        for m, cats in per_module.items():
            if len(cats) > 2:
                raise ValueError(f"tracking: expected at most 2 categories per line, got {len(cats)} for {m}")
            if len(set(cats)) != len(cats):
                raise ValueError(f"tracking: category {cats[0]!r} is mapped twice for {m}")
        return self

    # --- derived ------------------------------------------------------------------------------
    @property
    def config_file(self) -> str:
        """How rejects and errors name this org's file (``orgs/<slug>.yaml`` unless loaded elsewhere)."""
        return self._file or f"orgs/{self.slug}.yaml"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def cron_schedules(self) -> list[str]:
        """Schedules with @aliases expanded (for Prefect CronSchedule with ``timezone=self.timezone``)."""
        return [_CRON_ALIASES.get(s.strip(), s) for s in self.schedules]

    def record_url(self, module: str, record_id: str) -> str:
        """A link to the Zoho record (goes into Xero's ``Url``, shown as 'Go to ...')."""
        z = self.zoho
        if z.record_url:
            return z.record_url.format(module=module, id=record_id, org_id=z.org_id or "", dc=z.data_centre)
        host = "crm.zohocloud.ca" if z.data_centre == "zohocloud.ca" else f"crm.zoho.{z.data_centre}"
        org = f"org{z.org_id}/" if z.org_id else ""
        return f"https://{host}/crm/{org}tab/{module}/{record_id}"


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------


def _display(path: Path) -> str:
    from zxsync.settings import REPO_ROOT

    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def parse_org(data: Any, file: str) -> OrgConfig:
    """Validate already-parsed YAML; ``file`` names the source in errors and fix hints."""
    if not isinstance(data, dict):
        raise ConfigError(
            file, [("", f"expected a mapping of keys at the top level, got {type(data).__name__}")]
        )
    try:
        org = OrgConfig.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = err["loc"]
            # A discriminated transform adds its tag to the path; keep the path the user wrote.
            loc = tuple(
                p
                for i, p in enumerate(loc)
                if not (
                    i >= 2
                    and loc[i - 2] == "transforms"
                    and isinstance(loc[i - 1], int)
                    and p in ("simple", *_TRANSFORM_KEYS)
                )
            )
            key = format_key_path(loc)
            ctx = err.get("ctx") or {}
            if err["type"] == "field_target":
                key, msg = f"{key}.{ctx['where']}", str(err["msg"]).split(": ", 1)[1]
            else:
                msg = _explain(err)
            problems.append((key, msg))
        raise ConfigError(file, _dedupe(problems)) from None
    org._file = file
    return org


def _dedupe(problems: list[tuple[str, str]]) -> list[tuple[str, str]]:
    seen, out = set(), []
    for p in problems:
        if p not in seen:
            seen.add(p)
            out.append(p)
    return out


#: Parsed org files by (path, modification time, size): every task of a run reads the org's
#: configuration, and parsing YAML costs far more than a stat.
_PARSED: dict[tuple[str, int, int], OrgConfig] = {}
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load_org_file(path: Path) -> OrgConfig:
    """Load and validate one org file; the slug must match the file name (cached until it changes)."""
    try:
        stat = path.stat()
    except OSError:
        stat = None
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size) if stat else None
    if key is not None and key in _PARSED:
        return _PARSED[key].model_copy(deep=True)
    org = _load_org_file(path)
    if key is not None:
        if len(_PARSED) > 256:
            _PARSED.clear()
        _PARSED[key] = org.model_copy(deep=True)
    return org


def _load_org_file(path: Path) -> OrgConfig:
    file = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(file, [("", f"cannot read the file ({exc.strerror})")]) from None
    try:
        data = yaml.load(text, Loader=_YAML_LOADER)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        pos = f"line {where.line + 1}, column {where.column + 1}: " if where else ""
        raise ConfigError(file, [("", f"{pos}not valid YAML ({getattr(exc, 'problem', exc)})")]) from None
    org = parse_org(data, file)
    if org.slug != path.stem:
        raise ConfigError(file, [("slug", f"expected {path.stem!r} (the file name), got {org.slug!r}")])
    return org


def _orgs_dir() -> Path:
    from zxsync.settings import get_settings

    return get_settings().orgs_dir


def load_org(slug: str) -> OrgConfig:
    """The org ``slug`` from the registry (``ZX_ORGS_DIR``/<slug>.yaml)."""
    if not _SLUG.match(slug):
        raise ConfigError(
            f"{slug}.yaml", [("slug", f"expected lowercase letters, digits and '-', got {slug!r}")]
        )
    path = _orgs_dir() / f"{slug}.yaml"
    if not path.exists():
        raise ConfigError(_display(path), [("", f"no such org: {slug!r} (no file {path})")])
    return load_org_file(path)


def load_registry() -> list[OrgConfig]:
    """Every org in the registry, sorted by slug; the first invalid file raises ConfigError."""
    folder = _orgs_dir()
    return [load_org_file(p) for p in sorted(folder.glob("*.yaml"))]
