"""Reference data models built from the APIs' JSON: MS-JSON dates, Windows timezones, lookups."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from mappings import ReferenceData, iana_timezone, parse_xero_date, parse_xero_datetime
from mappings.reference import WINDOWS_TO_IANA
from tests.test_mappings_data import demo_ref


def test_ms_json_and_iso_dates() -> None:
    assert parse_xero_datetime("/Date(1539993600000+0000)/") == datetime(2018, 10, 20, tzinfo=UTC)
    assert parse_xero_datetime("/Date(1539993600000+1300)/") == datetime(2018, 10, 20, tzinfo=UTC)
    assert parse_xero_datetime("2025-03-31T10:00:00") == datetime(2025, 3, 31, 10, tzinfo=UTC)
    assert parse_xero_datetime("2025-03-31T10:00:00Z") == datetime(2025, 3, 31, 10, tzinfo=UTC)
    assert parse_xero_date("/Date(1743379200000+0000)/") == date(2025, 3, 31)
    assert parse_xero_date("2025-03-31T00:00:00") == date(2025, 3, 31)
    assert parse_xero_date(None) is None and parse_xero_date("") is None


@pytest.mark.parametrize(
    "xero, iana",
    [
        ("NEWZEALANDSTANDARDTIME", "Pacific/Auckland"),
        ("AUSEASTERNSTANDARDTIME", "Australia/Sydney"),
        ("GMTSTANDARDTIME", "Europe/London"),
        ("EASTERNSTANDARDTIME", "America/New_York"),
        ("PACIFICSTANDARDTIME", "America/Los_Angeles"),
        ("UTC", "UTC"),
        ("SINGAPORESTANDARDTIME", "Asia/Singapore"),
        ("SOUTHAFRICASTANDARDTIME", "Africa/Johannesburg"),
        ("CANADACENTRALSTANDARDTIME", "America/Regina"),
        ("ATLANTICSTANDARDTIME", "America/Halifax"),
        ("E. Europe Standard Time", "Europe/Chisinau"),
    ],
)
def test_windows_timezones_to_iana(xero: str, iana: str) -> None:
    assert iana_timezone(xero) == iana


def test_table_values_are_real_zones_and_unknown_names_fail() -> None:
    for name in WINDOWS_TO_IANA.values():
        ZoneInfo(name)
    with pytest.raises(KeyError):
        iana_timezone("MARSSTANDARDTIME")


def test_reference_data_from_api_json() -> None:
    ref = demo_ref()
    org = ref.organisation
    assert org.BaseCurrency == "NZD" and org.iana_timezone == "Pacific/Auckland"
    assert org.PeriodLockDate == date(2025, 3, 31) == org.EndOfYearLockDate
    assert ref.accounts_by_code["860"].SystemAccount == "ROUNDING" and ref.rounding_account_code == "860"
    assert ref.tax_rates_by_type["OUTPUT2"].rate == 15 and ref.tax_rates_by_type["TAX001"].Status == "DELETED"
    assert ref.tax_rates_by_type["INPUT2"].can_apply_to("EXPENSE") and not ref.tax_rates_by_type[
        "INPUT2"
    ].can_apply_to("REVENUE")
    assert ref.default_theme.Name == "Standard" and ref.theme_id("Special Projects") == "theme-special"
    assert ref.enabled_currencies == {"NZD", "AUD", "USD"}
    assert {o.Name for o in ref.tracking_by_name["Department"].Options} >= {"Sales", "Legacy"}
    assert ref.items_by_code["HW-OLD"].ItemID == "item-hw-old"
    assert "On Hold" in ref.picklist("Invoices", "Status")
    assert ref.picklist("Leads", "Status") is None  # metadata not loaded for that module
    assert ref.zoho_field("Invoices", "Xero_Payments").length == 2000


def test_reference_accepts_bare_lists_and_computes_compound_rates() -> None:
    ref = ReferenceData.from_api(
        organisation={"BaseCurrency": "CAD", "Timezone": "EASTERNSTANDARDTIME"},
        tax_rates=[
            {
                "TaxType": "TAX010",
                "TaxComponents": [{"Name": "GST", "Rate": 5}, {"Name": "QST", "Rate": 9.975}],
            }
        ],
        currencies=[{"Code": "USD"}],
    )
    assert ref.tax_rates_by_type["TAX010"].rate == Decimal("14.975")
    assert ref.enabled_currencies == {"CAD", "USD"}  # the base currency is always usable
    assert ref.rounding_account_code is None and ref.organisation.iana_timezone == "America/New_York"
