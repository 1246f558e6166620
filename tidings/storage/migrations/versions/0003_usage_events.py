"""usage events: the event log and its per-minute counters

Revision ID: 0003
Revises: 0001
Create Date: 2026-11-26 07:13:04.197510
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_counts",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("span_minutes", sa.Integer(), nullable=False),
        sa.Column("bucket_minute", sa.BigInteger(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "org_id", "span_minutes", "bucket_minute", "type", name="pk_event_counts"
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "events",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("stored_at", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("api_key_id", sa.String(length=64), nullable=True),
        sa.Column("api_key_name", sa.String(length=256), nullable=True),
        sa.Column("queue_id", sa.String(length=64), nullable=True),
        sa.Column("queue_name", sa.String(length=256), nullable=True),
        sa.Column("listener_id", sa.String(length=64), nullable=True),
        sa.Column("listener_name", sa.String(length=256), nullable=True),
        sa.Column("message_id", sa.String(length=64), nullable=True),
        sa.Column("message_name", sa.String(length=256), nullable=True),
        sa.PrimaryKeyConstraint("org_id", "stored_at", "id", name="pk_events"),
    )
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_org_kind", ["org_id", "kind", "stored_at", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_org_kind")
    op.drop_table("events")
    op.drop_table("event_counts")
