"""Reconcile: what Xero decided comes back to Zoho CRM.

For every linked document: Xero's id, number, status, amounts paid and due, fully-paid date,
payments and credit notes, the online link and the sync status (synced, locked-paid,
locked-part-paid, or "rejected: reason"); Xero ids onto Zoho Accounts, Vendors and Products; and
contacts and invoices created in Xero become Zoho records where the org syncs them that way.
Every write-back carries a content hash, so an unchanged one costs nothing and our own writes
never bounce back as changes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from prefect import get_run_logger, task

from connectors.zoho import RecordResult
from ledger import JournalEntry
from mappings import (
    Reject,
    ZohoWrite,
    ZohoWriteResult,
    content_hash,
    load_org,
    writeback_documents,
    writeback_rejects,
    xero_contact_people_to_zoho,
    xero_contacts_to_zoho,
    xero_invoices_to_zoho,
)
from mappings.writeback import NOT_HASHED
from tasks import runtime
from tasks.extract import reference
from tasks.plan import RunPlan
from tasks.retry import TRANSIENT
from tasks.staging import mapping_from_stage
from tasks.validate import record_rejects

#: Ledger entities whose Xero document is an ACCREC invoice, with their Zoho module.
ACCREC_ENTITIES = {"invoice": "Invoices", "sales_order": "Sales_Orders", "quote": "Quotes"}
ZOHO_BATCH = 100


def online_url(xero_id: str, kind: str = "ACCREC") -> str:
    """Xero's deep link to a document (no API call per record)."""
    if kind == "PO":
        return f"https://go.xero.com/Accounts/Payable/PurchaseOrders/View/{xero_id}"
    if kind == "ACCPAY":
        return f"https://go.xero.com/AccountsPayable/View.aspx?InvoiceID={xero_id}"
    return f"https://go.xero.com/AccountsReceivable/View.aspx?InvoiceID={xero_id}"


OutcomeRow = tuple[dict[str, Any] | None, JournalEntry]


def _in_zoho(plan: RunPlan, entity: str, writes: list[ZohoWrite], *, create: bool,
             outcome: Callable[[ZohoWrite, RecordResult | None, Any], OutcomeRow]) -> Counter[str]:
    """Send Zoho writes in batches of 100 and commit each batch's links and journal together.

    ``outcome(write, result, link)`` turns one record's result into (the link row to upsert, or
    None; its journal entry). Creates are paired by the Xero id, updates by the Zoho id.
    """
    counts: Counter[str] = Counter()
    if not writes:
        return counts
    if plan.dry_run:
        counts["would_create_in_zoho" if create else "would_write_back"] += len(writes)
        return counts
    ledger = runtime.ledger()
    zoho = runtime.zoho(plan.org)
    module = writes[0].module
    for start in range(0, len(writes), ZOHO_BATCH):
        chunk = writes[start:start + ZOHO_BATCH]
        keys = [str(w.xero_id if create else w.zoho_id) for w in chunk]
        send = zoho.insert if create else zoho.update
        by_key: dict[str, RecordResult] = {r.key: r for r in send(module, [w.record for w in chunk], keys=keys)}
        links = {} if create else ledger.links_by_zoho(plan.org, entity, keys)
        rows, entries = [], []
        for key, w in zip(keys, chunk):
            row, entry = outcome(w, by_key.get(key), links.get(key))
            if row is not None:
                rows.append(row)
            entries.append(entry)
            counts[entry.action.replace("-", "_") if entry.outcome == "ok" else "writeback_errors"] += 1
        with ledger.atomic():
            if rows:
                ledger.upsert_links(plan.org, entity, rows)
            ledger.record(entries)
    if counts["writeback"]:
        counts["written_back"] = counts.pop("writeback")
    if counts["create_in_zoho"]:
        counts["created_in_zoho"] = counts.pop("create_in_zoho")
    return +counts


def write_to_zoho(plan: RunPlan, entity: str, writes: list[ZohoWrite], *, hash_key: str = "zoho_hash"
                  ) -> Counter[str]:
    """Update Zoho records in batches of 100 and remember each write-back's hash on the link."""

    def outcome(w: ZohoWrite, result: RecordResult | None, link: Any) -> OutcomeRow:
        zoho_id = str(w.zoho_id)
        if result is None or not result.ok:
            reason = (result.message if result else None) or "no answer for this record"
            return None, JournalEntry(org=plan.org, run_id=plan.run_id, entity=entity, zoho_id=zoho_id,
                                      xero_id=w.xero_id, action="writeback", outcome="error",
                                      field=result.api_name if result else None,
                                      message=f"Zoho refused the write-back: {reason}",
                                      hint="Check the Zoho field named (type, length, picklist values) "
                                           "and the layout's rules")
        extra = dict((link.extra if link else None) or {})
        extra[hash_key] = w.content_hash
        if hash_key == "zoho_hash":
            extra["zoho_core_hash"] = core_hash(w.record)
            if "Xero_Sync_Status" in w.record:
                extra.pop("status_hash", None)  # the reject's status text was overwritten
        row: dict[str, Any] = {"zoho_id": zoho_id, "extra": extra}
        status = w.record.get("Xero_Sync_Status")
        if link is not None and link.xero_id and status in ("synced", "locked-paid", "locked-part-paid"):
            row["state"] = status
        return row, JournalEntry(org=plan.org, run_id=plan.run_id, entity=entity, zoho_id=zoho_id,
                                 xero_id=w.xero_id, action="writeback", outcome="ok", after={"zoho": w.record})

    return _in_zoho(plan, entity, writes, create=False, outcome=outcome)


def _record_mapping_rejects(plan: RunPlan, entity: str, results: Iterable[ZohoWriteResult]) -> int:
    rejects: list[Reject] = [r for res in results for r in res.rejects]
    if not rejects:
        return 0
    ledger = runtime.ledger()
    ledger.record([JournalEntry(org=plan.org, run_id=plan.run_id, entity=entity, zoho_id=r.record_id,
                                action="writeback", outcome="rejected", rule=r.rule, field=r.field,
                                message=r.message, hint=r.hint) for r in rejects])
    return len({r.record_id for r in rejects if r.blocking})


@task(name="reconcile", persist_result=True, **TRANSIENT)
def reconcile_page(plan: RunPlan, stream: str, page: str) -> dict[str, int]:
    """One page of Xero's changed documents (Invoices or PurchaseOrders) back into Zoho."""
    docs = runtime.ledger().stage_get(plan.org, plan.run_id, page)
    return dict(writeback(plan, docs, purchase_orders=stream == "xero:PurchaseOrders"))


@task(name="import-invoices", persist_result=True, **TRANSIENT)
def import_invoices(plan: RunPlan, page: str) -> dict[str, int]:
    """ACCREC invoices created in Xero (not by us, and still unlinked after this run's push)
    become Zoho Invoices, when invoices sync to Zoho."""
    docs = runtime.ledger().stage_get(plan.org, plan.run_id, page)
    fresh = [d for d in docs if d.get("Type") == "ACCREC" and not _linked_anywhere(plan, d["InvoiceID"])]
    if not fresh:
        return {}
    counts = _create_invoices_in_zoho(plan, load_org(plan.org), reference(plan), fresh)
    # Their Xero_* fields in the write-back's own terms, so the next run finds them unchanged.
    counts.update(writeback(plan, fresh, purchase_orders=False))
    return dict(counts)


@task(name="write-back-pushed", persist_result=True, **TRANSIENT)
def writeback_pushed(plan: RunPlan, module: str, stages: list[str]) -> dict[str, int]:
    """The documents just pushed, as Xero answered them, back into Zoho (ids, numbers, status)."""
    ledger = runtime.ledger()
    docs: list[dict[str, Any]] = []
    for name in stages:
        try:
            docs += ledger.stage_get(plan.org, plan.run_id, name)
        except KeyError:
            continue  # that batch wrote nothing
    spec = plan.spec(module)
    return dict(writeback(plan, docs, purchase_orders=spec.xero == "PurchaseOrders"))


def _linked_anywhere(plan: RunPlan, xero_id: str) -> bool:
    ledger = runtime.ledger()
    return any(ledger.links_by_xero(plan.org, e, [xero_id]) for e in ("invoice", "sales_order", "quote"))


def writeback(plan: RunPlan, docs: list[dict[str, Any]], *, purchase_orders: bool) -> Counter[str]:
    """Write Xero's state of linked documents into their Zoho records (unchanged ones cost nothing)."""
    ledger = runtime.ledger()
    counts: Counter[str] = Counter()
    if not docs:
        return counts
    config = load_org(plan.org)
    ref = reference(plan)
    if purchase_orders:
        groups = {("purchase_order", "Purchase_Orders", "PO"): docs}
    else:
        groups = {("bill", "Purchase_Orders", "ACCPAY"): [d for d in docs if d.get("Type") == "ACCPAY"]}
        for entity, module in ACCREC_ENTITIES.items():
            groups[(entity, module, "ACCREC")] = [d for d in docs if d.get("Type") == "ACCREC"]
    id_field = "PurchaseOrderID" if purchase_orders else "InvoiceID"
    for (entity, module, kind), group in groups.items():
        if not group:
            continue
        links = ledger.links_by_xero(plan.org, entity, [d[id_field] for d in group])
        if not links:
            continue
        zoho_links = {x: link.zoho_id for x, link in links.items()}
        mine = [d for d in group if d[id_field] in zoho_links]
        result = writeback_documents(
            mine, org=config, ref=ref, links=zoho_links, module=module,
            zoho_status=_zoho_status(config, module, mine, links, id_field),
            online_urls={d[id_field]: online_url(d[id_field], kind) for d in mine})
        counts["writeback_errors"] += _record_mapping_rejects(plan, entity, [result])
        writes = _changed_writes(result.writes, {link.zoho_id: link for link in links.values()})
        # Keep the lock state current even when the write-back itself is unchanged (first: the
        # write below re-reads the links and adds its hash).
        state = {zoho_links[d[id_field]]: _state(d) for d in mine}
        _remember_state(plan, entity, state, links)
        counts.update(write_to_zoho(plan, entity, writes))
    return counts


def _changed_writes(writes: list[ZohoWrite], links: dict[str, Any]) -> list[ZohoWrite]:
    """The write-backs that change something in Zoho.

    While a record has a reject pending (its last push was refused, locked or deferred), its
    ``Xero_Sync_Status`` belongs to the reject's write-back ("rejected: reason", "locked-paid" ...):
    Xero's side leaves that field alone, so the two never take turns overwriting it.
    """
    out = []
    for w in writes:
        link = links.get(str(w.zoho_id))
        extra = (link.extra if link else None) or {}
        record = dict(w.record)
        if extra.get("rule"):
            record.pop("Xero_Sync_Status", None)
            if extra.get("zoho_core_hash") == core_hash(record):
                continue
        digest = content_hash({k: v for k, v in record.items() if k not in NOT_HASHED})
        if extra.get("zoho_hash") != digest:
            out.append(ZohoWrite(w.module, w.action, w.zoho_id, w.xero_id, record, digest))
    return out


def core_hash(record: dict[str, Any]) -> str:
    """A write-back's hash without the sync status (which a pending reject owns)."""
    return content_hash({k: v for k, v in record.items() if k not in NOT_HASHED and k != "Xero_Sync_Status"})


def _zoho_status(config: Any, module: str, docs: list[dict[str, Any]], links: dict[str, Any],
                 id_field: str) -> dict[str, str]:
    """Zoho's status per record, as the reverse status map should see it.

    Xero's status is written back to Zoho's Status only when Xero changed it (paid, voided ...).
    When Xero's status is the one we already knew, Zoho's own value stands — it may be a user's
    pending change (a cancellation, an approval) that this very run is about to push.
    """
    section = config.status.purchase_orders if module == "Purchase_Orders" else config.status.invoices
    out: dict[str, str] = {}
    for doc in docs:
        link = links.get(doc[id_field])
        if link is None:
            continue
        extra = link.extra or {}
        known, current = extra.get("xero_status"), extra.get("zoho_status")
        if known is not None and known == doc.get("Status"):
            standing = section.to_zoho.get(known) if hasattr(section, "to_zoho") else None
            if standing or current:
                out[link.zoho_id] = standing or current
        elif current:
            out[link.zoho_id] = current
    return out


def _state(doc: dict[str, Any]) -> dict[str, Any]:
    return {"xero_status": doc.get("Status"), "amount_paid": doc.get("AmountPaid") or 0.0,
            "amount_credited": doc.get("AmountCredited") or 0.0}


def _remember_state(plan: RunPlan, entity: str, states: dict[str, dict[str, Any]], links: dict[str, Any]) -> None:
    ledger = runtime.ledger()
    rows = []
    for link in links.values():
        state = states.get(link.zoho_id)
        if state is None:
            continue
        extra = dict(link.extra or {})
        if all(extra.get(k) == v for k, v in state.items()):
            continue
        extra.update(state)
        rows.append({"zoho_id": link.zoho_id, "extra": extra})
    if rows and not plan.dry_run:
        ledger.upsert_links(plan.org, entity, rows)


def _create_invoices_in_zoho(plan: RunPlan, config: Any, ref: Any, fresh: list[dict[str, Any]]) -> Counter[str]:
    """ACCREC invoices created in Xero (not by us) become Zoho Invoices when invoices sync to Zoho."""
    counts: Counter[str] = Counter()
    module = plan.module("invoices")
    if not fresh or module is None or not module.to_zoho:
        return counts
    ledger = runtime.ledger()
    contact_ids = sorted({d["Contact"]["ContactID"] for d in fresh if isinstance(d.get("Contact"), dict)})
    contact_links = {x: link.zoho_id for x, link in ledger.links_by_xero(plan.org, "contact", contact_ids).items()}
    item_links = {link.xero_number or "": link.zoho_id for link in ledger.links_by_zoho(plan.org, "item").values()
                  if link.xero_number}
    result = xero_invoices_to_zoho(fresh, org=config, ref=ref, linked=[], contact_links=contact_links,
                                   item_links=item_links)
    counts["writeback_errors"] += _record_mapping_rejects(plan, "invoice", [result])
    created = create_in_zoho(plan, "invoice", result.writes)
    counts.update(created)
    if created["created_in_zoho"]:
        made = ledger.links_by_xero(plan.org, "invoice", [str(w.xero_id) for w in result.writes])
        settle_born_in_xero(plan, "invoices", [link.zoho_id for link in made.values()])
    return counts


def settle_born_in_xero(plan: RunPlan, module: str, zoho_ids: list[str]) -> None:
    """Records we just created in Zoho from Xero: remember what they map back to, so the next run
    sees them as unchanged instead of pushing Zoho's copy over Xero's original (no ping-pong)."""
    if not zoho_ids or plan.dry_run:
        return
    from tasks.extract import records_by_ids
    from tasks.map import map_records

    spec = plan.spec(module)
    records, people = records_by_ids(plan, spec.zoho, zoho_ids)
    result = map_records(plan, module, records, people)
    rows = [{"zoho_id": d.zoho_id, "content_hash": d.content_hash} for d in result.documents
            if d.content_hash and d.action in ("create", "update")]
    if rows:
        runtime.ledger().upsert_links(plan.org, spec.entity, rows)


def create_in_zoho(plan: RunPlan, entity: str, writes: list[ZohoWrite]) -> Counter[str]:
    """Insert records born in Xero into Zoho and link them (Xero's number kept in its own field)."""
    module = writes[0].module if writes else ""

    def outcome(w: ZohoWrite, result: RecordResult | None, link: Any) -> OutcomeRow:
        adopted = (result is not None and not result.ok and result.code == "DUPLICATE_DATA" and result.existing_id
                   and result.api_name and w.record.get(result.api_name) == w.xero_id)
        if adopted:
            # Zoho already holds this Xero record under its unique Xero id: an earlier attempt was
            # committed but its answer was lost. Link that record; never create a second one.
            assert result is not None
            result = result.model_copy(update={"ok": True, "id": result.existing_id})
        if result is None or not result.ok or not result.id:
            reason = (result.message if result else None) or "no answer for this record"
            return None, JournalEntry(org=plan.org, run_id=plan.run_id, entity=entity, xero_id=w.xero_id,
                                      action="create-in-zoho", outcome="error",
                                      message=f"Zoho refused the new {module} record: {reason}",
                                      hint="Check the Zoho module's mandatory fields and layout rules")
        extra = {"zoho_hash": w.content_hash, "born_in": "xero", "zoho_module": module}
        id_field = ID_FIELDS.get(module)
        if id_field and w.record.get(id_field) == w.xero_id:
            extra["id_hash"] = content_hash({"id": result.id, id_field: w.xero_id})
        row = {"zoho_id": result.id, "xero_id": w.xero_id, "state": "synced", "extra": extra}
        return row, JournalEntry(org=plan.org, run_id=plan.run_id, entity=entity, zoho_id=result.id,
                                 xero_id=w.xero_id, action="create-in-zoho", outcome="ok", after={"zoho": w.record},
                                 message="already in Zoho (an earlier attempt's answer was lost): linked, not "
                                         "created again" if adopted else None)

    return _in_zoho(plan, entity, writes, create=True, outcome=outcome)


@task(name="import-contacts", persist_result=True, **TRANSIENT)
def import_contacts(plan: RunPlan, page: str) -> dict[str, int]:
    """Contacts created in Xero (still unlinked after this run's push, which links the ones that
    match a Zoho record by number, email or name) become Zoho Accounts or Vendors."""
    ledger = runtime.ledger()
    config = load_org(plan.org)
    contacts = ledger.stage_get(plan.org, plan.run_id, page)
    linked = set(ledger.links_by_xero(plan.org, "contact", [c["ContactID"] for c in contacts]))
    ref = reference(plan)
    counts: Counter[str] = Counter()
    results = xero_contacts_to_zoho(contacts, org=config, ref=ref, linked=linked)
    counts["writeback_errors"] += _record_mapping_rejects(plan, "contact", results)
    account_links: dict[str, str] = {}
    for result in results:
        counts.update(create_in_zoho(plan, "contact", result.writes))
        if result.module == "Accounts" and not plan.dry_run:
            made = ledger.links_by_xero(plan.org, "contact", [str(w.xero_id) for w in result.writes])
            account_links.update({x: link.zoho_id for x, link in made.items()})
    if account_links:
        people = xero_contact_people_to_zoho(contacts, org=config, ref=ref, account_links=account_links)
        counts["writeback_errors"] += _record_mapping_rejects(plan, "contact", [people])
        if people.writes and not plan.dry_run:
            runtime.zoho(plan.org).insert("Contacts", [w.record for w in people.writes],
                                          keys=[str(w.xero_id) for w in people.writes])
    for result in results:
        if result.writes and not plan.dry_run:
            made = ledger.links_by_xero(plan.org, "contact", [str(w.xero_id) for w in result.writes])
            module = "vendors" if result.module == "Vendors" else "contacts"
            settle_born_in_xero(plan, module, [link.zoho_id for link in made.values()])
    return dict(counts)


#: The Zoho field holding the Xero id, per Zoho module.
ID_FIELDS = {"Accounts": "Xero_Contact_ID", "Vendors": "Xero_Contact_ID", "Products": "Xero_Item_ID"}
#: Zoho module and id field written back for linked contacts and items.
ID_WRITEBACK = {"contacts": ("contact", "Accounts", "Xero_Contact_ID"),
                "vendors": ("contact", "Vendors", "Xero_Contact_ID"),
                "products": ("item", "Products", "Xero_Item_ID")}


@task(name="write-back-ids", persist_result=True, **TRANSIENT)
def writeback_ids(plan: RunPlan, module: str) -> dict[str, int]:
    """Xero's ContactID / ItemID onto the Zoho Accounts, Vendors and Products that lack it."""
    entity, zoho_module, field = ID_WRITEBACK[module]
    ref = reference(plan)
    if ref.zoho_field(zoho_module, field) is None:
        get_run_logger().warning("Zoho %s has no field %s: run `zxsync setup zoho-fields %s` to add it",
                                 zoho_module, field, plan.org)
        return {}
    if plan.dry_run:
        return {}
    links = runtime.ledger().links_by_zoho(plan.org, entity)
    writes = []
    for zoho_id, link in links.items():
        if not link.xero_id or (link.extra or {}).get("zoho_module", zoho_module) != zoho_module:
            continue
        record = {"id": zoho_id, field: link.xero_id}
        digest = content_hash(record)
        if (link.extra or {}).get("id_hash") != digest:
            writes.append(ZohoWrite(zoho_module, "update", zoho_id, link.xero_id, record, digest))
    return dict(write_to_zoho(plan, entity, writes, hash_key="id_hash"))


@task(name="write-back-rejects", persist_result=True, **TRANSIENT)
def writeback_page_rejects(plan: RunPlan, module: str, mapped_stage: str) -> dict[str, int]:
    """``Xero_Sync_Status`` ("rejected: reason", locked-paid, ...) on the Zoho records not pushed."""
    spec = plan.spec(module)
    result = mapping_from_stage(plan, mapped_stage)
    blocking = [r for r in result.rejects if r.blocking]
    if not blocking:
        return {}
    ledger = runtime.ledger()
    links = ledger.links_by_zoho(plan.org, spec.entity, [r.record_id for r in blocking])
    written = {z: (link.extra or {}).get("status_hash") for z, link in links.items()}
    counts: Counter[str] = Counter()
    for res in writeback_rejects(blocking, org=load_org(plan.org), ref=reference(plan), written_hashes=written):
        counts.update(write_to_zoho(plan, spec.entity, res.writes, hash_key="status_hash"))
    return dict(counts)


__all__ = [
    "create_in_zoho",
    "import_contacts",
    "import_invoices",
    "online_url",
    "reconcile_page",
    "record_rejects",
    "write_to_zoho",
    "writeback_ids",
    "writeback_page_rejects",
]
