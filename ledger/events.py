"""Event-driven sync state: webhook secrets (encrypted) and the queue of record ids events asked for.

The queue makes the webhook server stateless: a record id is written here before the webhook is
answered, handed to a run of the org's deployment in a *batch*, and deleted only when that run
completed; a restart loses nothing, and a failed run's ids go back to pending (up to a number of
attempts — the scheduled runs catch anything given up on).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from functools import cached_property
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from pydantic import BaseModel, SecretStr
from sqlalchemy import delete, func, select, update

from ledger.base import LedgerBase, chunked
from ledger.clock import from_db, utcnow
from ledger.errors import LedgerKeyError
from ledger.models import EventRecord, WebhookSecretRecord

SECRETS = WebhookSecretRecord.__table__
EVENTS = EventRecord.__table__

#: The ``batch`` of an id nobody has claimed yet.
PENDING = ""


class WebhookSecret(BaseModel):
    """A stored webhook secret, decrypted (the value is a ``SecretStr``: never printed by accident)."""

    name: str
    kind: str
    org: str | None = None
    secret: SecretStr
    meta: dict[str, Any] = {}
    updated_at: datetime


class PendingOrg(BaseModel):
    """An org with record ids waiting for a run."""

    org: str
    count: int
    first_received: datetime
    last_received: datetime


class EventBatch(BaseModel):
    """Record ids handed to one run of an org's deployment."""

    org: str
    batch: str
    flow_run_id: str | None
    record_ids: list[str]
    #: Where each id came from (same order as ``record_ids``).
    sources: list[str]
    attempts: int
    claimed_at: datetime | None


class EventsMixin(LedgerBase):
    """Webhook secrets and the event queue."""

    _fernet_key: bytes | None = None

    # --- secrets ---------------------------------------------------------------------------------
    @cached_property
    def _secrets_fernet(self) -> Fernet:
        from zxsync.settings import get_settings

        try:
            return Fernet(self._fernet_key or get_settings().fernet_key())
        except (ValueError, TypeError) as exc:
            raise LedgerKeyError("ZX_SECRET_KEY is not a valid Fernet key (32 url-safe base64 bytes)") from exc

    def save_webhook_secret(self, name: str, kind: str, secret: str, *, org: str | None = None,
                            meta: dict[str, Any] | None = None) -> None:
        """Store (or replace) the secret ``name`` encrypted; ``meta`` stays in clear (no secrets in it)."""
        token = self._secrets_fernet.encrypt(json.dumps({"name": name, "secret": secret}).encode())
        now = utcnow()
        stmt = self._upsert(SECRETS, ["name"], ["kind", "org", "ciphertext", "meta", "updated_at"])
        with self._write() as session:
            session.execute(stmt, [{"name": name, "kind": kind, "org": org, "ciphertext": token, "meta": meta,
                                    "created_at": now, "updated_at": now}])

    def update_webhook_meta(self, name: str, meta: dict[str, Any]) -> bool:
        """Replace the clear details of a stored secret (e.g. a renewed channel's expiry)."""
        with self._write() as session:
            return session.execute(update(SECRETS).where(SECRETS.c.name == name)
                                   .values(meta=meta, updated_at=utcnow())).rowcount == 1

    def _decrypt_secret(self, row: Any) -> WebhookSecret:
        try:
            plain = json.loads(self._secrets_fernet.decrypt(bytes(row.ciphertext)))
        except InvalidToken:
            raise LedgerKeyError(f"cannot decrypt the webhook secret {row.name!r}: the secret key is not the one it "
                                 "was saved with; restore that key or store the secret again") from None
        if plain.get("name") != row.name:
            raise LedgerKeyError(f"stored webhook secret row {row.name!r} holds another secret's data")
        return WebhookSecret(name=row.name, kind=row.kind, org=row.org, secret=SecretStr(plain["secret"]),
                             meta=row.meta or {}, updated_at=row.updated_at)

    def load_webhook_secret(self, name: str) -> WebhookSecret:
        """The secret ``name``, decrypted; ``KeyError`` when there is none."""
        with self._read() as session:
            row = session.execute(select(SECRETS).where(SECRETS.c.name == name)).one_or_none()
        if row is None:
            raise KeyError(f"no webhook secret named {name!r}")
        return self._decrypt_secret(row)

    def webhook_secrets(self, *, kind: str | None = None, org: str | None = None) -> list[WebhookSecret]:
        """Stored secrets (decrypted), by name, optionally of one kind and/or org."""
        stmt = select(SECRETS).order_by(SECRETS.c.name)
        if kind is not None:
            stmt = stmt.where(SECRETS.c.kind == kind)
        if org is not None:
            stmt = stmt.where(SECRETS.c.org == org)
        with self._read() as session:
            rows = session.execute(stmt).all()
        return [self._decrypt_secret(r) for r in rows]

    def delete_webhook_secret(self, name: str) -> bool:
        """Forget a secret; True when there was one."""
        with self._write() as session:
            return session.execute(delete(SECRETS).where(SECRETS.c.name == name)).rowcount == 1

    # --- the queue -------------------------------------------------------------------------------
    def enqueue_events(self, org: str, items: Iterable[tuple[str, str]]) -> int:
        """Add ``(record_id, source)`` pairs as pending for ``org``; an id already pending is kept
        once (duplicates and replays coalesce). Returns how many ids became newly pending."""
        wanted: dict[str, str] = {}
        for record_id, source in items:
            wanted.setdefault(str(record_id), source)
        if not wanted:
            return 0
        now = utcnow()
        added = 0
        with self._write() as session:
            for chunk in chunked(list(wanted)):
                known = set(session.execute(select(EVENTS.c.record_id).where(
                    EVENTS.c.org == org, EVENTS.c.batch == PENDING, EVENTS.c.record_id.in_(chunk))).scalars())
                rows = [{"org": org, "record_id": rid, "source": wanted[rid][:64], "batch": PENDING,
                         "flow_run_id": None, "attempts": 0, "received_at": now, "claimed_at": None}
                        for rid in chunk if rid not in known]
                if rows:
                    stmt = self._insert(EVENTS).on_conflict_do_nothing(index_elements=["org", "record_id", "batch"])
                    session.execute(stmt, rows)
                    added += len(rows)
        return added

    def pending_events(self) -> list[PendingOrg]:
        """Orgs with pending ids: how many, the first and the last received."""
        stmt = (select(EVENTS.c.org, func.count(), func.min(EVENTS.c.received_at), func.max(EVENTS.c.received_at))
                .where(EVENTS.c.batch == PENDING).group_by(EVENTS.c.org).order_by(EVENTS.c.org))
        with self._read() as session:
            rows = session.execute(stmt).all()
        out = []
        for org, count, first, last in rows:
            out.append(PendingOrg(org=org, count=count, first_received=_utc(first), last_received=_utc(last)))
        return out

    def pending_ids(self, org: str) -> list[str]:
        """The ids pending for ``org``, oldest first."""
        with self._read() as session:
            return list(session.execute(select(EVENTS.c.record_id).where(
                EVENTS.c.org == org, EVENTS.c.batch == PENDING).order_by(EVENTS.c.id)).scalars())

    def claim_events(self, org: str, batch: str, limit: int | None = None) -> list[tuple[str, str]]:
        """Hand the org's pending ids (oldest first, at most ``limit``) to ``batch``; returns them
        as ``(record_id, source)``."""
        if not batch:
            raise ValueError("a batch key is required")
        with self._write() as session:
            stmt = select(EVENTS.c.id, EVENTS.c.record_id, EVENTS.c.source).where(
                EVENTS.c.org == org, EVENTS.c.batch == PENDING).order_by(EVENTS.c.id)
            if limit is not None:
                stmt = stmt.limit(limit)
            rows = session.execute(stmt).all()
            now = utcnow()
            for chunk in chunked([r.id for r in rows]):
                session.execute(update(EVENTS).where(EVENTS.c.id.in_(chunk)).values(batch=batch, claimed_at=now))
        return [(r.record_id, r.source) for r in rows]

    def set_batch_run(self, org: str, batch: str, flow_run_id: str) -> None:
        """Remember which flow run holds ``batch``."""
        with self._write() as session:
            session.execute(update(EVENTS).where(EVENTS.c.org == org, EVENTS.c.batch == batch)
                            .values(flow_run_id=flow_run_id))

    def event_batches(self, org: str | None = None) -> list[EventBatch]:
        """Batches handed to runs and not settled yet (oldest first)."""
        stmt = select(EVENTS).where(EVENTS.c.batch != PENDING).order_by(EVENTS.c.id)
        if org is not None:
            stmt = stmt.where(EVENTS.c.org == org)
        with self._read() as session:
            rows = session.execute(stmt).all()
        batches: dict[tuple[str, str], EventBatch] = {}
        for r in rows:
            b = batches.get((r.org, r.batch))
            if b is None:
                b = batches[(r.org, r.batch)] = EventBatch(org=r.org, batch=r.batch, flow_run_id=r.flow_run_id,
                                                           record_ids=[], sources=[], attempts=0,
                                                           claimed_at=_utc(r.claimed_at))
            b.record_ids.append(r.record_id)
            b.sources.append(r.source)
            b.attempts = max(b.attempts, r.attempts)
            b.flow_run_id = b.flow_run_id or r.flow_run_id
        return list(batches.values())

    def finish_batch(self, org: str, batch: str) -> int:
        """The batch's run completed: its ids are done."""
        with self._write() as session:
            return session.execute(delete(EVENTS).where(EVENTS.c.org == org, EVENTS.c.batch == batch)).rowcount

    def release_batch(self, org: str, batch: str, max_attempts: int, *,
                      count_attempt: bool = True) -> tuple[list[str], list[str]]:
        """The batch's run did not complete: its ids go back to pending (merged with any pending copy),
        except those that reached ``max_attempts`` runs, which are dropped. ``count_attempt=False``
        when no run was even started. Returns (released, dropped)."""
        step = 1 if count_attempt else 0
        released: list[str] = []
        dropped: list[str] = []
        with self._write() as session:
            rows = session.execute(select(EVENTS.c.id, EVENTS.c.record_id, EVENTS.c.attempts).where(
                EVENTS.c.org == org, EVENTS.c.batch == batch)).all()
            pending = set(session.execute(select(EVENTS.c.record_id).where(
                EVENTS.c.org == org, EVENTS.c.batch == PENDING)).scalars())
            gone: list[int] = []
            for r in rows:
                if step and r.attempts + step >= max_attempts:
                    dropped.append(r.record_id)
                    gone.append(r.id)
                elif r.record_id in pending:
                    released.append(r.record_id)  # already pending again: the pending row carries it
                    gone.append(r.id)
                else:
                    released.append(r.record_id)
                    session.execute(update(EVENTS).where(EVENTS.c.id == r.id).values(
                        batch=PENDING, flow_run_id=None, claimed_at=None, attempts=r.attempts + step))
            for chunk in chunked(gone):
                session.execute(delete(EVENTS).where(EVENTS.c.id.in_(chunk)))
        return released, dropped


def _utc(value: datetime | None) -> datetime | None:
    return from_db(value)
