"""Reference data from the live systems, fetched once per run by the extract task.

Xero models keep Xero's own field names (``Code``, ``TaxType``, ``SystemAccount`` ...) so they are
built straight from the API's JSON; unknown fields are ignored. Zoho field metadata keeps Zoho's
(``api_name``, ``pick_list_values[].actual_value`` ...). :class:`ReferenceData` bundles them with
fast lookups and small DataFrames for the vectorised validators.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Annotated, Any

import pandas as pd
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

# --------------------------------------------------------------------------------------------
# Xero dates and timezones
# --------------------------------------------------------------------------------------------

_MS_JSON = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


def parse_xero_datetime(value: Any) -> datetime | None:
    """Xero's MS-JSON ``/Date(1539993600000+0000)/`` or an ISO string -> aware UTC datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    text = str(value).strip()
    m = _MS_JSON.match(text)
    if m:
        # The milliseconds are UTC; the optional offset only says how Xero would display it.
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=int(m.group(1)))
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def parse_xero_date(value: Any) -> date | None:
    """A Xero date field (MS-JSON midnight UTC, ``2025-03-31`` or ``2025-03-31T00:00:00``) -> date."""
    if value is None or value == "":
        return None
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and not _MS_JSON.match(value.strip()) and len(value.strip()) >= 10:
        return date.fromisoformat(value.strip()[:10])
    dt = parse_xero_datetime(value)
    return dt.date() if dt else None


def _opt_date(value: Any) -> date | None:
    return parse_xero_date(value)


def _opt_datetime(value: Any) -> datetime | None:
    return parse_xero_datetime(value)


XeroDate = Annotated[date | None, BeforeValidator(_opt_date)]
XeroDateTime = Annotated[datetime | None, BeforeValidator(_opt_datetime)]

#: Xero ``Organisation.Timezone`` (Windows zone names, upper-cased, spaces removed) -> IANA, for the
#: common ones. Rare ones fall back to CLDR's windowsZones table as shipped by tzlocal.
WINDOWS_TO_IANA: dict[str, str] = {
    "NEWZEALANDSTANDARDTIME": "Pacific/Auckland",
    "CHATHAMISLANDSSTANDARDTIME": "Pacific/Chatham",
    "AUSEASTERNSTANDARDTIME": "Australia/Sydney",
    "EAUSTRALIASTANDARDTIME": "Australia/Brisbane",
    "AUSCENTRALSTANDARDTIME": "Australia/Darwin",
    "CENAUSTRALIASTANDARDTIME": "Australia/Adelaide",
    "WAUSTRALIASTANDARDTIME": "Australia/Perth",
    "TASMANIASTANDARDTIME": "Australia/Hobart",
    "LORDHOWESTANDARDTIME": "Australia/Lord_Howe",
    "GMTSTANDARDTIME": "Europe/London",
    "GREENWICHSTANDARDTIME": "Atlantic/Reykjavik",
    "UTC": "UTC",
    "EASTERNSTANDARDTIME": "America/New_York",
    "USEASTERNSTANDARDTIME": "America/Indiana/Indianapolis",
    "CENTRALSTANDARDTIME": "America/Chicago",
    "MOUNTAINSTANDARDTIME": "America/Denver",
    "USMOUNTAINSTANDARDTIME": "America/Phoenix",
    "PACIFICSTANDARDTIME": "America/Los_Angeles",
    "ALASKANSTANDARDTIME": "America/Anchorage",
    "HAWAIIANSTANDARDTIME": "Pacific/Honolulu",
    "ATLANTICSTANDARDTIME": "America/Halifax",
    "NEWFOUNDLANDSTANDARDTIME": "America/St_Johns",
    "CANADACENTRALSTANDARDTIME": "America/Regina",
    "SINGAPORESTANDARDTIME": "Asia/Singapore",
    "SOUTHAFRICASTANDARDTIME": "Africa/Johannesburg",
    "WEUROPESTANDARDTIME": "Europe/Berlin",
    "ROMANCESTANDARDTIME": "Europe/Paris",
    "CENTRALEUROPESTANDARDTIME": "Europe/Warsaw",
    "INDIASTANDARDTIME": "Asia/Kolkata",
    "CHINASTANDARDTIME": "Asia/Shanghai",
    "TOKYOSTANDARDTIME": "Asia/Tokyo",
    "ARABIANSTANDARDTIME": "Asia/Dubai",
    "FIJISTANDARDTIME": "Pacific/Fiji",
    "SAMOASTANDARDTIME": "Pacific/Apia",
    "TONGASTANDARDTIME": "Pacific/Tongatapu",
    "WESTPACIFICSTANDARDTIME": "Pacific/Port_Moresby",
    # Present in Xero's enum, missing from CLDR's current table (retired Windows zones).
    "KAMCHATKASTANDARDTIME": "Asia/Kamchatka",
    "MIDATLANTICSTANDARDTIME": "Atlantic/South_Georgia",
}


def _norm_windows(name: str) -> str:
    return re.sub(r"[^A-Z0-9+()]", "", name.upper())


def iana_timezone(xero_timezone: str) -> str:
    """Translate Xero's ``Organisation.Timezone`` (e.g. ``NEWZEALANDSTANDARDTIME``) to an IANA name."""
    key = _norm_windows(xero_timezone)
    if key in WINDOWS_TO_IANA:
        return WINDOWS_TO_IANA[key]
    try:
        from tzlocal.windows_tz import win_tz  # CLDR windowsZones.xml, kept current by tzlocal
    except ImportError:  # pragma: no cover - tzlocal is a declared dependency
        win_tz = {}
    table = {_norm_windows(k): v for k, v in win_tz.items()}
    if key in table:
        return table[key]
    raise KeyError(f"unknown Xero timezone {xero_timezone!r}")


# --------------------------------------------------------------------------------------------
# Xero models (exact Xero field names)
# --------------------------------------------------------------------------------------------


class _Xero(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Organisation(_Xero):
    OrganisationID: str | None = None
    Name: str = ""
    BaseCurrency: str
    CountryCode: str | None = None
    Version: str | None = None
    Timezone: str | None = None
    PeriodLockDate: XeroDate = None
    EndOfYearLockDate: XeroDate = None
    DefaultSalesTax: str | None = None
    DefaultPurchasesTax: str | None = None

    @property
    def iana_timezone(self) -> str | None:
        return iana_timezone(self.Timezone) if self.Timezone else None


class Account(_Xero):
    AccountID: str | None = None
    Code: str | None = None
    Name: str = ""
    Type: str | None = None
    Class: str | None = None
    Status: str = "ACTIVE"
    SystemAccount: str | None = None
    TaxType: str | None = None
    EnablePaymentsToAccount: bool = False


class TaxComponent(_Xero):
    Name: str | None = None
    Rate: Decimal = Decimal(0)
    IsCompound: bool = False
    IsNonRecoverable: bool = False


class TaxRate(_Xero):
    Name: str = ""
    TaxType: str
    Status: str = "ACTIVE"
    EffectiveRate: Decimal | None = None
    DisplayTaxRate: Decimal | None = None
    TaxComponents: list[TaxComponent] = Field(default_factory=list)
    CanApplyToAssets: bool = False
    CanApplyToEquity: bool = False
    CanApplyToExpenses: bool = False
    CanApplyToLiabilities: bool = False
    CanApplyToRevenue: bool = False

    @property
    def rate(self) -> Decimal:
        """The percentage Xero applies (EffectiveRate covers compound components)."""
        if self.EffectiveRate is not None:
            return Decimal(str(self.EffectiveRate))
        return sum((Decimal(str(c.Rate)) for c in self.TaxComponents), Decimal(0))

    def can_apply_to(self, account_class: str | None) -> bool:
        flag = {
            "REVENUE": self.CanApplyToRevenue,
            "EXPENSE": self.CanApplyToExpenses,
            "ASSET": self.CanApplyToAssets,
            "LIABILITY": self.CanApplyToLiabilities,
            "EQUITY": self.CanApplyToEquity,
        }
        return flag.get((account_class or "").upper(), False)


class BrandingTheme(_Xero):
    BrandingThemeID: str
    Name: str
    SortOrder: int = 0
    Type: str | None = None


class TrackingOption(_Xero):
    TrackingOptionID: str | None = None
    Name: str
    Status: str = "ACTIVE"


class TrackingCategory(_Xero):
    TrackingCategoryID: str | None = None
    Name: str
    Status: str = "ACTIVE"
    Options: list[TrackingOption] = Field(default_factory=list)


class Currency(_Xero):
    Code: str
    Description: str | None = None


class ItemDetails(_Xero):
    UnitPrice: Decimal | None = None
    AccountCode: str | None = None
    TaxType: str | None = None


class Item(_Xero):
    ItemID: str | None = None
    Code: str
    Name: str | None = None
    SalesDetails: ItemDetails | None = None
    PurchaseDetails: ItemDetails | None = None


class Contact(_Xero):
    ContactID: str
    ContactNumber: str | None = None
    Name: str = ""
    EmailAddress: str | None = None
    ContactStatus: str = "ACTIVE"
    IsCustomer: bool = False
    IsSupplier: bool = False
    MergedToContactID: str | None = None


# --------------------------------------------------------------------------------------------
# Zoho metadata
# --------------------------------------------------------------------------------------------


class PicklistValue(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    actual_value: str
    display_value: str | None = None


class ZohoField(BaseModel):
    """One field of a Zoho module (``GET /crm/v8/settings/fields?module=``)."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    api_name: str
    data_type: str | None = None
    length: int | None = None
    pick_list_values: list[PicklistValue] = Field(default_factory=list)
    system_mandatory: bool = False
    custom_field: bool = False
    read_only: bool = False
    field_label: str | None = None

    @property
    def picklist(self) -> list[str]:
        return [v.actual_value for v in self.pick_list_values]


# --------------------------------------------------------------------------------------------
# The bundle
# --------------------------------------------------------------------------------------------

#: Account classes allowed per document kind (Xero's own rule: "Account code 'X' is not a valid
#: code for this document"): sales lines on revenue, purchases on expense or asset.
ALLOWED_CLASSES: dict[str, frozenset[str]] = {
    "ACCREC": frozenset({"REVENUE"}),
    "ACCPAY": frozenset({"EXPENSE", "ASSET"}),
    "PURCHASEORDER": frozenset({"EXPENSE", "ASSET"}),
}
#: System accounts lines may never post to (ROUNDING is the one exception, used for rounding lines).
FORBIDDEN_SYSTEM_ACCOUNTS = frozenset(
    {
        "DEBTORS",
        "CREDITORS",
        "GST",
        "GSTONIMPORTS",
        "BANKCURRENCYGAIN",
        "HISTORICAL",
        "REALISEDCURRENCYGAIN",
        "RETAINEDEARNINGS",
        "TRACKINGTRANSFERS",
        "UNPAIDEXPCLM",
        "UNREALISEDCURRENCYGAIN",
        "WAGEPAYABLES",
        "CISASSETS",
        "CISASSET",
        "CISLABOUR",
        "CISLABOUREXPENSE",
        "CISLABOURINCOME",
        "CISLIABILITY",
        "CISMATERIALS",
    }
)


def _unwrap(data: Any, key: str) -> list[dict[str, Any]]:
    """Accept Xero's envelope ``{"Accounts": [...]}``, a bare list, or models."""
    if data is None:
        return []
    if isinstance(data, Mapping):
        data = data.get(key, data.get("data", []))
    return [d.model_dump() if isinstance(d, BaseModel) else d for d in data]


class ReferenceData(BaseModel):
    """Everything the mapping and validation need from the live systems, fetched once per run."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    organisation: Organisation
    accounts: list[Account] = Field(default_factory=list)
    tax_rates: list[TaxRate] = Field(default_factory=list)
    branding_themes: list[BrandingTheme] = Field(default_factory=list)
    tracking_categories: list[TrackingCategory] = Field(default_factory=list)
    currencies: list[Currency] = Field(default_factory=list)
    items: list[Item] = Field(default_factory=list)
    contacts: list[Contact] = Field(default_factory=list)
    #: Zoho module API name -> its fields (metadata), e.g. {"Invoices": [ZohoField, ...]}
    zoho_fields: dict[str, list[ZohoField]] = Field(default_factory=dict)

    @classmethod
    def from_api(
        cls,
        *,
        organisation: Mapping[str, Any] | Organisation,
        accounts: Any = None,
        tax_rates: Any = None,
        branding_themes: Any = None,
        tracking_categories: Any = None,
        currencies: Any = None,
        items: Any = None,
        contacts: Any = None,
        zoho_fields: Mapping[str, Any] | None = None,
    ) -> ReferenceData:
        """Build from API JSON as returned: Xero envelopes or lists; Zoho ``{"fields": [...]}`` per module."""
        org = organisation
        if isinstance(org, Mapping) and "Organisations" in org:
            org = org["Organisations"][0]
        fields: dict[str, list[Any]] = {}
        for module, meta in (zoho_fields or {}).items():
            rows = meta.get("fields", []) if isinstance(meta, Mapping) else list(meta)
            fields[module] = [r.model_dump() if isinstance(r, BaseModel) else r for r in rows]
        return cls.model_validate(
            {
                "organisation": org.model_dump() if isinstance(org, BaseModel) else org,
                "accounts": _unwrap(accounts, "Accounts"),
                "tax_rates": _unwrap(tax_rates, "TaxRates"),
                "branding_themes": _unwrap(branding_themes, "BrandingThemes"),
                "tracking_categories": _unwrap(tracking_categories, "TrackingCategories"),
                "currencies": _unwrap(currencies, "Currencies"),
                "items": _unwrap(items, "Items"),
                "contacts": _unwrap(contacts, "Contacts"),
                "zoho_fields": fields,
            }
        )

    # --- lookups ---------------------------------------------------------------------------
    @cached_property
    def accounts_by_code(self) -> dict[str, Account]:
        return {a.Code: a for a in self.accounts if a.Code}

    @cached_property
    def tax_rates_by_type(self) -> dict[str, TaxRate]:
        return {t.TaxType: t for t in self.tax_rates}

    @cached_property
    def themes_by_name(self) -> dict[str, BrandingTheme]:
        return {t.Name: t for t in self.branding_themes}

    @cached_property
    def tracking_by_name(self) -> dict[str, TrackingCategory]:
        return {t.Name: t for t in self.tracking_categories}

    @cached_property
    def enabled_currencies(self) -> frozenset[str]:
        """Currencies the Xero org can use; the base currency always."""
        return frozenset({c.Code for c in self.currencies} | {self.organisation.BaseCurrency})

    @cached_property
    def items_by_code(self) -> dict[str, Item]:
        return {i.Code: i for i in self.items}

    @cached_property
    def contacts_by_id(self) -> dict[str, Contact]:
        return {c.ContactID: c for c in self.contacts}

    @cached_property
    def rounding_account_code(self) -> str | None:
        """Code of the account whose SystemAccount is ROUNDING (never assume 860)."""
        for a in self.accounts:
            if (a.SystemAccount or "").upper() == "ROUNDING" and a.Status == "ACTIVE":
                return a.Code
        return None

    @cached_property
    def default_theme(self) -> BrandingTheme | None:
        """Xero's default theme is the one with SortOrder 0."""
        return min(self.branding_themes, key=lambda t: (t.SortOrder, t.Name), default=None)

    def theme_id(self, name: str | None) -> str | None:
        theme = self.themes_by_name.get(name) if name else None
        return theme.BrandingThemeID if theme else None

    def zoho_field(self, module: str, api_name: str) -> ZohoField | None:
        return self.zoho_field_map.get(module, {}).get(api_name)

    @cached_property
    def zoho_field_map(self) -> dict[str, dict[str, ZohoField]]:
        return {m: {f.api_name: f for f in fs} for m, fs in self.zoho_fields.items()}

    def picklist(self, module: str, api_name: str) -> list[str] | None:
        """Live picklist values of a Zoho field, or None when the metadata is not loaded."""
        if module not in self.zoho_fields:
            return None
        f = self.zoho_field(module, api_name)
        return f.picklist if f else []

    # --- frames for the vectorised validators ----------------------------------------------
    @cached_property
    def accounts_frame(self) -> pd.DataFrame:
        rows = [
            {
                "code": a.Code,
                "acc_status": a.Status,
                "acc_class": (a.Class or "").upper(),
                "acc_system": (a.SystemAccount or "").upper(),
                "acc_type": a.Type,
            }
            for a in self.accounts
            if a.Code
        ]
        return pd.DataFrame(rows, columns=["code", "acc_status", "acc_class", "acc_system", "acc_type"])

    @cached_property
    def tax_frame(self) -> pd.DataFrame:
        rows = [
            {
                "tax_type": t.TaxType,
                "tax_status": t.Status,
                "tax_rate": float(t.rate),
                "REVENUE": t.CanApplyToRevenue,
                "EXPENSE": t.CanApplyToExpenses,
                "ASSET": t.CanApplyToAssets,
                "LIABILITY": t.CanApplyToLiabilities,
                "EQUITY": t.CanApplyToEquity,
            }
            for t in self.tax_rates
        ]
        return pd.DataFrame(
            rows,
            columns=[
                "tax_type",
                "tax_status",
                "tax_rate",
                "REVENUE",
                "EXPENSE",
                "ASSET",
                "LIABILITY",
                "EQUITY",
            ],
        )

    @cached_property
    def tracking_frame(self) -> pd.DataFrame:
        rows = [
            {"category": c.Name, "cat_status": c.Status, "option": o.Name, "opt_status": o.Status}
            for c in self.tracking_categories
            for o in c.Options
        ]
        return pd.DataFrame(rows, columns=["category", "cat_status", "option", "opt_status"])

    @cached_property
    def contacts_frame(self) -> pd.DataFrame:
        rows = [
            {
                "ContactID": c.ContactID,
                "ContactNumber": c.ContactNumber or None,
                "Name": c.Name,
                "EmailAddress": c.EmailAddress or None,
                "ContactStatus": c.ContactStatus,
            }
            for c in self.contacts
        ]
        return pd.DataFrame(
            rows, columns=["ContactID", "ContactNumber", "Name", "EmailAddress", "ContactStatus"]
        )

    def choices(self, kind: str, limit: int = 12) -> str:
        """A short, sorted list of valid names for a fix hint."""
        values: Iterable[str]
        if kind == "account":
            values = (a.Code for a in self.accounts if a.Code and a.Status == "ACTIVE")
        elif kind == "tax":
            values = (t.TaxType for t in self.tax_rates if t.Status == "ACTIVE")
        elif kind == "theme":
            values = (t.Name for t in self.branding_themes)
        elif kind == "tracking":
            values = (t.Name for t in self.tracking_categories if t.Status == "ACTIVE")
        else:
            values = ()
        vals = sorted(set(values))
        more = f", ... ({len(vals) - limit} more)" if len(vals) > limit else ""
        return ", ".join(vals[:limit]) + more
