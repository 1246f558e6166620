"""lease counts: leases counted per listener and engine, not through an index

Revision ID: 0009
Revises: 0007

Run with the delivery engines stopped (as every migration): leases taken before it
are not counted; a dead engine's are still released by the takeover.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "lease_counts",
        sa.Column("listener_id", sa.String(64), nullable=False),
        sa.Column("engine_id", sa.BigInteger(), nullable=False),
        sa.Column("bucket_end", sa.BigInteger(), nullable=False),
        sa.Column("recorded", sa.Boolean(), nullable=False),
        sa.Column("leased", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            "listener_id", "engine_id", "bucket_end", "recorded", name="pk_lease_counts"
        ),
        sqlite_with_rowid=False,
        postgresql_with={"fillfactor": 10},
    )
    op.drop_index("ix_deliveries_leased", table_name="deliveries")
    if _postgres():  # new pages only; existing ones keep theirs until rewritten
        op.execute("ALTER TABLE deliveries SET (fillfactor = 70)")


def downgrade() -> None:
    if _postgres():
        op.execute("ALTER TABLE deliveries RESET (fillfactor)")
    op.create_index(
        "ix_deliveries_leased",
        "deliveries",
        ["listener_id", "lease_until"],
        postgresql_where=sa.text("state = 'pending' AND lease_until > 0"),
        sqlite_where=sa.text("state = 'pending' AND lease_until > 0"),
    )
    op.drop_table("lease_counts")
