"""The ``where`` and ``order`` query parameters: a small real parser for Xero's filter language.

Grammar (what Xero's examples and SDKs send; notes §7):
    expr    := or
    or      := and (("OR" | "||") and)*
    and     := unary (("AND" | "&&") unary)*
    unary   := ("NOT" | "!") unary | "(" expr ")" | compare
    compare := path [op value] | path "." Method "(" value ")"      (Contains, StartsWith, EndsWith)
    path    := Name ("." Name)*          e.g. Contact.ContactID
    value   := "text" (backslash escapes; single quotes inside are plain: "O'Brien")
             | number | true | false | null | Guid("…") | DateTime(y, m, d[, h, mi, s])
             | DateTime.Parse("…")
String comparisons ignore case, like Xero's. A syntax error answers 400 (see :class:`WhereError`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

Getter = Callable[[dict[str, Any], str], Any]


class WhereError(ValueError):
    """The filter could not be parsed."""


_TOKEN = re.compile(r"""
    \s*(?:
      (?P<str>"(?:[^"\\]|\\.)*")
    | (?P<num>-?\d+(?:\.\d+)?)
    | (?P<op>==|!=|>=|<=|>|<|&&|\|\||!|\(|\)|,|\.)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    )""", re.VERBOSE)


@dataclass(frozen=True)
class _Tok:
    kind: str
    text: str


def _tokens(text: str) -> list[_Tok]:
    out: list[_Tok] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise WhereError(f"unexpected character at {pos}: {text[pos:pos + 10]!r}")
        pos = m.end()
        kind = m.lastgroup or ""
        out.append(_Tok(kind, m.group(kind)))
        # trailing whitespace
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def _unquote(raw: str) -> str:
    body = raw[1:-1]
    return re.sub(r"\\(.)", lambda m: m.group(1), body)


Node = Callable[[dict[str, Any]], bool]


class _Parser:
    def __init__(self, text: str, getter: Getter) -> None:
        self.toks = _tokens(text)
        self.i = 0
        self.get = getter

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise WhereError("unexpected end of filter")
        self.i += 1
        return tok

    def expect(self, text: str) -> None:
        tok = self.take()
        if tok.text != text:
            raise WhereError(f"expected {text!r}, got {tok.text!r}")

    def is_word(self, *words: str) -> bool:
        tok = self.peek()
        return tok is not None and tok.text.upper() in words and tok.kind in ("name", "op")

    def parse(self) -> Node:
        node = self.or_()
        if self.peek() is not None:
            raise WhereError(f"unexpected {self.peek().text!r}")  # type: ignore[union-attr]
        return node

    def or_(self) -> Node:
        parts = [self.and_()]
        while self.is_word("OR", "||"):
            self.take()
            parts.append(self.and_())
        return parts[0] if len(parts) == 1 else (lambda d, p=tuple(parts): any(f(d) for f in p))

    def and_(self) -> Node:
        parts = [self.unary()]
        while self.is_word("AND", "&&"):
            self.take()
            parts.append(self.unary())
        return parts[0] if len(parts) == 1 else (lambda d, p=tuple(parts): all(f(d) for f in p))

    def unary(self) -> Node:
        if self.is_word("NOT", "!"):
            self.take()
            inner = self.unary()
            return lambda d: not inner(d)
        tok = self.peek()
        if tok is not None and tok.text == "(":
            self.take()
            node = self.or_()
            self.expect(")")
            return node
        return self.compare()

    def path(self) -> tuple[str, str | None]:
        tok = self.take()
        if tok.kind != "name":
            raise WhereError(f"expected a field name, got {tok.text!r}")
        parts = [tok.text]
        method = None
        while self.peek() is not None and self.peek().text == ".":  # type: ignore[union-attr]
            self.take()
            name = self.take()
            if name.kind != "name":
                raise WhereError("expected a name after '.'")
            nxt = self.peek()
            if nxt is not None and nxt.text == "(":
                method = name.text
                break
            parts.append(name.text)
        return ".".join(parts), method

    def value(self) -> Any:
        tok = self.take()
        if tok.kind == "str":
            return _unquote(tok.text)
        if tok.kind == "num":
            return Decimal(tok.text)
        if tok.kind == "name":
            word = tok.text
            low = word.lower()
            if low == "true":
                return True
            if low == "false":
                return False
            if low == "null":
                return None
            if word == "Guid":
                self.expect("(")
                inner = self.take()
                if inner.kind != "str":
                    raise WhereError("Guid() takes a quoted value")
                self.expect(")")
                return _unquote(inner.text).lower()
            if word == "DateTime":
                nxt = self.peek()
                if nxt is not None and nxt.text == ".":
                    self.take()
                    if self.take().text != "Parse":
                        raise WhereError("only DateTime.Parse is supported")
                    self.expect("(")
                    inner = self.take()
                    self.expect(")")
                    return _as_datetime(_unquote(inner.text))
                self.expect("(")
                nums: list[int] = []
                while True:
                    n = self.take()
                    if n.kind != "num":
                        raise WhereError("DateTime() takes numbers")
                    nums.append(int(n.text))
                    sep = self.take()
                    if sep.text == ")":
                        break
                    if sep.text != ",":
                        raise WhereError("expected ',' or ')' in DateTime()")
                try:
                    return datetime(*nums)
                except (TypeError, ValueError) as exc:
                    raise WhereError(f"bad DateTime: {exc}") from exc
        raise WhereError(f"unexpected {tok.text!r} where a value was expected")

    def compare(self) -> Node:
        field, method = self.path()
        get = self.get
        if method is not None:
            self.expect("(")
            arg = self.value()
            self.expect(")")
            needle = str(arg).lower()
            m = method.lower()
            if m == "contains":
                return lambda d: needle in str(get(d, field) or "").lower()
            if m == "startswith":
                return lambda d: str(get(d, field) or "").lower().startswith(needle)
            if m == "endswith":
                return lambda d: str(get(d, field) or "").lower().endswith(needle)
            raise WhereError(f"unsupported method {method}")
        tok = self.peek()
        if tok is None or tok.text not in ("==", "!=", ">", ">=", "<", "<="):
            # A bare boolean field: IsCustomer
            return lambda d: bool(get(d, field))
        op = self.take().text
        want = self.value()
        return _comparator(field, op, want, get)


def _as_datetime(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text).replace(tzinfo=None)
    except ValueError as exc:
        raise WhereError(f"bad date {text!r}") from exc


def _norm(have: Any, want: Any) -> tuple[Any, Any]:
    """Bring the stored value and the literal to comparable types."""
    if isinstance(want, datetime):
        if isinstance(have, str) and have:
            try:
                return datetime.fromisoformat(have[:19]), want
            except ValueError:
                return None, want
        if isinstance(have, (int, float)) and not isinstance(have, bool):
            return datetime.fromtimestamp(have / 1000, tz=UTC).replace(tzinfo=None), want
        if isinstance(have, date):
            return datetime(have.year, have.month, have.day), want
        return None, want
    if isinstance(want, Decimal):
        try:
            return (Decimal(str(have)) if have is not None and not isinstance(have, bool) else None), want
        except InvalidOperation:
            return None, want
    if isinstance(want, str):
        return (str(have).lower() if have is not None else None), want.lower()
    return have, want


def _comparator(field: str, op: str, want: Any, get: Getter) -> Node:
    def node(d: dict[str, Any]) -> bool:
        have, w = _norm(get(d, field), want)
        if op == "==":
            return have == w
        if op == "!=":
            return have != w
        if have is None or w is None:
            return False
        try:
            if op == ">":
                return have > w
            if op == ">=":
                return have >= w
            if op == "<":
                return have < w
            return have <= w
        except TypeError:
            return False
    return node


def compile_where(text: str, getter: Getter) -> Node:
    """Compile a ``where`` filter into a predicate over documents read through ``getter``."""
    return _Parser(text, getter).parse()


def parse_order(text: str) -> list[tuple[str, bool]]:
    """``"Date DESC, InvoiceNumber"`` -> ``[("Date", True), ("InvoiceNumber", False)]``."""
    out: list[tuple[str, bool]] = []
    for part in text.split(","):
        words = part.split()
        if not words:
            continue
        if len(words) > 2 or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", words[0]):
            raise WhereError(f"bad order clause {part.strip()!r}")
        desc = len(words) == 2 and words[1].upper() == "DESC"
        if len(words) == 2 and words[1].upper() not in ("ASC", "DESC"):
            raise WhereError(f"bad order direction {words[1]!r}")
        out.append((words[0], desc))
    return out


def sort_docs(docs: list[dict[str, Any]], order: list[tuple[str, bool]], getter: Getter) -> list[dict[str, Any]]:
    """Stable multi-key sort; missing values sort first (ascending)."""
    for field, desc in reversed(order):
        def key(d: dict[str, Any], f: str = field) -> tuple[int, Any]:
            v = getter(d, f)
            if v is None:
                return (0, "")
            if isinstance(v, bool):
                return (1, int(v))
            if isinstance(v, (int, float, Decimal)):
                return (1, float(v))
            return (2, str(v).lower())
        docs = sorted(docs, key=key, reverse=desc)
    return docs
