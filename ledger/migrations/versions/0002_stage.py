"""Stage: pages and batches handed between a run's tasks.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "stage",
        sa.Column("id", BIG_ID, autoincrement=True, nullable=False),
        sa.Column("org", sa.String(100), nullable=False),
        sa.Column("run_id", sa.String(128), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("items", sa.Integer(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stage")),
        sa.UniqueConstraint("org", "run_id", "name", name=op.f("uq_stage_org_run_id_name")),
    )
    op.create_index("ix_stage_created_at", "stage", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_stage_created_at", table_name="stage")
    op.drop_table("stage")
