"""What the mapping functions take from the ledger (links) and hand back (documents, rejects)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mappings.rejects import Reject

Action = Literal["create", "update", "unchanged", "delete", "void"]


class Link(BaseModel):
    """What the ledger knows about one Zoho record already linked to Xero."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    xero_id: str
    content_hash: str | None = None
    #: Zoho line id -> Xero LineItemID (kept on update so Xero keeps its lines)
    line_ids: dict[str, str] = Field(default_factory=dict)
    #: last known Xero state, for the lock rules (None = unknown: treated as editable DRAFT)
    xero_status: str | None = None
    amount_paid: float = 0.0
    amount_credited: float = 0.0
    xero_number: str | None = None
    #: Xero changed the document since our last write (for the conflict policy)
    xero_changed: bool = False


def normalize_links(links: Mapping[str, Link | Mapping[str, Any]] | pd.DataFrame | None) -> dict[str, Link]:
    """Accept ``{zoho_id: Link | dict}`` or a DataFrame with a ``zoho_id`` column (ledger rows)."""
    if links is None:
        return {}
    if isinstance(links, pd.DataFrame):
        if links.empty:
            return {}
        rows = links.astype(object).where(links.notna(), None).to_dict("records")
        return {
            str(r["zoho_id"]): Link.model_validate({k: v for k, v in r.items() if v is not None})
            for r in rows
        }
    return {str(k): v if isinstance(v, Link) else Link.model_validate(v) for k, v in links.items()}


def canonical_json(payload: Any) -> bytes:
    """Sorted keys, no whitespace: the same payload always gives the same bytes."""
    return orjson.dumps(payload, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)


def content_hash(payload: Any) -> str:
    """sha256 of the canonical JSON: an unchanged record costs no write."""
    import hashlib

    return hashlib.sha256(canonical_json(payload)).hexdigest()


@dataclass(frozen=True)
class Document:
    """One element to write to Xero (or an unchanged one, kept for counts)."""

    entity: str  # Xero collection: Contacts, Items, Invoices, PurchaseOrders
    module: str  # Zoho module: Accounts, Vendors, Products, Invoices, Purchase_Orders, Sales_Orders, Quotes
    zoho_id: str
    number: str | None
    action: Action
    xero_id: str | None
    payload: dict[str, Any]
    content_hash: str
    #: natural keys to find the element in Xero after a crash (ContactNumber, Code, InvoiceNumber,
    #: Reference, PurchaseOrderNumber, Url)
    natural_key: dict[str, str] = field(default_factory=dict)
    #: Zoho line ids in payload order (None for lines we add: header discount, adjustment, rounding)
    line_keys: tuple[str | None, ...] = ()
    matched_by: str | None = None  # contacts/items: link, contact_number, email, name, code
    total: float | None = None  # predicted Xero Total (documents)


@dataclass(frozen=True)
class Skip:
    """A record deliberately not written (before sync_from, cancelled before it reached Xero ...)."""

    module: str
    zoho_id: str
    number: str | None
    reason: str


@dataclass
class MappingResult:
    """Output of one mapping function over one page."""

    entity: str
    module: str
    documents: list[Document] = field(default_factory=list)  # create / update / delete / void
    unchanged: list[Document] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)

    @property
    def creates(self) -> list[Document]:
        return [d for d in self.documents if d.action == "create"]

    @property
    def updates(self) -> list[Document]:
        return [d for d in self.documents if d.action == "update"]

    @property
    def rejected_ids(self) -> set[str]:
        return {r.record_id for r in self.rejects if r.blocking}

    def counts(self) -> dict[str, int]:
        """created / updated / unchanged / rejected / skipped / deleted / voided (planned)."""
        c = Counter(d.action for d in self.documents)
        return {
            "create": c["create"],
            "update": c["update"],
            "delete": c["delete"],
            "void": c["void"],
            "unchanged": len(self.unchanged),
            "rejected": len(self.rejected_ids),
            "skipped": len(self.skipped),
        }

    def failed(self) -> dict[str, str]:
        """zoho id -> first blocking reason: pass to dependent mappings as ``failed``."""
        out: dict[str, str] = {}
        for r in self.rejects:
            if r.blocking and r.record_id not in out:
                out[r.record_id] = r.reason
        return out


@dataclass(frozen=True)
class ZohoWrite:
    """One record to write to Zoho (update by id, or create)."""

    module: str
    action: Action  # create / update / unchanged
    zoho_id: str | None
    xero_id: str | None
    record: dict[str, Any]
    content_hash: str


@dataclass
class ZohoWriteResult:
    module: str
    writes: list[ZohoWrite] = field(default_factory=list)
    unchanged: list[ZohoWrite] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        c = Counter(w.action for w in self.writes)
        return {
            "create": c["create"],
            "update": c["update"],
            "unchanged": len(self.unchanged),
            "rejected": len({r.record_id for r in self.rejects if r.blocking}),
        }


def merge_results(results: Iterable[MappingResult]) -> MappingResult:
    """Concatenate per-page results of the same entity."""
    results = list(results)
    out = MappingResult(
        entity=results[0].entity if results else "", module=results[0].module if results else ""
    )
    for r in results:
        out.documents.extend(r.documents)
        out.unchanged.extend(r.unchanged)
        out.rejects.extend(r.rejects)
        out.skipped.extend(r.skipped)
    return out
