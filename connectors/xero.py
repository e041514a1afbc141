"""The Xero Accounting API client: one tenant, its shared limits, paged reads, keyed batch writes.

``XeroClient(store, org)`` calls Xero for one organisation's tenant:

- **auth**: a Bearer token from a :class:`~connectors.oauth.TokenManager` whose refresher rotates
  Xero's refresh token (:mod:`connectors.xero_auth`); a 401 is retried once with a fresh token.
- **limits**: every call goes through the tenant's process-wide limiter
  (:mod:`connectors.xero_limits`): at most ``xero_concurrency`` in flight, at most
  ``xero_calls_per_window`` in any rolling window, the day's budget read from
  ``X-DayLimit-Remaining`` (:class:`BudgetExhausted` before the reserve is touched). A 429 pauses
  the tenant for ``Retry-After``; a 429 for the *day* raises :class:`BudgetExhausted` instead of
  sleeping for hours. 5xx answers are retried with jittered backoff.
- **reads**: generators yielding one page (a list of dicts) at a time, ``pageSize`` as large as
  settings allow, ``If-Modified-Since`` minus an overlap, de-duplicated by id; list filters
  (IDs, InvoiceNumbers, ContactIDs) chunked to <= 50 values per request.
- **writes**: batches of <= 50 elements and <= 3.5 MB, ``summarizeErrors=false`` and ``unitdp=4``,
  an Idempotency-Key per request content (:mod:`connectors.xero_batches`), one
  :class:`ElementResult` per element paired by a field we control, under the caller's key.
- **lookups** that settle a write-ahead intent after a crash, a few calls per batch of intents.

No Prefect here: a caller that wants a cross-process gate injects it as ``gate``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import product
from typing import Any, Literal

import requests

from connectors.credentials import CredentialStore
from connectors.errors import (
    ApiError,
    AuthError,
    BadRequestError,
    BudgetExhausted,
    ForbiddenError,
    NotFoundError,
    RateLimitError,
    ServerError,
    TransportError,
    ValidationError,
)
from connectors.http import Answer, HttpClient, RetryPolicy, retry_after_seconds
from connectors.oauth import TokenManager
from connectors.xero_auth import XeroRefresher
from connectors.xero_batches import (
    ENTITIES,
    IDEMPOTENCY_SAFE_SECONDS,
    KEYS,
    BatchResult,
    ElementResult,
    Keyed,
    content_hash,
    dig,
    jsonable,
    match_keys,
    messages,
    pair_results,
    split_batches,
)
from connectors.xero_limits import PROBLEM_HEADER, XeroTenantLimiter, tenant_limiter
from zxsync.settings import Settings, get_settings

__all__ = [
    "API_PATH", "BatchResult", "BillRef", "ElementResult", "XeroClient", "if_modified_since", "xero_datetime",
]

API_PATH = "/api.xro/2.0"
#: Explicit list filters are sent <= 50 values at a time (Xero 404s above ~52 GUIDs: URL length).
MAX_FILTER_VALUES = 50
#: Subtracted from a caller's watermark: records saved around the watermark are read again.
DEFAULT_OVERLAP = timedelta(minutes=5)
#: Longest 429 wait we sleep through; a longer one (or a day problem) stops with BudgetExhausted.
MAX_RATE_LIMIT_WAIT = 300.0

Method = Literal["PUT", "POST"]


# --- dates --------------------------------------------------------------------------------------
_MS_DATE = re.compile(r"/Date\((-?\d+)([+-]\d{4})?\)/")


def xero_datetime(value: Any) -> datetime | None:
    """A Xero timestamp as an aware UTC datetime: MS-JSON ``/Date(1539993600000+0000)/`` or ISO text."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    text = str(value)
    match = _MS_DATE.search(text)
    if match:
        # The milliseconds are UTC; the offset only says which zone the value was shown in.
        return datetime.fromtimestamp(int(match.group(1)) / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def if_modified_since(moment: datetime) -> str:
    """The ``If-Modified-Since`` value: UTC to the second, ``YYYY-MM-DDTHH:MM:SSZ``.

    Xero reads it as UTC "accurate to the second"; the trailing ``Z`` makes it the RFC 3339
    ``date-time`` the spec declares for the header. Naive moments are taken as UTC.
    """
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _chunks(values: Sequence[str], size: int) -> list[list[str]]:
    return [list(values[i:i + size]) for i in range(0, len(values), size)]


def _unique(values: Iterable[Any]) -> list[str]:
    seen: dict[str, None] = {}
    for v in values:
        if v is not None and str(v) != "":
            seen.setdefault(str(v), None)
    return list(seen)


# --- the HTTP layer -----------------------------------------------------------------------------
class _XeroHttp(HttpClient):
    """HttpClient with Xero's error envelopes, rate-limit headers and key generations."""

    system = "xero"

    def __init__(self, limiter: XeroTenantLimiter | None, **kw: Any) -> None:
        super().__init__(**kw)
        #: The tenant's limiter (None for tenantless calls such as /connections).
        self.limiter = limiter

    def error_for(self, response: requests.Response) -> ApiError:
        status = response.status_code
        headers = response.headers
        body: Any = None
        try:
            body = response.json() if response.content else None
        except ValueError:
            body = None
        if status == 429:
            problem = (headers.get(PROBLEM_HEADER) or "").strip().lower() or None
            wait = retry_after_seconds(headers)
            if problem in ("day", "daily") or (wait is not None and wait > MAX_RATE_LIMIT_WAIT):
                if self.limiter is not None:
                    self.limiter.day_spent(wait)
                return BudgetExhausted(
                    "xero", f"Xero refused the call: the tenant's {problem or 'rate'} limit is reached "
                    f"(Retry-After {wait if wait is not None else 'not given'} s); the sync stops here and "
                    "can resume once Xero's limit resets", status=429, code=problem, body=body)
            return RateLimitError("xero", f"rate limited ({problem or 'unknown limit'})", status=429,
                                  retry_after=wait, problem=problem, code=problem, body=body)
        # Xero's 404 is a plain-text sentence; other errors are JSON envelopes.
        plain = response.text.strip()[:300] if body is None and response.content else None
        text = _error_text(body) or plain or response.reason or "request failed"
        if status == 401:
            return AuthError("xero", text, status=status, body=body)
        if status == 403:
            return ForbiddenError("xero", text, status=status, body=body)
        if status == 404:
            return NotFoundError("xero", text, status=status, body=body)
        if status >= 500:
            return ServerError("xero", text, status=status, body=body)
        if isinstance(body, Mapping) and body.get("Type") == "ValidationException":
            elements = [e for e in body.get("Elements") or [] if isinstance(e, Mapping)]
            details = messages(elements, "ValidationErrors")
            summary = text + (": " + "; ".join(details[:5]) if details else "")
            return ValidationError("xero", summary, status=status, code="ValidationException", body=body,
                                   elements=[dict(e) for e in elements])
        code = body.get("Type") if isinstance(body, Mapping) else None
        return BadRequestError("xero", text, status=status, code=code, body=body)

    def on_rate_limited(self, error: RateLimitError, limiter: Any) -> float:
        # A concurrency 429 carries no Retry-After: wait a short jittered moment, not a whole window.
        wait = error.retry_after if error.retry_after is not None else self.retry.backoff(1)
        if limiter is not None and hasattr(limiter, "pause"):
            limiter.pause(wait)
        return wait

    def observe(self, response: requests.Response) -> None:
        if self.limiter is not None and response.request.headers.get("xero-tenant-id"):
            # A 429's Retry-After is the precise wait; its minute count must not book foreign calls.
            self.limiter.observe(response.headers, book_foreign=response.status_code != 429)
        key = response.request.headers.get("Idempotency-Key")
        if key and response.status_code >= 400:
            KEYS.answered_with_error(key)


def _error_text(body: Any) -> str | None:
    if not isinstance(body, Mapping):
        return None
    for field in ("Message", "Detail", "Title", "error_description", "error"):
        if body.get(field):
            return str(body[field])
    return None


@dataclass(frozen=True)
class BillRef:
    """An ACCPAY bill we may have created: the caller's key, the Zoho id carried in its ``Url``,
    its contact and (when it has one) its number."""

    key: str
    url: str
    contact_id: str
    invoice_number: str | None = None


# --- the client ---------------------------------------------------------------------------------
class XeroClient:
    """Xero Accounting API for one organisation's tenant."""

    def __init__(self, store: CredentialStore, org: str, *, settings: Settings | None = None,
                 session: requests.Session | None = None,
                 gate: Callable[[], AbstractContextManager[Any]] | None = None,
                 day_reserve: int | None = None) -> None:
        self.settings = settings or get_settings()
        self.store = store
        self.org = org
        conn = store.load(org, "xero")
        self.urls = self.settings.xero_urls(conn.urls)
        self.api_root = self.urls["api"].rstrip("/")
        self.session = session or requests.Session()
        retry = RetryPolicy(max_retries=self.settings.http_max_retries,
                            base_seconds=self.settings.http_backoff_base_seconds,
                            max_seconds=self.settings.http_backoff_max_seconds)
        refresher = XeroRefresher(lambda c: self.settings.xero_urls(c.urls)["identity"], session=self.session,
                                  timeout=self.settings.http_timeout_seconds, retry=retry)
        self.tokens = TokenManager(store, org, "xero", refresher)
        self._tenant_id = conn.tenant_id
        self._tenant_lock = threading.Lock()
        self._day_reserve = day_reserve
        self._retry = retry
        self._gate = gate
        self._http: _XeroHttp | None = None
        if self._tenant_id:
            self._http = self._make_http(self._tenant_id)
        #: For tenantless calls (/connections): no tenant limits apply.
        self._plain_http = _XeroHttp(None, timeout=self.settings.http_timeout_seconds, retry=retry,
                                     session=self.session, gate=gate)

    # --- plumbing ---------------------------------------------------------------------------
    def _make_http(self, tenant_id: str) -> _XeroHttp:
        s = self.settings
        limiter = tenant_limiter(tenant_id, calls_per_window=s.xero_calls_per_window,
                                 window_seconds=s.xero_window_seconds, concurrency=s.xero_concurrency,
                                 daily_budget=s.xero_daily_budget, day_reserve=self._day_reserve)
        return _XeroHttp(limiter, timeout=s.http_timeout_seconds, retry=self._retry, session=self.session,
                         gate=self._gate)

    @property
    def tenant_id(self) -> str:
        """The Xero tenant; a custom connection stored without one takes its only connection's."""
        if self._tenant_id is None:
            with self._tenant_lock:
                if self._tenant_id is None:
                    tenants = [c for c in self.connections() if c.get("tenantType", "ORGANISATION") == "ORGANISATION"]
                    if len(tenants) != 1:
                        raise ForbiddenError("xero", f"the Xero connection of {self.org} has no tenant id and "
                                             f"{len(tenants)} organisations are connected; reconnect choosing one")
                    self._tenant_id = str(tenants[0]["tenantId"])
                    self._http = self._make_http(self._tenant_id)
        return self._tenant_id

    @property
    def http(self) -> _XeroHttp:
        _ = self.tenant_id
        assert self._http is not None
        return self._http

    @property
    def limiter(self) -> XeroTenantLimiter:
        """The tenant's shared limiter (remaining day/minute budget as Xero last reported it)."""
        limiter = self.http.limiter
        assert limiter is not None
        return limiter

    def _send(self, method: str, path: str, *, params: Mapping[str, Any] | None = None, body: Any = None,
              headers: Mapping[str, str] | None = None, idempotency_base: str | None = None,
              tenant: bool = True, root: str | None = None, used: dict[str, str] | None = None) -> Answer:
        """One API call with auth, tenant header, limits, retries and one retry after a 401.

        ``used`` (optional) receives the last ``token`` and Idempotency-``key`` sent.
        """
        http = self.http if tenant else self._plain_http
        url = (root or f"{self.api_root}{API_PATH}") + path
        used = {} if used is None else used

        def before_attempt(attempt: int) -> dict[str, str]:
            token = self.tokens.access_token()
            used["token"] = token
            extra = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
            if tenant:
                extra["xero-tenant-id"] = self.tenant_id
            if idempotency_base is not None:
                key = KEYS.current(idempotency_base)
                # Same key as the failed attempt = no answer was read (transport failure);
                # Xero replays a committed write only inside its ~6-minute window.
                if attempt > 1 and key == used.get("key") and KEYS.age(key) > IDEMPOTENCY_SAFE_SECONDS:
                    raise TransportError("xero", f"{method} {path}: no answer and the idempotency window "
                                         "has passed; settle the batch by lookup", method=method, url=url)
                KEYS.sent(key)
                used["key"] = key
                extra["Idempotency-Key"] = key
            return extra

        for auth_attempt in (1, 2):
            try:
                return http.send(method, url, limiter=http.limiter, idempotent=True,
                                 params=params, json_body=body, headers=headers, before_attempt=before_attempt)
            except AuthError:
                if auth_attempt == 2:
                    raise
                self.tokens.refused(used["token"])
        raise AssertionError("unreachable")

    def connections(self) -> list[dict[str, Any]]:
        """``GET /connections``: the tenants this connection's token may call."""
        answer = self._send("GET", "/connections", tenant=False, root=self.api_root)
        return [dict(c) for c in answer.body or []]

    # --- reads ------------------------------------------------------------------------------
    def get(self, entity: str, *, params: Mapping[str, Any] | None = None,
            modified_since: datetime | None = None, path_suffix: str = "") -> list[dict[str, Any]]:
        """One unpaged ``GET /{entity}{path_suffix}``: the wrapped list of the answer."""
        spec = ENTITIES[entity]
        query = dict(params or {})
        if spec.unitdp_read:
            query.setdefault("unitdp", 4)
        headers = {"If-Modified-Since": if_modified_since(modified_since)} if modified_since else None
        answer = self._send("GET", f"/{entity}{path_suffix}", params=query, headers=headers)
        body = answer.body if isinstance(answer.body, Mapping) else {}
        return [dict(e) for e in body.get(spec.collection) or []]

    def organisation(self) -> dict[str, Any]:
        """``GET /Organisation``: base currency, timezone, lock dates, ..."""
        found = self.get("Organisation")
        if not found:
            raise NotFoundError("xero", "GET /Organisation returned no organisation")
        return found[0]

    def reference(self, entity: str, *, where: str | None = None, order: str | None = None,
                  include_archived: bool | None = None, modified_since: datetime | None = None) -> list[dict[str, Any]]:
        """An unpaged reference list: Accounts, TaxRates, BrandingThemes, TrackingCategories, Currencies, Items."""
        params: dict[str, Any] = {}
        if where:
            params["where"] = where
        if order:
            params["order"] = order
        if include_archived is not None:
            params["includeArchived"] = "true" if include_archived else "false"
        return self.get(entity, params=params, modified_since=modified_since)

    def accounts(self) -> list[dict[str, Any]]:
        return self.reference("Accounts")

    def tax_rates(self) -> list[dict[str, Any]]:
        return self.reference("TaxRates")

    def branding_themes(self) -> list[dict[str, Any]]:
        return self.reference("BrandingThemes")

    def tracking_categories(self, *, include_archived: bool = False) -> list[dict[str, Any]]:
        return self.reference("TrackingCategories", include_archived=include_archived or None)

    def currencies(self) -> list[dict[str, Any]]:
        return self.reference("Currencies")

    def items(self, *, modified_since: datetime | None = None, where: str | None = None) -> list[dict[str, Any]]:
        return self.reference("Items", modified_since=modified_since, where=where)

    def pages(self, entity: str, *, modified_since: datetime | None = None,
              overlap: timedelta = DEFAULT_OVERLAP, ids: Sequence[str] | None = None,
              invoice_numbers: Sequence[str] | None = None, contact_ids: Sequence[str] | None = None,
              statuses: Sequence[str] | None = None, where: str | None = None, order: str | None = None,
              include_archived: bool | None = None, summary_only: bool | None = None,
              search_term: str | None = None, page_size: int | None = None,
              params: Mapping[str, Any] | None = None) -> Iterator[list[dict[str, Any]]]:
        """Read a paged collection one page at a time (Invoices, Contacts, CreditNotes, Payments,
        PurchaseOrders).

        ``modified_since`` is the caller's watermark; ``overlap`` is subtracted before it is sent
        as ``If-Modified-Since``. Pages are ordered by id unless ``order`` says otherwise.
        Records are de-duplicated by id across pages and chunks (a record created or saved while
        we page can show up twice). Empty pages are not yielded. A record saved after its page
        was read comes back in the next read: set the next watermark to when this read began.
        """
        spec = ENTITIES[entity]
        if not spec.paged:
            raise ValueError(f"{entity} is not paged; use reference()")
        size = max(1, min(page_size or self.settings.xero_page_size, self.settings.xero_page_size))
        base: dict[str, Any] = dict(params or {})
        base["pageSize"] = size
        # Ordered by id unless told otherwise: a record saved while we page keeps its place, so
        # no other record shifts across a page boundary and gets skipped (it would with
        # UpdatedDateUTC order: the saved record jumps to the end and the rest move back one).
        order = order or f"{spec.id_field} ASC"
        if spec.unitdp_read:
            base.setdefault("unitdp", 4)
        for name, value in (("where", where), ("order", order), ("searchTerm", search_term)):
            if value:
                base[name] = value
        for name, flag in (("includeArchived", include_archived), ("summaryOnly", summary_only)):
            if flag is not None:
                base[name] = "true" if flag else "false"
        if statuses:
            base["Statuses"] = ",".join(statuses)
        lists = [(name, _unique(values)) for name, values in
                 (("IDs", ids), ("InvoiceNumbers", invoice_numbers), ("ContactIDs", contact_ids)) if values is not None]
        if any(not values for _, values in lists):
            return  # an explicit empty filter matches nothing
        headers = None
        if modified_since is not None:
            headers = {"If-Modified-Since": if_modified_since(modified_since - overlap)}
        chunked = [[(name, chunk) for chunk in _chunks(values, MAX_FILTER_VALUES)] for name, values in lists]
        seen: set[str] = set()
        for combo in product(*chunked) if chunked else [()]:
            query = dict(base)
            for name, chunk in combo:
                query[name] = ",".join(chunk)
            page = 1
            while True:
                query["page"] = page
                answer = self._send("GET", f"/{entity}", params=query, headers=headers)
                body = answer.body if isinstance(answer.body, Mapping) else {}
                records = [dict(r) for r in body.get(spec.collection) or [] if isinstance(r, Mapping)]
                fresh = []
                for record in records:
                    rid = str(record.get(spec.id_field) or "")
                    if rid and rid in seen:
                        continue
                    if rid:
                        seen.add(rid)
                    fresh.append(record)
                if fresh:
                    yield fresh
                pagination = body.get("pagination") if isinstance(body.get("pagination"), Mapping) else None
                if pagination and pagination.get("pageCount") is not None:
                    if page >= int(pagination["pageCount"]):
                        break
                elif len(records) < size:
                    break
                if not records:
                    break
                page += 1

    def invoices(self, **kw: Any) -> Iterator[list[dict[str, Any]]]:
        return self.pages("Invoices", **kw)

    def contacts(self, **kw: Any) -> Iterator[list[dict[str, Any]]]:
        return self.pages("Contacts", **kw)

    def credit_notes(self, **kw: Any) -> Iterator[list[dict[str, Any]]]:
        return self.pages("CreditNotes", **kw)

    def payments(self, **kw: Any) -> Iterator[list[dict[str, Any]]]:
        return self.pages("Payments", **kw)

    def purchase_orders(self, **kw: Any) -> Iterator[list[dict[str, Any]]]:
        return self.pages("PurchaseOrders", **kw)

    # --- writes -----------------------------------------------------------------------------
    def plan_batches(self, entity: str, elements: Mapping[str, Mapping[str, Any]]) -> tuple[
            list[list[Keyed]], list[tuple[str, int]]]:
        """How ``elements`` (caller key -> element) will be split into requests, and which are too big."""
        items = [(str(k), jsonable(v)) for k, v in elements.items()]
        return split_batches(ENTITIES[entity].collection, items, max_elements=self.settings.xero_batch_size,
                             max_bytes=self.settings.xero_max_request_bytes)

    def write(self, entity: str, elements: Mapping[str, Mapping[str, Any]], *, method: Method,
              path: str | None = None) -> Iterator[BatchResult]:
        """Send ``elements`` (caller key -> element) in batches; yield each request's results.

        ``PUT`` creates, ``POST`` updates (elements carry their Xero id) or creates. Lazily
        evaluated: the caller records one batch's results before the next request is sent. An
        element too big for a request is returned as an ERROR result without being sent. Every
        batch is checked for pairable elements before the first request goes out.
        Raises :class:`BudgetExhausted` (nothing sent for that batch), :class:`TransportError`
        when a batch's outcome stayed unknown (settle it by lookup) and other typed errors for
        requests Xero refused as a whole without per-element details.
        """
        spec = ENTITIES[entity]
        path = path or f"/{entity}"
        batches, too_big = self.plan_batches(entity, elements)
        for batch in batches:
            match_keys(spec, batch)  # ValueError now, not after half the batches were sent
        if too_big:
            limit = self.settings.xero_max_request_bytes
            yield BatchResult(entity=entity, method=method, path=path, error="element too large", results=[
                ElementResult(key=k, status="ERROR", errors=[(f"the element is {size} bytes of JSON, more "
                                                              f"than one request may carry ({limit} bytes)")])
                for k, size in too_big])
        for batch in batches:
            yield self.write_batch(entity, batch, method=method, path=path)

    def write_batch(self, entity: str, batch: Sequence[Keyed], *, method: Method,
                    path: str | None = None) -> BatchResult:
        """One request for one planned batch (see :meth:`plan_batches`): ``(caller key, element)`` pairs.

        For callers that record a write-ahead intent per batch before sending it. Always
        ``summarizeErrors=false`` and ``unitdp=4``; the Idempotency-Key is derived from the
        request's content. Results are paired by key; an element whose fate Xero's answer does
        not tell comes back as ``UNKNOWN`` (settle it by lookup).
        """
        spec = ENTITIES[entity]
        path = path or f"/{entity}"
        batch = [(str(k), jsonable(e)) for k, e in batch]
        if len(batch) > self.settings.xero_batch_size:
            raise ValueError(f"a batch holds at most {self.settings.xero_batch_size} elements, got {len(batch)}")
        match_keys(spec, batch)  # refuse before sending a batch whose answer could not be paired
        params = {"summarizeErrors": "false", "unitdp": 4}
        body = {spec.collection: [element for _, element in batch]}
        base = content_hash(self.tenant_id, method, path, params, body)
        used: dict[str, str] = {}
        try:
            answer = self._send(method, path, params=params, body=body, idempotency_base=base, used=used)
        except ValidationError as exc:
            # A whole-request ValidationException: elements Xero flagged are errors; for the others
            # the answer does not say whether they were written (Xero's summarised-errors trap).
            reason = f"Xero rejected the request as a whole: {exc.message}"
            results = [r if r.status == "ERROR" else
                       r.model_copy(update={"status": "UNKNOWN", "errors": [*r.errors, reason]})
                       for r in pair_results(spec, batch, exc.elements, missing_reason=reason)]
            return BatchResult(entity=spec.name, method=method, path=path, idempotency_key=used.get("key"),
                               http_status=exc.status, error=exc.message, results=results)
        payload = answer.body if isinstance(answer.body, Mapping) else {}
        returned = payload.get(spec.collection) or []
        return BatchResult(entity=spec.name, method=method, path=path, idempotency_key=used.get("key"),
                           http_status=answer.status, results=pair_results(spec, batch, returned))

    def write_all(self, entity: str, elements: Mapping[str, Mapping[str, Any]], *,
                  method: Method) -> dict[str, ElementResult]:
        """All batches of :meth:`write`, results by caller key (for callers that keep no intents)."""
        out: dict[str, ElementResult] = {}
        for batch in self.write(entity, elements, method=method):
            out.update(batch.by_key())
        return out

    def create(self, entity: str, elements: Mapping[str, Mapping[str, Any]]) -> Iterator[BatchResult]:
        """``PUT /{entity}``: create only (Contacts, Items, Invoices, PurchaseOrders, CreditNotes, Payments)."""
        return self.write(entity, elements, method="PUT")

    def update(self, entity: str, elements: Mapping[str, Mapping[str, Any]]) -> Iterator[BatchResult]:
        """``POST /{entity}``: update the elements that carry their Xero id (create the others)."""
        return self.write(entity, elements, method="POST")

    def set_status(self, entity: str, changes: Mapping[str, tuple[str, str]]) -> Iterator[BatchResult]:
        """Status changes (void, delete, authorise) as batch updates: caller key -> (Xero id, status).

        ``POST /Invoices`` with ``{"InvoiceID", "Status": "VOIDED"|"DELETED"|...}`` (likewise
        CreditNotes, PurchaseOrders); Xero's refusals come back per element.
        """
        spec = ENTITIES[entity]
        elements = {k: {spec.id_field: xero_id, "Status": status} for k, (xero_id, status) in changes.items()}
        return self.write(entity, elements, method="POST")

    def allocate_credit_note(self, credit_note_id: str,
                             allocations: Mapping[str, Mapping[str, Any]]) -> Iterator[BatchResult]:
        """``PUT /CreditNotes/{id}/Allocations``: caller key -> ``{"Invoice": {"InvoiceID"}, "Amount", "Date"}``."""
        return self.write("Allocations", allocations, method="PUT", path=f"/CreditNotes/{credit_note_id}/Allocations")

    def delete_payment(self, payment_id: str) -> dict[str, Any]:
        """``POST /Payments/{id}`` ``{"Status": "DELETED"}`` (Xero has no batch form); the payment as returned."""
        body = {"Status": "DELETED"}
        path = f"/Payments/{payment_id}"
        base = content_hash(self.tenant_id, "POST", path, None, body)
        answer = self._send("POST", path, body=body, idempotency_base=base)
        payments = (answer.body or {}).get("Payments") or []
        return dict(payments[0]) if payments else {}

    # --- lookups that settle write-ahead intents --------------------------------------------
    # Every lookup costs a few calls per batch of intents, never one per record: a crash leaves
    # at most a batch (<= 50) of unresolved intents, all written shortly before the crash.
    def find_contacts_by_number(self, numbers: Iterable[str], *, since: datetime,
                                overlap: timedelta = DEFAULT_OVERLAP) -> dict[str, dict[str, Any]]:
        """Contacts whose ContactNumber is in ``numbers``, among those modified since ``since``.

        ``since`` is the oldest unresolved intent's time: a contact we created is modified at or
        after it, so one paged read (1,000 per page, archived included) finds them all. The
        alternatives cost more: ``GET /Contacts/{ContactNumber}`` or a ``where`` per number is
        one call per record (Xero advises against OR filters), and ``searchTerm`` is a fuzzy
        search over several fields, one term per call.
        """
        wanted = {n.casefold(): n for n in _unique(numbers)}
        found: dict[str, dict[str, Any]] = {}
        if not wanted:
            return found
        for page in self.pages("Contacts", modified_since=since, overlap=overlap, include_archived=True):
            for contact in page:
                number = str(contact.get("ContactNumber") or "").casefold()
                if number in wanted:
                    found[wanted[number]] = contact
        return found

    def find_items_by_code(self, codes: Iterable[str], *, since: datetime | None = None,
                           overlap: timedelta = DEFAULT_OVERLAP) -> dict[str, dict[str, Any]]:
        """Items whose Code is in ``codes`` (Items are unpaged: one call, narrowed by ``since``)."""
        wanted = {c.casefold(): c for c in _unique(codes)}
        if not wanted:
            return {}
        items = self.items(modified_since=(since - overlap) if since else None)
        return {wanted[str(i.get("Code") or "").casefold()]: i for i in items
                if str(i.get("Code") or "").casefold() in wanted}

    def find_invoices_by_number(self, numbers: Iterable[str], *,
                                type: Literal["ACCREC", "ACCPAY"] = "ACCREC") -> dict[str, dict[str, Any]]:
        """ACCREC invoices by InvoiceNumber (unique for sales invoices): ``InvoiceNumbers=`` <= 50 a call."""
        wanted = {n.casefold(): n for n in _unique(numbers)}
        found: dict[str, dict[str, Any]] = {}
        if not wanted:
            return found
        for page in self.pages("Invoices", invoice_numbers=list(wanted.values())):
            for invoice in page:
                number = str(invoice.get("InvoiceNumber") or "").casefold()
                if invoice.get("Type") == type and number in wanted:
                    found[wanted[number]] = invoice
        return found

    def find_purchase_orders_by_number(self, numbers: Iterable[str], *, since: datetime,
                                       overlap: timedelta = DEFAULT_OVERLAP) -> dict[str, dict[str, Any]]:
        """Purchase orders by PurchaseOrderNumber among those modified since ``since``.

        ``GET /PurchaseOrders`` has no number filter (only Status and dates), and
        ``GET /PurchaseOrders/{number}`` is one call per record; the orders modified since the
        oldest intent are usually one page.
        """
        wanted = {n.casefold(): n for n in _unique(numbers)}
        found: dict[str, dict[str, Any]] = {}
        if not wanted:
            return found
        for page in self.pages("PurchaseOrders", modified_since=since, overlap=overlap):
            for order in page:
                number = str(order.get("PurchaseOrderNumber") or "").casefold()
                if number in wanted:
                    found[wanted[number]] = order
        return found

    def find_bills(self, refs: Sequence[BillRef], *, since: datetime | None = None,
                   overlap: timedelta = DEFAULT_OVERLAP) -> dict[str, dict[str, Any]]:
        """ACCPAY bills we may have created, by caller key.

        Bill numbers are not unique in Xero (two suppliers may use the same one), so a bill is
        ours only when its ``Url`` carries our Zoho record id. One call per <= 50 references:
        ``InvoiceNumbers`` + ``ContactIDs`` + ``where=Type=="ACCPAY"``; references without a
        number are looked up by their contacts (and ``since`` when given).
        """
        found: dict[str, dict[str, Any]] = {}
        with_number = [r for r in refs if r.invoice_number]
        without = [r for r in refs if not r.invoice_number]
        for group in (with_number, without):
            for i in range(0, len(group), MAX_FILTER_VALUES):
                chunk = group[i:i + MAX_FILTER_VALUES]
                by_url = {r.url: r for r in chunk}
                numbers = [r.invoice_number for r in chunk if r.invoice_number] if group is with_number else None
                pages = self.pages("Invoices", where='Type=="ACCPAY"', contact_ids=[r.contact_id for r in chunk],
                                   invoice_numbers=numbers, modified_since=since, overlap=overlap)
                for page in pages:
                    for bill in page:
                        ref = by_url.get(str(bill.get("Url") or ""))
                        if ref is None or bill.get("Type") != "ACCPAY":
                            continue
                        contact = str(dig(bill, "Contact.ContactID") or "").casefold()
                        if contact == ref.contact_id.casefold():
                            found[ref.key] = bill
        return found

