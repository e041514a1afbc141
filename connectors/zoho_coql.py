"""COQL text built safely: quoted literals, checked field names, whitelisted operators.

Values never reach a query unquoted (see :func:`quote_string`), numbers must be finite, date-times
must carry an offset.
Field names must look like API names (``Account_Name.id`` for a lookup's field). Zoho wants
criteria combined two at a time — ``((a and b) and c)`` (Kaizen #171) — so :func:`all_of` and
:func:`any_of` nest pairwise. Limits: at most 2,000 rows per call and an offset below 100,000
(zoho-api-notes.md §3.7); past that, page by keyset on ``(Modified_Time, id)``.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal

MAX_ROWS_PER_CALL = 2000
MAX_OFFSET = 100_000
MAX_IN_VALUES = 50

_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)?$")
_MODULE = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_DIGITS = re.compile(r"^[0-9]+$")

#: Operators with one value on the right.
_BINARY = {"=", "!=", "<", "<=", ">", ">=", "like", "not like"}
_LIST = {"in", "not in"}
_RANGE = {"between", "not between"}
_NULL = {"is null", "is not null"}

Scalar = str | int | float | Decimal | bool | date | datetime


class Condition(str):
    """A COQL condition built by this module (a ``str`` so it can be embedded as is)."""


class _Group(Condition):
    """A parenthesised combination: embedded without another pair of parentheses."""


def identifier(name: str) -> str:
    """An API name checked to be one (no spaces, quotes, parentheses, keywords glued on)."""
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValueError(f"not a Zoho field API name: {name!r}")
    return name


def module_name(name: str) -> str:
    if not isinstance(name, str) or not _MODULE.match(name):
        raise ValueError(f"not a Zoho module API name: {name!r}")
    return name


def quote_string(value: str) -> str:
    """A COQL string literal that cannot break out of itself.

    Zoho's rules (Kaizen #171): a string is quoted with ``'`` or ``"``, a quote inside it is
    escaped by doubling it, and a backslash is an ordinary character (``\\'`` does *not* escape a
    quote). So:

    * no single quote (``Plain``, ``ends with \\``): ``'value'`` as is;
    * a single quote but no double quote (``O'Brien``): ``"O'Brien"`` — nothing to escape;
    * both quote characters: single quotes with ``'`` doubled.

    Doubling backslashes would be wrong: Zoho would read them back doubled and match nothing.
    """
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    return "'" + value.replace("'", "''") + "'"


def literal(value: Scalar) -> str:
    """One value as COQL text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("COQL date-times need an explicit UTC offset")
        return quote_string(value.isoformat(timespec="seconds"))
    if isinstance(value, date):
        return quote_string(value.isoformat())
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a finite number: {value!r}")
        return format(value, "f")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"not a finite number: {value!r}")
        return repr(value)
    if isinstance(value, str):
        return quote_string(value)
    raise TypeError(f"cannot put a {type(value).__name__} into a COQL query")


def id_literal(value: str | int) -> str:
    """A record id (Zoho ids are 64-bit numbers written as digit strings); compared unquoted."""
    text = str(value)
    if not _DIGITS.match(text):
        raise ValueError(f"not a Zoho record id: {value!r}")
    return text


def cond(field: str, op: str, value: Scalar | Sequence[Scalar] | None = None) -> Condition:
    """``field op value`` with the value quoted. ``op`` is one of ``= != < <= > >= like, not like,
    in, not in, between, not between, is null, is not null``. For ``id`` the value is an id."""
    name = identifier(field)
    op_norm = " ".join(op.lower().split())
    if op_norm in _NULL:
        if value is not None:
            raise ValueError(f"{op} takes no value")
        return Condition(f"{name} {op_norm}")
    if value is None:
        raise ValueError(f"use 'is null' / 'is not null' instead of comparing {field} with None")
    render = id_literal if name == "id" else literal
    if op_norm in _BINARY:
        if isinstance(value, list | tuple | set):
            raise ValueError(f"{op} takes one value")
        return Condition(f"{name} {op_norm} {render(value)}")  # type: ignore[arg-type]
    if op_norm in _LIST:
        values = list(value) if isinstance(value, list | tuple | set | frozenset) else None
        if not values:
            raise ValueError(f"{op} needs a non-empty list")
        if len(values) > MAX_IN_VALUES:
            raise ValueError(f"COQL allows at most {MAX_IN_VALUES} values in {op}")
        return Condition(f"{name} {op_norm} ({', '.join(render(v) for v in values)})")
    if op_norm in _RANGE:
        if not isinstance(value, list | tuple) or len(value) != 2:
            raise ValueError(f"{op} needs (low, high)")
        return Condition(f"{name} {op_norm} {render(value[0])} and {render(value[1])}")
    raise ValueError(f"unsupported COQL operator {op!r}")


def _combine(word: str, conditions: Iterable[Condition]) -> Condition:
    items = [c for c in conditions if c]
    for c in items:
        if not isinstance(c, Condition):
            raise TypeError("combine conditions built with cond()/all_of()/any_of(), not raw text")
    if not items:
        raise ValueError("no conditions to combine")
    if len(items) == 1:
        return items[0]

    def wrap(c: Condition) -> str:
        return str(c) if isinstance(c, _Group) else f"({c})"

    text = wrap(items[0])
    for c in items[1:]:
        text = f"({text} {word} {wrap(c)})"
    return _Group(text)


def all_of(*conditions: Condition) -> Condition:
    """``((a and b) and c)``: Zoho's pairwise grouping."""
    return _combine("and", conditions)


def any_of(*conditions: Condition) -> Condition:
    """``((a or b) or c)``."""
    return _combine("or", conditions)


def select(module: str, fields: Sequence[str], where: Condition | None = None, *,
           order_by: Sequence[tuple[str, str]] = (("id", "asc"),), limit: int = MAX_ROWS_PER_CALL,
           offset: int = 0) -> str:
    """``select f1, f2 from Module where … order by … limit offset, limit``.

    A ``where`` is always written (``id is not null`` when none is given): COQL requires one.
    """
    if not fields:
        raise ValueError("select needs at least one field")
    if not 1 <= limit <= MAX_ROWS_PER_CALL:
        raise ValueError(f"COQL returns 1..{MAX_ROWS_PER_CALL} rows per call")
    if offset < 0 or offset + limit > MAX_OFFSET:
        raise ValueError(f"COQL reaches at most {MAX_OFFSET} rows by offset; page by keyset instead")
    if where is not None and not isinstance(where, Condition):
        raise TypeError("where must be built with cond()/all_of()/any_of()")
    columns = ", ".join(identifier(f) for f in dict.fromkeys(fields))
    criteria = where or cond("id", "is not null")
    order = ", ".join(f"{identifier(f)} {_direction(d)}" for f, d in order_by)
    return (f"select {columns} from {module_name(module)} where {criteria}"
            + (f" order by {order}" if order else "") + f" limit {offset}, {limit}")


def _direction(d: str) -> str:
    value = d.lower()
    if value not in ("asc", "desc"):
        raise ValueError(f"sort direction must be asc or desc, not {d!r}")
    return value


def after_cursor(modified_time: datetime | str, record_id: str | int, field: str = "Modified_Time") -> Condition:
    """Keyset condition for rows after ``(modified_time, id)`` in ``order by field asc, id asc``."""
    stamp: Scalar = datetime.fromisoformat(modified_time) if isinstance(modified_time, str) else modified_time
    return any_of(cond(field, ">", stamp), all_of(cond(field, "=", stamp), cond("id", ">", record_id)))


def coql_credits(limit: int) -> int:
    """Credits a COQL call costs by its LIMIT: 1-200 -> 1, 201-1000 -> 2, 1001-2000 -> 3."""
    if limit <= 200:
        return 1
    if limit <= 1000:
        return 2
    return 3
