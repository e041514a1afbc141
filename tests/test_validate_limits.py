"""The hard-coded Xero length limits agree with the official spec (read here, never at run time)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from mappings import limits
from zxsync.settings import get_settings


def _spec_file() -> Path:
    get_settings.cache_clear()
    path = get_settings().specs_dir / "xero_accounting.yaml"
    if not path.exists():
        if os.environ.get("CI"):
            pytest.fail(f"CI is set and the Xero spec is missing: {path}")
        pytest.skip(f"Xero spec not found at {path} (set ZX_SPECS_DIR)")
    return path


@pytest.fixture(scope="module")
def schemas() -> dict:
    return yaml.safe_load(_spec_file().read_text())["components"]["schemas"]


@pytest.mark.parametrize("schema, prop", sorted(limits.SPEC_LIMITS))
def test_constant_matches_the_spec(schemas: dict, schema: str, prop: str) -> None:
    assert schemas[schema]["properties"][prop]["maxLength"] == limits.SPEC_LIMITS[(schema, prop)]


def test_limits_used_by_the_validators_are_covered(schemas: dict) -> None:
    for (entity, field), value in limits.FIELD_LIMITS.items():
        spec = schemas.get(entity, {}).get("properties", {}).get(field, {})
        if "maxLength" in spec:
            assert spec["maxLength"] == value, (entity, field)


def test_account_code_limit_is_the_spec_description(schemas: dict) -> None:
    assert (
        f"max length = {limits.ACCOUNT_CODE_MAX}" in schemas["Account"]["properties"]["Code"]["description"]
    )


def test_every_xero_timezone_translates_to_a_real_iana_zone(schemas: dict) -> None:
    from zoneinfo import ZoneInfo

    from mappings import iana_timezone

    for name in schemas["TimeZone"]["enum"]:
        ZoneInfo(iana_timezone(name))
