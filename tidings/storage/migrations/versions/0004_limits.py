"""rate counters, authentication failures and lockouts

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rate_counters",
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.BigInteger(), nullable=False),
        sa.Column("hits", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "window_start"),
    )
    op.create_table(
        "auth_failures",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("failed_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("auth_failures", schema=None) as batch_op:
        batch_op.create_index("ix_auth_failures_address", ["address", "failed_at"], unique=False)
    op.create_table(
        "lockouts",
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("locked_until", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("address"),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Counters are rewritten constantly and worthless after a crash: skip the WAL.
        op.execute("ALTER TABLE rate_counters SET UNLOGGED")
        op.execute("ALTER TABLE auth_failures SET UNLOGGED")


def downgrade() -> None:
    op.drop_table("lockouts")
    with op.batch_alter_table("auth_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_auth_failures_address")
    op.drop_table("auth_failures")
    op.drop_table("rate_counters")
