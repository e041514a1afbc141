"""Org configuration: the demo org loads and matches the demo universe; bad files fail fast with
the file, the key path and what was expected."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from mappings.config import ConfigError, OrgConfig, format_key_path, load_org, load_registry, parse_org
from tests.test_mappings_data import demo_org
from zxsync.settings import REPO_ROOT, get_settings

DEMO_UNIVERSE = (REPO_ROOT / "docs" / "demo-universe.md").read_text()
MINIMAL = {
    "slug": "acme",
    "name": "Acme",
    "timezone": "Australia/Sydney",
    "xero": {"connection": "acme-xero"},
    "zoho": {"connection": "acme-zoho"},
}


@pytest.fixture
def orgs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "orgs"
    folder.mkdir()
    monkeypatch.setenv("ZX_ORGS_DIR", str(folder))
    monkeypatch.setenv("ZX_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    yield folder
    get_settings.cache_clear()


def write(folder: Path, slug: str, data: dict) -> Path:
    path = folder / f"{slug}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_demo_org_matches_the_demo_universe() -> None:
    org = demo_org()
    assert org.slug == "demo" and org.name == "Harbour Demo Ltd" and org.timezone == "Pacific/Auckland"
    assert org.schedules == ["0 7 * * *", "0 19 * * *"]
    # Taxes: GST 15% and Zero Rated mapped to the seeded TaxTypes; Luxury Tax 20% deliberately not.
    assert org.tax.map == {"GST 15%": "OUTPUT2", "Zero Rated": "ZERORATED"}
    assert "Luxury Tax 20%" not in org.tax.map and 20 not in org.tax.by_rate
    for tax_type in set(org.tax.map.values()) | set(org.tax.purchases_map.values()) | {org.tax.default}:
        assert tax_type in DEMO_UNIVERSE
    # Invoice statuses: the seeded picklist is mapped except "On Hold".
    for status in ("Created", "Approved", "Delivered"):
        assert status in org.status.invoices.to_xero
    assert org.status.invoices.cancel == ["Cancelled"]
    assert "On Hold" not in org.status.invoices.to_xero and "On Hold" not in org.status.invoices.cancel
    # GBP is not sent anywhere Xero has it enabled; the three enabled currencies are mapped.
    assert set(org.currency.map.values()) == {"NZD", "AUD", "USD"}
    # Account codes and names used exist in the demo chart of accounts.
    codes = (
        set(org.accounts.by_category.values())
        | set(org.accounts.by_product_code.values())
        | set(org.accounts.purchases_by_category.values())
        | {v for v in org.accounts.defaults.model_dump().values() if v}
    )
    for code in codes:
        assert re.search(rf"\b{code} [A-Z]", DEMO_UNIVERSE), code
    for theme in [org.branding.default] + [r.theme for r in org.branding.rules]:
        assert f'"{theme}"' in DEMO_UNIVERSE
    for t in org.tracking:
        assert f'"{t.category}"' in DEMO_UNIVERSE
        for option in t.options.values():
            assert option in DEMO_UNIVERSE
    # Every mapping kind is exercised.
    assert org.sync_from is not None and org.retention_days == 30
    assert org.modules.purchase_orders.target == "bill" and org.status.purchase_orders.to_xero
    assert org.status.invoices.to_zoho and org.tax.by_rate and org.tax.purchases_map
    assert (
        org.branding.default
        and any(r.equals for r in org.branding.rules)
        and any(r.in_ for r in org.branding.rules)
    )
    kinds = {
        type(t).__name__ if not isinstance(t, str) else t
        for section in ("contacts", "vendors", "products", "invoices", "invoices_to_zoho", "contacts_to_zoho")
        for m in getattr(org.fields, section)
        for t in m.transforms
    }
    assert {"trim", "lower", "upper", "LookupTransform", "TruncateTransform", "DateTransform",
            "RoundTransform"} <= kinds
    assert any(m.template for m in org.fields.products)
    assert any(isinstance(m.source, list) for m in org.fields.invoices)
    assert org.fields.invoices_to_zoho and org.fields.contacts_to_zoho
    assert org.accounts.by_product_code and org.accounts.by_category and org.accounts.defaults.invoices
    assert {t.level for t in org.tracking} == {"header", "line"}
    assert all(
        getattr(org.header_amounts, n).policy == "line" for n in ("discount", "adjustment", "excise_duty")
    )
    assert org.rounding.policy == "rounding_line"
    assert org.numbering.authority == "zoho" and "{Account_Number}" in org.contacts.name_clash_suffix
    assert org.conflicts.sales == "zoho" and org.conflicts.payments == "xero" and org.deletes.enabled is False


def test_load_org_and_registry_use_the_orgs_dir(orgs_dir: Path) -> None:
    write(orgs_dir, "acme", MINIMAL)
    write(orgs_dir, "beta", {**MINIMAL, "slug": "beta", "name": "Beta"})
    assert load_org("acme").name == "Acme"
    assert [o.slug for o in load_registry()] == ["acme", "beta"]
    org = load_org("acme")
    # Defaults from the brief: twice a day, contacts/products/invoices/POs on, SO/quotes off.
    assert org.schedules == ["0 7 * * *", "0 19 * * *"]
    assert org.modules.sales_orders.enabled is False and org.modules.quotes.enabled is False
    assert org.modules.invoices.enabled and org.modules.purchase_orders.target == "purchase_order"
    assert org.deletes.enabled is False and org.retention_days == 30


def test_default_registry_is_the_repository_orgs_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("ZX_ORGS_DIR", raising=False)
    monkeypatch.setenv("ZX_HOME", str(tmp_path))
    get_settings.cache_clear()
    try:
        assert "demo" in [o.slug for o in load_registry()]
        assert load_org("demo").config_file == "orgs/demo.yaml"
    finally:
        get_settings.cache_clear()


@pytest.mark.parametrize(
    "change, key, expected",
    [
        (
            {"tax": {"map": {"GST 10%": 10}}},
            "tax.map.'GST 10%'",
            "expected a Xero TaxType code (e.g. OUTPUT2), got 10",
        ),
        ({"slug": "Acme!"}, "slug", "expected lowercase letters"),
        ({"timezone": "Mars/Olympus"}, "timezone", "expected an IANA timezone"),
        ({"zoho": {"connection": "z", "data_centre": "uk"}}, "zoho.data_centre", "expected one of 'com'"),
        ({"schedules": ["0 7 * *"]}, "schedules[0]", "expected a cron expression"),
        (
            {"modules": {"invoices": {"direction": "sideways"}}},
            "modules.invoices.direction",
            "got 'sideways'",
        ),
        (
            {"status": {"invoices": {"to_xero": {"Approved": "APPROVED"}}}},
            "status.invoices.to_xero.Approved",
            "expected one of 'DRAFT', 'SUBMITTED' or 'AUTHORISED', got 'APPROVED'",
        ),
        ({"accounts": {"by_category": {"Hardware": 200}}}, "accounts.by_category.Hardware", "quoted text"),
        ({"currency": {"map": {"nzd": "NZD"}}}, "currency.map.nzd", "3-letter ISO currency code"),
        ({"rounding": {"tolerance": -1}}, "rounding.tolerance", "greater than or equal to 0"),
        (
            {"fields": {"invoices": [{"target": "Referense", "source": "Subject"}]}},
            "fields.invoices[0].target",
            "expected a writable Xero field",
        ),
        (
            {"fields": {"contacts": [{"target": "Name", "source": "A", "transforms": [{"date": "dd/mm"}]}]}},
            "fields.contacts[0].transforms[0].date",
            "strftime format",
        ),
        (
            {"fields": {"contacts": [{"target": "Name", "transforms": ["trim"]}]}},
            "fields.contacts[0]",
            "exactly one of source, template or value",
        ),
        ({"contacts": {"match_order": ["email", "link"]}}, "contacts.match_order", "'link' first"),
        (
            {"tracking": [{"category": c, "source": "X"} for c in ("A", "B", "C")]},
            "",
            "at most 2 categories per line",
        ),
        ({"header_amounts": {"adjustment": {"policy": "line"}}}, "header_amounts", "adjustment.account"),
        ({"client_secret": "hunter2"}, "client_secret", "unknown key"),
        (
            {"modules": {"quotes": {"enabled": True, "direction": "both"}}},
            "modules",
            "quotes: expected direction to-xero",
        ),
        (
            {
                "modules": {"purchase_orders": {"target": "bill"}},
                "status": {"purchase_orders": {"to_xero": {"Delivered": "BILLED"}}},
            },
            "",
            "for bills",
        ),
    ],
)
def test_invalid_config_names_file_key_and_expectation(
    orgs_dir: Path, change: dict, key: str, expected: str
) -> None:
    data = {**MINIMAL, **change}
    write(orgs_dir, "acme", data if "slug" not in change else {**data})
    path_slug = "acme"
    with pytest.raises(ConfigError) as err:
        load_org(path_slug)
    text = str(err.value)
    assert text.startswith(str(orgs_dir / "acme.yaml") + ": ") or text.startswith("orgs/acme.yaml: ")
    assert expected in text, text
    if key:
        assert f": {key}: " in text or f": {key}." in text, text


def test_the_example_message_of_the_brief() -> None:
    with pytest.raises(ConfigError) as err:
        parse_org({**MINIMAL, "tax": {"map": {"GST 10%": 10}}}, "orgs/acme.yaml")
    assert (
        str(err.value)
        == "orgs/acme.yaml: tax.map.'GST 10%': expected a Xero TaxType code (e.g. OUTPUT2), got 10"
    )
    assert err.value.problems == [
        ("tax.map.'GST 10%'", "expected a Xero TaxType code (e.g. OUTPUT2), got 10")
    ]


def test_yaml_syntax_errors_and_slug_mismatch(orgs_dir: Path) -> None:
    (orgs_dir / "broken.yaml").write_text("slug: broken\nname: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken\.yaml: line \d+, column \d+: not valid YAML"):
        load_org("broken")
    write(orgs_dir, "other", MINIMAL)
    with pytest.raises(
        ConfigError, match=r"other\.yaml: slug: expected 'other' \(the file name\), got 'acme'"
    ):
        load_org("other")
    with pytest.raises(ConfigError, match="no such org"):
        load_org("missing")
    with pytest.raises(ConfigError, match="expected lowercase"):
        load_org("../etc/passwd")


def test_json_schema_renders() -> None:
    schema = OrgConfig.model_json_schema()
    text = json.dumps(schema)
    assert schema["title"] == "OrgConfig"
    for key in ("schedules", "sync_from", "header_amounts", "numbering", "tracking", "status"):
        assert key in schema["properties"]
    assert "OUTPUT2" in text  # examples for TaxType codes


def test_format_key_path() -> None:
    assert format_key_path(("tax", "map", "GST 10%")) == "tax.map.'GST 10%'"
    assert format_key_path(("fields", "invoices", 2, "target")) == "fields.invoices[2].target"


def test_only_credential_names_are_stored() -> None:
    org = demo_org()
    dumped = org.model_dump()
    assert dumped["xero"] == {"tenant_id": None, "connection": "demo-xero"}
    assert set(dumped["zoho"]) == {"data_centre", "connection", "org_id", "record_url", "fallback_product_id"}
    with pytest.raises(ConfigError, match="xero.refresh_token: unknown key"):
        parse_org({**MINIMAL, "xero": {"connection": "x", "refresh_token": "abc"}}, "orgs/acme.yaml")


def test_record_url_per_data_centre() -> None:
    org = parse_org(
        {**MINIMAL, "zoho": {"connection": "z", "data_centre": "zohocloud.ca", "org_id": "123"}}, "x"
    )
    assert org.record_url("Invoices", "42") == "https://crm.zohocloud.ca/crm/org123/tab/Invoices/42"
    org = parse_org(
        {
            **MINIMAL,
            "zoho": {
                "connection": "z",
                "data_centre": "eu",
                "record_url": "http://127.0.0.1:8702/crm/{module}/{id}",
            },
        },
        "x",
    )
    assert org.record_url("Invoices", "42") == "http://127.0.0.1:8702/crm/Invoices/42"
    with pytest.raises(ConfigError, match="zoho.record_url"):
        parse_org({**MINIMAL, "zoho": {"connection": "z", "record_url": "http://x/{nope}"}}, "x")


def test_cron_aliases_expand() -> None:
    org = parse_org({**MINIMAL, "schedules": ["@daily", "30 6 * * 1-5"]}, "x")
    assert org.cron_schedules() == ["0 0 * * *", "30 6 * * 1-5"]
