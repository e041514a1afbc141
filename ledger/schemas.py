"""Pydantic models the ledger hands out and takes in (its boundary), and the validated vocabularies."""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from ledger.clock import to_utc, utcnow


class Entity(StrEnum):
    """What a link or journal entry is about."""

    CONTACT = "contact"
    ITEM = "item"
    INVOICE = "invoice"
    PURCHASE_ORDER = "purchase_order"
    BILL = "bill"
    SALES_ORDER = "sales_order"
    QUOTE = "quote"
    CREDIT_NOTE = "credit_note"
    PAYMENT = "payment"


class LinkState(StrEnum):
    """Where a linked pair stands."""

    SYNCED = "synced"
    LOCKED_PAID = "locked-paid"
    LOCKED_PART_PAID = "locked-part-paid"
    LOCKED = "locked"
    REJECTED = "rejected"
    DEFERRED = "deferred"
    DELETED = "deleted"
    VOIDED = "voided"


class IntentState(StrEnum):
    """A write-ahead intent is pending until settled (outcome known) or abandoned (given up)."""

    PENDING = "pending"
    SETTLED = "settled"
    ABANDONED = "abandoned"


class RunState(StrEnum):
    """Lifecycle of a sync run; only ``completed`` counts as successful."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CRASHED = "crashed"
    CANCELLED = "cancelled"


def entity_name(value: str) -> str:
    """``value`` validated as an :class:`Entity` (ValueError otherwise)."""
    try:
        return Entity(value).value
    except ValueError:
        raise ValueError(f"unknown entity {value!r}; expected one of {[e.value for e in Entity]}") from None


_SLUG = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")


def _slug(value: str) -> str:
    # Actions and outcomes are an open vocabulary (new rules add new ones) but must stay
    # machine-friendly: filters and dashboards group by them.
    if not _SLUG.match(value):
        raise ValueError(f"{value!r} must be a lowercase slug like 'create' or 'lookup-heal'")
    return value


def _aware(value: datetime) -> datetime:
    return to_utc(value)


Slug = Annotated[str, AfterValidator(_slug)]
UTC = Annotated[datetime, AfterValidator(_aware)]


class LinkRow(BaseModel):
    """A stored link (read side)."""

    model_config = ConfigDict(frozen=True)

    org: str
    entity: str
    zoho_id: str
    xero_id: str | None = None
    zoho_number: str | None = None
    xero_number: str | None = None
    content_hash: str | None = None
    state: str
    xero_updated_at: datetime | None = None
    zoho_modified_at: datetime | None = None
    extra: dict[str, Any] | None = None
    created_at: datetime
    updated_at: datetime


class JournalEntry(BaseModel):
    """One action to record. ``message`` is plain language for people; ``hint`` says how to fix."""

    org: str
    action: Slug
    outcome: Slug
    run_id: str | None = None
    entity: str | None = None
    zoho_id: str | None = None
    xero_id: str | None = None
    rule: str | None = None
    field: str | None = None
    message: str | None = None
    hint: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None
    time: UTC = Field(default_factory=utcnow)

    @field_validator("entity")
    @classmethod
    def _known_entity(cls, value: str | None) -> str | None:
        return None if value is None else entity_name(value)


class JournalRow(JournalEntry):
    """A recorded journal entry (with its id)."""

    id: int


class IntentRow(BaseModel):
    """A stored write-ahead intent."""

    id: int
    org: str
    entity: str
    run_id: str | None
    batch_key: str
    idempotency_key: str
    natural_keys: list[dict[str, Any]] | None
    payload_digest: str
    generation: int
    state: str
    result: dict[str, Any] | None
    created_at: datetime
    settled_at: datetime | None


class RunRow(BaseModel):
    """A stored sync run."""

    run_id: str
    org: str
    started_at: datetime
    finished_at: datetime | None
    state: str
    window: str | None
    counts: dict[str, Any] | None


class LeaseInfo(BaseModel):
    """Who holds a lease, since when, until when (database clock)."""

    name: str
    holder: str
    acquired_at: datetime
    expires_at: datetime
    #: The lease has run out: the next acquirer takes it over.
    expired: bool = False
