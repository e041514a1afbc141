"""Initial ledger schema: connections, locks, links, watermarks, journal, intents, runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Types are spelled out here rather than imported from ``ledger.models``: a migration is a frozen
record of the schema at its revision and must not change when the models do.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite autoincrements only INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids.
BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSON_DOC = sa.JSON(none_as_null=True).with_variant(postgresql.JSONB(none_as_null=True), "postgresql")


def _utc() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "connections",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("org", sa.String(100), nullable=False),
        sa.Column("system", sa.String(16), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_connections")),
        sa.UniqueConstraint("org", "system", name=op.f("uq_connections_org_system")),
    )
    op.create_table(
        "locks",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("holder", sa.String(255), nullable=False),
        sa.Column("token", sa.String(64), nullable=False),
        sa.Column("acquired_at", _utc(), nullable=False),
        sa.Column("expires_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_locks")),
    )
    op.create_table(
        "links",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("org", sa.String(100), nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("zoho_id", sa.String(128), nullable=False),
        sa.Column("xero_id", sa.String(128), nullable=True),
        sa.Column("zoho_number", sa.String(255), nullable=True),
        sa.Column("xero_number", sa.String(255), nullable=True),
        sa.Column("content_hash", sa.String(128), nullable=True),
        sa.Column("state", sa.String(32), nullable=False),
        sa.Column("xero_updated_at", _utc(), nullable=True),
        sa.Column("zoho_modified_at", _utc(), nullable=True),
        sa.Column("extra", JSON_DOC, nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_links")),
        sa.UniqueConstraint("org", "entity", "xero_id", name=op.f("uq_links_org_entity_xero_id")),
        sa.UniqueConstraint("org", "entity", "zoho_id", name=op.f("uq_links_org_entity_zoho_id")),
    )
    op.create_table(
        "watermarks",
        sa.Column("org", sa.String(100), nullable=False),
        sa.Column("stream", sa.String(128), nullable=False),
        sa.Column("value", _utc(), nullable=False),
        sa.Column("updated_at", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("org", "stream", name=op.f("pk_watermarks")),
    )
    op.create_table(
        "journal",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("org", sa.String(100), nullable=False),
        sa.Column("run_id", sa.String(128), nullable=True),
        sa.Column("entity", sa.String(32), nullable=True),
        sa.Column("zoho_id", sa.String(128), nullable=True),
        sa.Column("xero_id", sa.String(128), nullable=True),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("rule", sa.String(128), nullable=True),
        sa.Column("field", sa.String(128), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("hint", sa.Text(), nullable=True),
        sa.Column("before", JSON_DOC, nullable=True),
        sa.Column("after", JSON_DOC, nullable=True),
        sa.Column("time", _utc(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal")),
    )
    op.create_index("ix_journal_org_time", "journal", ["org", "time"])
    op.create_index("ix_journal_org_entity_zoho_time", "journal", ["org", "entity", "zoho_id", "time"])
    op.create_index("ix_journal_org_run", "journal", ["org", "run_id"])
    op.create_table(
        "intents",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("org", sa.String(100), nullable=False),
        sa.Column("entity", sa.String(32), nullable=False),
        sa.Column("run_id", sa.String(128), nullable=True),
        sa.Column("batch_key", sa.String(255), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("natural_keys", JSON_DOC, nullable=True),
        sa.Column("payload_digest", sa.String(128), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("result", JSON_DOC, nullable=True),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("settled_at", _utc(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_intents")),
        sa.UniqueConstraint("org", "idempotency_key", name=op.f("uq_intents_org_idempotency_key")),
    )
    op.create_index("ix_intents_org_state_entity", "intents", ["org", "state", "entity"])
    op.create_index("ix_intents_org_entity_batch", "intents", ["org", "entity", "batch_key"])
    op.create_table(
        "runs",
        sa.Column("run_id", sa.String(128), nullable=False),
        sa.Column("org", sa.String(100), nullable=False),
        sa.Column("started_at", _utc(), nullable=False),
        sa.Column("finished_at", _utc(), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("window", sa.Text(), nullable=True),
        sa.Column("counts", JSON_DOC, nullable=True),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_runs")),
    )
    op.create_index("ix_runs_org_state_started", "runs", ["org", "state", "started_at"])


def downgrade() -> None:
    op.drop_index("ix_runs_org_state_started", table_name="runs")
    op.drop_table("runs")
    op.drop_index("ix_intents_org_entity_batch", table_name="intents")
    op.drop_index("ix_intents_org_state_entity", table_name="intents")
    op.drop_table("intents")
    op.drop_index("ix_journal_org_run", table_name="journal")
    op.drop_index("ix_journal_org_entity_zoho_time", table_name="journal")
    op.drop_index("ix_journal_org_time", table_name="journal")
    op.drop_table("journal")
    op.drop_table("watermarks")
    op.drop_table("links")
    op.drop_table("locks")
    op.drop_table("connections")
