"""The ledger's tables (SQLAlchemy 2.x typed declarative models).

The alembic migrations in ``ledger/migrations/versions`` create exactly these tables; a test
compares the migrated schema with this metadata so the two cannot drift apart.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ledger.clock import from_db, to_utc


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on every backend.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so UTC is stored naive and the
    zone is put back on read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        value = to_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return from_db(value)


#: JSON documents: JSONB on PostgreSQL. ``none_as_null`` makes Python ``None`` a SQL NULL, so
#: "has a snapshot" is a plain ``IS NOT NULL``.
JSONDoc = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

#: Autoincrementing 64-bit keys; SQLite only autoincrements ``INTEGER PRIMARY KEY`` (the rowid).
BigId = BigInteger().with_variant(Integer(), "sqlite")

# Deterministic constraint names, so later migrations can address them on both backends.
NAMING = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of the ledger's models."""

    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSONDoc}


class ConnectionRecord(Base):
    """One org's connection to one system; everything but (org, system) is inside ``ciphertext``."""

    __tablename__ = "connections"
    __table_args__ = (UniqueConstraint("org", "system"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org: Mapped[str] = mapped_column(String(100))
    system: Mapped[str] = mapped_column(String(16))
    #: Fernet token of the JSON-serialised ``connectors.credentials.Connection``.
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    #: Incremented by every save: lets a writer detect that someone else saved in between.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class LockRecord(Base):
    """A lease: held by ``token`` until ``expires_at`` (database clock) unless renewed."""

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    #: Human-readable holder ("sync run 1f3c… on host:pid"), shown in OrgBusy.
    holder: Mapped[str] = mapped_column(String(255))
    #: Unique per acquisition: two acquisitions with the same holder label are still distinct.
    token: Mapped[str] = mapped_column(String(64))
    acquired_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class LinkRecord(Base):
    """Zoho record <-> Xero record, with what we last wrote and where the pair stands."""

    __tablename__ = "links"
    __table_args__ = (
        UniqueConstraint("org", "entity", "zoho_id"),
        UniqueConstraint("org", "entity", "xero_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org: Mapped[str] = mapped_column(String(100))
    entity: Mapped[str] = mapped_column(String(32))
    zoho_id: Mapped[str] = mapped_column(String(128))
    #: NULL until Xero has the record (rejected or deferred records have a link without it).
    xero_id: Mapped[str | None] = mapped_column(String(128))
    zoho_number: Mapped[str | None] = mapped_column(String(255))
    xero_number: Mapped[str | None] = mapped_column(String(255))
    content_hash: Mapped[str | None] = mapped_column(String(128))
    state: Mapped[str] = mapped_column(String(32))
    xero_updated_at: Mapped[datetime | None]
    zoho_modified_at: Mapped[datetime | None]
    extra: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class WatermarkRecord(Base):
    """How far a stream (``zoho:Invoices``, ``xero:Payments`` …) has been read for an org."""

    __tablename__ = "watermarks"

    org: Mapped[str] = mapped_column(String(100), primary_key=True)
    stream: Mapped[str] = mapped_column(String(128), primary_key=True)
    value: Mapped[datetime]
    updated_at: Mapped[datetime]


class JournalRecord(Base):
    """One action the sync took (or refused), with before/after snapshots."""

    __tablename__ = "journal"
    __table_args__ = (
        Index("ix_journal_org_time", "org", "time"),
        Index("ix_journal_org_entity_zoho_time", "org", "entity", "zoho_id", "time"),
        Index("ix_journal_org_run", "org", "run_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org: Mapped[str] = mapped_column(String(100))
    run_id: Mapped[str | None] = mapped_column(String(128))
    entity: Mapped[str | None] = mapped_column(String(32))
    zoho_id: Mapped[str | None] = mapped_column(String(128))
    xero_id: Mapped[str | None] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(32))
    rule: Mapped[str | None] = mapped_column(String(128))
    field: Mapped[str | None] = mapped_column(String(128))
    message: Mapped[str | None] = mapped_column(Text)
    hint: Mapped[str | None] = mapped_column(Text)
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    time: Mapped[datetime]


class IntentRecord(Base):
    """A write-ahead intent: written before a batch goes to the API, settled once its fate is known."""

    __tablename__ = "intents"
    __table_args__ = (
        UniqueConstraint("org", "idempotency_key"),
        Index("ix_intents_org_state_entity", "org", "state", "entity"),
        Index("ix_intents_org_entity_batch", "org", "entity", "batch_key"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org: Mapped[str] = mapped_column(String(100))
    entity: Mapped[str] = mapped_column(String(32))
    run_id: Mapped[str | None] = mapped_column(String(128))
    batch_key: Mapped[str] = mapped_column(String(255))
    idempotency_key: Mapped[str] = mapped_column(String(128))
    #: The natural keys in the batch, e.g. [{"zoho_id": "…", "InvoiceNumber": "INV-1"}, …].
    natural_keys: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONDoc)
    payload_digest: Mapped[str] = mapped_column(String(128))
    generation: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    #: What settlement found (e.g. natural key -> Xero id); optional.
    result: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    settled_at: Mapped[datetime | None]


class RunRecord(Base):
    """One sync run of one org (a Prefect flow run id, or a uuid outside Prefect)."""

    __tablename__ = "runs"
    __table_args__ = (Index("ix_runs_org_state_started", "org", "state", "started_at"),)

    run_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    org: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(16))
    window: Mapped[str | None] = mapped_column(Text)
    counts: Mapped[dict[str, Any] | None]


class StageRecord(Base):
    """A page or batch handed from one task to the next inside a run (compressed JSON).

    Tasks return only the stage's name, so Prefect persists tiny results and a UI Retry of the
    run finds the staged data again; housekeeping drops stages of finished or abandoned runs.
    """

    __tablename__ = "stage"
    __table_args__ = (
        UniqueConstraint("org", "run_id", "name"),
        Index("ix_stage_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org: Mapped[str] = mapped_column(String(100))
    run_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(200))
    items: Mapped[int] = mapped_column(Integer)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class WebhookSecretRecord(Base):
    """A secret of the event-driven sync (a Xero webhook key, an org's trigger signing key, a Zoho
    notification channel's token), encrypted like connections; only its name, kind, org and
    non-secret details (``meta``: channel id, expiry, events) are in clear."""

    __tablename__ = "webhook_secrets"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    org: Mapped[str | None] = mapped_column(String(100))
    #: Fernet token of ``{"name": ..., "secret": ...}`` (the name binds the token to its row).
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    meta: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class EventRecord(Base):
    """A record id an event asked to sync: pending (``batch`` empty) until handed to a run of the
    org's deployment (``batch`` set, then ``flow_run_id``), deleted once that run completed.

    A record id is pending at most once per org (duplicates and replays coalesce), but may be
    pending again while an earlier batch holding it is still running (it changed since)."""

    __tablename__ = "event_queue"
    __table_args__ = (
        UniqueConstraint("org", "record_id", "batch"),
        Index("ix_event_queue_batch", "batch"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    org: Mapped[str] = mapped_column(String(100))
    record_id: Mapped[str] = mapped_column(String(128))
    #: Where it came from: ``xero:INVOICE``, ``zoho:Invoices``, ``trigger:Invoices``.
    source: Mapped[str] = mapped_column(String(64))
    #: '' while pending; the batch key once claimed for a run.
    batch: Mapped[str] = mapped_column(String(64), default="")
    flow_run_id: Mapped[str | None] = mapped_column(String(64))
    #: Runs that held this id and did not complete.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    received_at: Mapped[datetime]
    claimed_at: Mapped[datetime | None]
