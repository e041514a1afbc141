"""Sync-back from the ledger: push a record's earlier snapshot to Xero again, and purge old entries.

Every push is journalled with the exact payload Xero accepted, so after a bad edit or a bad
mapping (wrong account codes, say) a record can be put back as it stood at an earlier time. The
restore is a writer of the organisation like a sync run: it takes the org's lock, respects
Xero's lock rules (a paid or part-paid document is reported, never forced), journals itself and
leaves the link's hash on the restored payload.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from connectors.xero import XeroClient
from ledger import JournalEntry, Ledger, LedgerCredentialStore, default_holder
from mappings import content_hash
from mappings.rules import lock_state

#: Ledger entity -> Xero collection and id field.
COLLECTIONS = {"contact": ("Contacts", "ContactID"), "item": ("Items", "ItemID"), "invoice": ("Invoices", "InvoiceID"),
               "sales_order": ("Invoices", "InvoiceID"), "quote": ("Invoices", "InvoiceID"),
               "bill": ("Invoices", "InvoiceID"), "purchase_order": ("PurchaseOrders", "PurchaseOrderID")}
PUSHES = ("create", "update", "restore")


class RestoreResult(BaseModel):
    """What a restore did."""

    org: str
    entity: str
    zoho_id: str
    xero_id: str | None
    restored_from: datetime | None
    outcome: str
    message: str


def find_record(ledger: Ledger, org: str, record: str) -> tuple[str, Any]:
    """The (entity, link) of a Zoho id, a Xero id or a document number."""
    for entity in COLLECTIONS:
        links = ledger.links_by_zoho(org, entity, [record])
        if links:
            return entity, links[record]
        by_xero = ledger.links_by_xero(org, entity, [record])
        if by_xero:
            return entity, by_xero[record]
    for entity in COLLECTIONS:
        for link in ledger.links_by_zoho(org, entity).values():
            if record in (link.xero_number, link.zoho_number):
                return entity, link
    raise LookupError(f"{org}: no record {record!r} in the ledger (a Zoho id, Xero id or document number)")


def pushes(ledger: Ledger, org: str, entity: str, zoho_id: str) -> list[Any]:
    """Every payload pushed to Xero for a record, oldest first."""
    return [j for j in ledger.journal_for(org, zoho_id=zoho_id, entity=entity)
            if j.action in PUSHES and j.outcome == "ok" and j.after and j.after.get("payload")]


def restore(org: str, record: str, *, to: datetime | None = None, ledger: Ledger | None = None) -> RestoreResult:
    """Push ``record``'s payload as it stood at ``to`` (default: the one before its last push)."""
    own = ledger is None
    ledger = ledger or Ledger.open()
    try:
        entity, link = find_record(ledger, org, record)
        history = pushes(ledger, org, entity, link.zoho_id)
        if to is not None:
            when = to if to.tzinfo else to.replace(tzinfo=UTC)
            earlier = [j for j in history if j.time <= when]
        else:
            earlier = history[:-1]
        if not earlier:
            raise LookupError(f"{org}: {record} has no pushed snapshot {'before ' + to.isoformat() if to else 'before its last push'}"
                              " in the journal (purged, or never pushed)")
        snapshot = earlier[-1]
        collection, id_field = COLLECTIONS[entity]
        payload = {k: v for k, v in snapshot.after["payload"].items() if k != id_field}
        payload[id_field] = link.xero_id
        extra = link.extra or {}
        state = lock_state(extra.get("xero_status"), float(extra.get("amount_paid") or 0),
                           float(extra.get("amount_credited") or 0))
        if state in ("locked-paid", "locked-part-paid") or extra.get("xero_status") in ("VOIDED", "DELETED"):
            message = (f"not restored: the Xero document is {extra.get('xero_status')} "
                       f"({state}); Xero allows no edit — remove the payment or issue a credit note in Xero first")
            ledger.record([JournalEntry(org=org, entity=entity, zoho_id=link.zoho_id, xero_id=link.xero_id,
                                        action="restore", outcome="locked", message=message)])
            return RestoreResult(org=org, entity=entity, zoho_id=link.zoho_id, xero_id=link.xero_id,
                                 restored_from=snapshot.time, outcome="locked", message=message)
        with ledger.org_lock(org, holder=f"restore ({default_holder('restore')})", timeout=600):
            client = XeroClient(LedgerCredentialStore(ledger), org)
            result = client.write_all(collection, {link.zoho_id: payload}, method="POST")[link.zoho_id]
            if not result.ok:
                message = "Xero refused the restore: " + "; ".join(result.errors)
                ledger.record([JournalEntry(org=org, entity=entity, zoho_id=link.zoho_id, xero_id=link.xero_id,
                                            action="restore", outcome="error", message=message,
                                            hint="Correct the record in Xero, or restore to another time")])
                return RestoreResult(org=org, entity=entity, zoho_id=link.zoho_id, xero_id=link.xero_id,
                                     restored_from=snapshot.time, outcome="error", message=message)
            with ledger.atomic():
                # The link now describes the restored payload: the next sync pushes again only
                # if the mapping of the Zoho record differs from it (fix the mapping first).
                ledger.upsert_links(org, entity, [{"zoho_id": link.zoho_id,
                                                   "content_hash": snapshot.after.get("content_hash")
                                                   or content_hash(snapshot.after["payload"])}])
                ledger.record([JournalEntry(
                    org=org, entity=entity, zoho_id=link.zoho_id, xero_id=link.xero_id, action="restore",
                    outcome="ok", message=f"restored the payload pushed at {snapshot.time.isoformat()}",
                    before=history[-1].after if history else None, after={**snapshot.after})])
        return RestoreResult(org=org, entity=entity, zoho_id=link.zoho_id, xero_id=link.xero_id,
                             restored_from=snapshot.time, outcome="ok",
                             message=f"restored {collection[:-1]} {link.xero_number or link.xero_id} as pushed at "
                                     f"{snapshot.time.isoformat()}")
    finally:
        if own:
            ledger.close()


def purge(days: int | None = None, ledger: Ledger | None = None) -> dict[str, int]:
    """Drop journal entries (and settled intents, stale stages) older than the retention; links stay.

    The retention is each org's ``retention_days`` (``ZX_RETENTION_DAYS`` for an org that sets
    none); ``days`` overrides it for every org.
    """
    own = ledger is None
    ledger = ledger or Ledger.open()
    try:
        return {"journal_and_intents": ledger.purge(days), "stages": ledger.stage_purge()}
    finally:
        if own:
            ledger.close()


def parse_time(text: str) -> datetime:
    """ISO date or date-time (naive = UTC)."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
