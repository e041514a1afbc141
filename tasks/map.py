"""Map: one staged page of Zoho records -> Xero documents, with the org's customisations.

The mapping engine (``mappings``) is pure; this task only gathers what it needs from the ledger
(links: create or update, Xero ids of contacts and items, lock state) and stages its result.
"""

from __future__ import annotations

import threading
from typing import Any

from prefect import task

from ledger import JournalEntry
from mappings import (
    MappingResult,
    load_org,
    map_accounts,
    map_deletions,
    map_invoices,
    map_products,
    map_purchase_orders,
    map_quotes,
    map_sales_orders,
    map_vendors,
)
from tasks import runtime
from tasks.extract import reference
from tasks.plan import RunPlan
from tasks.retry import TRANSIENT
from tasks.staging import MappedPage, mapping_to_stage
from tasks.validate import dry_run_creates

#: Subform of line items per Zoho document module.
LINE_SUBFORMS = {"Invoices": "Invoiced_Items", "Purchase_Orders": "Purchase_Items", "Sales_Orders": "Ordered_Items",
                 "Quotes": "Quoted_Items"}
CONTACT_FIELD = {"Purchase_Orders": "Vendor_Name"}


def mapping_links(plan: RunPlan, entity: str, zoho_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Ledger links as the mapping engine takes them (only records already in Xero)."""
    out: dict[str, dict[str, Any]] = {}
    for zoho_id, link in runtime.ledger().links_by_zoho(plan.org, entity, zoho_ids).items():
        if not link.xero_id:
            continue
        extra = link.extra or {}
        out[zoho_id] = {"xero_id": link.xero_id, "content_hash": link.content_hash,
                        "line_ids": extra.get("line_ids") or {}, "xero_status": extra.get("xero_status"),
                        "amount_paid": extra.get("amount_paid") or 0.0,
                        "amount_credited": extra.get("amount_credited") or 0.0, "xero_number": link.xero_number,
                        "xero_changed": bool(extra.get("xero_changed"))}
    return out


def failed_in_ledger(plan: RunPlan, entity: str, zoho_ids: list[str]) -> dict[str, str]:
    """Contacts or items that could not be pushed (so documents using them wait, with that reason)."""
    ledger = runtime.ledger()
    links = ledger.links_by_zoho(plan.org, entity, zoho_ids)
    failed = {z: (link.extra or {}).get("reason") or "it was rejected"
              for z, link in links.items() if link.state in ("rejected", "deferred") and not link.xero_id}
    return failed


def _lookup_ids(records: list[dict[str, Any]], field: str) -> list[str]:
    ids = {str(r[field]["id"]) for r in records if isinstance(r.get(field), dict) and r[field].get("id")}
    return sorted(ids)


def _line_product_ids(records: list[dict[str, Any]], subform: str) -> list[str]:
    ids: set[str] = set()
    for r in records:
        for row in r.get(subform) or []:
            product = row.get("Product_Name")
            if isinstance(product, dict) and product.get("id"):
                ids.add(str(product["id"]))
    return sorted(ids)


#: Zoho fields where we (or a previous integration) keep the Xero id, per Zoho module.
XERO_ID_FIELDS = {"Accounts": "Xero_Contact_ID", "Vendors": "Xero_Contact_ID", "Products": "Xero_Item_ID",
                  "Invoices": "Xero_Invoice_ID", "Sales_Orders": "Xero_Invoice_ID", "Quotes": "Xero_Invoice_ID"}


def adopt_links(plan: RunPlan, module: str, records: list[dict[str, Any]]) -> int:
    """Unlinked Zoho records that already carry a Xero id (left by a previous tool, or by us before
    the ledger was lost) are linked to it instead of being created again in Xero."""
    spec = plan.spec(module)
    field = XERO_ID_FIELDS.get(spec.zoho) or ("Xero_Bill_ID" if spec.entity == "bill" else "Xero_PO_ID")
    candidates = {str(r["id"]): str(r[field]).strip() for r in records if r.get(field) and str(r[field]).strip()}
    if not candidates or plan.dry_run:
        return 0
    ledger = runtime.ledger()
    linked = ledger.links_by_zoho(plan.org, spec.entity, list(candidates))
    taken = ledger.links_by_xero(plan.org, spec.entity, list(candidates.values()))
    rows, entries, claimed = [], [], set()
    for zoho_id, xero_id in candidates.items():
        link = linked.get(zoho_id)
        if (link is not None and link.xero_id) or xero_id in taken or xero_id in claimed:
            continue
        claimed.add(xero_id)
        rows.append({"zoho_id": zoho_id, "xero_id": xero_id, "state": "synced",
                     "extra": {**((link.extra if link else None) or {}), "adopted_from": field,
                               "zoho_module": spec.zoho}})
        entries.append(JournalEntry(org=plan.org, run_id=plan.run_id, entity=spec.entity, zoho_id=zoho_id,
                                    xero_id=xero_id, action="adopt-link", outcome="ok",
                                    message=f"linked through the Xero id already in Zoho's {field}"))
    if rows:
        with ledger.atomic():
            ledger.upsert_links(plan.org, spec.entity, rows)
            ledger.record(entries)
    return len(rows)


def map_records(plan: RunPlan, module: str, records: list[dict[str, Any]],
                people: list[dict[str, Any]] | None = None) -> MappingResult:
    """Run the mapping engine over Zoho records of one module, with what it needs from the ledger."""
    config = load_org(plan.org)
    spec = plan.spec(module)
    ids = [str(r["id"]) for r in records]
    adopt_links(plan, module, records)
    links = mapping_links(plan, spec.entity, ids)
    if module in ("contacts", "vendors"):
        # Matching by email or name (first sync) needs Xero's contacts: fetched only when some are new.
        ref = reference(plan, contacts=any(i not in links for i in ids))
        if module == "contacts":
            return map_accounts(records, org=config, ref=ref, links=links, contacts=people or [])
        return map_vendors(records, org=config, ref=ref, links=links)
    if module == "products":
        _remember_products(plan, records)
        return map_products(records, org=config, ref=reference(plan), links=links)
    ref = reference(plan)
    contact_field = CONTACT_FIELD.get(spec.zoho, "Account_Name")
    contact_ids = _lookup_ids(records, contact_field)
    contact_links = {z: l["xero_id"] for z, l in mapping_links(plan, "contact", contact_ids).items()}
    product_ids = _line_product_ids(records, LINE_SUBFORMS[spec.zoho])
    item_links = {z: l["xero_id"] for z, l in mapping_links(plan, "item", product_ids).items()}
    # A dry run maps documents against the contacts and items it would have created.
    for z in dry_run_creates(plan, "contact"):
        contact_links.setdefault(z, f"(new contact {z})")
    for z in dry_run_creates(plan, "item"):
        item_links.setdefault(z, f"(new item {z})")
    failed = {**failed_in_ledger(plan, "contact", contact_ids), **failed_in_ledger(plan, "item", product_ids)}
    products = _products(plan, product_ids) if _needs_products(config) else None
    mapper = {"invoices": map_invoices, "purchase_orders": map_purchase_orders,
              "sales_orders": map_sales_orders, "quotes": map_quotes}[module]
    return mapper(records, org=config, ref=ref, links=links, contact_links=contact_links, item_links=item_links,
                  products=products, failed=failed)


#: Ledger entity -> the mapping engine's document kind.
DOC_KINDS = {"invoice": "invoice", "sales_order": "sales_order", "quote": "quote", "bill": "bill",
             "purchase_order": "purchase_order"}


@task(name="map", persist_result=True, **TRANSIENT)
def map_page(plan: RunPlan, module: str, page: str, deleted: bool = False) -> MappedPage:
    """Map one staged page of a module (or of its deletions) and stage documents, rejects and skips."""
    ledger = runtime.ledger()
    records = ledger.stage_get(plan.org, plan.run_id, page)
    if deleted:
        spec = plan.spec(module)
        links = mapping_links(plan, spec.entity, [str(r["id"]) for r in records])
        result = map_deletions(records, kind=DOC_KINDS[spec.entity], org=load_org(plan.org), ref=reference(plan),
                               links=links)
    else:
        people = ledger.stage_get(plan.org, plan.run_id, f"{page}:contacts") if module == "contacts" else None
        result = map_records(plan, module, records, people)
        _remember_zoho_status(plan, module, records)
    stage = mapping_to_stage(plan, f"{page}:mapped", result)
    return MappedPage(module=module, page=page, stage=stage, counts=result.counts())


def _remember_zoho_status(plan: RunPlan, module: str, records: list[dict[str, Any]]) -> None:
    """Zoho's current Status of linked documents: the reverse status map writes one only when it
    differs in meaning (a user's choice is never overwritten by an equivalent value)."""
    if module not in LINE_SUBFORMS.values() and plan.spec(module).zoho not in LINE_SUBFORMS or plan.dry_run:
        return
    spec = plan.spec(module)
    ledger = runtime.ledger()
    links = ledger.links_by_zoho(plan.org, spec.entity, [str(r["id"]) for r in records])
    rows = []
    for r in records:
        link = links.get(str(r["id"]))
        status = r.get("Status") or r.get("Quote_Stage")
        if link is None or not link.xero_id or not status or (link.extra or {}).get("zoho_status") == status:
            continue
        rows.append({"zoho_id": link.zoho_id, "extra": {**(link.extra or {}), "zoho_status": status}})
    if rows:
        ledger.upsert_links(plan.org, spec.entity, rows)


def _needs_products(config: Any) -> bool:
    """Whether any mapping reads product fields the line doesn't carry (category, product.*)."""
    accounts = config.accounts
    if accounts.by_category or accounts.purchases_by_category:
        return True
    return any(s.startswith("product.") for section in ("invoices", "purchase_orders", "sales_orders", "quotes")
               for m in getattr(config.fields, section) for s in m.sources) or any(
        t.source.startswith("product.") for t in config.tracking)


#: Products already read by this run's pages, per (org, run id): a product on many pages is read
#: from Zoho once per run, not once per page (benchmarks: a 10,000-invoice first sync read ~315
#: product chunks, one to nine per page of 200 invoices, for 1,000 products).
_product_lock = threading.Lock()
_product_cache: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
#: Bound on the products remembered per run (memory stays flat for any catalogue).
PRODUCT_CACHE_MAX = 50_000


#: The product fields document mappings may read (account by category, product.* sources, tracking).
PRODUCT_FIELDS = ("Product_Name", "Product_Code", "Product_Category", "Unit_Price", "Vendor_Name")


def _run_cache(plan: RunPlan) -> dict[str, dict[str, Any]]:
    """This run's product cache (call under ``_product_lock``)."""
    key = (plan.org, plan.run_id)
    if key not in _product_cache and len(_product_cache) >= 8:
        _product_cache.clear()  # runs long finished in this process
    return _product_cache.setdefault(key, {})


def _remember_products(plan: RunPlan, records: list[dict[str, Any]]) -> None:
    """Products this run just read from its Products stream serve its documents' lines too: a
    first sync then reads no product twice (records lacking a field the lines need are skipped)."""
    whole = {str(r["id"]): r for r in records if r.get("id") is not None and all(f in r for f in PRODUCT_FIELDS)}
    with _product_lock:
        cache = _run_cache(plan)
        if len(cache) + len(whole) <= PRODUCT_CACHE_MAX:
            cache.update(whole)


def _products(plan: RunPlan, product_ids: list[str]) -> list[dict[str, Any]]:
    """The Zoho products on a page's lines (category and fields for account and tracking rules)."""
    if not product_ids:
        return []
    with _product_lock:
        cache = _run_cache(plan)
        found = {p: cache[p] for p in product_ids if p in cache}
    missing = [p for p in product_ids if p not in found]
    zoho = runtime.zoho(plan.org)
    fields = list(PRODUCT_FIELDS)
    for start in range(0, len(missing), 100):
        chunk = missing[start:start + 100]
        for page in zoho.iter_pages("Products", fields, params={"ids": ",".join(chunk)}, sort_by=None):
            found.update({str(r["id"]): r for r in page.records if r.get("id") is not None})
    with _product_lock:
        if len(cache) + len(found) > PRODUCT_CACHE_MAX:
            cache.clear()
        cache.update(found)
    return list(found.values())
