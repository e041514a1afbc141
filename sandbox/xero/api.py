"""The emulated ``/api.xro/2.0`` routes. Handlers read the query and body themselves (plain dicts,
no per-element pydantic) and run their work on a worker thread under the store lock.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from sandbox.xero import render
from sandbox.xero.books import Books, Rejected, norm
from sandbox.xero.documents import (
    CREDIT_NOTE,
    INVOICE,
    PURCHASE_ORDER,
    DocKind,
    allocate,
    delete_allocation,
    delete_payment,
    write_document,
    write_payment,
)
from sandbox.xero.formats import (
    PROVIDER_NAME,
    envelope,
    json_response,
    not_found,
    parse_input_date,
    parse_modified_since,
    validation_exception,
)
from sandbox.xero.where import WhereError, compile_where, parse_order, sort_docs

if TYPE_CHECKING:
    from sandbox.xero.app import XeroSandbox

P = "/api.xro/2.0"
_PROVIDER: ContextVar[str] = ContextVar("provider", default=PROVIDER_NAME)
MAX_IDS = 52
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class _Answer(Exception):
    """Stop a handler with a finished response."""

    def __init__(self, response: Response) -> None:
        super().__init__()
        self.response = response


def _bool(value: str | None, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() in ("true", "1", "yes")


def _unitdp(request: Request) -> int:
    return 4 if request.query_params.get("unitdp", "").strip() == "4" else 2


def _csv(value: str | None) -> list[str]:
    if not value:
        return []
    return [v.strip().strip('"').strip("'") for v in value.split(",") if v.strip().strip('"').strip("'")]


def _bad_request(message: str) -> Response:
    return json_response(validation_exception([{"ValidationErrors": [{"Message": message}]}]), 400)


def _getter(books: Books, kind: str) -> Callable[[dict[str, Any], str], Any]:
    """Reads a (dotted) field of an internal document the way ``where``/``order`` name it."""
    def get(d: dict[str, Any], path: str) -> Any:
        if path in ("Contact.ContactID", "ContactID") and "ContactID" in d:
            return d["ContactID"]
        if path.startswith("Contact.") and "ContactID" in d:
            c = books.contact(d["ContactID"]) or {}
            return c.get(path[8:])
        if kind == "payments":
            if path in ("Invoice.InvoiceID", "CreditNote.CreditNoteID"):
                return d["DocID"]
            if path in ("Account.AccountID",):
                return d["AccountID"]
            if path in ("Account.Code",):
                return (books.account(account_id=d["AccountID"]) or {}).get("Code")
        if path in d:
            return d[path]
        if "." in path:
            head, rest = path.split(".", 1)
            sub = d.get(head)
            return sub.get(rest) if isinstance(sub, dict) else None
        low = path.lower()
        for k, v in d.items():
            if k.lower() == low:
                return v
        return None
    return get


def _select(books: Books, kind: str, docs: Iterable[dict[str, Any]], request: Request, *,
            include: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
    """If-Modified-Since, where, order (and an entity-specific ``include``)."""
    since = parse_modified_since(request.headers.get("if-modified-since"))
    get = _getter(books, kind)
    where = request.query_params.get("where")
    try:
        pred = compile_where(where, get) if where and where.strip() else None
        order = parse_order(request.query_params.get("order", "")) if request.query_params.get("order") else []
    except WhereError as exc:
        raise _Answer(_bad_request(f"The where or order clause could not be parsed: {exc}")) from exc
    if since is None and include is None and pred is None:
        out = list(docs)
        return sort_docs(out, order, get) if order else out
    out = []
    for d in docs:
        if since is not None and d.get("UpdatedDateUTC", 0) < since:
            continue
        if include is not None and not include(d):
            continue
        if pred is not None and not pred(d):
            continue
        out.append(d)
    if order:
        out = sort_docs(out, order, get)
    return out


def _page(request: Request, docs: list[dict[str, Any]], paged: bool = True
          ) -> tuple[list[dict[str, Any]], dict[str, int] | None]:
    """``page``/``pageSize`` (default 100, at most 1000) and the pagination block."""
    qp = request.query_params
    if not paged or ("page" not in qp and "pageSize" not in qp):
        return docs, None
    try:
        page = max(1, int(qp.get("page", "1") or 1))
        size = int(qp.get("pageSize", DEFAULT_PAGE_SIZE) or DEFAULT_PAGE_SIZE)
    except ValueError as exc:
        raise _Answer(_bad_request("page and pageSize must be whole numbers.")) from exc
    size = max(1, min(MAX_PAGE_SIZE, size))
    count = len(docs)
    block = {"page": page, "pageSize": size, "pageCount": math.ceil(count / size), "itemCount": count}
    return docs[(page - 1) * size: page * size], block


def _elements(body: Any, key: str) -> list[Any]:
    """The elements of a write body: ``{"Invoices": [...]}``, a bare object, or a bare list."""
    if isinstance(body, dict) and key in body:
        items = body[key]
        return items if isinstance(items, list) else [items]
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and body:
        return [body]
    return []


def _echo(src: Any, error: Rejected, flag: str) -> dict[str, Any]:
    """A failed element as Xero returns it: what was sent plus its ValidationErrors."""
    out = dict(src) if isinstance(src, dict) else {}
    out[flag] = True
    out["StatusAttributeString"] = "ERROR"
    out["ValidationErrors"] = [{"Message": m} for m in error.messages]
    if error.warnings:
        out["Warnings"] = [{"Message": m} for m in error.warnings]
    return out


def register(app: FastAPI, sb: XeroSandbox) -> None:
    """Add every emulated Accounting API route to ``app``."""

    async def run(request: Request, work: Callable[[Books, Any], Response], *, body: bool = False) -> Response:
        payload: Any = None
        if body:
            try:
                raw = await request.body()
            except ClientDisconnect:
                return Response(status_code=400)  # the caller went away mid-body; nothing was written
            try:
                payload = json.loads(raw) if raw.strip() else {}
            except ValueError:
                return json_response({"ErrorNumber": 14, "Type": "PostDataInvalidException",
                                      "Message": "Invalid Json data"}, 400)
        tenant = request.state.sandbox_tenant
        client = sb.identity.client(request.state.xero_caller.client_id) or {}
        provider = client.get("name") or PROVIDER_NAME

        def locked() -> Response:
            _PROVIDER.set(provider)  # the envelope's ProviderName is the calling app's name
            with sb.store.lock:
                books = sb.books(tenant)
                try:
                    return work(books, payload)
                except _Answer as answer:
                    return answer.response
        return await run_in_threadpool(locked)

    def ok(books: Books, key: str, items: list[dict[str, Any]], pagination: dict[str, int] | None = None,
           warnings: list[dict[str, str]] | None = None) -> Response:
        return json_response(envelope(key, items, books.now_ms(), pagination=pagination, warnings=warnings,
                                      provider=_PROVIDER.get()))

    def batch(request: Request, books: Books, payload: Any, key: str, flag: str,
              write: Callable[[Any], dict[str, Any]], show: Callable[[dict[str, Any]], dict[str, Any]],
              natural_key: Callable[[dict[str, Any]], str], *, summarize_param: bool = True) -> Response:
        """Run a batch write; answer per ``summarizeErrors`` (notes §4.1, incl. the partial-success trap)."""
        elements = _elements(payload, key)
        summarize = _bool(request.query_params.get("summarizeErrors"), True) if summarize_param else True
        results: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        keys: list[str] = []
        for src in elements:
            try:
                doc = write(src)
            except Rejected as error:
                echo = _echo(src, error, flag)
                results.append(echo)
                failed.append(echo)
                continue
            out = show(doc)
            warns = doc.pop("_warnings", None) if isinstance(doc, dict) else None
            out["StatusAttributeString"] = "WARNING" if warns else "OK"
            if warns:
                out["Warnings"] = [{"Message": m} for m in warns]
            results.append(out)
            keys.append(natural_key(doc))
        request.state.journal_keys = keys
        if failed and summarize:
            return json_response(validation_exception(failed), 400)
        return ok(books, key, results)

    def single(request: Request, books: Books, payload: Any, key: str, flag: str,
               write: Callable[[Any], dict[str, Any]], show: Callable[[dict[str, Any]], dict[str, Any]],
               natural_key: Callable[[dict[str, Any]], str]) -> Response:
        elements = _elements(payload, key)
        src = elements[0] if elements else {}
        try:
            doc = write(src)
        except Rejected as error:
            return json_response(validation_exception([_echo(src, error, flag)]), 400)
        request.state.journal_keys = [natural_key(doc)]
        out = show(doc)
        warns = doc.pop("_warnings", None)
        out["StatusAttributeString"] = "WARNING" if warns else "OK"
        if warns:
            out["Warnings"] = [{"Message": m} for m in warns]
        return ok(books, key, [out])

    # --- organisation & reference data -----------------------------------------------------------
    @app.get(P + "/Organisation")
    async def get_organisation(request: Request) -> Response:
        return await run(request, lambda b, _: ok(b, "Organisations", [render.organisation(b)]))

    @app.get(P + "/Organisation/Actions")
    async def get_actions(request: Request) -> Response:
        actions = [{"Name": n, "Status": "ALLOWED"} for n in (
            "UseMulticurrency", "CreateApprovedInvoice", "CreateApprovedBill", "CreateApprovedPayment",
            "CreateDraftInvoice", "CreateDraftBill", "CreateRepeatingInvoice", "CreateApprovedCreditNote")]
        return await run(request, lambda b, _: ok(b, "Actions", actions))

    @app.get(P + "/Accounts")
    async def get_accounts(request: Request) -> Response:
        return await run(request, lambda b, _: ok(b, "Accounts", [
            render.account(a) for a in _select(b, "accounts", b.table("accounts").values(), request)]))

    @app.get(P + "/Accounts/{account_id}")
    async def get_account(account_id: str, request: Request) -> Response:
        def work(b: Books, _: Any) -> Response:
            a = b.account(account_id=account_id)
            return ok(b, "Accounts", [render.account(a)]) if a else not_found()
        return await run(request, work)

    @app.get(P + "/TaxRates")
    async def get_tax_rates(request: Request) -> Response:
        def work(b: Books, _: Any) -> Response:
            tax_type = request.query_params.get("TaxType")
            docs = _select(b, "taxrates", b.table("taxrates").values(), request,
                           include=(lambda d: d["TaxType"] == tax_type.upper()) if tax_type else None)
            return ok(b, "TaxRates", [render.public(d) for d in docs])
        return await run(request, work)

    @app.get(P + "/TaxRates/{tax_type}")
    async def get_tax_rate(tax_type: str, request: Request) -> Response:
        def work(b: Books, _: Any) -> Response:
            d = b.tax_rate(tax_type)
            return ok(b, "TaxRates", [render.public(d)]) if d else not_found()
        return await run(request, work)

    @app.get(P + "/BrandingThemes")
    async def get_themes(request: Request) -> Response:
        return await run(request, lambda b, _: ok(b, "BrandingThemes", [
            render.theme(t) for t in sorted(b.table("themes").values(), key=lambda t: t["SortOrder"])]))

    @app.get(P + "/BrandingThemes/{theme_id}")
    async def get_theme(theme_id: str, request: Request) -> Response:
        def work(b: Books, _: Any) -> Response:
            t = b.table("themes").get(theme_id.lower())
            return ok(b, "BrandingThemes", [render.theme(t)]) if t else not_found()
        return await run(request, work)

    @app.get(P + "/TrackingCategories")
    async def get_tracking(request: Request) -> Response:
        def work(b: Books, _: Any) -> Response:
            archived = _bool(request.query_params.get("includeArchived"), False)
            docs = _select(b, "tracking", b.table("tracking").values(), request,
                           include=lambda d: archived or d["Status"] == "ACTIVE")
            return ok(b, "TrackingCategories", [render.tracking(d, archived) for d in docs])
        return await run(request, work)

    @app.get(P + "/TrackingCategories/{category_id}")
    async def get_tracking_category(category_id: str, request: Request) -> Response:
        def work(b: Books, _: Any) -> Response:
            d = b.tracking_category(cat_id=category_id)
            return ok(b, "TrackingCategories", [render.tracking(d, True)]) if d else not_found()
        return await run(request, work)

    @app.get(P + "/Currencies")
    async def get_currencies(request: Request) -> Response:
        return await run(request, lambda b, _: ok(b, "Currencies", [
            dict(c) for c in _select(b, "currencies", b.table("currencies").values(), request)]))

    @app.put(P + "/Currencies")
    async def put_currency(request: Request) -> Response:
        def work(b: Books, payload: Any) -> Response:
            elements = _elements(payload, "Currencies")
            out = []
            for c in elements:
                code = str((c or {}).get("Code", "")).upper()
                if not re.fullmatch(r"[A-Z]{3}", code):
                    return _bad_request("Currency code must be valid.")
                doc = {"Code": code, "Description": (c or {}).get("Description") or code}
                b.put("currencies", code, doc)
                out.append(doc)
            request.state.journal_keys = [c["Code"] for c in out]
            return ok(b, "Currencies", out)
        return await run(request, work, body=True)

    # --- contacts --------------------------------------------------------------------------------
    def contact_key(c: dict[str, Any]) -> str:
        return c.get("ContactNumber") or c.get("Name") or c["ContactID"]

    @app.get(P + "/Contacts")
    async def get_contacts(request: Request) -> Response:
        def work(b: Books, _: Any) -> Response:
            qp = request.query_params
            archived = _bool(qp.get("includeArchived"), False)
            raw_ids = _csv(qp.get("IDs"))
            if len(raw_ids) > MAX_IDS:  # Xero 404s on the URL length (GH Xero-OpenAPI#534)
                return not_found()
            ids = {i.lower() for i in raw_ids}
            term = (qp.get("searchTerm") or "").strip().lower()

            def include(c: dict[str, Any]) -> bool:
                if not archived and c.get("ContactStatus", "ACTIVE") != "ACTIVE":
                    return False
                if ids and c["ContactID"] not in ids:
                    return False
                return not (term and not any(term in str(c.get(f) or "").lower() for f in ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress")))
            docs = _select(b, "contacts", b.table("contacts").values(), request, include=include)
            docs, block = _page(request, docs)
            summary = _bool(qp.get("summaryOnly"), False)
            return ok(b, "Contacts", [render.contact(c, summary) for c in docs], block)
        return await run(request, work)

    @app.get(P + "/Contacts/{ref}")
    async def get_contact(ref: str, request: Request) -> Response:
        def work(b: Books, _: Any) -> Response:
            c = b.contact(ref) if _UUID.match(ref) else b.contact_by_number(ref)
            return ok(b, "Contacts", [render.contact(c)]) if c else not_found()
        return await run(request, work)

    @app.put(P + "/Contacts")
    async def put_contacts(request: Request) -> Response:
        return await run(request, lambda b, body: batch(
            request, b, body, "Contacts", "HasValidationErrors", lambda s: b.write_contact(
                _as_dict(s), allow_update=False), render.contact, contact_key), body=True)

    @app.post(P + "/Contacts")
    async def post_contacts(request: Request) -> Response:
        return await run(request, lambda b, body: batch(
            request, b, body, "Contacts", "HasValidationErrors", lambda s: b.write_contact(
                _as_dict(s), allow_update=True), render.contact, contact_key), body=True)

    @app.post(P + "/Contacts/{contact_id}")
    async def post_contact(contact_id: str, request: Request) -> Response:
        def work(b: Books, body: Any) -> Response:
            c = b.contact(contact_id) if _UUID.match(contact_id) else b.contact_by_number(contact_id)
            if c is None:
                return not_found()
            return single(request, b, body, "Contacts", "HasValidationErrors", lambda s: b.write_contact(
                {**_as_dict(s), "ContactID": c["ContactID"]}, allow_update=True), render.contact, contact_key)
        return await run(request, work, body=True)

    # --- items -----------------------------------------------------------------------------------
    @app.get(P + "/Items")
    async def get_items(request: Request) -> Response:
        def work(b: Books, _: Any) -> Response:
            dp = _unitdp(request)
            return ok(b, "Items", [render.item(i, dp) for i in _select(b, "items", b.table("items").values(),
                                                                       request)])
        return await run(request, work)

    @app.get(P + "/Items/{ref}")
    async def get_item(ref: str, request: Request) -> Response:
        def work(b: Books, _: Any) -> Response:
            i = b.item(ref) if _UUID.match(ref) else b.item_by_code(ref)
            return ok(b, "Items", [render.item(i, _unitdp(request))]) if i else not_found()
        return await run(request, work)

    def item_writer(request: Request, upsert: bool) -> Callable[[Books, Any], Response]:
        def work(b: Books, body: Any) -> Response:
            dp = _unitdp(request)
            return batch(request, b, body, "Items", "HasValidationErrors",
                         lambda s: b.write_item(_as_dict(s), allow_update=upsert, unitdp=dp),
                         lambda i: render.item(i, dp), lambda i: i["Code"])
        return work

    @app.put(P + "/Items")
    async def put_items(request: Request) -> Response:
        return await run(request, item_writer(request, False), body=True)

    @app.post(P + "/Items")
    async def post_items(request: Request) -> Response:
        return await run(request, item_writer(request, True), body=True)

    @app.post(P + "/Items/{item_id}")
    async def post_item(item_id: str, request: Request) -> Response:
        def work(b: Books, body: Any) -> Response:
            i = b.item(item_id) if _UUID.match(item_id) else b.item_by_code(item_id)
            if i is None:
                return not_found()
            dp = _unitdp(request)
            return single(request, b, body, "Items", "HasValidationErrors",
                          lambda s: b.write_item({**_as_dict(s), "ItemID": i["ItemID"]}, allow_update=True, unitdp=dp),
                          lambda x: render.item(x, dp), lambda x: x["Code"])
        return await run(request, work, body=True)

    @app.delete(P + "/Items/{item_id}")
    async def delete_item(item_id: str, request: Request) -> Response:
        def work(b: Books, _: Any) -> Response:
            i = b.item(item_id)
            if i is None:
                return not_found()
            b.delete_item(i)
            request.state.journal_keys = [i["Code"]]
            return Response(status_code=204)
        return await run(request, work)

    # --- invoices, credit notes, purchase orders -------------------------------------------------
    def doc_key(kind: DocKind) -> Callable[[dict[str, Any]], str]:
        return lambda d: d.get(kind.number_field) or d[kind.id_field]

    def find_doc(b: Books, kind: DocKind, ref: str) -> dict[str, Any] | None:
        if _UUID.match(ref):
            return b.table(kind.table).get(ref.lower())
        docs = b.by_number(kind.table, ref)
        live = [d for d in docs if d.get("Status") != "DELETED"]
        return (live or docs or [None])[0]

    def doc_list(kind: DocKind, key: str) -> Callable[[Request], Any]:
        async def handler(request: Request) -> Response:
            def work(b: Books, _: Any) -> Response:
                qp = request.query_params
                raw_ids = _csv(qp.get("IDs"))
                if len(raw_ids) > MAX_IDS:  # Xero 404s on the URL length (GH Xero-OpenAPI#534)
                    return not_found()
                ids = {i.lower() for i in raw_ids}
                numbers = {norm(n) for n in _csv(qp.get("InvoiceNumbers"))} if kind is INVOICE else set()
                contacts = {c.lower() for c in _csv(qp.get("ContactIDs"))}
                statuses = {s.upper() for s in _csv(qp.get("Statuses"))}
                if kind is PURCHASE_ORDER and qp.get("Status"):
                    statuses = {qp["Status"].upper()}
                date_from = parse_input_date(qp.get("DateFrom")) if kind is PURCHASE_ORDER else None
                date_to = parse_input_date(qp.get("DateTo")) if kind is PURCHASE_ORDER else None
                term = (qp.get("searchTerm") or "").strip().lower()
                term_fields = (kind.number_field, "Reference")

                def include(d: dict[str, Any]) -> bool:
                    if ids and d["_id"] not in ids:
                        return False
                    if numbers and norm(d.get(kind.number_field)) not in numbers:
                        return False
                    if contacts and d["ContactID"] not in contacts:
                        return False
                    if statuses and d["Status"] not in statuses:
                        return False
                    if date_from and d["Date"] < date_from:
                        return False
                    if date_to and d["Date"] > date_to:
                        return False
                    return not (term and not any(term in str(d.get(f) or "").lower() for f in term_fields))
                docs = _select(b, kind.table, b.table(kind.table).values(), request, include=include)
                paged = "page" in qp or "pageSize" in qp
                docs, block = _page(request, docs)
                summary = _bool(qp.get("summaryOnly"), False)
                # "When you retrieve multiple invoices ... no line details are returned"; paging returns
                # them (Xero's invoice docs, quoted in GH calcinai/xero-php#253, XeroAPI/xero-ruby#9).
                lines = paged or kind is not INVOICE
                dp = _unitdp(request)
                return ok(b, key, [render.document(b, kind, d, dp, lines=lines, summary=summary) for d in docs],
                          block)
            return await run(request, work)
        return handler

    def doc_get(kind: DocKind, key: str) -> Callable[..., Any]:
        async def handler(ref: str, request: Request) -> Response:
            def work(b: Books, _: Any) -> Response:
                d = find_doc(b, kind, ref)
                return ok(b, key, [render.document(b, kind, d, _unitdp(request))]) if d else not_found()
            return await run(request, work)
        return handler

    def doc_batch(kind: DocKind, key: str, mode: str) -> Callable[[Request], Any]:
        async def handler(request: Request) -> Response:
            def work(b: Books, body: Any) -> Response:
                dp = _unitdp(request)
                return batch(request, b, body, key, "HasErrors",
                             lambda s: write_document(b, kind, s, mode=mode, unitdp=dp),
                             lambda d: render.document(b, kind, d, dp), doc_key(kind))
            return await run(request, work, body=True)
        return handler

    def doc_update(kind: DocKind, key: str) -> Callable[..., Any]:
        async def handler(ref: str, request: Request) -> Response:
            def work(b: Books, body: Any) -> Response:
                d = find_doc(b, kind, ref)
                if d is None:
                    return not_found()
                dp = _unitdp(request)
                return single(request, b, body, key, "HasErrors",
                              lambda s: write_document(b, kind, _as_dict(s), mode="update", unitdp=dp, target=d),
                              lambda x: render.document(b, kind, x, dp), doc_key(kind))
            return await run(request, work, body=True)
        return handler

    for kind, key, name in ((INVOICE, "Invoices", "Invoices"), (CREDIT_NOTE, "CreditNotes", "CreditNotes"),
                            (PURCHASE_ORDER, "PurchaseOrders", "PurchaseOrders")):
        app.get(f"{P}/{name}")(doc_list(kind, key))
        app.put(f"{P}/{name}")(doc_batch(kind, key, "create"))
        app.post(f"{P}/{name}")(doc_batch(kind, key, "upsert"))
        app.get(f"{P}/{name}/{{ref}}")(doc_get(kind, key))
        app.post(f"{P}/{name}/{{ref}}")(doc_update(kind, key))

    @app.get(P + "/Invoices/{ref}/OnlineInvoice")
    async def online_invoice(ref: str, request: Request) -> Response:
        def work(b: Books, _: Any) -> Response:
            d = find_doc(b, INVOICE, ref)
            if d is None:
                return not_found()
            if d["Type"] != "ACCREC" or d["Status"] not in ("AUTHORISED", "PAID", "VOIDED"):
                return _bad_request("An online invoice is only available for approved sales invoices.")
            token = uuid.uuid5(uuid.NAMESPACE_URL, f"online/{d['_id']}").hex
            return ok(b, "OnlineInvoices", [{"OnlineInvoiceUrl": f"https://in.xero.com/{token}"}])
        return await run(request, work)

    @app.put(P + "/CreditNotes/{ref}/Allocations")
    async def put_allocations(ref: str, request: Request) -> Response:
        def work(b: Books, body: Any) -> Response:
            cn = find_doc(b, CREDIT_NOTE, ref)
            if cn is None:
                return not_found()
            return batch(request, b, body, "Allocations", "HasValidationErrors", lambda s: allocate(b, cn, s),
                         lambda a: render.allocation(b, a), lambda a: a["AllocationID"])
        return await run(request, work, body=True)

    @app.delete(P + "/CreditNotes/{ref}/Allocations/{allocation_id}")
    async def delete_allocations(ref: str, allocation_id: str, request: Request) -> Response:
        def work(b: Books, _: Any) -> Response:
            cn = find_doc(b, CREDIT_NOTE, ref)
            a = delete_allocation(b, cn, allocation_id) if cn else None
            if a is None:
                return not_found()
            request.state.journal_keys = [a["AllocationID"]]
            out = render.allocation(b, a)
            out["IsDeleted"] = True
            return json_response(out)
        return await run(request, work)

    # --- payments --------------------------------------------------------------------------------
    @app.get(P + "/Payments")
    async def get_payments(request: Request) -> Response:
        def work(b: Books, _: Any) -> Response:
            docs = _select(b, "payments", b.table("payments").values(), request)
            docs, block = _page(request, docs)
            return ok(b, "Payments", [render.payment(b, p) for p in docs], block)
        return await run(request, work)

    @app.get(P + "/Payments/{payment_id}")
    async def get_payment(payment_id: str, request: Request) -> Response:
        def work(b: Books, _: Any) -> Response:
            p = b.table("payments").get(payment_id.lower())
            return ok(b, "Payments", [render.payment(b, p)]) if p else not_found()
        return await run(request, work)

    def pay_key(p: dict[str, Any]) -> str:
        return p["PaymentID"]

    @app.put(P + "/Payments")
    async def put_payments(request: Request) -> Response:
        return await run(request, lambda b, body: batch(
            request, b, body, "Payments", "HasValidationErrors", lambda s: write_payment(b, s),
            lambda p: render.payment(b, p), pay_key), body=True)

    @app.post(P + "/Payments")
    async def post_payment(request: Request) -> Response:
        return await run(request, lambda b, body: single(
            request, b, body, "Payments", "HasValidationErrors", lambda s: write_payment(b, s),
            lambda p: render.payment(b, p), pay_key), body=True)

    @app.post(P + "/Payments/{payment_id}")
    async def post_payment_status(payment_id: str, request: Request) -> Response:
        def work(b: Books, body: Any) -> Response:
            p = b.table("payments").get(payment_id.lower())
            if p is None:
                return not_found()

            def change(src: Any) -> dict[str, Any]:
                if str(_as_dict(src).get("Status", "")).upper() != "DELETED":
                    raise Rejected(["Payments can only be deleted (Status DELETED)."])
                return delete_payment(b, p)
            return single(request, b, body, "Payments", "HasValidationErrors", change,
                          lambda x: render.payment(b, x), pay_key)
        return await run(request, work, body=True)


def _as_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Rejected(["Each element must be an object."])
    return value
