"""Write-ahead intents: recorded before a batch is sent, settled once its outcome is known.

A crash between the API committing a batch and our bookkeeping leaves the intent pending; the next
run settles pending intents by looking their natural keys up (InvoiceNumber, ContactNumber, item
Code …) before it would ever create those records again.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update

from ledger.base import LedgerBase
from ledger.clock import utcnow
from ledger.models import IntentRecord
from ledger.schemas import IntentRow, IntentState, entity_name

INTENTS = IntentRecord.__table__


class IntentsMixin(LedgerBase):
    """open / settle / list write-ahead intents."""

    def next_generation(self, org: str, entity: str, batch_key: str) -> int:
        """1 + the highest attempt generation of this batch (1 for a first attempt).

        Include it in the Idempotency-Key: a batch re-sent after its earlier attempt was settled as
        not-applied needs a fresh key, or the API would replay the old response.
        """
        with self._read() as session:
            highest = session.execute(
                select(func.max(INTENTS.c.generation)).where(
                    INTENTS.c.org == org,
                    INTENTS.c.entity == entity_name(entity),
                    INTENTS.c.batch_key == batch_key,
                )
            ).scalar_one()
        return 1 if highest is None else highest + 1

    def open_intent(
        self,
        org: str,
        entity: str,
        *,
        batch_key: str,
        idempotency_key: str,
        natural_keys: list[dict[str, Any]],
        payload_digest: str,
        run_id: str | None = None,
        generation: int | None = None,
    ) -> int:
        """Record the intent to send a batch; returns its id.

        Opening the same ``idempotency_key`` again (a retried task) returns the existing intent.
        ``generation`` defaults to :meth:`next_generation`.
        """
        entity = entity_name(entity)
        if generation is None:
            generation = self.next_generation(org, entity, batch_key)
        stmt = self._insert(INTENTS).on_conflict_do_nothing(index_elements=["org", "idempotency_key"])
        with self._write() as session:
            session.execute(
                stmt,
                [
                    {
                        "org": org,
                        "entity": entity,
                        "run_id": run_id,
                        "batch_key": batch_key,
                        "idempotency_key": idempotency_key,
                        "natural_keys": natural_keys,
                        "payload_digest": payload_digest,
                        "generation": generation,
                        "state": IntentState.PENDING.value,
                        "result": None,
                        "created_at": utcnow(),
                        "settled_at": None,
                    }
                ],
            )
            return session.execute(
                select(INTENTS.c.id).where(INTENTS.c.org == org, INTENTS.c.idempotency_key == idempotency_key)
            ).scalar_one()

    def settle_intent(
        self, intent_id: int, *, state: str = IntentState.SETTLED.value, result: dict[str, Any] | None = None
    ) -> None:
        """Mark an intent ``settled`` (outcome known and recorded) or ``abandoned`` (given up).

        ``result`` keeps what settlement found, e.g. ``{"INV-1": "<InvoiceID>"}``. KeyError if unknown.
        """
        final = IntentState(state)
        if final is IntentState.PENDING:
            raise ValueError("an intent is settled as 'settled' or 'abandoned', not 'pending'")
        with self._write() as session:
            changed = session.execute(
                update(INTENTS)
                .where(INTENTS.c.id == intent_id)
                .values(state=final.value, result=result, settled_at=utcnow())
            ).rowcount
        if changed != 1:
            raise KeyError(f"no intent {intent_id}")

    def pending_intents(self, org: str, entity: str | None = None) -> list[IntentRow]:
        """Unresolved intents of ``org`` (optionally one entity), oldest first."""
        stmt = select(INTENTS).where(INTENTS.c.org == org, INTENTS.c.state == IntentState.PENDING.value)
        if entity is not None:
            stmt = stmt.where(INTENTS.c.entity == entity_name(entity))
        with self._read() as session:
            rows = session.execute(stmt.order_by(INTENTS.c.id)).all()
        return [IntentRow.model_validate(dict(row._mapping)) for row in rows]

    def get_intent(self, intent_id: int) -> IntentRow:
        """One intent by id (KeyError if unknown)."""
        with self._read() as session:
            row = session.execute(select(INTENTS).where(INTENTS.c.id == intent_id)).one_or_none()
        if row is None:
            raise KeyError(f"no intent {intent_id}")
        return IntentRow.model_validate(dict(row._mapping))
