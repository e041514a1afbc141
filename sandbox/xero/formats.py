"""Xero's wire formats: MS-JSON dates, money rounding, envelopes and the error bodies.

Everything here is pure and cheap: handlers keep documents as plain dicts and only format at
the edge. Sources: xero-api-notes.md §4 (dates, rounding, envelopes), §4.1 (ValidationException),
the spec's examples (``DateTimeUTC: /Date(1552327126164)/``, ``UpdatedDateUTCString: ...Z``).
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

from starlette.responses import Response

PROVIDER_NAME = "zoho-xero-sync sandbox"
CENT = Decimal("0.01")
FOUR = Decimal("0.0001")
ZERO = Decimal(0)

_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")


# --- money ---------------------------------------------------------------------------------------
def dec(value: Any) -> Decimal:
    """A Decimal from JSON input (numbers or numeric strings); raises ValueError when not numeric."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or value is None:
        raise ValueError("not a number")
    try:
        return Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise ValueError("not a number") from exc


def q2(value: Decimal) -> Decimal:
    """Round half away from zero to 2 dp (Xero's per-line rounding; notes §5.6)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def q4(value: Decimal) -> Decimal:
    return value.quantize(FOUR, rounding=ROUND_HALF_UP)


# --- dates ---------------------------------------------------------------------------------------
def ms(dt: datetime) -> int:
    return round(dt.timestamp() * 1000)


def ms_date_time(epoch_ms: int, offset: bool = True) -> str:
    """``/Date(1539993600000+0000)/`` (``offset=False`` gives the envelope's ``/Date(…)/``)."""
    return f"/Date({epoch_ms}+0000)/" if offset else f"/Date({epoch_ms})/"


@lru_cache(maxsize=4096)
def ms_date(day: str) -> str:
    """A calendar date ``YYYY-MM-DD`` as Xero's MS-JSON date (midnight UTC)."""
    d = date.fromisoformat(day)
    epoch = int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp()) * 1000
    return f"/Date({epoch}+0000)/"


@lru_cache(maxsize=4096)
def date_string(day: str) -> str:
    """``DateString``: ``2018-10-20T00:00:00``."""
    return f"{day}T00:00:00"


def utc_string(epoch_ms: int) -> str:
    """``UpdatedDateUTCString``: ``2019-03-11T17:58:46Z``."""
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_input_date(value: Any) -> str | None:
    """A document date as sent by clients -> ``YYYY-MM-DD``; None when unreadable.

    Accepts ``2019-03-11``, ``2019-03-11T00:00:00`` (with or without an offset, the calendar day
    is kept as written, like Xero does) and ``/Date(1552262400000+0000)/``.
    """
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip()
    m = _MS_DATE.match(text)
    if m:
        return datetime.fromtimestamp(int(m.group(1)) / 1000, tz=UTC).date().isoformat()
    try:
        return date.fromisoformat(text[:10]).isoformat()
    except ValueError:
        return None


def parse_modified_since(value: str | None) -> int | None:
    """``If-Modified-Since`` -> epoch ms; accepts ``Z``, ``+00:00``/any offset, fractional seconds,
    naive ISO (taken as UTC) and the RFC 1123 HTTP-date form. None when absent or unreadable."""
    if not value or not value.strip():
        return None
    text = value.strip()
    try:
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        # Python 3.11 reads up to 6 fractional digits; .NET clients send 7.
        text = re.sub(r"(\.\d{6})\d+", r"\1", text)
        dt = datetime.fromisoformat(text)
    except ValueError:
        try:
            dt = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return ms(dt)


def lock_date_text(day: str) -> str:
    """``31-Jul-2013``, as in Xero's lock-date message."""
    return date.fromisoformat(day).strftime("%d-%b-%Y")


# --- JSON answers --------------------------------------------------------------------------------
def new_id() -> str:
    return str(uuid.uuid4())


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """Serialise with the stdlib (no jsonable_encoder walk: a page of 1000 invoices stays fast)."""
    return Response(json.dumps(body, separators=(",", ":"), ensure_ascii=False), status_code=status,
                    media_type="application/json; charset=utf-8", headers=headers)


def envelope(key: str, items: list[dict[str, Any]], now_ms: int, *,
             pagination: dict[str, int] | None = None, warnings: list[dict[str, str]] | None = None,
             provider: str = PROVIDER_NAME) -> dict[str, Any]:
    """Xero's response envelope ``{Id, Status, ProviderName, DateTimeUTC, pagination?, Warnings?, <key>}``."""
    body: dict[str, Any] = {"Id": new_id(), "Status": "OK", "ProviderName": provider,
                            "DateTimeUTC": ms_date_time(now_ms, offset=False)}
    if pagination is not None:
        body["pagination"] = pagination
    if warnings:
        body["Warnings"] = warnings
    body[key] = items
    return body


def validation_exception(elements: list[dict[str, Any]]) -> dict[str, Any]:
    """The 400 body of SPEC components.schemas.Error (ErrorNumber 10)."""
    return {"ErrorNumber": 10, "Type": "ValidationException",
            "Message": "A validation exception occurred", "Elements": elements}


def problem(status: int, title: str, detail: str) -> dict[str, Any]:
    """The problem-details body Xero sends for 401/403/500 (GH pyxero#337, xero-node#432, #510)."""
    return {"Type": None, "Title": title, "Status": status, "Detail": detail,
            "Instance": new_id(), "Extensions": {}}


NOT_FOUND_TEXT = "The resource you're looking for cannot be found"


def not_found() -> Response:
    """Xero's 404: a plain-text sentence, not JSON (GH Xero-NetStandard#413)."""
    return Response(NOT_FOUND_TEXT, status_code=404, media_type="text/plain; charset=utf-8")


def error_500() -> dict[str, Any]:
    return {"Title": "An error occurred",
            "Detail": "An error occurred in Xero. Check the API Status page http://status.developer.xero.com "
                      "for current service status.",
            "Status": 500, "Instance": new_id()}


def error_503() -> dict[str, Any]:
    return {"Title": "Service Unavailable",
            "Detail": "The Xero API is temporarily unavailable. Please try again later.",
            "Status": 503, "Instance": new_id()}
