"""Zoho CRM v8 client: shared token, per-org concurrency, a credit reserve, paged reads, batch writes.

What it guarantees (sources in ../shared/docs/zoho-api-notes.md):

* **Tokens.** One :class:`~connectors.oauth.TokenManager` over the credential store: a stored token
  is reused by every thread and process, refreshed 5 minutes before expiry under the store's lock,
  and never minted more than Zoho allows (:class:`~connectors.zoho_auth.ZohoRefresher`). A 401
  ``INVALID_TOKEN`` marks the token refused and the call is retried once with a fresh one.
* **Concurrency.** At most ``zoho_concurrency`` calls in flight per org in this process (one
  limiter per org, shared by every client), and at most 10 "complex" calls (COQL, sorted lists,
  writes of more than 10 records: Zoho's sub-concurrency). ``gate`` adds a cross-process gate.
* **Credits.** Every call is charged at Zoho's cost (list/get/metadata 1, COQL by LIMIT band,
  writes 1 per 10 records) and ``X-API-CREDITS-REMAINING`` is tracked; a call (a read page, a
  write batch) is refused with :class:`~connectors.errors.BudgetExhausted` *before* it is sent
  when it would take the remaining credits below ``zoho_credit_reserve``. 429
  ``TOO_MANY_REQUESTS`` is retried with exponential backoff and jitter (Zoho sends no Retry-After).
* **Reads** page one page at a time by ``next_page_token`` (past the 2,000-record wall of
  ``page``, up to 100,000); ``If-Modified-Since`` (304 = nothing changed, 204 = empty); more than
  50 fields are read in 50-field chunks merged by id; COQL by offset or by keyset.
* **Writes** of at most 100 records with ``trigger: []`` by default; per-record results paired
  back to the caller's keys; only idempotent writes (update by id, upsert on explicit
  ``duplicate_check_fields``) are retried after an unknown outcome — an insert raises with
  ``outcome_unknown`` so the caller settles it by lookup.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import requests
from pydantic import BaseModel, Field

from connectors.credentials import Connection, CredentialStore
from connectors.errors import (
    ApiError,
    AuthError,
    BadRequestError,
    BadResponseError,
    BudgetExhausted,
    ForbiddenError,
    NotFoundError,
    RateLimitError,
    ServerError,
)
from connectors.http import Answer, ConcurrencyLimiter, HttpClient, RetryPolicy, retry_after_seconds
from connectors.oauth import TokenManager
from connectors.zoho_auth import ZohoRefresher
from connectors.zoho_coql import (
    MAX_ROWS_PER_CALL,
    Condition,
    after_cursor,
    all_of,
    cond,
    coql_credits,
    select,
)

API_VERSION = "v8"
#: Zoho's caps (zoho-api-notes.md §3.1, §3.3, §4.2).
MAX_FIELDS_PER_CALL = 50
MAX_PER_PAGE = 200
MAX_RECORDS_PER_WRITE = 100
MAX_IDS_PER_GET = 100
SUB_CONCURRENCY = 10
#: Writes of more than this many records are "complex" calls (sub-concurrency).
COMPLEX_WRITE_THRESHOLD = 10
#: Refresh this long before the 1-hour tokens expire.
TOKEN_MARGIN = timedelta(minutes=5)
CREDITS_HEADER = "X-API-CREDITS-REMAINING"
#: Zoho's credit pool is a rolling 24-hour window (zoho-api-notes.md §4.1).
CREDIT_WINDOW = timedelta(hours=24)
#: The 429 message that tells a spent credit pool from a concurrency limit (notes §4.3).
CREDITS_SPENT_MESSAGE = "Number of API requests for the 24 hour period is exceeded"

Trigger = Literal["workflow", "approval", "blueprint", "pathfinder", "orchestration"]


# --- process-wide state per org --------------------------------------------------------------------
class CreditBudget:
    """What we know of one org's rolling 24-hour credit pool.

    ``remaining`` is the last ``X-API-CREDITS-REMAINING`` Zoho sent (it only appears once half the
    day's credits are used); ``spent_since_header`` counts our own calls since, at Zoho's costs.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.remaining: int | None = None
        self.spent_since_header = 0
        self.spent_total = 0
        #: When this process first spent a credit of the org's current 24-hour window (wall clock):
        #: Zoho's pool is rolling, so credits start coming back 24 hours after it.
        self.first_spent_at: datetime | None = None

    def charge(self, credits: int) -> None:
        now = datetime.now(UTC)
        with self._lock:
            self.spent_total += credits
            self.spent_since_header += credits
            if self.first_spent_at is None or now - self.first_spent_at >= CREDIT_WINDOW:
                self.first_spent_at = now

    def forget(self) -> None:
        """Drop what Zoho last said about the pool (a new run re-learns it from Zoho's next answer):
        credits free up over the rolling 24 hours, so an estimate left by an earlier run that stopped
        at the reserve would otherwise stop every later run before it sends anything."""
        with self._lock:
            self.remaining = None
            self.spent_since_header = 0

    def observe_header(self, value: str | None) -> None:
        if value is None:
            return
        try:
            remaining = int(float(value))
        except ValueError:
            return
        with self._lock:
            self.remaining = remaining
            self.spent_since_header = 0

    @property
    def estimated_remaining(self) -> int | None:
        """Credits left by Zoho's last word minus what we spent since (None: Zoho hasn't said)."""
        with self._lock:
            return None if self.remaining is None else self.remaining - self.spent_since_header

    def ensure(self, cost: int, reserve: int, org: str, what: str) -> None:
        """Raise :class:`BudgetExhausted` if ``cost`` more credits would dip into the reserve."""
        left = self.estimated_remaining
        if left is not None and left - cost < reserve:
            raise self.exhausted(
                f"stopping before {what}: organisation {org} has about {left} Zoho CRM API credits left "
                f"in the rolling 24 hours and {reserve} are kept in reserve (ZX_ZOHO_CREDIT_RESERVE); this call "
                f"needs {cost}. Nothing of it was sent.", left=left, reserve=reserve)

    def resets(self) -> tuple[datetime, datetime]:
        """When credits come back (UTC): from (24 hours after the first credit this process spent in
        the window) and, at the latest, by (24 hours from now) — Zoho's pool is a rolling 24 hours."""
        now = datetime.now(UTC)
        with self._lock:
            first = self.first_spent_at
        start = first + CREDIT_WINDOW if first is not None and now - first < CREDIT_WINDOW else now + CREDIT_WINDOW
        return start, now + CREDIT_WINDOW

    def exhausted(self, text: str, *, left: int | None, reserve: int, **kw: Any) -> BudgetExhausted:
        """A :class:`BudgetExhausted` whose message says the reserve, the credits left and when they
        come back; the same facts as attributes (``credits_left``, ``reserve``, ``resets_from``,
        ``resets_by``) for the run's summary."""
        start, end = self.resets()
        if end - start < timedelta(hours=1):
            span = f"about {end:%Y-%m-%d %H:%M} UTC"
        else:
            span = f"about {start:%Y-%m-%d %H:%M} UTC (all of today's by {end:%Y-%m-%d %H:%M} UTC)"
        when = (f"Zoho CRM credits come back 24 hours after they were spent (a rolling pool): they reset from "
                f"{span}; run again after that.")
        error = BudgetExhausted("zoho", f"{text} {when}", **kw)
        error.credits_left = left  # type: ignore[attr-defined]
        error.reserve = reserve  # type: ignore[attr-defined]
        error.resets_from = start  # type: ignore[attr-defined]
        error.resets_by = end  # type: ignore[attr-defined]
        return error


class _OrgSlots:
    """The org's concurrency limiter plus the sub-concurrency limiter for complex calls."""

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.calls = ConcurrencyLimiter(concurrency)
        self.complex = ConcurrencyLimiter(min(SUB_CONCURRENCY, concurrency))


_registry_lock = threading.Lock()
_slots: dict[tuple[str, str], _OrgSlots] = {}
_budgets: dict[tuple[str, str], CreditBudget] = {}


def _org_slots(key: tuple[str, str], concurrency: int) -> _OrgSlots:
    with _registry_lock:
        slots = _slots.get(key)
        if slots is None or slots.concurrency != concurrency:
            slots = _slots[key] = _OrgSlots(concurrency)
        return slots


def _org_budget(key: tuple[str, str]) -> CreditBudget:
    with _registry_lock:
        return _budgets.setdefault(key, CreditBudget())


def forget_credit_estimates(org: str) -> None:
    """At the start of a run: forget what earlier runs learnt of ``org``'s credits (see
    :meth:`CreditBudget.forget`). The first call of the run then goes out unchecked (1 credit for a
    read) and Zoho's answer tells the run where the pool stands again."""
    with _registry_lock:
        budgets = [b for (slug, _), b in _budgets.items() if slug == org]
    for budget in budgets:
        budget.forget()


class _CallLimiter:
    """What ``HttpClient.send`` holds around one call: the org slot, plus a complex slot if needed."""

    def __init__(self, slots: _OrgSlots, complex_call: bool) -> None:
        self._slots = slots
        self._complex = complex_call

    @contextmanager
    def slot(self) -> Iterator[None]:
        with ExitStack() as stack:
            if self._complex:
                stack.enter_context(self._slots.complex.slot())
            stack.enter_context(self._slots.calls.slot())
            yield


# --- boundary models -------------------------------------------------------------------------------
@dataclass
class RecordPage:
    """One page of records (``records`` merged across field chunks) and Zoho's ``info``."""

    records: list[dict[str, Any]]
    info: dict[str, Any]
    page: int | None
    page_token: str | None

    @property
    def more_records(self) -> bool:
        return bool(self.info.get("more_records"))


@dataclass
class CoqlPage:
    """One COQL answer."""

    records: list[dict[str, Any]]
    more_records: bool
    count: int
    query: str = field(repr=False, default="")


class RecordResult(BaseModel):
    """What Zoho decided for one record of a write, paired with the caller's key."""

    key: str
    ok: bool
    id: str | None = None
    action: Literal["insert", "update"] | None = None
    code: str | None = None
    message: str | None = None
    api_name: str | None = None
    json_path: str | None = None
    duplicate_field: str | None = None
    #: For DUPLICATE_DATA: the id of the record that already holds the value.
    existing_id: str | None = None
    modified_time: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class FieldSpec(BaseModel):
    """A custom field to create through the fields API (onboarding)."""

    api_name: str
    data_type: str = "text"
    field_label: str | None = None
    length: int | None = None
    #: "Do not allow duplicate values": required for upsert's duplicate_check_fields.
    unique: bool = False
    extra: dict[str, Any] = Field(default_factory=dict)

    @property
    def label(self) -> str:
        # Zoho derives the API name from the label (spaces -> underscores), so keep them aligned.
        return self.field_label or self.api_name.replace("_", " ")

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"api_name": self.api_name, "field_label": self.label, "data_type": self.data_type}
        if self.length is not None:
            out["length"] = self.length
        if self.unique:
            out["unique"] = {"casesensitive": "false"}
        return {**out, **self.extra}


class EnsureFieldsResult(BaseModel):
    """What :meth:`ZohoClient.ensure_fields` did for one module."""

    module: str
    created: list[str] = Field(default_factory=list)
    existing: list[str] = Field(default_factory=list)


def _text(name: str, length: int = 255, unique: bool = False) -> FieldSpec:
    return FieldSpec(api_name=name, data_type="text", length=length, unique=unique)


#: The Xero_* fields of architecture.md, per module (onboarding creates the missing ones).
XERO_SYNC_FIELDS: dict[str, list[FieldSpec]] = {
    "Accounts": [_text("Xero_Contact_ID", 100, unique=True)],
    "Contacts": [_text("Xero_Contact_ID", 100, unique=True)],
    "Vendors": [_text("Xero_Contact_ID", 100, unique=True)],
    "Products": [_text("Xero_Item_ID", 100, unique=True)],
    "Invoices": [
        _text("Xero_Invoice_ID", 100, unique=True), _text("Xero_Invoice_Number", 100), _text("Xero_Status", 50),
        FieldSpec(api_name="Xero_Amount_Paid", data_type="currency"),
        FieldSpec(api_name="Xero_Amount_Due", data_type="currency"),
        FieldSpec(api_name="Xero_Fully_Paid_On", data_type="date"),
        FieldSpec(api_name="Xero_Online_URL", data_type="website"),
        FieldSpec(api_name="Xero_Payments", data_type="textarea"),
        _text("Xero_Sync_Status", 255), FieldSpec(api_name="Xero_Last_Synced", data_type="datetime"),
    ],
    "Purchase_Orders": [
        _text("Xero_PO_ID", 100, unique=True), _text("Xero_Bill_ID", 100, unique=True), _text("Xero_Number", 100),
        _text("Xero_Status", 50), _text("Xero_Sync_Status", 255),
    ],
}


# --- subforms -------------------------------------------------------------------------------------
def subform_payload(current: Sequence[Mapping[str, Any]], intended: Sequence[Mapping[str, Any]], *,
                    match_key: Callable[[Mapping[str, Any]], Hashable] | None = None) -> list[dict[str, Any]]:
    """The subform array that turns ``current`` rows into exactly ``intended`` rows.

    Zoho's rules (v8 updateRecords): a row with an ``id`` updates that row, a row without one is
    *appended*, ``{"id": …, "_delete": null}`` removes a row. So: intended rows that carry an id
    (or, with ``match_key``, match an unused current row — its id is reused) update in place; the
    rest are appended; every current row not kept is deleted. Re-sending lines without ids and
    without deletes would duplicate them; this never does.
    """
    current_ids = [str(r["id"]) for r in current if r.get("id") is not None]
    used: set[str] = set()
    by_key: dict[Hashable, list[str]] = {}
    if match_key is not None:
        for row in current:
            if row.get("id") is not None:
                by_key.setdefault(match_key(row), []).append(str(row["id"]))
    out: list[dict[str, Any]] = []
    # Rows with explicit ids claim them first, so key matching cannot steal them.
    for row in intended:
        if row.get("id") is not None:
            rid = str(row["id"])
            if rid not in current_ids:
                raise ValueError(f"subform row id {rid} is not one of the record's current rows")
            if rid in used:
                raise ValueError(f"subform row id {rid} appears twice in the intended rows")
            used.add(rid)
    for row in intended:
        new = {k: v for k, v in row.items() if k != "_delete"}
        if new.get("id") is None:
            new.pop("id", None)
            if match_key is not None:
                candidates = [i for i in by_key.get(match_key(row), []) if i not in used]
                if candidates:
                    new["id"] = candidates[0]
                    used.add(candidates[0])
        out.append(new)
    out.extend({"id": rid, "_delete": None} for rid in current_ids if rid not in used)
    return out


# --- helpers -----------------------------------------------------------------------------------------
def _iso_with_offset(moment: datetime) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("If-Modified-Since needs a timezone-aware datetime (Zoho wants an explicit offset)")
    return moment.isoformat(timespec="seconds")


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def write_credits(n_records: int) -> int:
    """Credits an insert/update/upsert of ``n_records`` costs: 1 per 10 records."""
    return max(1, math.ceil(n_records / 10))


_JSON_PATH_INDEX = re.compile(r"^\$\.data\[(\d+)\]")
_COQL_LIMIT = re.compile(r"\blimit\s+(\d+)(?:\s*,\s*(\d+))?(?:\s+offset\s+\d+)?\s*$", re.IGNORECASE)


def _coql_limit(query: str) -> int:
    match = _COQL_LIMIT.search(query.strip())
    if not match:
        return 200  # Zoho's default LIMIT
    return int(match.group(2) or match.group(1))


def _envelope(body: Any) -> tuple[str | None, str | None, dict[str, Any]]:
    """(code, message, details) of a Zoho error body, however it is wrapped."""
    if isinstance(body, Mapping):
        for wrapper in ("data", "fields"):
            items = body.get(wrapper)
            if isinstance(items, list) and items and isinstance(items[0], Mapping) and "code" in items[0] \
                    and "code" not in body:
                body = items[0]
                break
        details = body.get("details")
        return (body.get("code"), body.get("message"), dict(details) if isinstance(details, Mapping) else {})
    return None, None, {}


# --- the client --------------------------------------------------------------------------------------
class ZohoClient(HttpClient):
    """Zoho CRM v8 for one organisation's stored connection."""

    system = "zoho"

    def __init__(self, store: CredentialStore, org: str, *, settings: Any = None,
                 session: requests.Session | None = None,
                 gate: Callable[[], AbstractContextManager[Any]] | None = None,
                 trigger: Sequence[str] = ()) -> None:
        if settings is None:
            from zxsync.settings import get_settings

            settings = get_settings()
        self.settings = settings
        super().__init__(timeout=settings.http_timeout_seconds, session=session, gate=gate,
                         retry=RetryPolicy(max_retries=settings.http_max_retries,
                                           base_seconds=settings.http_backoff_base_seconds,
                                           max_seconds=settings.http_backoff_max_seconds))
        self.store = store
        #: The organisation's slug (``org()`` is the Zoho organisation record).
        self.slug = org
        #: Default ``trigger`` for writes: [] = no workflows, approvals or blueprints fire.
        self.trigger = list(trigger)
        self.refresher = ZohoRefresher(store, token_url_base=self._accounts_base, session=self.session,
                                       timeout=settings.http_timeout_seconds)
        self.tokens = TokenManager(store, org, "zoho", self.refresher, margin=TOKEN_MARGIN)
        try:
            stored = store.load(org, "zoho")
        except KeyError:
            raise KeyError(f"organisation {org!r} has no Zoho CRM connection: run `zxsync connect zoho {org}`") \
                from None
        key = (org, self._urls(stored)["api"] or "")
        self.slots = _org_slots(key, settings.zoho_concurrency)
        self.budget = _org_budget(key)
        self.reserve = settings.zoho_credit_reserve
        self._local = threading.local()

    # --- where to call -------------------------------------------------------------------------
    def _urls(self, conn: Connection) -> dict[str, str | None]:
        return self.settings.zoho_urls({"accounts": conn.accounts_url, "api": conn.api_domain})

    def _accounts_base(self, conn: Connection) -> str:
        url = self._urls(conn)["accounts"]
        if not url:
            raise BadRequestError("zoho", f"the Zoho connection of {self.slug} stores no accounts server: reconnect")
        return url

    def api_base(self) -> str:
        """``{api_domain}/crm/v8`` of the connection (or the ``ZX_ZOHO_API_URL`` override)."""
        url = self._urls(self.tokens.connection())["api"]
        if not url:
            raise BadRequestError("zoho", f"the Zoho connection of {self.slug} stores no api_domain: reconnect")
        return f"{url.rstrip('/')}/crm/{API_VERSION}"

    # --- HttpClient hooks ----------------------------------------------------------------------
    def error_for(self, response: requests.Response) -> ApiError:
        try:
            body = response.json()
        except ValueError:
            body = None
        code, message, details = _envelope(body)
        status = response.status_code
        text = message or response.reason or "request failed"
        if code:
            text = f"{code}: {text}"
        kw: dict[str, Any] = {"status": status, "code": code, "body": body}
        if status == 429:
            left = self.budget.estimated_remaining
            if (left is not None and left <= 0) or CREDITS_SPENT_MESSAGE.lower() in (message or "").lower():
                return self.budget.exhausted(f"organisation {self.slug} has no Zoho CRM API credits left in the "
                                             f"rolling 24 hours ({text}).", left=max(0, left or 0),
                                             reserve=self.reserve, **kw)
            retry_after = retry_after_seconds(response.headers)
            if retry_after is None and isinstance(details.get("retry_after"), int | float):
                retry_after = float(details["retry_after"])
            return RateLimitError("zoho", text, retry_after=retry_after, problem=message, **kw)
        if status == 401:
            if code == "OAUTH_SCOPE_MISMATCH":
                return ForbiddenError("zoho", f"{text} — reconnect with the scopes the sync needs", **kw)
            return AuthError("zoho", text, **kw)
        if status == 403:
            return ForbiddenError("zoho", text, **kw)
        if status == 404:
            return NotFoundError("zoho", text, **kw)
        if status >= 500:
            error = ServerError("zoho", text, **kw)
            if getattr(self._local, "write_not_idempotent", False):
                # A 5xx on an insert may or may not have committed: settle by lookup, don't resend.
                error.outcome_unknown = True
            return error
        return BadRequestError("zoho", text, **kw)

    def observe(self, response: requests.Response) -> None:
        status = response.status_code
        if status < 400:
            self._local.consecutive_429 = 0
        if status != 429 and status != 401 and status < 500:
            self.budget.charge(getattr(self._local, "cost", 1))
        self.budget.observe_header(response.headers.get(CREDITS_HEADER))

    def on_rate_limited(self, error: RateLimitError, limiter: Any) -> float:
        # Exponential backoff with jitter per consecutive 429 (Zoho sends no Retry-After header);
        # a ``details.retry_after`` hint in the body, when present, is added as a floor.
        n = getattr(self._local, "consecutive_429", 0) + 1
        self._local.consecutive_429 = n
        return self.retry.backoff(n) + (error.retry_after or 0.0)

    # --- one call ------------------------------------------------------------------------------
    def ensure_credits(self, cost: int, what: str = "this batch") -> None:
        """Raise :class:`BudgetExhausted` if ``cost`` credits would dip into the reserve (callers
        may check a whole batch of calls up front)."""
        self.budget.ensure(cost, self.reserve, self.slug, what)

    def call(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
             json_body: Any = None, headers: Mapping[str, str] | None = None, idempotent: bool,
             cost: int = 1, complex_call: bool = False, what: str | None = None) -> Answer:
        """One authorised call to ``{api}/crm/v8{path}``: budget check, org slot, retries, and one
        retry with a fresh token after ``INVALID_TOKEN``."""
        self.ensure_credits(cost, what or f"{method} {path}")
        limiter = _CallLimiter(self.slots, complex_call)
        used: dict[str, str] = {}

        def authorise(_attempt: int) -> Mapping[str, str]:
            token = self.tokens.access_token()
            used["token"] = token
            return {"Authorization": f"Zoho-oauthtoken {token}"}

        self._local.cost = cost
        self._local.write_not_idempotent = not idempotent and method != "GET"
        try:
            for auth_attempt in (1, 2):
                url = self.api_base() + path
                try:
                    return self.send(method, url, limiter=limiter, idempotent=idempotent, params=params,
                                     json_body=json_body, headers=headers, before_attempt=authorise)
                except AuthError:
                    if auth_attempt == 2 or "token" not in used:
                        raise
                    # Refused although not expired by our clock (revoked, 16th token, clock skew):
                    # never hand it out again, refresh once, retry once. The request was not processed.
                    self.tokens.refused(used.pop("token"))
            raise AssertionError("unreachable")
        finally:
            self._local.write_not_idempotent = False

    # --- reads ---------------------------------------------------------------------------------
    def iter_pages(self, module: str, fields: Sequence[str], *, modified_since: datetime | None = None,
                   per_page: int | None = None, sort_by: str | None = "Modified_Time", sort_order: str = "asc",
                   params: Mapping[str, Any] | None = None) -> Iterator[RecordPage]:
        """Yield the module's records one page at a time (``GET /crm/v8/{module}``).

        ``fields`` (mandatory for Zoho) may be longer than 50: the first 50 drive the paging and
        the rest are fetched per page by ``ids`` and merged by id. With ``modified_since``
        (timezone-aware) only records modified after it are read; a 304 or 204 yields nothing.

        Paging follows ``next_page_token`` from the first page on, every other parameter unchanged.
        Zoho binds a page token to the parameters of the call that issued it (changing them is
        TOKEN_BOUND_DATA_MISMATCH) and rejects ``page`` with ``page_token``; users of the real API
        report "never mix with page". A token walk from the first page needs no assumption about
        whether a token issued on a ``page=10`` call may continue without ``page``, costs the same
        calls as ``page`` 1..10, passes the 2,000-record wall and reaches 100,000 records.
        """
        names = [f for f in dict.fromkeys(fields) if f != "id"]
        if not names:
            raise ValueError("Zoho needs at least one field to read")
        size = min(per_page or self.settings.zoho_page_size, MAX_PER_PAGE)
        chunks = [list(c) for c in _chunks(names, MAX_FIELDS_PER_CALL)]
        base: dict[str, Any] = {**(params or {}), "fields": ",".join(chunks[0]), "per_page": size}
        if sort_by:
            base.update(sort_by=sort_by, sort_order=sort_order)
        headers = {"If-Modified-Since": _iso_with_offset(modified_since)} if modified_since else None
        page, token = 1, None
        while True:
            query = {**base, "page_token": token} if token else base
            answer = self.call("GET", f"/{module}", params=query, headers=headers, idempotent=True,
                               complex_call=bool(sort_by), what=f"reading {module}")
            if answer.status in (204, 304) or not answer.body:
                return
            records = list(answer.body.get("data") or [])
            info = dict(answer.body.get("info") or {})
            for extra in chunks[1:]:
                self._merge_fields(module, records, extra)
            yield RecordPage(records=records, info=info, page=page, page_token=token)
            if not info.get("more_records"):
                return
            token = info.get("next_page_token")
            if not token:
                raise BadResponseError("zoho", f"{module}: more_records on page {page} but no next_page_token",
                                       status=answer.status)
            page += 1

    def iter_records(self, module: str, fields: Sequence[str], **kw: Any) -> Iterator[dict[str, Any]]:
        """The records of :meth:`iter_pages`, one by one."""
        for page in self.iter_pages(module, fields, **kw):
            yield from page.records

    def _merge_fields(self, module: str, records: list[dict[str, Any]], fields: Sequence[str]) -> None:
        by_id = {str(r["id"]): r for r in records if r.get("id") is not None}
        for ids in _chunks(list(by_id), MAX_IDS_PER_GET):
            answer = self.call("GET", f"/{module}", params={"ids": ",".join(ids), "fields": ",".join(fields)},
                               idempotent=True, what=f"reading more {module} fields")
            for row in (answer.body or {}).get("data") or []:
                target = by_id.get(str(row.get("id")))
                if target is not None:
                    target.update({k: v for k, v in row.items() if k not in target or k in fields})

    def get_record(self, module: str, record_id: str, fields: Sequence[str] | None = None) -> dict[str, Any] | None:
        """One record by id with its subform rows (``GET /crm/v8/{module}/{id}``); None if absent."""
        params = {"fields": ",".join(fields)} if fields else None
        try:
            answer = self.call("GET", f"/{module}/{record_id}", params=params, idempotent=True,
                               what=f"reading {module} {record_id}")
        except NotFoundError:
            return None
        except BadRequestError as exc:
            # Zoho answers an unknown or deleted id with INVALID_DATA "the id given seems to be invalid".
            if exc.code == "INVALID_DATA" and "id given" in (exc.message or ""):
                return None
            raise
        data = (answer.body or {}).get("data") or []
        return dict(data[0]) if data else None

    def iter_deleted(self, module: str, *, type: Literal["all", "recycle", "permanent"] = "all",
                     modified_since: datetime | None = None, per_page: int = MAX_PER_PAGE) -> Iterator[RecordPage]:
        """Deleted records (``GET /crm/v8/{module}/deleted``): id, display_name, deleted_time, ..."""
        headers = {"If-Modified-Since": _iso_with_offset(modified_since)} if modified_since else None
        page = 1
        while True:
            answer = self.call("GET", f"/{module}/deleted",
                               params={"type": type, "page": page, "per_page": min(per_page, MAX_PER_PAGE)},
                               headers=headers, idempotent=True, what=f"reading deleted {module}")
            if answer.status in (204, 304) or not answer.body:
                return
            info = dict(answer.body.get("info") or {})
            yield RecordPage(records=list(answer.body.get("data") or []), info=info, page=page, page_token=None)
            if not info.get("more_records"):
                return
            page += 1

    # --- COQL ----------------------------------------------------------------------------------
    def coql(self, query: str) -> CoqlPage:
        """Run one COQL ``select`` (``POST /crm/v8/coql``). Build the text with
        :mod:`connectors.zoho_coql` so values are quoted safely."""
        limit = _coql_limit(query)
        answer = self.call("POST", "/coql", json_body={"select_query": query}, idempotent=True,
                           cost=coql_credits(limit), complex_call=True, what="a COQL query")
        if answer.status == 204 or not answer.body:
            return CoqlPage(records=[], more_records=False, count=0, query=query)
        info = answer.body.get("info") or {}
        records = list(answer.body.get("data") or [])
        return CoqlPage(records=records, more_records=bool(info.get("more_records")),
                        count=int(info.get("count", len(records))), query=query)

    def iter_coql(self, module: str, fields: Sequence[str], where: Condition | None = None, *,
                  order_by: Sequence[tuple[str, str]] = (("id", "asc"),),
                  page_size: int = MAX_ROWS_PER_CALL) -> Iterator[CoqlPage]:
        """COQL pages by ``limit offset, n`` (up to Zoho's 100,000-row offset cap); ``id`` is always selected."""
        columns = list(dict.fromkeys(["id", *fields]))
        offset = 0
        while True:
            page = self.coql(select(module, columns, where, order_by=order_by, limit=page_size, offset=offset))
            if page.records:
                yield page
            if not page.more_records or len(page.records) < page_size:
                return
            offset += page_size

    def iter_coql_since(self, module: str, fields: Sequence[str], since: datetime | None = None,
                        where: Condition | None = None, *, page_size: int = MAX_ROWS_PER_CALL,
                        time_field: str = "Modified_Time") -> Iterator[CoqlPage]:
        """Rows changed at or after ``since``, paged by keyset on ``(time_field, id)`` (no offset cap).

        Each page asks for rows strictly after the last ``(time, id)`` seen, ordered by both, so
        rows sharing a second are neither skipped nor repeated.
        """
        columns = list(dict.fromkeys(["id", *fields, time_field]))
        order = ((time_field, "asc"), ("id", "asc"))
        cursor: Condition | None = cond(time_field, ">=", since) if since else None
        while True:
            criteria = [c for c in (where, cursor) if c is not None]
            condition = all_of(*criteria) if criteria else None
            page = self.coql(select(module, columns, condition, order_by=order, limit=page_size))
            if page.records:
                yield page
            if not page.more_records or len(page.records) < page_size:
                return
            last = page.records[-1]
            cursor = after_cursor(last[time_field], last["id"], time_field)

    # --- metadata ------------------------------------------------------------------------------
    def _get(self, path: str, params: Mapping[str, Any] | None = None, *, what: str) -> Any:
        answer = self.call("GET", path, params=params, idempotent=True, what=what)
        return answer.body or {}

    def modules(self) -> list[dict[str, Any]]:
        """``GET /settings/modules``: every module with its API name."""
        return list(self._get("/settings/modules", what="reading modules").get("modules") or [])

    def fields(self, module: str) -> list[dict[str, Any]]:
        """``GET /settings/fields?module=``: fields with data types, picklists, unique/auto-number flags."""
        return list(self._get("/settings/fields", {"module": module}, what=f"reading {module} fields")
                    .get("fields") or [])

    def picklist_values(self, module: str, field_api_name: str) -> list[str]:
        """The ``actual_value``s of a picklist field (e.g. Invoices ``Status``)."""
        for f in self.fields(module):
            if f.get("api_name") == field_api_name:
                return [str(v.get("actual_value")) for v in f.get("pick_list_values") or []]
        raise KeyError(f"{module} has no field {field_api_name!r}")

    def org(self) -> dict[str, Any]:
        """``GET /org``: the organisation (id, currency, time zone, ...)."""
        orgs = self._get("/org", what="reading the organisation").get("org") or []
        return dict(orgs[0]) if orgs else {}

    def org_taxes(self) -> list[dict[str, Any]]:
        """``GET /org/taxes``: the org's taxes (name, value %, id)."""
        body = self._get("/org/taxes", what="reading org taxes")
        wrapped = body.get("org_taxes")
        if isinstance(wrapped, Mapping):  # v7+: {"org_taxes": {"taxes": [...], "preference": {...}}}
            return list(wrapped.get("taxes") or [])
        return list(body.get("taxes") or [])

    def currencies(self) -> list[dict[str, Any]]:
        """``GET /org/currencies`` (multi-currency orgs; empty otherwise)."""
        return list(self._get("/org/currencies", what="reading currencies").get("currencies") or [])

    def current_user(self) -> dict[str, Any]:
        """``GET /users?type=CurrentUser``: the integration user (to skip our own edits)."""
        users = self._get("/users", {"type": "CurrentUser"}, what="reading the current user").get("users") or []
        return dict(users[0]) if users else {}

    def create_field(self, module: str, spec: FieldSpec) -> str | None:
        """Create one custom field (``POST /settings/fields?module=``); returns its id."""
        answer = self.call("POST", "/settings/fields", params={"module": module},
                           json_body={"fields": [spec.body()]}, idempotent=False,
                           what=f"creating {module}.{spec.api_name}")
        items = (answer.body or {}).get("fields") or []
        first = items[0] if items else {}
        if first.get("status") not in (None, "success"):
            raise BadRequestError("zoho", f"{module}.{spec.api_name}: {first.get('code')}: {first.get('message')}",
                                  status=answer.status, code=first.get("code"), body=answer.body)
        return (first.get("details") or {}).get("id")

    def ensure_fields(self, module: str, specs: Iterable[FieldSpec]) -> EnsureFieldsResult:
        """Create the fields of ``specs`` whose API names the module lacks; idempotent.

        A create whose outcome is unknown (dropped answer) is settled by re-reading the fields.
        """
        wanted = list(specs)
        present = {f.get("api_name") for f in self.fields(module)}
        result = EnsureFieldsResult(module=module)
        for spec in wanted:
            if spec.api_name in present:
                result.existing.append(spec.api_name)
                continue
            try:
                self.create_field(module, spec)
            except ApiError as exc:
                if not exc.outcome_unknown:
                    raise
                present = {f.get("api_name") for f in self.fields(module)}
                if spec.api_name not in present:
                    raise
            result.created.append(spec.api_name)
        if result.created:
            present = {f.get("api_name") for f in self.fields(module)}
            missing = [n for n in result.created if n not in present]
            if missing:
                raise BadResponseError("zoho", f"{module}: created {missing} but Zoho lists no field by that API "
                                       "name (Zoho derives it from the label; check the field labels)")
        return result

    # --- writes --------------------------------------------------------------------------------
    def insert(self, module: str, records: Sequence[Mapping[str, Any]], *, keys: Sequence[str] | None = None,
               trigger: Sequence[str] | None = None) -> list[RecordResult]:
        """Create up to 100 records (``POST /crm/v8/{module}``). Not retried after an unknown
        outcome: that raises with ``outcome_unknown`` and the caller settles by lookup."""
        return self._write("POST", f"/{module}", module, records, keys=keys, trigger=trigger,
                           idempotent=False, op="insert")

    def update(self, module: str, records: Sequence[Mapping[str, Any]], *, keys: Sequence[str] | None = None,
               trigger: Sequence[str] | None = None) -> list[RecordResult]:
        """Update up to 100 records by ``id`` (``PUT /crm/v8/{module}``); keys default to the ids."""
        for record in records:
            if not record.get("id"):
                raise ValueError("every record of an update needs its id")
        return self._write("PUT", f"/{module}", module, records, keys=keys, trigger=trigger,
                           idempotent=True, op="update")

    def upsert(self, module: str, records: Sequence[Mapping[str, Any]], *, duplicate_check_fields: Sequence[str],
               keys: Sequence[str] | None = None, trigger: Sequence[str] | None = None) -> list[RecordResult]:
        """Insert-or-update up to 100 records matched on ``duplicate_check_fields`` (a unique custom
        field such as ``Xero_Invoice_ID``; Zoho's default for Invoices would be ``Subject``)."""
        if not duplicate_check_fields:
            raise ValueError("upsert needs explicit duplicate_check_fields")
        return self._write("POST", f"/{module}/upsert", module, records, keys=keys, trigger=trigger,
                           idempotent=True, op="upsert",
                           extra={"duplicate_check_fields": list(duplicate_check_fields)})

    def replace_subform(self, module: str, record_id: str, subform: str, intended: Sequence[Mapping[str, Any]], *,
                        match_key: Callable[[Mapping[str, Any]], Hashable] | None = None,
                        changes: Mapping[str, Any] | None = None,
                        trigger: Sequence[str] | None = None) -> RecordResult:
        """Make a record's subform (e.g. ``Invoiced_Items``) hold exactly ``intended`` rows: reads
        the current rows, then one update with :func:`subform_payload` (plus ``changes``)."""
        current = self.get_record(module, record_id, fields=[subform])
        if current is None:
            raise NotFoundError("zoho", f"{module} {record_id} not found")
        rows = subform_payload(current.get(subform) or [], intended, match_key=match_key)
        return self.update(module, [{**(changes or {}), "id": record_id, subform: rows}], trigger=trigger)[0]

    def _write(self, method: str, path: str, module: str, records: Sequence[Mapping[str, Any]], *,
               keys: Sequence[str] | None, trigger: Sequence[str] | None, idempotent: bool, op: str,
               extra: Mapping[str, Any] | None = None) -> list[RecordResult]:
        n = len(records)
        if n == 0:
            return []
        limit = min(self.settings.zoho_batch_size, MAX_RECORDS_PER_WRITE)
        if n > limit:
            raise ValueError(f"Zoho takes at most {limit} records per call; got {n} (split into batches)")
        if keys is None:
            keys = [str(r["id"]) for r in records] if op == "update" else [str(i) for i in range(n)]
        keys = [str(k) for k in keys]
        if len(keys) != n or len(set(keys)) != n:
            raise ValueError("keys must be unique and one per record")
        body = {"data": [dict(r) for r in records],
                "trigger": list(self.trigger if trigger is None else trigger), **(extra or {})}
        try:
            answer = self.call(method, path, json_body=body, idempotent=idempotent, cost=write_credits(n),
                               complex_call=n > COMPLEX_WRITE_THRESHOLD, what=f"{op} of {n} {module}")
            payload = answer.body
        except BadRequestError as exc:
            # All records failed: HTTP 400 with the same data[] as a 207.
            if not (isinstance(exc.body, Mapping) and isinstance(exc.body.get("data"), list)
                    and len(exc.body["data"]) == n):
                raise
            payload = exc.body
        items = (payload or {}).get("data") if isinstance(payload, Mapping) else None
        if not isinstance(items, list) or len(items) != n:
            raise BadResponseError("zoho", f"{op} of {n} {module}: expected {n} results, got "
                                   f"{len(items) if isinstance(items, list) else 'none'}")
        ids = [str(r["id"]) if r.get("id") is not None else None for r in records]
        return _pair_results(items, keys, ids)


def _pair_results(items: Sequence[Any], keys: Sequence[str], ids: Sequence[str | None]) -> list[RecordResult]:
    """Pair Zoho's per-record results (input order) with the caller's keys, cross-checked by the
    ``$.data[i]`` of error paths and by the record ids of updates."""
    n = len(keys)
    index_of_id = {rid: i for i, rid in enumerate(ids) if rid is not None}
    out: list[RecordResult | None] = [None] * n
    for pos, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise BadResponseError("zoho", f"result {pos} is not an object")
        details = dict(item.get("details") or {})
        ok = item.get("status") == "success"
        idx = pos
        match = _JSON_PATH_INDEX.match(str(details.get("json_path") or ""))
        if match and int(match.group(1)) < n:
            idx = int(match.group(1))
        elif ok and ids[pos] is not None and str(details.get("id")) != ids[pos] \
                and str(details.get("id")) in index_of_id:
            idx = index_of_id[str(details.get("id"))]
        if out[idx] is not None:
            raise BadResponseError("zoho", f"two results for record {keys[idx]}")
        duplicate = details.get("duplicate_record") if isinstance(details.get("duplicate_record"), Mapping) else {}
        out[idx] = RecordResult(
            key=keys[idx], ok=ok, id=str(details["id"]) if ok and details.get("id") is not None else ids[idx],
            action=item.get("action") or None, code=item.get("code"), message=item.get("message"),
            api_name=details.get("api_name"), json_path=details.get("json_path"),
            duplicate_field=item.get("duplicate_field"),
            existing_id=str(duplicate["id"]) if duplicate.get("id") is not None else None,
            modified_time=details.get("Modified_Time"), details=details,
        )
    if any(r is None for r in out):
        raise BadResponseError("zoho", "some records got no result")
    return [r for r in out if r is not None]
