"""Field mappings, applied as column operations.

A mapping reads a source field (or the first non-empty of several), a template (concatenation)
or a constant, runs its transforms (trim, case, date format, lookup table, rounding, truncation)
and fills a default. The built-in mappings of each module are mappings too, so an org's
``fields.<module>`` entries override them by target (or remove them with ``drop: true``).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from mappings.config import (
    DateTransform,
    FieldMapping,
    LookupTransform,
    RoundTransform,
    TruncateTransform,
)
from mappings.frames import as_text


@dataclass(frozen=True)
class ActiveMapping:
    """A mapping with where it came from (``fields.invoices[2]`` or ``built-in``) for fix hints."""

    mapping: FieldMapping
    key: str


def resolve(builtin: list[FieldMapping], custom: list[FieldMapping], section: str) -> list[ActiveMapping]:
    """Built-ins overridden by the org's mappings of the same target; ``drop`` removes a target."""
    out: dict[str, ActiveMapping] = {m.target: ActiveMapping(m, "built-in") for m in builtin}
    for i, m in enumerate(custom):
        if m.drop:
            out.pop(m.target, None)
        else:
            out[m.target] = ActiveMapping(m, f"fields.{section}[{i}]")
    return list(out.values())


def source_column(frame: pd.DataFrame, path: str) -> pd.Series:
    """A field path as a column: ``Subject``, ``Account_Name.name``, deeper paths through dicts."""
    if path in frame.columns:
        return frame[path]
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:cut])
        if head in frame.columns:
            rest = parts[cut:]

            def dig(v: Any, rest: list[str] = rest) -> Any:
                for p in rest:
                    v = v.get(p) if isinstance(v, dict) else None
                return v

            return frame[head].map(dig)
    return pd.Series(np.nan, index=frame.index, dtype="object")


def _first_non_blank(frame: pd.DataFrame, paths: list[str]) -> pd.Series:
    result = source_column(frame, paths[0])
    for p in paths[1:]:
        nxt = source_column(frame, p)
        missing = as_text(result).isna()
        if missing.any():
            result = result.astype(object).where(~missing, nxt.astype(object))
    return result


def _template(frame: pd.DataFrame, template: str) -> pd.Series:
    out = pd.Series("", index=frame.index, dtype="str")
    any_value = pd.Series(False, index=frame.index)
    for literal, field, spec, conv in string.Formatter().parse(template):
        out = out + literal
        if field is None:
            continue
        value = as_text(source_column(frame, field))
        any_value |= value.notna()
        out = out + value.fillna("")
    return out.where(any_value)


@dataclass
class LookupMiss:
    """Rows whose value was not in a strict lookup table."""

    target: str
    key: str
    mask: pd.Series
    values: pd.Series


#: A letter that starts a word: not after a letter, digit, underscore or apostrophe.
_WORD_START = r"(?<![\w'\u2019])([^\W\d_])"


def _round_half_away(series: pd.Series, dp: int) -> pd.Series:
    """Numbers rounded to ``dp`` places, half away from zero (1.005 -> 1.01); non-numbers -> NaN.

    Kept in floats: money._snap's int64 units overflow silently for large values (1e13 at 6 dp
    came out negative), and a rounded value only needs to be the nearest float anyway.
    """
    values = pd.to_numeric(series, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    ok = np.isfinite(values)
    with np.errstate(over="ignore", invalid="ignore"):
        scaled = np.where(ok, values, 0.0) * (10.0**dp)
        # Float noise (1.005 * 100 = 100.4999...) is snapped away first, as in money._snap; above
        # 2**52 every float is a whole number already.
        small = np.abs(scaled) < 2.0**52
        snapped = np.round(np.where(small, scaled, 0.0), 6)
        units = np.sign(snapped) * np.floor(np.abs(snapped) + 0.5)
        # Too large to carry digits below 10**-dp: already rounded (and x * 10**dp / 10**dp may
        # not give x back exactly).
        rounded = np.where(small, units / (10.0**dp), values) + 0.0  # + 0.0: no -0.0 in a payload
    return pd.Series(np.where(ok & np.isfinite(rounded), rounded, np.nan), index=series.index)


def _apply_transform(
    series: pd.Series, t: Any, target: str, key: str, misses: list[LookupMiss], index: int
) -> pd.Series:
    if isinstance(t, str):
        text = as_text(series)
        if t == "trim":
            return text
        if t == "upper":
            return text.str.upper()
        if t == "lower":
            return text.str.lower()
        if t == "title":
            # Not str.title(): it starts a word after an apostrophe or a digit ("Joe'S", "3Rd").
            return text.str.lower().str.replace(_WORD_START, lambda m: m.group(1).title(), regex=True)
        raise ValueError(t)
    if isinstance(t, DateTransform):
        text = as_text(series)
        parsed = pd.to_datetime(text.str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
        return parsed.dt.strftime(t.date).astype("str").where(parsed.notna())
    if isinstance(t, LookupTransform):
        text = as_text(series)
        table = {str(k): v for k, v in t.lookup.items()}
        mapped = text.map(table)
        hit = text.isin(list(table))
        if t.strict:
            miss = text.notna() & ~hit
            if miss.any():
                misses.append(LookupMiss(target, f"{key}.transforms[{index}].lookup", miss, text))
        if t.default is not None:
            return mapped.where(hit, t.default)
        return mapped.where(hit, text).astype("str").where(hit | text.notna())
    if isinstance(t, RoundTransform):
        return _round_half_away(series, t.round)
    if isinstance(t, TruncateTransform):
        return as_text(series).str.slice(0, t.truncate)
    raise TypeError(f"unknown transform {t!r}")


def apply(frame: pd.DataFrame, mappings: list[ActiveMapping]) -> tuple[pd.DataFrame, list[LookupMiss]]:
    """Evaluate mappings over a frame: one output column per target, plus strict-lookup misses."""
    out: dict[str, pd.Series] = {}
    misses: list[LookupMiss] = []
    for active in mappings:
        m = active.mapping
        if m.template is not None:
            series = _template(frame, m.template)
        elif m.source is not None:
            paths = [m.source] if isinstance(m.source, str) else list(m.source)
            series = _first_non_blank(frame, paths)
        else:
            series = pd.Series([m.value] * len(frame), index=frame.index, dtype="object")
        for i, t in enumerate(m.transforms):
            series = _apply_transform(series, t, m.target, active.key, misses, i)
        if m.default is not None:
            empty = as_text(series).isna()
            series = series.astype(object).where(~empty, m.default)
        out[m.target] = series
    return pd.DataFrame(out, index=frame.index), misses


# --------------------------------------------------------------------------------------------
# Payload assembly from flat dotted targets
# --------------------------------------------------------------------------------------------

#: Xero arrays whose elements are keyed by a type field.
TYPED_LISTS = {
    "Addresses": ("AddressType", ["POBOX", "STREET", "DELIVERY"]),
    "Phones": ("PhoneType", ["DEFAULT", "DDI", "MOBILE", "FAX", "OFFICE"]),
}


def present(v: Any) -> bool:
    """A value worth sending: not None/NaN/empty string."""
    if v is None:
        return False
    if isinstance(v, float) and v != v:
        return False
    if isinstance(v, str) and v == "":
        return False
    return v is not pd.NaT


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """{'Addresses.POBOX.City': 'X', 'SalesDetails.UnitPrice': 1} -> Xero's nested shape."""
    out: dict[str, Any] = {}
    typed: dict[str, dict[str, dict[str, Any]]] = {}
    for key, value in flat.items():
        if not present(value):
            continue
        if isinstance(value, np.generic):
            value = value.item()
        parts = key.split(".")
        if parts[0] in TYPED_LISTS and len(parts) == 3:
            typed.setdefault(parts[0], {}).setdefault(parts[1], {})[parts[2]] = value
            continue
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    for name, groups in typed.items():
        type_key, order = TYPED_LISTS[name]
        items = [
            {type_key: t, **groups[t]}
            for t in sorted(groups, key=lambda x: (order.index(x) if x in order else 99, x))
        ]
        out[name] = items
    return out
