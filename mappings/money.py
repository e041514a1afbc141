"""Xero's document arithmetic, replicated exactly and vectorised.

Money is carried as Python integers in numpy object arrays (cents, or 1e-4 units for quantities
and unit amounts), so products never overflow and no binary-float rounding leaks into a total.

Xero's rules (developer.xero.com "Rounding in Xero"; Xero community manager, discussion 66891):

* ``UnitAmount`` is sent with 4 dp (``unitdp=4``); ``Quantity`` has up to 4 dp.
* ``LineAmount = round2(Quantity * UnitAmount) - DiscountAmount``, or with a rate
  ``round2(Quantity * UnitAmount * (100 - DiscountRate) / 100)``.
* Tax per line, rounded to 2 dp, then summed: Exclusive ``round2(LineAmount * rate / 100)``;
  Inclusive ``round2(LineAmount * rate / (100 + rate))``; NoTax 0.
* Rounding mode: half away from zero. Xero's staff answer "2.165 rounded up to 2.17 and 2.164
  rounded down to 2.16" (community discussion 66891) is half-up; for negative lines we mirror it
  (half away from zero), which is what Xero's .NET stack does with MidpointRounding.AwayFromZero.
  A third-party page claims banker's rounding but its own example rounds 0.16587 up; we follow Xero.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Literal

import numpy as np
import pandas as pd

LineAmountTypes = Literal["Exclusive", "Inclusive", "NoTax"]

CENT = 100  # units per currency unit for 2 dp amounts
U4 = 10_000  # units per unit for 4 dp quantities and unit amounts
RATE = 10_000  # tax/discount rates carried as percent * 10_000


def div_round(num: np.ndarray | int, den: np.ndarray | int) -> np.ndarray:
    """Integer division rounded half away from zero (den > 0). Works on object arrays of ints."""
    num = np.asarray(num, dtype=object)
    den = np.asarray(den, dtype=object)
    mag = (2 * np.abs(num) + den) // (2 * den)
    return np.where(num < 0, -mag, mag).astype(object)


def _snap(values: pd.Series | np.ndarray | list[Any], dp: int) -> tuple[np.ndarray, np.ndarray]:
    """Numbers (float/int/str/Decimal/None) -> (ints in 10^-dp units rounded half away, valid mask)."""
    s = pd.Series(values, copy=False) if not isinstance(values, pd.Series) else values
    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
        numeric = pd.to_numeric(s, errors="coerce")
        # Decimal / str inputs keep their exact decimal value: convert those one by one.
        if s.dtype == object and s.map(lambda v: isinstance(v, (Decimal, str))).any():
            out = np.empty(len(s), dtype=object)
            ok = np.zeros(len(s), dtype=bool)
            q = Decimal(1).scaleb(-dp)
            for i, v in enumerate(s.tolist()):
                try:
                    d = Decimal(str(v)) if v is not None and v == v else None
                except InvalidOperation:
                    d = None
                if d is None or not d.is_finite():
                    out[i] = 0
                    continue
                out[i] = int(d.quantize(q, rounding=ROUND_HALF_UP).scaleb(dp))
                ok[i] = True
            return out, ok
        s = numeric
    arr = s.to_numpy(dtype="float64", na_value=np.nan)
    ok = np.isfinite(arr)
    scaled = np.where(ok, arr, 0.0) * (10.0**dp)
    # The float product carries noise (1.005 * 100 = 100.49999...); decimal inputs have few digits,
    # so snapping to 6 decimals first recovers the intended value before rounding half away.
    scaled = np.round(scaled, 6)
    ints = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    return ints.astype(np.int64).astype(object), ok


def to_cents(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Amounts -> integer cents (half away from zero) and a valid mask."""
    return _snap(values, 2)


def to_units4(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Quantities / unit amounts -> integer 1e-4 units and a valid mask."""
    return _snap(values, 4)


def to_rate(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Percentages -> integer percent * 10_000."""
    return _snap(values, 4)


def from_units(units: np.ndarray, dp: int) -> np.ndarray:
    """Integer units -> floats for JSON payloads (exact for the magnitudes money takes)."""
    # int -> float is exact below 2**53 and IEEE division is correctly rounded, so 1234 / 100 is
    # the same double as float("12.34").
    return np.asarray(units, dtype="float64") / float(10**dp)


def line_amounts(
    qty4: np.ndarray, unit4: np.ndarray, discount_cents: np.ndarray, discount_rate: np.ndarray | None = None
) -> np.ndarray:
    """Xero LineAmount in cents. ``discount_rate`` (percent*10_000, or None) wins where non-zero."""
    gross8 = np.asarray(qty4, dtype=object) * np.asarray(unit4, dtype=object)  # 1e-8 units
    by_amount = div_round(gross8, 10**6) - np.asarray(discount_cents, dtype=object)
    if discount_rate is None:
        return by_amount
    rate = np.asarray(discount_rate, dtype=object)
    by_rate = div_round(gross8 * (100 * RATE - rate), 10**6 * 100 * RATE)
    return np.where(rate != 0, by_rate, by_amount).astype(object)


def line_tax(amount_cents: np.ndarray, rate: np.ndarray, mode: LineAmountTypes) -> np.ndarray:
    """Per-line tax in cents, rounded half away from zero (rate = percent * 10_000)."""
    amount = np.asarray(amount_cents, dtype=object)
    rate = np.asarray(rate, dtype=object)
    if mode == "NoTax":
        return np.zeros(len(amount), dtype=object)
    if mode == "Inclusive":
        return div_round(amount * rate, 100 * RATE + rate)
    return div_round(amount * rate, 100 * RATE)


def document_totals(
    doc_keys: np.ndarray, amount_cents: np.ndarray, tax_cents: np.ndarray, mode: LineAmountTypes
) -> pd.DataFrame:
    """SubTotal, TotalTax, Total in cents per document key (Xero: sum of rounded line values)."""
    frame = pd.DataFrame({"doc": doc_keys, "amount": amount_cents, "tax": tax_cents})
    sums = frame.groupby("doc", sort=False).agg(amount=("amount", "sum"), tax=("tax", "sum"))
    if mode == "Inclusive":
        sums["total"] = sums["amount"]
        sums["subtotal"] = sums["amount"] - sums["tax"]
    else:
        sums["subtotal"] = sums["amount"]
        sums["total"] = sums["amount"] + sums["tax"]
    return sums[["subtotal", "tax", "total"]]


def allocate(doc_keys: np.ndarray, weights: np.ndarray, totals_by_doc: pd.Series) -> np.ndarray:
    """Split each document's integer total across its lines pro rata to ``weights``.

    Largest-remainder method: shares are integers, sum exactly to the total, and ties go to the
    earlier line, so the split is deterministic. A document whose weights sum to 0 gets it all on
    its first line.
    """
    n = len(doc_keys)
    if n == 0:
        return np.zeros(0, dtype=object)
    frame = pd.DataFrame({"doc": doc_keys, "w": np.asarray(weights, dtype=object), "pos": np.arange(n)})
    frame["w"] = frame["w"].map(lambda v: max(int(v), 0))
    frame["T"] = frame["doc"].map(totals_by_doc).fillna(0).map(int)
    frame["W"] = frame.groupby("doc", sort=False)["w"].transform("sum")
    first = frame.groupby("doc", sort=False)["pos"].transform("min") == frame["pos"]
    zero_w = frame["W"] == 0
    w = frame["w"].to_numpy(dtype=object)
    T = frame["T"].to_numpy(dtype=object)
    W = np.where(zero_w, 1, frame["W"].to_numpy(dtype=object)).astype(object)
    w = np.where(zero_w, np.where(first, 1, 0), w).astype(object)
    sign = np.where(T < 0, -1, 1).astype(object)
    absT = np.abs(T)
    prod = absT * w
    base = prod // W
    rem = prod % W
    frame["base"] = base
    frame["rem"] = rem
    leftover = frame["T"].abs() - frame.groupby("doc", sort=False)["base"].transform("sum")
    order = frame.sort_values(["doc", "rem", "pos"], ascending=[True, False, True], kind="stable")
    rank = order.groupby("doc", sort=False).cumcount()
    bump = pd.Series(0, index=frame.index, dtype=object)
    bump.loc[order.index] = (rank.to_numpy() < leftover.loc[order.index].to_numpy(dtype=object)).astype(int)
    return (sign * (base + bump.to_numpy(dtype=object))).astype(object)


def exclusive_share(gross_share_cents: np.ndarray, rate: np.ndarray) -> np.ndarray:
    """The tax-exclusive part of a tax-inclusive amount: round2(g * 100 / (100 + rate))."""
    g = np.asarray(gross_share_cents, dtype=object)
    r = np.asarray(rate, dtype=object)
    return div_round(g * (100 * RATE), 100 * RATE + r)


def decimal_round2(value: Decimal) -> Decimal:
    """Scalar helper with the same rounding mode (for messages and tests)."""
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
