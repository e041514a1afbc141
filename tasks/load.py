"""Load: send validated batches to Xero, record every element's outcome before the next batch.

No duplicate, ever: before a batch goes out a write-ahead intent naming its natural keys is
committed to the ledger; the outcome of each element (link, journal entry with snapshots) is
committed with the intent's settlement in one transaction. A crash between Xero's commit and our
bookkeeping leaves the intent pending, and the next attempt (a task retry, a UI Retry, or the
next run) settles it by looking the natural keys up in Xero before anything is created again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import datetime
from typing import Any

from prefect import get_run_logger, task

from connectors.xero import BillRef
from connectors.xero_batches import ElementResult
from ledger import IntentRow, JournalEntry
from mappings import Document, Reject, match_line_ids
from tasks import runtime
from tasks.plan import RunPlan, module_spec
from tasks.retry import TRANSIENT, UnknownOutcome
from tasks.staging import BatchRef, document_from_json
from tasks.validate import record_rejects, reject_counts

#: Xero id field and lock-relevant fields per collection.
ID_FIELD = {"Contacts": "ContactID", "Items": "ItemID", "Invoices": "InvoiceID", "PurchaseOrders": "PurchaseOrderID"}
STATUS_FOR = {"delete": "DELETED", "void": "VOIDED"}


def xero_state(element: dict[str, Any] | None) -> dict[str, Any]:
    """What the lock rules need to remember of a document as Xero holds it."""
    if not element:
        return {}
    state: dict[str, Any] = {}
    for key, name in (("Status", "xero_status"), ("AmountPaid", "amount_paid"), ("AmountCredited", "amount_credited")):
        if element.get(key) is not None:
            state[name] = element[key]
    return state


def _merge_extra(link: Any, update: dict[str, Any]) -> dict[str, Any]:
    extra = dict((link.extra if link is not None else None) or {})
    extra.update(update)
    for key in ("reason", "rule"):
        if key not in update:
            extra.pop(key, None)
    return extra


# --- settling intents ----------------------------------------------------------------------------
def settle_pending(plan: RunPlan, entity: str | None = None,
                   found_out: dict[str, dict[str, Any]] | None = None) -> Counter[str]:
    """Settle pending write-ahead intents (of one ledger entity, or all) by natural-key lookups.

    Elements found in Xero are linked (they were written: never send them again); the rest are
    abandoned (not written: the batch will be sent again under a fresh Idempotency-Key). Only a
    create is proven by finding the element: an updated element was there before the update (it is
    sent again — the same content twice changes nothing), a status change shows in the status.
    """
    ledger = runtime.ledger()
    counts: Counter[str] = Counter()
    pending = ledger.pending_intents(plan.org, entity)
    by_entity: dict[str, list[IntentRow]] = {}
    for intent in pending:
        by_entity.setdefault(intent.entity, []).append(intent)
    for ent, intents in by_entity.items():
        found = _lookup(plan, ent, intents)
        with ledger.atomic():
            existing = ledger.links_by_zoho(plan.org, ent, [k["zoho_id"] for i in intents for k in i.natural_keys])
            rows, entries = [], []
            for intent in intents:
                for key in intent.natural_keys:
                    hit = found.get(key["zoho_id"])
                    if hit is None or not _proves_written(key, hit):
                        continue
                    spec = _spec_for_entity(ent)
                    link = existing.get(key["zoho_id"])
                    xero_id = hit.get(ID_FIELD[spec.xero])
                    rows.append({"zoho_id": key["zoho_id"], "xero_id": xero_id, "content_hash": key.get("content_hash"),
                                 "xero_number": _number(hit), "state": "synced",
                                 "extra": _merge_extra(link, {**xero_state(hit), "healed_by": "lookup",
                                                              "zoho_module": key.get("zoho_module")})})
                    entries.append(JournalEntry(org=plan.org, run_id=plan.run_id, entity=ent, zoho_id=key["zoho_id"],
                                                xero_id=xero_id, action="lookup-heal", outcome="ok",
                                                message="found in Xero after an interrupted write; linked, not re-created"))
                    counts["healed"] += 1
                    if found_out is not None:
                        found_out[key["zoho_id"]] = hit
                written = [k for k in intent.natural_keys
                           if k["zoho_id"] in found and _proves_written(k, found[k["zoho_id"]])]
                state = "settled" if len(written) == len(intent.natural_keys) else "abandoned"
                ledger.settle_intent(intent.id, state=state, result={"found": len(written)})
                counts[state] += 1
            if rows:
                ledger.upsert_links(plan.org, ent, rows)
                ledger.record(entries)
    return counts


def _proves_written(key: dict[str, Any], element: dict[str, Any]) -> bool:
    """Whether the element found in Xero shows that the interrupted write of ``key`` happened."""
    action = key.get("action", "create")
    if action in STATUS_FOR:
        return element.get("Status") == STATUS_FOR[action]
    return action == "create"


#: Ledger entity -> the module its counts are reported under.
ENTITY_MODULE = {"contact": "contacts", "item": "products", "invoice": "invoices", "sales_order": "sales_orders",
                 "quote": "quotes", "purchase_order": "purchase_orders", "bill": "purchase_orders"}


@task(name="settle-intents", persist_result=True, **TRANSIENT)
def settle_intents(plan: RunPlan) -> dict[str, dict[str, int]]:
    """Before anything is written: settle what an interrupted earlier run may have left pending."""
    ledger = runtime.ledger()
    if plan.dry_run or not ledger.pending_intents(plan.org):
        return {}
    out: dict[str, dict[str, int]] = {}
    for entity in sorted({i.entity for i in ledger.pending_intents(plan.org)}):
        counts = settle_pending(plan, entity)
        get_run_logger().info("Settled interrupted %s writes by lookup: %s", entity, dict(counts))
        out.setdefault(ENTITY_MODULE.get(entity, entity), {})["healed"] = counts["healed"]
    return out


def _spec_for_entity(entity: str) -> Any:
    module = {"contact": "contacts", "item": "products", "invoice": "invoices", "sales_order": "sales_orders",
              "quote": "quotes", "purchase_order": "purchase_orders", "bill": "purchase_orders"}[entity]
    return module_spec(module, "bill" if entity == "bill" else "purchase_order")


def _number(element: dict[str, Any]) -> str | None:
    for key in ("InvoiceNumber", "PurchaseOrderNumber", "Code", "ContactNumber"):
        if element.get(key):
            return str(element[key])
    return None


def _lookup(plan: RunPlan, entity: str, intents: list[IntentRow]) -> dict[str, dict[str, Any]]:
    """zoho id -> the Xero element found by its natural key."""
    xero = runtime.xero(plan.org)
    since = min(i.created_at for i in intents)
    keys = [k for i in intents for k in i.natural_keys]
    found: dict[str, dict[str, Any]] = {}
    if entity == "contact":
        hits = xero.find_contacts_by_number([k["ContactNumber"] for k in keys if k.get("ContactNumber")], since=since)
        found = {k["zoho_id"]: hits[k["ContactNumber"]] for k in keys if k.get("ContactNumber") in hits}
    elif entity == "item":
        hits = xero.find_items_by_code([k["Code"] for k in keys if k.get("Code")], since=since)
        found = {k["zoho_id"]: hits[k["Code"]] for k in keys if k.get("Code") in hits}
    elif entity == "purchase_order":
        numbered = [k for k in keys if k.get("PurchaseOrderNumber")]
        hits = xero.find_purchase_orders_by_number([k["PurchaseOrderNumber"] for k in numbered], since=since)
        found = {k["zoho_id"]: hits[k["PurchaseOrderNumber"]] for k in numbered if k["PurchaseOrderNumber"] in hits}
        found.update(_by_modified(plan, "PurchaseOrders", [k for k in keys if k not in numbered], since,
                                  ("Reference",)))
    elif entity == "bill":
        refs = [BillRef(key=k["zoho_id"], url=k["Url"], contact_id=k.get("ContactID", ""),
                        invoice_number=k.get("InvoiceNumber")) for k in keys if k.get("Url")]
        found = xero.find_bills(refs, since=since)
    else:  # ACCREC invoices (invoices, sales orders, quotes)
        numbered = [k for k in keys if k.get("InvoiceNumber")]
        hits = xero.find_invoices_by_number([k["InvoiceNumber"] for k in numbered])
        found = {k["zoho_id"]: hits[k["InvoiceNumber"]] for k in numbered if k["InvoiceNumber"] in hits}
        found.update(_by_modified(plan, "Invoices", [k for k in keys if k not in numbered], since, ("Url", "Reference")))
    return found


def _by_modified(plan: RunPlan, collection: str, keys: list[dict[str, Any]], since: datetime,
                 fields: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Match documents modified since ``since`` on the first natural-key field each key has."""
    if not keys:
        return {}
    wanted: dict[tuple[str, str], str] = {}
    for k in keys:
        for f in fields:
            if k.get(f):
                wanted[(f, str(k[f]))] = k["zoho_id"]
                break
    found: dict[str, dict[str, Any]] = {}
    for page in runtime.xero(plan.org).pages(collection, modified_since=since):
        for element in page:
            for f in fields:
                zoho_id = wanted.get((f, str(element.get(f) or "")))
                if zoho_id:
                    found[zoho_id] = element
    return found


# --- loading one batch -----------------------------------------------------------------------------
def natural_keys(doc: Document) -> dict[str, Any]:
    """What identifies the element in Xero after a crash (plus the hash the link will carry)."""
    keys: dict[str, Any] = {"zoho_id": doc.zoho_id, "content_hash": doc.content_hash, "zoho_module": doc.module,
                            "action": doc.action, **doc.natural_key}
    contact = doc.payload.get("Contact") if isinstance(doc.payload.get("Contact"), dict) else None
    if contact and contact.get("ContactID"):
        keys.setdefault("ContactID", contact["ContactID"])
    return keys


@task(name="load", persist_result=True, **TRANSIENT)
def load_batch(plan: RunPlan, batch: BatchRef) -> dict[str, int]:
    """Send one batch to Xero and record each element's outcome (links, journal, intent)."""
    log = get_run_logger()
    ledger = runtime.ledger()
    xero = runtime.xero(plan.org)
    spec = plan.spec(batch.module)
    id_field = ID_FIELD[spec.xero]
    # A retried attempt first settles what an interrupted one may have written.
    healed: dict[str, dict[str, Any]] = {}
    if ledger.pending_intents(plan.org, spec.entity):
        settle_pending(plan, spec.entity, found_out=healed)
    docs = [document_from_json(d) for d in ledger.stage_get(plan.org, plan.run_id, batch.stage)]
    links = ledger.links_by_zoho(plan.org, spec.entity, [d.zoho_id for d in docs])
    counts: Counter[str] = Counter()
    todo: list[Document] = []
    for doc in docs:
        link = links.get(doc.zoho_id)
        if link is not None and link.xero_id and link.content_hash == doc.content_hash and batch.action in (
                "create", "update"):
            counts["unchanged"] += 1  # an earlier attempt already wrote exactly this
            continue
        if doc.action == "create" and link is not None and link.xero_id:
            # Settled by lookup meanwhile: update the element we now know instead of creating it again.
            doc = replace(doc, action="update", xero_id=link.xero_id, payload={**doc.payload, id_field: link.xero_id})
        todo.append(doc)
    # What an interrupted attempt wrote (found by lookup) goes back to Zoho like a fresh answer.
    _stage_answers(plan, batch, [healed[d.zoho_id] for d in docs if d.zoho_id in healed])
    if not todo:
        return dict(counts)
    method = "PUT" if all(d.action == "create" for d in todo) else "POST"
    if batch.action in STATUS_FOR:
        elements = {d.zoho_id: {id_field: d.xero_id, "Status": STATUS_FOR[batch.action]} for d in todo}
        method = "POST"
    else:
        elements = {d.zoho_id: d.payload for d in todo}
    batch_key = f"{plan.run_id}:{batch.stage}"
    intent_id = ledger.open_intent(plan.org, spec.entity, batch_key=batch_key, idempotency_key=batch_key,
                                   natural_keys=[natural_keys(d) for d in todo],
                                   payload_digest=_digest([d.content_hash for d in todo]), run_id=plan.run_id)
    result = xero.write_batch(spec.xero, list(elements.items()), method=method)
    by_key = result.by_key()
    unknown = [d for d in todo if by_key.get(d.zoho_id) is None or by_key[d.zoho_id].status == "UNKNOWN"]
    rejects: list[Reject] = []
    with ledger.atomic():
        rows, entries = [], []
        for doc in todo:
            outcome = by_key.get(doc.zoho_id)
            if outcome is None or outcome.status == "UNKNOWN":
                continue
            link = links.get(doc.zoho_id)
            if outcome.ok:
                action = {"create": "create", "update": "update", "delete": "delete", "void": "void"}[
                    batch.action if batch.action in STATUS_FOR else doc.action]
                rows.append(_link_row(doc, outcome, link, batch.action))
                entries.append(JournalEntry(org=plan.org, run_id=plan.run_id, entity=spec.entity,
                                            zoho_id=doc.zoho_id, xero_id=outcome.xero_id, action=action,
                                            outcome="ok", message="; ".join(outcome.warnings) or None,
                                            after={"payload": doc.payload, "number": outcome.number,
                                                   "content_hash": doc.content_hash}))
                counts[{"create": "created", "update": "updated", "delete": "deleted", "void": "voided"}[action]] += 1
            else:
                rejects.append(_refused(plan, doc, outcome))
        if rows:
            ledger.upsert_links(plan.org, spec.entity, rows)
        ledger.record(entries)
        if not unknown:
            ledger.settle_intent(intent_id, state="settled", result={"ok": len(rows), "refused": len(rejects)})
    if rejects and spec.xero == "Invoices":
        rejects = _link_existing_numbers(plan, spec.entity, todo, by_key, rejects, counts)
    record_rejects(plan, spec.entity, rejects)
    counts.update(reject_counts(rejects))
    returned = [by_key[d.zoho_id].element for d in todo if d.zoho_id in by_key and by_key[d.zoho_id].ok
                and by_key[d.zoho_id].element]
    _stage_answers(plan, batch, returned)
    log.info("%s %s batch %s: %s", spec.xero, batch.action, batch.stage.rsplit(":", 1)[-1],
             ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    if unknown:
        # Xero's answer did not say what became of these: settle by lookup on the next attempt.
        raise UnknownOutcome(f"{len(unknown)} element(s) of {batch.stage}: outcome unknown; "
                              "the retry settles them by lookup")
    return dict(counts)


def _stage_answers(plan: RunPlan, batch: BatchRef, elements: list[dict[str, Any]]) -> None:
    """What Xero answered is what goes back to Zoho (no second read of the same documents); kept
    across a batch's attempts, so a retry's answer doesn't hide what an earlier attempt wrote."""
    spec = plan.spec(batch.module)
    if not elements or spec.xero not in ("Invoices", "PurchaseOrders"):
        return
    ledger = runtime.ledger()
    try:
        earlier = ledger.stage_get(plan.org, plan.run_id, pushed_stage(batch))
    except KeyError:
        earlier = []
    merged = {e.get(ID_FIELD[spec.xero]): e for e in [*earlier, *elements]}
    ledger.stage_put(plan.org, plan.run_id, pushed_stage(batch), list(merged.values()))


def pushed_stage(batch: BatchRef) -> str:
    """Where a batch's documents, as Xero returned them, wait for the write-back to Zoho."""
    return f"{batch.stage}:xero"


UNIQUE_NUMBER = "must be unique"


def _link_existing_numbers(plan: RunPlan, entity: str, docs: list[Document], by_key: dict[str, ElementResult],
                           rejects: list[Reject], counts: Counter[str]) -> list[Reject]:
    """First sync into a Xero org that already has the invoice: link it by its unique number
    instead of reporting a duplicate (the next run updates it if Zoho differs and Xero allows)."""
    wanted = {d.payload.get("InvoiceNumber"): d for d in docs
              if d.action == "create" and d.payload.get("InvoiceNumber") and d.zoho_id in by_key
              and any(UNIQUE_NUMBER in e for e in by_key[d.zoho_id].errors)}
    if not wanted or not all(d.payload.get("Type", "ACCREC") == "ACCREC" for d in wanted.values()):
        return rejects
    found = runtime.xero(plan.org).find_invoices_by_number(list(wanted))
    if not found:
        return rejects
    ledger = runtime.ledger()
    taken = ledger.links_by_xero(plan.org, entity, [i["InvoiceID"] for i in found.values()])
    rows, entries, linked = [], [], set()
    for number, invoice in found.items():
        doc = wanted[number]
        if invoice["InvoiceID"] in taken:
            continue  # that Xero invoice belongs to another Zoho record: a real duplicate number
        rows.append({"zoho_id": doc.zoho_id, "xero_id": invoice["InvoiceID"], "xero_number": number,
                     "zoho_number": doc.number, "state": "synced",
                     "extra": {**xero_state(invoice), "zoho_module": doc.module, "linked_by": "InvoiceNumber"}})
        entries.append(JournalEntry(org=plan.org, run_id=plan.run_id, entity=entity, zoho_id=doc.zoho_id,
                                    xero_id=invoice["InvoiceID"], action="link-existing", outcome="ok",
                                    message=f"Xero already had invoice {number}: linked, not created again"))
        linked.add(doc.zoho_id)
    with ledger.atomic():
        if rows:
            ledger.upsert_links(plan.org, entity, rows)
        ledger.record(entries)
    counts["linked"] += len(linked)
    return [r for r in rejects if r.record_id not in linked]


def _digest(hashes: list[str]) -> str:
    import hashlib

    return hashlib.sha256("|".join(hashes).encode()).hexdigest()


def _link_row(doc: Document, outcome: ElementResult, link: Any, batch_action: str) -> dict[str, Any]:
    element = outcome.element or {}
    extra = _merge_extra(link, {**xero_state(element), "zoho_module": doc.module})
    if element.get("LineItems") and doc.line_keys:
        extra["line_ids"] = match_line_ids(doc, element["LineItems"])
    state = {"delete": "deleted", "void": "voided"}.get(batch_action, "synced")
    row: dict[str, Any] = {"zoho_id": doc.zoho_id, "xero_id": outcome.xero_id or doc.xero_id, "state": state,
                           "extra": extra, "zoho_number": doc.number}
    if batch_action not in STATUS_FOR:
        row["content_hash"] = doc.content_hash
    if outcome.number:
        row["xero_number"] = outcome.number
    return row


def _refused(plan: RunPlan, doc: Document, outcome: ElementResult) -> Reject:
    said = "; ".join(outcome.errors) or "no reason given"
    return Reject(org=plan.org, module=doc.module, record_id=doc.zoho_id, record_number=doc.number,
                  rule="xero.refused", reason=f"Xero refused it: {said}",
                  hint=f"Correct the record in Zoho, or the mapping in orgs/{plan.org}.yaml, so that Xero accepts it")
