"""Field transforms of an org's field mappings (issue 6: trim, case, date format, lookup table,
concatenation, number rounding, and a mapping's ``default:``), through the pure engine
(``mappings.fields.apply``): table tests for the exact outputs, and one hypothesis property test
per transform family for its invariants."""

from __future__ import annotations

import math
import string
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from mappings.config import FieldMapping
from mappings.fields import ActiveMapping, apply, nest

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def run(rows: list[dict[str, Any]], **mapping: Any) -> list[Any]:
    """One mapping (target ``T``) over the rows, as the engine evaluates an org's ``fields:`` entry."""
    m = FieldMapping.model_validate({"target": "T", **mapping})
    out, misses = apply(pd.DataFrame(rows), [ActiveMapping(m, "fields.invoices[0]")])
    assert not misses
    return [None if _missing(v) else v for v in out["T"].tolist()]


def _missing(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA


def one(value: Any, *transforms: Any) -> Any:
    return run([{"a": value}], source="a", transforms=list(transforms))[0]


def chain(value: Any, *transforms: Any) -> Any:
    """The same transforms applied twice (idempotence checks)."""
    first = one(value, *transforms)
    return first, one(first, *transforms)


# --------------------------------------------------------------------------------------------
# Table tests: exact outputs
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "dp", "expected"), [
    (1.005, 2, 1.01),          # float noise (1.00499999...) does not round it down
    ("2.675", 2, 2.68),        # text numbers are numbers
    (" 3.14159 ", 3, 3.142),
    (-1.005, 2, -1.01),        # half away from zero, not to even
    (0.5, 0, 1.0),
    (-0.5, 0, -1.0),
    (2.5, 0, 3.0),
    (12, 2, 12.0),
    (-0.001, 2, 0.0),
    (10_000_000_000_000.0, 6, 10_000_000_000_000.0),  # once overflowed int64 units: came out negative
    (123_456_789_012.5, 6, 123_456_789_012.5),
])
def test_round_rounds_half_away_from_zero(value: Any, dp: int, expected: float) -> None:
    got = one(value, {"round": dp})
    assert got == expected and isinstance(got, float)
    assert math.copysign(1.0, got) == math.copysign(1.0, expected) or expected != 0  # never -0.0


@pytest.mark.parametrize("value", [None, "", "abc", "1,234.50", float("nan"), float("inf")])
def test_round_of_a_non_number_is_empty(value: Any) -> None:
    assert one(value, {"round": 2}) is None


def test_round_config_is_bounded() -> None:
    for bad in (-1, 7, "two"):
        with pytest.raises(ValidationError):
            FieldMapping.model_validate({"target": "T", "source": "a", "transforms": [{"round": bad}]})


@pytest.mark.parametrize(("value", "transform", "expected"), [
    ("  hello World ", "upper", "HELLO WORLD"),
    ("straße", "upper", "STRASSE"),
    ("  HELLO World ", "lower", "hello world"),
    ("  hello WORLD ", "title", "Hello World"),
    ("joe's plumbing", "title", "Joe's Plumbing"),     # str.title() gave "Joe'S Plumbing"
    ("JOE’S PLUMBING", "title", "Joe’s Plumbing"),     # typographic apostrophe too
    ("3rd avenue", "title", "3rd Avenue"),             # str.title() gave "3Rd Avenue"
    ("mary-jane o'neil", "title", "Mary-Jane O'neil"),
    ("(acme) ltd.", "title", "(Acme) Ltd."),
    ("élan vital", "title", "Élan Vital"),
    (12, "upper", "12"),
    (10.0, "title", "10"),
    ("   ", "upper", None),
    (None, "title", None),
])
def test_case_transforms(value: Any, transform: str, expected: Any) -> None:
    assert one(value, transform) == expected


def test_trim_trims_and_blanks_empty_text() -> None:
    assert run([{"a": "  x  y "}, {"a": " \t\n"}, {"a": ""}, {"a": None}], source="a", transforms=["trim"]) == [
        "x  y", None, None, None]


def test_date_format_reformats_zoho_dates_and_datetimes() -> None:
    rows = [{"a": "2025-07-01"}, {"a": "2025-12-31T23:30:00+13:00"}, {"a": "not a date"}, {"a": "2025-02-30"},
            {"a": None}]
    assert run(rows, source="a", transforms=[{"date": "%d/%m/%Y"}]) == [
        "01/07/2025", "31/12/2025", None, None, None]
    assert one("2025-07-01", {"date": "%b %d, %Y"}) == "Jul 01, 2025"


def test_lookup_table_default_and_passthrough() -> None:
    rows = [{"a": "Net 30"}, {"a": "Other"}, {"a": None}, {"a": "Void"}]
    table = {"Net 30": "DAYSAFTERBILLDATE", "Void": None}
    assert run(rows, source="a", transforms=[{"lookup": table}]) == ["DAYSAFTERBILLDATE", "Other", None, None]
    assert run(rows, source="a", transforms=[{"lookup": table, "default": "OFFOLLOWINGMONTH"}]) == [
        "DAYSAFTERBILLDATE", "OFFOLLOWINGMONTH", "OFFOLLOWINGMONTH", None]


def test_strict_lookup_reports_the_miss_with_its_config_key() -> None:
    m = FieldMapping.model_validate({"target": "T", "source": "a",
                                     "transforms": ["trim", {"lookup": {"a": "A"}, "strict": True}]})
    out, misses = apply(pd.DataFrame([{"a": "a"}, {"a": "b"}]), [ActiveMapping(m, "fields.invoices[3]")])
    assert [(x.target, x.key, x.mask.tolist()) for x in misses] == [
        ("T", "fields.invoices[3].transforms[1].lookup", [False, True])]
    assert out["T"].tolist()[0] == "A"


def test_concatenation_template() -> None:
    rows = [{"Subject": "Fees", "Invoice_Number": "INV-1"}, {"Subject": "Fees", "Invoice_Number": None},
            {"Subject": None, "Invoice_Number": None}, {"Subject": " Fees ", "Invoice_Number": 7.0}]
    assert run(rows, template="{Subject} ({Invoice_Number})") == [
        "Fees (INV-1)", "Fees ()", None, "Fees (7)"]


def test_transforms_run_in_order() -> None:
    assert one(" net 30 ", "upper", {"lookup": {"NET 30": "n30"}}) == "n30"
    assert one(" net 30 ", {"lookup": {"NET 30": "n30"}}, "upper") == "NET 30"
    assert one("2.345", {"round": 2}, {"lookup": {"2.35": "hit"}}) == "hit"


@pytest.mark.parametrize(("rows", "mapping", "expected"), [
    # default fills missing, blank, whitespace-only and absent values; a present value stands
    ([{"a": ""}, {"a": None}, {"a": "  "}, {"a": "v"}, {}], {"source": "a", "default": "DEF"},
     ["DEF", "DEF", "DEF", "v", "DEF"]),
    # the source column does not exist at all
    ([{"b": 1}, {"b": 2}], {"source": "a", "default": "DEF"}, ["DEF", "DEF"]),
    # numeric defaults, after transforms (a non-number rounds to empty, then the default fills it)
    ([{"a": "x"}, {"a": 5.555}], {"source": "a", "transforms": [{"round": 2}], "default": 0}, [0, 5.56]),
    # a strict/unmatched lookup's empty result is filled; the default is not itself transformed
    ([{"a": "zz"}, {"a": "k"}], {"source": "a", "transforms": [{"lookup": {"k": "K", "zz": None}}],
                                 "default": "none given"}, ["none given", "K"]),
    # first non-empty of several sources, then the default
    ([{"a": None, "b": "B"}, {"a": None, "b": " "}], {"source": ["a", "b"], "default": "D"}, ["B", "D"]),
    # an all-empty template
    ([{"a": None}], {"template": "{a}/{a}", "default": "n/a"}, ["n/a"]),
    # a constant wins over the default
    ([{"a": None}], {"value": "C", "default": "D"}, ["C"]),
])
def test_default_fills_empty_values(rows: list[dict[str, Any]], mapping: dict[str, Any],
                                    expected: list[Any]) -> None:
    assert run(rows, **mapping) == expected


def test_default_reaches_the_payload() -> None:
    m = FieldMapping.model_validate({"target": "SalesDetails.AccountCode", "source": "Account", "default": "200"})
    out, _ = apply(pd.DataFrame([{"Account": None}, {"Account": "400"}]), [ActiveMapping(m, "fields.products[0]")])
    assert [nest(r) for r in out.to_dict("records")] == [
        {"SalesDetails": {"AccountCode": "200"}}, {"SalesDetails": {"AccountCode": "400"}}]


# --------------------------------------------------------------------------------------------
# Properties, one per transform family
# --------------------------------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(codec="latin-1", exclude_categories=("Cc",)) | st.sampled_from(" \t'’-"),
               max_size=30)
WORDS = st.lists(st.text(alphabet=string.ascii_letters + "'’0123456789", min_size=1, max_size=8),
                 min_size=1, max_size=5)


@FAST
@given(values=st.lists(TEXT | st.none(), min_size=1, max_size=8))
def test_property_trim(values: list[str | None]) -> None:
    out = run([{"a": v} for v in values], source="a", transforms=["trim"])
    for v, got in zip(values, out, strict=True):
        expected = (v or "").strip() or None
        assert got == expected
        assert got is None or got == got.strip() != ""
    assert run([{"a": v} for v in out], source="a", transforms=["trim"]) == out  # idempotent


@FAST
@given(values=st.lists(TEXT, min_size=1, max_size=8), words=WORDS)
def test_property_case(values: list[str], words: list[str]) -> None:
    rows = [{"a": v} for v in values]
    upper = run(rows, source="a", transforms=["upper"])
    lower = run(rows, source="a", transforms=["lower"])
    title = run(rows, source="a", transforms=["title"])
    for v, u, lo, ti in zip(values, upper, lower, title, strict=True):
        if not v.strip():
            assert u is lo is ti is None
            continue
        assert u == v.strip().upper() and lo == v.strip().lower()
        assert ti.upper() == u  # title case only changes case ...
        # ... and each case is idempotent
        assert one(u, "upper") == u and one(lo, "lower") == lo and one(ti, "title") == ti
    # Title case of words: first letter of each word up (none after an apostrophe or a digit), rest down.
    phrase = " ".join(words)
    got = one(phrase, "title")
    assert got.split(" ") == [w.lower() if not w[0].isalpha() else w[0].upper() + w[1:].lower() for w in words]


@FAST
@given(day=st.dates(min_value=date(1900, 1, 1), max_value=date(2200, 12, 31)),
       fmt=st.sampled_from(["%d/%m/%Y", "%Y-%m-%d", "%m/%d/%Y", "%d.%m.%Y", "%Y%m%d", "%d %b %Y"]),
       time_part=st.sampled_from(["", "T00:00:00", "T23:59:59+13:00", "T12:00:00Z"]))
def test_property_date_format(day: date, fmt: str, time_part: str) -> None:
    got = one(day.isoformat() + time_part, {"date": fmt})
    assert got == day.strftime(fmt)
    assert datetime.strptime(got, fmt).date() == day  # the output parses back to the same day
    if fmt == "%Y-%m-%d":
        assert one(got, {"date": fmt}) == got  # idempotent in ISO form


@FAST
@given(table=st.dictionaries(st.text(string.ascii_letters, min_size=1, max_size=5),
                             st.text(string.ascii_letters, min_size=1, max_size=5), max_size=6),
       values=st.lists(st.text(string.ascii_letters, min_size=1, max_size=5), min_size=1, max_size=8),
       default=st.none() | st.just("DEFAULT"))
def test_property_lookup(table: dict[str, str], values: list[str], default: str | None) -> None:
    spec: dict[str, Any] = {"lookup": table}
    if default is not None:
        spec["default"] = default
    out = run([{"a": v} for v in values], source="a", transforms=[spec])
    for v, got in zip(values, out, strict=True):
        if v in table:
            assert got == table[v]
        else:
            assert got == (default if default is not None else v)  # unmatched: default or passthrough


@FAST
@given(parts=st.lists(st.none() | st.text(string.ascii_letters + string.digits + " -", max_size=8),
                      min_size=1, max_size=4),
       seps=st.lists(st.text(" -/()#:", max_size=3), min_size=5, max_size=5))
def test_property_concatenation(parts: list[str | None], seps: list[str]) -> None:
    fields = [f"F{i}" for i in range(len(parts))]
    template = seps[0] + "".join("{" + f + "}" + seps[i + 1] for i, f in enumerate(fields))
    got = run([dict(zip(fields, parts, strict=True))], template=template)[0]
    cleaned = [(p or "").strip() for p in parts]
    if not any(cleaned):
        assert got is None  # nothing to concatenate: empty, so a default can fill it
    else:
        assert got == seps[0] + "".join(c + seps[i + 1] for i, c in enumerate(cleaned))


def _decimal_round(x: Decimal, dp: int) -> Decimal:
    return x.quantize(Decimal(1).scaleb(-dp), rounding=ROUND_HALF_UP)


@FAST
@given(units=st.integers(min_value=-10**10, max_value=10**10), scale=st.integers(0, 6), dp=st.integers(0, 6),
       as_text=st.booleans())
def test_property_round_matches_decimal_half_away(units: int, scale: int, dp: int, as_text: bool) -> None:
    """A decimal number of up to 10 significant digits (as Zoho sends it, as a float or as text)
    rounds exactly as Decimal's ROUND_HALF_UP, ties included (1.005 -> 1.01)."""
    exact = Decimal(units).scaleb(-scale)
    source: Any = str(exact) if as_text else float(exact)
    got = one(source, {"round": dp})
    assert got == float(_decimal_round(exact, dp))
    assert one(got, {"round": dp}) == got  # idempotent
    assert abs(Decimal(got) - exact) <= Decimal(5).scaleb(-dp - 1) + Decimal(abs(got)) * Decimal(2) ** -50


@FAST
@given(value=st.floats(allow_nan=False, allow_infinity=False, min_value=-1e300, max_value=1e300),
       dp=st.integers(0, 6))
def test_property_round_any_float(value: float, dp: int) -> None:
    """Any finite float: the result keeps its sign and magnitude (no overflow), is idempotent, and
    more places never move it further from the input."""
    got = one(value, {"round": dp})
    assert got is not None and math.isfinite(got)
    assert got == 0 or math.copysign(1, got) == math.copysign(1, value)
    slack = 10**-dp * 1e-6 + abs(value) * 1e-12  # float noise snapped away before rounding
    assert abs(got - value) <= 0.5 * 10**-dp + slack
    assert one(got, {"round": dp}) == got
    if dp < 6:
        finer = one(value, {"round": dp + 1})
        assert abs(finer - value) <= abs(got - value) + slack
