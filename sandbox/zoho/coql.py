"""COQL (``POST /crm/v8/coql``): a parser and evaluator for Zoho's SELECT dialect.

Supported: ``select col, Lookup.Field from Module where ... order by col asc|desc limit o, n``
(also ``limit n offset o``), the operators ``= != < > <= >= in, not in, like, not like, between,
not between, is null, is not null``, ``and`` / ``or`` with parentheses. Zoho's own rules (Kaizen #171,
COQL docs): a WHERE clause is required; a group holds at most two criteria, so three must be nested
``((a and b) and c)``; a quote inside a string is escaped by doubling it (``'O''Brien'``), the backslash
is an ordinary character; reserved words used as column names are quoted. Limits (notes §3.7): at
most 2,000 rows a call, LIMIT 200 by default, offset + limit <= 100,000. Aggregates and GROUP BY are
not emulated (answered INVALID_QUERY saying so).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sandbox.zoho.org import Org
from sandbox.zoho.records import RowView, parse_datetime, render_row, render_value
from sandbox.zoho.schema import MODULES, SUBFORM_PARENT, FieldDef

MAX_LIMIT = 2000
DEFAULT_LIMIT = 200
MAX_REACH = 100_000
KEYWORDS = {"select", "from", "where", "order", "by", "asc", "desc", "limit", "offset", "and", "or", "not",
            "in", "like", "between", "is", "null", "true", "false", "group", "as", "having"}
AGGREGATES = {"count", "sum", "min", "max", "avg"}


class CoqlError(Exception):
    """A 400 answer in Zoho's COQL error shape."""

    def __init__(self, code: str, message: str, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.body = {"code": code, "details": details, "message": message, "status": "error"}


@dataclass
class Token:
    kind: str  # word, string, number, op, eof
    text: str
    value: Any
    pos: int
    quoted: bool = False


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>-?\d+(?:\.\d+)?(?![A-Za-z_]))
  | (?P<word>[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)*)
  | (?P<op><=|>=|!=|<>|=|<|>|\(|\)|,|\*)
""", re.VERBOSE)


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        ch = text[pos]
        if ch in ("'", '"'):
            # Zoho escapes a quote inside a string by doubling it (Kaizen #171).
            end = pos + 1
            out = []
            while True:
                if end >= len(text):
                    raise syntax(text, pos, text[pos:pos + 20])
                if text[end] == ch:
                    if end + 1 < len(text) and text[end + 1] == ch:
                        out.append(ch)
                        end += 2
                        continue
                    break
                out.append(text[end])
                end += 1
            tokens.append(Token("string", text[pos:end + 1], "".join(out), pos, quoted=True))
            pos = end + 1
            continue
        m = _TOKEN.match(text, pos)
        if m is None:
            raise syntax(text, pos, text[pos:pos + 20])
        kind = m.lastgroup or "ws"
        if kind != "ws":
            raw = m.group(0)
            value: Any = raw
            if kind == "number":
                value = float(raw) if "." in raw else int(raw)
            tokens.append(Token(kind, raw, value, pos))
        pos = m.end()
    tokens.append(Token("eof", "", None, len(text)))
    return tokens


def syntax(text: str, pos: int, near: str) -> CoqlError:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return CoqlError("SYNTAX_ERROR", "unexpected token", {"line": line, "column": column, "near": near or "<end>"})


# --- AST -------------------------------------------------------------------------------------------
@dataclass
class Column:
    name: str          # as written (the output key)
    pos: int


@dataclass
class Predicate:
    column: Column
    op: str
    values: list[Any] = field(default_factory=list)


@dataclass
class Group:
    op: str | None      # "and" / "or" / None for a single term
    items: list[Any]


@dataclass
class Query:
    columns: list[Column]
    module: str
    where: Any
    order: list[tuple[Column, bool]]
    limit: int
    offset: int


class Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def next(self) -> Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def is_kw(self, *words: str) -> bool:
        t = self.tok
        return t.kind == "word" and not t.quoted and t.text.lower() in words

    def expect_kw(self, word: str) -> None:
        if not self.is_kw(word):
            raise self.error()
        self.next()

    def expect_op(self, op: str) -> None:
        if self.tok.kind != "op" or self.tok.text != op:
            raise self.error()
        self.next()

    def error(self) -> CoqlError:
        return syntax(self.text, self.tok.pos, self.tok.text)

    def parse(self) -> Query:
        self.expect_kw("select")
        columns = [self.select_column()]
        while self.tok.kind == "op" and self.tok.text == ",":
            self.next()
            columns.append(self.select_column())
        self.expect_kw("from")
        if self.tok.kind != "word" or self.tok.text.lower() in KEYWORDS:
            raise self.error()
        module = self.next().text
        if not self.is_kw("where"):
            if self.tok.kind == "eof" or self.is_kw("order", "limit", "group"):
                raise CoqlError("SYNTAX_ERROR", "missing clause", {"clause": "where"})
            raise self.error()
        self.next()
        where = self.condition()
        if self.is_kw("group", "having"):
            raise CoqlError("INVALID_QUERY", "GROUP BY is not emulated by the sandbox",
                            {"clause": "group by", "reason": "not emulated"})
        order: list[tuple[Column, bool]] = []
        if self.is_kw("order"):
            self.next()
            self.expect_kw("by")
            while True:
                col = self.column_ref()
                ascending = True
                if self.is_kw("asc", "desc"):
                    ascending = self.next().text.lower() == "asc"
                order.append((col, ascending))
                if self.tok.kind == "op" and self.tok.text == ",":
                    self.next()
                    continue
                break
        limit, offset = DEFAULT_LIMIT, 0
        if self.is_kw("limit"):
            self.next()
            first = self.integer("limit")
            if self.tok.kind == "op" and self.tok.text == ",":
                self.next()
                offset, limit = first, self.integer("limit")
            elif self.is_kw("offset"):
                self.next()
                limit, offset = first, self.integer("offset")
            else:
                limit = first
        if self.tok.kind != "eof":
            raise self.error()
        return Query(columns, module, where, order, limit, offset)

    def integer(self, clause: str) -> int:
        t = self.tok
        if t.kind != "number" or not isinstance(t.value, int):
            raise CoqlError("INVALID_QUERY", f"{clause} given seems to be invalid", {clause: t.text})
        self.next()
        return int(t.value)

    def select_column(self) -> Column:
        t = self.tok
        if t.kind == "op" and t.text == "*":
            raise self.error()
        if t.kind == "word" and t.text.lower() in AGGREGATES and self.tokens[self.i + 1].text == "(":
            raise CoqlError("INVALID_QUERY", "aggregate functions are not emulated by the sandbox",
                            {"column_name": t.text, "reason": "not emulated"})
        col = self.column_ref(allow_quoted=True)
        if self.is_kw("as"):
            raise CoqlError("INVALID_QUERY", "aliases are not emulated by the sandbox",
                            {"column_name": col.name, "reason": "not emulated"})
        return col

    def column_ref(self, allow_quoted: bool = False) -> Column:
        t = self.tok
        if t.kind == "word" and t.text.lower() not in KEYWORDS:
            self.next()
            return Column(t.text, t.pos)
        if t.kind == "string" and allow_quoted:
            # A reserved word used as a column name is quoted (Kaizen #171).
            self.next()
            return Column(t.value, t.pos)
        raise self.error()

    def condition(self) -> Any:
        left = self.term()
        if self.is_kw("and", "or"):
            op = self.next().text.lower()
            right = self.term()
            if self.is_kw("and", "or"):
                # More than two criteria must be grouped in pairs: ((a and b) and c).
                raise self.error()
            return Group(op, [left, right])
        return left

    def term(self) -> Any:
        if self.tok.kind == "op" and self.tok.text == "(":
            self.next()
            inner = self.condition()
            self.expect_op(")")
            return inner
        return self.predicate()

    def predicate(self) -> Predicate:
        col = self.column_ref(allow_quoted=False)
        t = self.tok
        if t.kind == "op" and t.text in ("=", "!=", "<>", "<", ">", "<=", ">="):
            self.next()
            return Predicate(col, "!=" if t.text == "<>" else t.text, [self.value()])
        negate = False
        if self.is_kw("is"):
            self.next()
            if self.is_kw("not"):
                self.next()
                negate = True
            self.expect_kw("null")
            return Predicate(col, "is not null" if negate else "is null")
        if self.is_kw("not"):
            self.next()
            negate = True
        if self.is_kw("in"):
            self.next()
            self.expect_op("(")
            values = [self.value()]
            while self.tok.kind == "op" and self.tok.text == ",":
                self.next()
                values.append(self.value())
            self.expect_op(")")
            return Predicate(col, "not in" if negate else "in", values)
        if self.is_kw("like"):
            self.next()
            if self.tok.kind != "string":
                raise self.error()
            return Predicate(col, "not like" if negate else "like", [self.next().value])
        if self.is_kw("between"):
            self.next()
            low = self.value()
            self.expect_kw("and")
            high = self.value()
            return Predicate(col, "not between" if negate else "between", [low, high])
        raise self.error()

    def value(self) -> Any:
        t = self.tok
        if t.kind in ("string", "number"):
            self.next()
            return t.value
        if self.is_kw("true", "false"):
            self.next()
            return t.text.lower() == "true"
        raise self.error()


# --- evaluation ------------------------------------------------------------------------------------
@dataclass
class Source:
    """What a query reads: a module's records or a subform module's rows."""

    module: str
    records: Any
    fields: dict[str, FieldDef]
    is_rows: bool


def invalid_column(name: str, clause: str) -> CoqlError:
    return CoqlError("INVALID_QUERY", "column given seems to be invalid", {"column_name": name, "clause": clause})


class Evaluator:
    def __init__(self, org: Org, source: Source, views: Callable[[str], RowView]) -> None:
        self.org = org
        self.source = source
        self.views = views

    def field(self, name: str, clause: str) -> tuple[FieldDef | None, FieldDef | None, str | None]:
        """(field, target field for ``Lookup.Field``, target module)."""
        head, _, tail = name.partition(".")
        if head == "id" and not tail:
            return None, None, None
        f = self.source.fields.get(head)
        if f is None or f.data_type in ("subform", "jsonarray"):
            raise invalid_column(name, clause)
        if not tail:
            return f, None, None
        if f.data_type == "ownerlookup":
            if tail not in ("id", "name", "email", "full_name"):
                raise invalid_column(name, clause)
            return f, None, "users"
        if f.data_type != "lookup" or f.lookup is None or "." in tail:
            raise invalid_column(name, clause)
        if tail == "id":
            return f, None, f.lookup
        target = self.org.field(f.lookup, tail)
        if target is None or target.data_type in ("subform", "jsonarray"):
            raise invalid_column(name, clause)
        return f, target, f.lookup

    def getter(self, name: str, clause: str) -> tuple[Callable[[dict[str, Any]], Any], str]:
        """A function returning the comparable (internal) value, and its data type."""
        f, target, tmod = self.field(name, clause)
        if f is None:
            return (lambda r: r["id"]), "id"
        api = f.api_name
        if tmod is None:
            if self.source.module == "Contacts" and api == "Full_Name":
                return (lambda r: " ".join(p for p in (r.get("First_Name"), r.get("Last_Name")) if p) or None), "text"
            return (lambda r: r.get(api)), f.data_type
        tail = name.partition(".")[2]
        if tmod == "users":
            user = self.org.user
            attr = {"id": "id", "name": "full_name", "full_name": "full_name", "email": "email"}[tail]
            return (lambda r: user[attr] if r.get(api) == user["id"] else None), ("id" if tail == "id" else "text")
        if target is None:
            return (lambda r: r.get(api)), "id"
        org, tname = self.org, target.api_name

        def deref(r: dict[str, Any]) -> Any:
            rid = r.get(api)
            rec = org.get(tmod, rid) if rid else None
            if rec is None:
                return None
            if tmod == "Contacts" and tname == "Full_Name":
                return " ".join(p for p in (rec.get("First_Name"), rec.get("Last_Name")) if p) or None
            return rec.get(tname)
        return deref, target.data_type

    def literal(self, value: Any, dtype: str, pred: Predicate) -> Any:
        """A literal converted to the column's internal form (INVALID_QUERY when it cannot be)."""
        bad = CoqlError("INVALID_QUERY", "value given seems to be invalid for the column",
                        {"column_name": pred.column.name, "value": str(value)})
        if dtype in ("id", "lookup", "ownerlookup"):
            if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.isdigit())):
                raise bad
            return str(value)
        if dtype in ("integer", "bigint", "double", "currency", "percent"):
            if isinstance(value, bool):
                raise bad
            if isinstance(value, str):
                try:
                    value = float(value)
                except ValueError:
                    raise bad from None
            return value
        if dtype == "boolean":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("true", "false"):
                return value.lower() == "true"
            raise bad
        if dtype == "datetime":
            stamp = parse_datetime(value)
            if stamp is None:
                raise bad
            return stamp
        if dtype == "date":
            try:
                date.fromisoformat(str(value))
            except ValueError:
                raise bad from None
            return str(value)
        if not isinstance(value, str):
            value = str(value)
        return value.casefold()

    def compile(self, node: Any) -> Callable[[dict[str, Any]], bool]:
        if isinstance(node, Group):
            parts = [self.compile(n) for n in node.items]
            if node.op == "and":
                return lambda r: all(p(r) for p in parts)
            return lambda r: any(p(r) for p in parts)
        pred: Predicate = node
        get, dtype = self.getter(pred.column.name, "where")
        op = pred.op
        text = dtype not in ("id", "lookup", "ownerlookup", "integer", "bigint", "double", "currency", "percent",
                             "boolean", "datetime", "date")
        if op in ("like", "not like") and not text:
            raise CoqlError("INVALID_QUERY", "invalid operator found",
                            {"column_name": pred.column.name, "operator": op,
                             "reason": "the operator is not supported for this column"})
        if dtype == "id":
            def key(v: Any) -> Any:
                return int(v) if v is not None else None
        elif text:
            def key(v: Any) -> Any:
                if v is None or v == "":
                    return None
                if isinstance(v, list):
                    return [x.casefold() for x in v]
                return str(v).casefold()
        else:
            def key(v: Any) -> Any:
                return v

        if op in ("is null", "is not null"):
            want_null = op == "is null"
            return lambda r: (key(get(r)) is None or key(get(r)) == []) == want_null
        values = [self.literal(v, dtype, pred) for v in pred.values]
        if dtype == "id":
            values = [int(v) for v in values]
        if op in ("like", "not like"):
            pattern = re.compile("^" + ".*".join(re.escape(p) for p in values[0].split("%")) + "$", re.DOTALL)
            positive = op == "like"

            def like(r: dict[str, Any]) -> bool:
                v = key(get(r))
                return v is not None and bool(pattern.match(v)) == positive
            return like
        if op in ("in", "not in"):
            members = set(values)
            positive = op == "in"

            def within(r: dict[str, Any]) -> bool:
                v = key(get(r))
                if v is None:
                    return False
                hit = bool(members & set(v)) if isinstance(v, list) else v in members
                return hit == positive
            return within
        if op in ("between", "not between"):
            low, high = values
            positive = op == "between"

            def between(r: dict[str, Any]) -> bool:
                v = key(get(r))
                return v is not None and (low <= v <= high) == positive
            return between
        (value,) = values
        compare: Callable[[Any, Any], bool] = {
            "=": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
            ">": lambda a, b: a > b, "<=": lambda a, b: a <= b, ">=": lambda a, b: a >= b,
        }[op]
        if dtype == "multiselectpicklist" and op in ("=", "!="):
            positive = op == "="

            def contains(r: dict[str, Any]) -> bool:
                v = key(get(r))
                return v is not None and (value in v) == positive
            return contains

        def check(r: dict[str, Any]) -> bool:
            v = key(get(r))
            if v is None:
                return False
            try:
                return compare(v, value)
            except TypeError:
                return False
        return check

    def output(self, col: Column) -> Callable[[dict[str, Any]], Any]:
        """How a selected column is rendered: lookups as ``{"id"}``, ``Lookup.Field`` as the target's value."""
        f, target, tmod = self.field(col.name, "select")
        org = self.org
        if f is None:
            return lambda r: r["id"]
        if self.source.is_rows:
            if f.api_name == "Parent_Id":
                if tmod is None:
                    return lambda r: {"id": r["Parent_Id"]}
            elif tmod is None:
                name = f.api_name
                if f.data_type in ("datetime",):
                    return lambda r: org.iso(r.get(name))
                return lambda r: render_row(org, r, [name]).get(name)
        if tmod is None:
            if f.data_type in ("lookup", "ownerlookup"):
                api = f.api_name
                return lambda r: {"id": r[api]} if r.get(api) else None
            module = self.source.module
            return lambda r: render_value(org, module, f, r)
        get, _ = self.getter(col.name, "select")
        if target is None:
            return get
        tm = tmod

        def joined(r: dict[str, Any]) -> Any:
            rid = r.get(f.api_name)
            rec = org.get(tm, rid) if rid else None
            return render_value(org, tm, target, rec) if rec is not None else None
        return joined


def parse(text: Any) -> Query:
    """Parse and check a query (syntax, limits, module) without reading any record."""
    if not isinstance(text, str) or not text.strip():
        raise CoqlError("MANDATORY_NOT_FOUND", "required field not found", {"api_name": "select_query"})
    query = Parser(text).parse()
    if query.limit < 1:
        raise CoqlError("INVALID_QUERY", "limit given seems to be invalid", {"limit": str(query.limit)})
    if query.limit > MAX_LIMIT:
        raise CoqlError("LIMIT_EXCEEDED", "limit exceeded", {"clause": "limit", "limit": MAX_LIMIT})
    if query.offset + query.limit > MAX_REACH:
        raise CoqlError("LIMIT_EXCEEDED", "limit exceeded", {"clause": "offset", "limit": MAX_REACH})
    module = next((m for m in MODULES if m.lower() == query.module.lower()), None)
    if module is None:
        raise CoqlError("INVALID_MODULE", "the given module is not supported in api", {})
    query.module = module
    return query


def run(org: Org, query: Query, views: Callable[[str], RowView]) -> tuple[list[dict[str, Any]], bool]:
    """Evaluate a parsed query: (rows, more_records)."""
    module = query.module
    fields = {f.api_name: f for f in org.fields(module)}
    if module in SUBFORM_PARENT:
        source = Source(module, views(module).table.values(), fields, True)
    else:
        source = Source(module, org.table(module).values(), fields, False)
    ev = Evaluator(org, source, views)
    outputs = [(c.name, ev.output(c)) for c in query.columns]
    seen: set[str] = set()
    for name, _ in outputs:
        if name in seen:
            raise CoqlError("DUPLICATE_DATA", "duplicate column found", {"column_name": name})
        seen.add(name)
    match = ev.compile(query.where)
    order = [(ev.getter(c.name, "order by")[0], asc) for c, asc in query.order] or [((lambda r: r["id"]), True)]
    rows = [r for r in source.records if match(r)]
    for get, ascending in reversed(order):
        rows.sort(key=lambda r, g=get: _sortable(g(r)), reverse=not ascending)
    page = rows[query.offset:query.offset + query.limit]
    more = len(rows) > query.offset + query.limit
    return [{name: out(r) for name, out in outputs} for r in page], more


def _sortable(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, str):
        return (1, int(value)) if value.isdigit() and len(value) >= 15 else (2, value.casefold())
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (1, value)
    return (3, str(value))


__all__ = ["DEFAULT_LIMIT", "MAX_LIMIT", "CoqlError", "Query", "parse", "run", "tokenize"]
