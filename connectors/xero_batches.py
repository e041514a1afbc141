"""Batch writes to Xero: the entity table, batch splitting, Idempotency-Keys, results by key.

Pure helpers (no network) used by :class:`connectors.xero.XeroClient`:

- :data:`ENTITIES`: per Xero collection, its id and number fields and the fields we may pair a
  returned element with the element we sent (IDs, ContactNumber, Item Code, InvoiceNumber, Url,
  Reference ...). Xero does not document that a batch answer keeps the request's order, so
  results are paired by those fields, never by position.
- :func:`split_batches`: at most ``max_elements`` per request and at most ``max_bytes`` of JSON.
- :class:`IdempotencyKeys`: a key derived from the request's content plus an attempt generation.
  The generation changes after Xero *answered* with an error (Xero caches an answer under its key,
  errors included, for about 6 minutes) and stays the same across transport failures, so a retry
  after a dropped answer replays the committed write instead of writing it twice.
- :func:`pair_results`: one :class:`ElementResult` per element we sent, keyed by the caller's key.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

ZERO_GUID = "00000000-0000-0000-0000-000000000000"

#: Xero's idempotency cache lasts about 6 minutes from a key's first use; a transport failure is
#: retried with the same key only inside this margin, after that the outcome must be settled by lookup.
IDEMPOTENCY_SAFE_SECONDS = 300.0


@dataclass(frozen=True)
class Entity:
    """How one Xero collection is read and written."""

    name: str
    id_field: str
    number_field: str | None = None
    #: Dotted paths, in order of preference, that identify an element in a batch answer.
    match_fields: tuple[str, ...] = ()
    paged: bool = False
    #: Reads take ``unitdp=4`` (Invoices, CreditNotes, Items per the spec).
    unitdp_read: bool = False
    #: The JSON wrapper of a read answer when it differs from ``name`` (Organisation -> Organisations).
    wrapper: str | None = None

    @property
    def collection(self) -> str:
        return self.wrapper or self.name


ENTITIES: dict[str, Entity] = {e.name: e for e in (
    Entity("Contacts", "ContactID", "ContactNumber", ("ContactID", "ContactNumber", "Name"), paged=True),
    Entity("Items", "ItemID", "Code", ("ItemID", "Code"), unitdp_read=True),
    Entity("Invoices", "InvoiceID", "InvoiceNumber", ("InvoiceID", "InvoiceNumber", "Url", "Reference"),
           paged=True, unitdp_read=True),
    Entity("CreditNotes", "CreditNoteID", "CreditNoteNumber", ("CreditNoteID", "CreditNoteNumber", "Reference"),
           paged=True, unitdp_read=True),
    Entity("PurchaseOrders", "PurchaseOrderID", "PurchaseOrderNumber",
           ("PurchaseOrderID", "PurchaseOrderNumber", "Reference"), paged=True),
    Entity("Payments", "PaymentID", None,
           ("PaymentID", "Reference", "Invoice.InvoiceID", "CreditNote.CreditNoteID", "Invoice.InvoiceNumber"),
           paged=True),
    Entity("Allocations", "AllocationID", None, ("Invoice.InvoiceID",)),
    Entity("Organisation", "OrganisationID", wrapper="Organisations"),
    Entity("Accounts", "AccountID", "Code"),
    Entity("TaxRates", "TaxType", "TaxType"),
    Entity("BrandingThemes", "BrandingThemeID"),
    Entity("TrackingCategories", "TrackingCategoryID"),
    Entity("Currencies", "Code", "Code"),
)}

PAGED = tuple(name for name, e in ENTITIES.items() if e.paged)
REFERENCE = ("Organisation", "Accounts", "TaxRates", "BrandingThemes", "TrackingCategories", "Currencies", "Items")


# --- JSON ---------------------------------------------------------------------------------------
def jsonable(value: Any) -> Any:
    """A copy made of JSON types: Decimal -> float, date/datetime -> ISO text, UUID -> text."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def wire_size(body: Any) -> int:
    """Bytes of ``body`` as ``requests`` sends it (``json=`` uses ``json.dumps`` defaults)."""
    return len(json.dumps(body, allow_nan=False).encode("utf-8"))


def canonical_json(body: Any) -> str:
    """Key-sorted compact JSON: equal content gives equal text."""
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# --- batches ------------------------------------------------------------------------------------
Keyed = tuple[str, dict[str, Any]]


def split_batches(wrapper: str, items: Sequence[Keyed], *, max_elements: int,
                  max_bytes: int) -> tuple[list[list[Keyed]], list[tuple[str, int]]]:
    """Group ``(key, element)`` pairs into requests of <= ``max_elements`` and <= ``max_bytes``.

    Returns the batches (input order kept) and the elements too big to send even alone, as
    ``(key, bytes)``.
    """
    if max_elements < 1:
        raise ValueError("max_elements must be at least 1")
    empty = wire_size({wrapper: []})
    separator = len(", ")
    batches: list[list[Keyed]] = []
    too_big: list[tuple[str, int]] = []
    current: list[Keyed] = []
    size = empty
    for key, element in items:
        own = wire_size(element)
        if empty + own > max_bytes:
            too_big.append((key, empty + own))
            continue
        extra = own + (separator if current else 0)
        if current and (len(current) >= max_elements or size + extra > max_bytes):
            batches.append(current)
            current, size, extra = [], empty, own
        current.append((key, element))
        size += extra
    if current:
        batches.append(current)
    return batches, too_big


# --- Idempotency-Key ----------------------------------------------------------------------------
def content_hash(tenant_id: str, method: str, path: str, params: Mapping[str, Any] | None, body: Any) -> str:
    """SHA-256 of tenant, method, path with sorted query, and the canonical JSON body."""
    query = "&".join(f"{k}={params[k]}" for k in sorted(params or {}))
    text = f"{tenant_id}\n{method.upper()}\n{path}?{query}\n{canonical_json(body)}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class IdempotencyKeys:
    """Generations per content hash, shared by the process (keys are per app at Xero)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._generation: dict[str, int] = {}
        self._first_sent: dict[str, float] = {}
        self._touched: dict[str, float] = {}

    @staticmethod
    def _split(key: str) -> tuple[str, int]:
        base, _, gen = key.rpartition("-")
        return base, int(gen)

    def current(self, base: str) -> str:
        """The key to send now for content ``base``."""
        with self._lock:
            self._touched[base] = self._clock()
            return f"{base}-{self._generation.get(base, 0)}"

    def sent(self, key: str) -> float:
        """Note that ``key`` is being sent; returns when it was first sent."""
        with self._lock:
            now = self._clock()
            self._prune(now)
            return self._first_sent.setdefault(key, now)

    def age(self, key: str) -> float:
        """Seconds since ``key`` was first sent (0 if never)."""
        with self._lock:
            first = self._first_sent.get(key)
            return 0.0 if first is None else self._clock() - first

    def answered_with_error(self, key: str) -> None:
        """Xero answered ``key`` with an error (cached under it): the next attempt needs a new key."""
        try:
            base, gen = self._split(key)
        except ValueError:
            return
        with self._lock:
            if self._generation.get(base, 0) == gen:
                self._generation[base] = gen + 1

    def _prune(self, now: float) -> None:
        if len(self._touched) < 10_000:
            return
        horizon = now - 3600.0
        for base in [b for b, t in self._touched.items() if t < horizon]:
            self._touched.pop(base, None)
            self._generation.pop(base, None)
        for key in [k for k, t in self._first_sent.items() if t < horizon]:
            self._first_sent.pop(key, None)


#: The process's generations; every XeroClient uses it.
KEYS = IdempotencyKeys()


# --- results ------------------------------------------------------------------------------------
ResultStatus = Literal["OK", "WARNING", "ERROR", "UNKNOWN"]


class ElementResult(BaseModel):
    """What Xero decided for one element we sent, under the caller's key."""

    key: str
    status: ResultStatus
    xero_id: str | None = None
    #: InvoiceNumber / ContactNumber / Item Code / PurchaseOrderNumber / CreditNoteNumber.
    number: str | None = None
    #: The element as Xero returned it (None when it was not in the answer).
    element: dict[str, Any] | None = None
    errors: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Xero accepted the element (with or without warnings)."""
        return self.status in ("OK", "WARNING")


class BatchResult(BaseModel):
    """One request's outcome: the per-element results and how the request went."""

    entity: str
    method: str
    path: str
    idempotency_key: str | None = None
    http_status: int | None = None
    #: A request-level message (a whole-batch rejection), when there was one.
    error: str | None = None
    results: list[ElementResult]

    def by_key(self) -> dict[str, ElementResult]:
        return {r.key: r for r in self.results}


def dig(element: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted path (``Invoice.InvoiceID``) or None."""
    value: Any = element
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _norm(value: Any) -> str | None:
    if value is None or isinstance(value, Mapping | list):
        return None
    text = str(value).strip()
    if not text or text == ZERO_GUID:
        return None
    return text.casefold()


def messages(element: Any, field: str) -> list[str]:
    """Every ``Message`` under ``field`` (ValidationErrors / Warnings) at any depth, in order, once."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            for k, v in node.items():
                if k == field and isinstance(v, list):
                    for entry in v:
                        msg = entry.get("Message") if isinstance(entry, Mapping) else None
                        if msg and msg not in found:
                            found.append(str(msg))
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(element)
    return found


def match_keys(entity: Entity, items: Sequence[Keyed]) -> dict[str, tuple[str, str]]:
    """For each caller key, the ``(field, value)`` that identifies its element in this batch.

    The first field (in the entity's order) whose value is present and unique in the batch.
    Raises ``ValueError`` for an element nothing identifies: pairing by position is not allowed.
    """
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for _, element in items:
        for field in entity.match_fields:
            value = _norm(dig(element, field))
            if value is not None:
                counts[field][value] += 1
    chosen: dict[str, tuple[str, str]] = {}
    for key, element in items:
        for field in entity.match_fields:
            value = _norm(dig(element, field))
            if value is not None and counts[field][value] == 1:
                chosen[key] = (field, value)
                break
        else:
            raise ValueError(
                f"{entity.name} element {key!r} carries none of {', '.join(entity.match_fields)} with a value "
                f"unique in its batch; Xero's answer could only be paired with it by position")
    return chosen


def element_result(entity: Entity, key: str, returned: Mapping[str, Any]) -> ElementResult:
    """The result for one element Xero returned."""
    errors = messages(returned, "ValidationErrors")
    warnings = messages(returned, "Warnings")
    status_text = str(returned.get("StatusAttributeString") or "").upper()
    status: ResultStatus
    if status_text == "ERROR" or returned.get("HasErrors") or errors:
        status = "ERROR"
    elif status_text == "WARNING" or warnings:
        status = "WARNING"
    else:
        status = "OK"
    xero_id = returned.get(entity.id_field)
    number = returned.get(entity.number_field) if entity.number_field else None
    return ElementResult(key=key, status=status, xero_id=str(xero_id) if _norm(xero_id) else None,
                         number=str(number) if number not in (None, "") else None, element=dict(returned),
                         errors=errors, warnings=warnings)


def pair_results(entity: Entity, sent: Sequence[Keyed], returned: Iterable[Mapping[str, Any]], *,
                 missing_reason: str = "Xero's answer did not include this element") -> list[ElementResult]:
    """One result per element sent (in the order sent), paired by the identifying fields."""
    chosen = match_keys(entity, sent)
    index: dict[tuple[str, str], list[int]] = defaultdict(list)
    answers = [a for a in returned if isinstance(a, Mapping)]
    for i, answer in enumerate(answers):
        for field in entity.match_fields:
            value = _norm(dig(answer, field))
            if value is not None:
                index[(field, value)].append(i)
    used: set[int] = set()
    results: list[ElementResult] = []
    for key, _ in sent:
        candidates = [i for i in index.get(chosen[key], []) if i not in used]
        if not candidates:
            results.append(ElementResult(key=key, status="UNKNOWN", errors=[missing_reason]))
            continue
        used.add(candidates[0])
        results.append(element_result(entity, key, answers[candidates[0]]))
    return results
