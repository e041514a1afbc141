"""Extract: what changed on both sides, staged page by page in the ledger.

Reads are paged and conditional (Zoho ``If-Modified-Since`` on ``Modified_Time``; Xero
``If-Modified-Since`` on ``UpdatedDateUTC``), each page is staged as soon as it arrives (memory
stays flat however large the org), and tasks return only the stage names. Reference data (Xero's
accounts, tax rates, themes, tracking, currencies, items; Zoho's field metadata) is fetched once
per run, lazily, by the first task that needs it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from prefect import get_run_logger, task
from pydantic import BaseModel

from connectors.zoho_coql import cond
from mappings import OrgConfig, ReferenceData, load_org, parse_xero_datetime
from tasks import runtime
from tasks.plan import RunPlan, window_since
from tasks.retry import TRANSIENT
from zxsync.settings import get_settings

#: Zoho fields the mapping reads per module (intersected with the org's live field list).
STANDARD_FIELDS: dict[str, tuple[str, ...]] = {
    "Accounts": ("Account_Name", "Account_Number", "Phone", "Fax", "Website", "Currency", "Description",
                 "Billing_Street", "Billing_City", "Billing_State", "Billing_Code", "Billing_Country",
                 "Shipping_Street", "Shipping_City", "Shipping_State", "Shipping_Code", "Shipping_Country",
                 "Tax_Number", "Payment_Terms", "Modified_Time", "Created_Time"),
    "Contacts": ("First_Name", "Last_Name", "Full_Name", "Email", "Phone", "Mobile", "Account_Name",
                 "Mailing_Street", "Mailing_City", "Mailing_State", "Mailing_Zip", "Mailing_Country",
                 "Primary_Contact", "Created_Time", "Modified_Time"),
    "Vendors": ("Vendor_Name", "Email", "Phone", "Website", "Street", "City", "State", "Zip_Code", "Country",
                "Category", "GL_Account", "Currency", "Tax_Number", "Description", "Modified_Time", "Created_Time"),
    "Products": ("Product_Name", "Product_Code", "Unit_Price", "Tax", "Taxable", "Product_Active",
                 "Product_Category", "Vendor_Name", "Description", "Usage_Unit", "Modified_Time", "Created_Time"),
    "Invoices": ("Subject", "Invoice_Number", "Invoice_Date", "Due_Date", "Status", "Account_Name", "Contact_Name",
                 "Sales_Order", "Purchase_Order", "Invoiced_Items", "Sub_Total", "Discount", "Tax", "Adjustment",
                 "Grand_Total", "Excise_Duty", "Currency", "Exchange_Rate", "Description", "Terms_and_Conditions",
                 "Billing_Street", "Billing_City", "Billing_State", "Billing_Code", "Billing_Country", "Layout",
                 "Owner", "Modified_Time", "Created_Time"),
    "Purchase_Orders": ("Subject", "PO_Number", "PO_Date", "Due_Date", "Status", "Vendor_Name", "Contact_Name",
                        "Requisition_No", "Tracking_Number", "Carrier", "Purchase_Items", "Sub_Total", "Discount",
                        "Tax", "Adjustment", "Grand_Total", "Excise_Duty", "Currency", "Exchange_Rate",
                        "Description", "Terms_and_Conditions", "Layout", "Modified_Time", "Created_Time"),
    "Sales_Orders": ("Subject", "SO_Number", "Status", "Account_Name", "Contact_Name", "Due_Date", "Ordered_Items",
                     "Sub_Total", "Discount", "Tax", "Adjustment", "Grand_Total", "Excise_Duty", "Currency",
                     "Exchange_Rate", "Description", "Terms_and_Conditions", "Layout", "Modified_Time",
                     "Created_Time"),
    "Quotes": ("Subject", "Quote_Number", "Quote_Stage", "Valid_Till", "Account_Name", "Contact_Name",
               "Quoted_Items", "Sub_Total", "Discount", "Tax", "Adjustment", "Grand_Total", "Excise_Duty",
               "Currency", "Exchange_Rate", "Description", "Terms_and_Conditions", "Layout", "Modified_Time",
               "Created_Time"),
}

#: The Zoho modules whose field metadata a run may need (mapping and write-back).
ZOHO_MODULES = ("Accounts", "Contacts", "Vendors", "Products", "Invoices", "Purchase_Orders", "Sales_Orders",
                "Quotes")


class ExtractResult(BaseModel):
    """Pages staged by one extract task, and the newest modification time they held."""

    stream: str
    pages: list[str]
    records: int
    newest: datetime | None = None


# --- reference data (lazy, once per run) ---------------------------------------------------------
_ref_lock = threading.RLock()
_ref_cache: dict[tuple[str, str, str], ReferenceData] = {}


def reference(plan: RunPlan, *, contacts: bool = False) -> ReferenceData:
    """The run's reference data: staged by the first task that asks, reused after (and on Retry).

    ``contacts=True`` adds every Xero contact (only the first sync's matching by email or name
    needs them, so they are fetched only then).
    """
    key = (plan.org, plan.run_id, "contacts" if contacts else "base")
    with _ref_lock:
        if key in _ref_cache:
            return _ref_cache[key]
        xero = _staged(plan, "reference:xero", lambda: [_xero_reference(plan)])[0]
        fields = {m: _staged(plan, f"reference:zoho:{m}", lambda m=m: runtime.zoho(plan.org).fields(m))
                  for m in zoho_modules(plan)}
        data = {**xero, "zoho_fields": fields}
        if contacts:
            data["contacts"] = _staged(plan, "reference:contacts", lambda: [
                c for page in runtime.xero(plan.org).contacts(include_archived=True) for c in page])
        ref = ReferenceData.from_api(**data)
        if len(_ref_cache) > 32:
            _ref_cache.clear()
        _ref_cache[key] = ref
        return ref


def zoho_field_names(plan: RunPlan, module: str) -> list[str]:
    """The API names of a Zoho module's fields (fetched once per run; no Xero call needed)."""
    with _ref_lock:
        rows = _staged(plan, f"reference:zoho:{module}", lambda: runtime.zoho(plan.org).fields(module))
    return [str(r.get("api_name")) for r in rows if r.get("api_name")]


def _staged(plan: RunPlan, name: str, fetch: Any) -> list[dict[str, Any]]:
    ledger = runtime.ledger()
    try:
        return ledger.stage_get(plan.org, plan.run_id, name)
    except KeyError:
        items = list(fetch())
        ledger.stage_put(plan.org, plan.run_id, name, items)
        return items


#: Where the settings part of the Xero reference data waits for the next run of a few record ids.
REFERENCE_CACHE_RUN = "reference-cache"


def _xero_reference(plan: RunPlan) -> dict[str, Any]:
    """Xero's reference data for validation: the organisation's settings (reused by an event run
    within ``ZX_REFERENCE_REUSE_SECONDS`` of the last read, see settings) and its items (always
    read: the last run may have just created some)."""
    ledger = runtime.ledger()
    reuse = get_settings().reference_reuse_seconds
    settings_part: dict[str, Any] | None = None
    if plan.window.kind == "record-ids" and reuse > 0:
        cached = ledger.stage_get_fresh(plan.org, REFERENCE_CACHE_RUN, "reference:xero", reuse)
        settings_part = cached[0] if cached else None
    if settings_part is None:
        settings_part = _fetch_xero_settings(plan)
        ledger.stage_put(plan.org, REFERENCE_CACHE_RUN, "reference:xero", [settings_part])
    return {**settings_part, "items": runtime.xero(plan.org).items()}


def _fetch_xero_settings(plan: RunPlan) -> dict[str, Any]:
    xero = runtime.xero(plan.org)
    return {"organisation": xero.organisation(), "accounts": xero.accounts(), "tax_rates": xero.tax_rates(),
            "branding_themes": xero.branding_themes(),
            "tracking_categories": xero.tracking_categories(include_archived=True),
            "currencies": xero.currencies()}


def zoho_modules(plan: RunPlan) -> list[str]:
    """The Zoho modules this run reads or writes (for their field metadata)."""
    wanted: set[str] = set()
    for m in plan.modules:
        spec = plan.spec(m.name)
        wanted.add(spec.zoho)
        if m.name == "contacts":
            wanted.add("Contacts")
    return [m for m in ZOHO_MODULES if m in wanted]


def zoho_fields(config: OrgConfig, module: str, live: Iterable[str]) -> list[str]:
    """What to read from a Zoho module: the standard fields, the org's mapping sources and our
    Xero_* fields — those of them the org really has (Zoho refuses unknown field names)."""
    live = set(live)
    wanted = list(STANDARD_FIELDS.get(module, ()))
    for section in ("contacts", "vendors", "products", "invoices", "purchase_orders", "sales_orders", "quotes"):
        for mapping in getattr(config.fields, section, []):
            for source in mapping.sources:
                head = source.split(".", 1)
                name = head[1].split(".")[0] if head[0] in ("doc", "product", "contact") and len(head) > 1 \
                    else head[0]
                wanted.append(name)
    for tracking in config.tracking:
        wanted.append(tracking.source.split(".")[-1] if tracking.source.startswith(("doc.", "product."))
                      else tracking.source.split(".")[0])
    wanted += sorted(f for f in live if f.startswith("Xero_"))
    return [f for f in dict.fromkeys(wanted) if f in live]


def _modified(record: dict[str, Any]) -> datetime | None:
    value = record.get("Modified_Time")
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value)).astimezone(UTC)
    except ValueError:
        return None


# --- Zoho ----------------------------------------------------------------------------------------
def _retry_ids(plan: RunPlan, entity: str) -> list[str]:
    """Records rejected or deferred earlier: read again each run until they go through."""
    return runtime.ledger().zoho_ids_in_state(plan.org, entity, ("rejected", "deferred"))


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


@task(name="extract-zoho", persist_result=True, **TRANSIENT)
def extract_zoho(plan: RunPlan, module: str) -> ExtractResult:
    """Stage the module's records changed in the window (plus earlier rejects, read again)."""
    log = get_run_logger()
    spec = plan.spec(module)
    zoho = runtime.zoho(plan.org)
    ledger = runtime.ledger()
    config = load_org(plan.org)
    fields = zoho_fields(config, spec.zoho, zoho_field_names(plan, spec.zoho))
    stream = f"zoho:{spec.zoho}"
    pages: list[str] = []
    seen: set[str] = set()
    newest: datetime | None = None
    total = 0

    def stage(records: list[dict[str, Any]]) -> None:
        nonlocal newest, total
        fresh = [r for r in records if str(r.get("id")) not in seen]
        if not fresh:
            return
        seen.update(str(r["id"]) for r in fresh)
        for r in fresh:
            moment = _modified(r)
            if moment is not None and (newest is None or moment > newest):
                newest = moment
        name = f"{stream}:{len(pages) + 1:05d}"
        if spec.zoho == "Accounts":
            ledger.stage_put(plan.org, plan.run_id, f"{name}:contacts", _primary_contacts(plan, fresh))
        pages.append(ledger.stage_put(plan.org, plan.run_id, name, fresh))
        total += len(fresh)

    def by_ids(ids: list[str]) -> None:
        for records in _pages_by_ids(plan, spec.zoho, fields, [i for i in ids if i not in seen]):
            stage(records)

    if plan.window.kind == "record-ids":
        by_ids(list(plan.window.record_ids))
    else:
        since = window_since(plan, stream)
        for page in zoho.iter_pages(spec.zoho, fields, modified_since=since):
            stage(page.records)
        extra = _retry_ids(plan, spec.entity)
        if spec.zoho == "Accounts":
            extra += _accounts_of_changed_contacts(plan, since)
        by_ids(extra)
    log.info("Zoho %s: %d record(s) to look at in %d page(s)", spec.zoho, total, len(pages))
    return ExtractResult(stream=stream, pages=pages, records=total, newest=newest)


def _pages_by_ids(plan: RunPlan, module: str, fields: list[str], ids: list[str]) -> Iterator[list[dict[str, Any]]]:
    zoho = runtime.zoho(plan.org)
    for chunk in _chunks(ids, 100):
        for page in zoho.iter_pages(module, fields, params={"ids": ",".join(chunk)}, sort_by=None):
            yield page.records


def records_by_ids(plan: RunPlan, module: str, ids: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Zoho records of ``module`` by id, with the fields a sync reads (and, for Accounts, their people)."""
    fields = zoho_fields(load_org(plan.org), module, zoho_field_names(plan, module))
    records = [r for page in _pages_by_ids(plan, module, fields, ids) for r in page]
    people = _primary_contacts(plan, records) if module == "Accounts" and records else []
    return records, people


def _primary_contacts(plan: RunPlan, accounts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Zoho Contacts of these Accounts (the mapping picks each account's primary one)."""
    zoho = runtime.zoho(plan.org)
    live = zoho_field_names(plan, "Contacts")
    fields = [f for f in STANDARD_FIELDS["Contacts"] if f in live]
    out: list[dict[str, Any]] = []
    ids = [str(a["id"]) for a in accounts]
    for chunk in _chunks(ids, 50):
        for page in zoho.iter_coql("Contacts", fields, cond("Account_Name.id", "in", chunk)):
            out.extend(page.records)
    return out


def _accounts_of_changed_contacts(plan: RunPlan, since: datetime | None) -> list[str]:
    """Accounts whose contact person changed: their Xero contact carries the person's details."""
    if since is None:
        return []  # a full read sees every account anyway
    zoho = runtime.zoho(plan.org)
    ids: set[str] = set()
    for page in zoho.iter_coql_since("Contacts", ["Account_Name"], since):
        for row in page.records:
            account = row.get("Account_Name")
            if isinstance(account, dict) and account.get("id"):
                ids.add(str(account["id"]))
    return sorted(ids)


@task(name="extract-zoho-deleted", persist_result=True, **TRANSIENT)
def extract_zoho_deleted(plan: RunPlan, module: str) -> ExtractResult:
    """Stage the module's records deleted in Zoho since the watermark (only linked ones matter)."""
    spec = plan.spec(module)
    stream = f"zoho:{spec.zoho}:deleted"
    if plan.window.kind == "record-ids":
        return ExtractResult(stream=stream, pages=[], records=0)
    ledger = runtime.ledger()
    pages: list[str] = []
    newest: datetime | None = None
    total = 0
    for page in runtime.zoho(plan.org).iter_deleted(spec.zoho, modified_since=window_since(plan, stream)):
        ids = [str(r["id"]) for r in page.records if r.get("id")]
        linked = ledger.links_by_zoho(plan.org, spec.entity, ids)
        mine = [r for r in page.records if str(r.get("id")) in linked]
        for r in page.records:
            value = r.get("deleted_time")
            if value:
                try:
                    moment = datetime.fromisoformat(str(value)).astimezone(UTC)
                except ValueError:
                    continue
                newest = moment if newest is None or moment > newest else newest
        if mine:
            pages.append(ledger.stage_put(plan.org, plan.run_id, f"{stream}:{len(pages) + 1:05d}", mine))
            total += len(mine)
    return ExtractResult(stream=stream, pages=pages, records=total, newest=newest)


# --- Xero ----------------------------------------------------------------------------------------
@task(name="extract-xero", persist_result=True, **TRANSIENT)
def extract_xero(plan: RunPlan, entity: str) -> ExtractResult:
    """Stage Xero's changes of ``entity`` (Invoices, PurchaseOrders, Payments, CreditNotes, Contacts)."""
    log = get_run_logger()
    xero = runtime.xero(plan.org)
    ledger = runtime.ledger()
    stream = f"xero:{entity}"
    pages: list[str] = []
    newest: datetime | None = None
    total = 0
    kwargs: dict[str, Any] = {}
    if plan.window.kind == "record-ids":
        ids = _linked_xero_ids(plan, entity, plan.window.record_ids)
        if not ids:
            return ExtractResult(stream=stream, pages=[], records=0)
        kwargs["ids"] = ids
    else:
        since = window_since(plan, stream)
        if since is None:
            since = _first_sync_start(plan)
        kwargs["modified_since"] = since
        kwargs["overlap"] = _no_overlap()
    if entity == "Contacts":
        kwargs["include_archived"] = True
    for page in xero.pages(entity, **kwargs):
        for doc in page:
            moment = parse_xero_datetime(doc.get("UpdatedDateUTC"))
            if moment is not None and (newest is None or moment > newest):
                newest = moment
        pages.append(ledger.stage_put(plan.org, plan.run_id, f"{stream}:{len(pages) + 1:05d}", page))
        total += len(page)
    log.info("Xero %s: %d changed since the watermark, in %d page(s)", entity, total, len(pages))
    return ExtractResult(stream=stream, pages=pages, records=total, newest=newest)


def _no_overlap() -> Any:
    from datetime import timedelta

    return timedelta(0)  # window_since already subtracted the overlap


def _first_sync_start(plan: RunPlan) -> datetime | None:
    """A first read of Xero goes back to the org's ``sync_from`` (years of history stay put)."""
    config = load_org(plan.org)
    if config.sync_from is None:
        return None
    return datetime(config.sync_from.year, config.sync_from.month, config.sync_from.day, tzinfo=UTC)


def _linked_xero_ids(plan: RunPlan, entity: str, record_ids: list[str]) -> list[str]:
    """For a record-ids window: the Xero ids behind the given Zoho ids (or given Xero ids as is)."""
    ledger = runtime.ledger()
    kinds = {"Invoices": ("invoice", "bill", "sales_order", "quote"), "PurchaseOrders": ("purchase_order",),
             "Contacts": ("contact",)}.get(entity, ())
    out: set[str] = set()
    for kind in kinds:
        out.update(link.xero_id for link in ledger.links_by_zoho(plan.org, kind, record_ids).values()
                   if link.xero_id)
        out.update(ledger.links_by_xero(plan.org, kind, record_ids))
    return sorted(out)


@task(name="extract-xero-affected", persist_result=True, **TRANSIENT)
def extract_affected_invoices(plan: RunPlan, changed: list[ExtractResult], seen: ExtractResult) -> ExtractResult:
    """Invoices whose payments or credit notes changed but which did not show up as changed
    themselves: read them by id (<= 50 a call) so their amounts and status reach Zoho."""
    ledger = runtime.ledger()
    known: set[str] = set()
    for page in seen.pages:
        known.update(d.get("InvoiceID") for d in ledger.stage_get(plan.org, plan.run_id, page))
    wanted: set[str] = set()
    for ex in changed:
        for page in ex.pages:
            for doc in ledger.stage_get(plan.org, plan.run_id, page):
                invoice = doc.get("Invoice") if isinstance(doc.get("Invoice"), dict) else None
                if invoice and invoice.get("InvoiceID"):
                    wanted.add(invoice["InvoiceID"])
                for alloc in doc.get("Allocations") or []:
                    target = alloc.get("Invoice") if isinstance(alloc, dict) else None
                    if isinstance(target, dict) and target.get("InvoiceID"):
                        wanted.add(target["InvoiceID"])
    missing = sorted(wanted - known)
    linked: set[str] = set()
    for entity in ("invoice", "bill", "sales_order", "quote"):
        linked.update(ledger.links_by_xero(plan.org, entity, missing))
    ids = [i for i in missing if i in linked]  # only ours need reconciling
    stream = "xero:Invoices:affected"
    pages: list[str] = []
    total = 0
    if ids:
        for page in runtime.xero(plan.org).pages("Invoices", ids=ids):
            pages.append(ledger.stage_put(plan.org, plan.run_id, f"{stream}:{len(pages) + 1:05d}", page))
            total += len(page)
    return ExtractResult(stream=stream, pages=pages, records=total)
