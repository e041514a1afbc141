"""Zoho pages -> DataFrames, and the small column helpers the engine shares.

A page of Zoho records (lists of dicts as the API returns them) becomes one header frame (lookups
flattened to ``Account_Name.id`` / ``Account_Name.name``) and one line frame per subform with the
parent id (``_doc``), the row's position (``_pos``) and the Line_Tax summary (``_tax_names``,
``_tax_pct``, ``_tax_count``). Lines are regrouped by ``_doc`` in their original order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

DOC = "_doc"
POS = "_pos"
LINE = "_line"


def _flat(rec: Mapping[str, Any]) -> dict[str, Any]:
    """One level of nesting flattened with '.': {"Account_Name": {"id": 1}} -> {"Account_Name.id": 1}.

    Lists (subforms, Line_Tax) stay as they are. Much cheaper than ``pd.json_normalize``, which
    deep-copies every record.
    """
    out: dict[str, Any] = {}
    for k, v in rec.items():
        if isinstance(v, dict):
            if not v:
                out[k] = None
            for ik, iv in v.items():
                out[f"{k}.{ik}"] = iv
        else:
            out[k] = v
    return out


def header_frame(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per record; nested lookups flattened one level with '.'; ``id`` as text."""
    if not records:
        return pd.DataFrame({"id": pd.Series([], dtype="str")})
    frame = pd.DataFrame([_flat(r) for r in records])
    if "id" not in frame.columns:
        frame["id"] = [str(i) for i in range(len(frame))]
    frame["id"] = frame["id"].astype("str")
    return frame


def _tax_summary(line_tax: Any) -> tuple[Any, float, int]:
    """Line_Tax [{name, percentage, value}] -> ('A + B' or NaN, summed percentage, count)."""
    if not line_tax:
        return np.nan, 0.0, 0
    names: set[str] = set()
    pct = 0.0
    for t in line_tax:
        if isinstance(t, dict):
            name = t.get("name") or t.get("display_name")
            if name:
                names.add(str(name))
            try:
                pct += float(t.get("percentage") or 0)
            except (TypeError, ValueError):
                pass
    if not names:
        return np.nan, pct, 0
    return " + ".join(sorted(names)), pct, len(names)


def lines_frame(records: Sequence[Mapping[str, Any]], key: str) -> pd.DataFrame:
    """Explode a subform (``Invoiced_Items`` ...) into one row per line, keeping parent and position."""
    rows: list[dict[str, Any]] = []
    docs: list[str] = []
    positions: list[int] = []
    taxes: list[tuple[Any, float, int]] = []
    for rec in records:
        items = rec.get(key) or []
        doc = str(rec.get("id"))
        for pos, line in enumerate(items):
            rows.append(_flat(line))
            docs.append(doc)
            positions.append(pos)
            taxes.append(_tax_summary(line.get("Line_Tax")))
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(index=pd.RangeIndex(0))
    frame[DOC] = pd.Series(docs, dtype="str", index=frame.index)
    frame[POS] = np.asarray(positions, dtype="int64")
    ids = col(frame, "id")
    frame[LINE] = ids.astype("str").where(ids.notna(), frame[DOC] + ":" + frame[POS].astype("str"))
    frame["_tax_names"] = pd.Series([t[0] for t in taxes], index=frame.index, dtype="str")
    frame["_tax_pct"] = np.asarray([t[1] for t in taxes], dtype="float64")
    frame["_tax_count"] = np.asarray([t[2] for t in taxes], dtype="int64")
    return frame


def col(frame: pd.DataFrame, name: str, default: Any = np.nan) -> pd.Series:
    """The column, or a column of ``default`` when no record carried the field."""
    if name in frame.columns:
        return frame[name]
    return pd.Series(default, index=frame.index, dtype=None if default is not np.nan else "str")


def as_text(series: pd.Series) -> pd.Series:
    """Values as trimmed text, missing/blank as NaN; 10.0 -> '10', True -> 'true'."""
    if series.empty:
        return series.astype("str")
    if isinstance(series.dtype, pd.StringDtype):
        text = series.str.strip()
        return text.where(text != "")
    if pd.api.types.is_bool_dtype(series.dtype):
        return series.map({True: "true", False: "false"}).astype("str")
    if pd.api.types.is_numeric_dtype(series.dtype):
        out = series.map(
            lambda v: format(v, "g") if isinstance(v, float) and v == int(v) and abs(v) < 1e15 else str(v),
            na_action="ignore",
        )
        return out.astype("str").where(series.notna())
    if series.dtype == object:
        series = series.map(_scalar_text, na_action="ignore")
    text = series.astype("str").str.strip()
    return text.where(text.notna() & (text != ""))


def _scalar_text(v: Any) -> Any:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v != v:
            return np.nan
        return format(v, "g") if v == int(v) and abs(v) < 1e15 else repr(v)
    if isinstance(v, (list, dict)):
        return np.nan
    return str(v)


def blank(series: pd.Series) -> pd.Series:
    """True where a value is missing or only whitespace."""
    return as_text(series).isna()


def to_date(series: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Zoho date / datetime text -> (python date or NaT, invalid mask). Datetimes keep their local date."""
    text = as_text(series)
    head = text.str.slice(0, 10)
    parsed = pd.to_datetime(head, format="%Y-%m-%d", errors="coerce")
    invalid = text.notna() & parsed.isna()
    return parsed, invalid


_IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"


def key_part(values: pd.Series) -> pd.Series:
    """Config keys as the error messages print them: ``Hardware`` plain, ``'GST 15%'`` quoted."""
    import re

    ident = re.compile(_IDENT)
    text = values.fillna("").astype("str")
    # Few distinct values (product codes, categories, tax names): quote each once, then map back.
    table = {v: v if ident.match(v) else "'" + v.replace("'", "\\'") + "'" for v in pd.unique(text)}
    return text.map(table)
