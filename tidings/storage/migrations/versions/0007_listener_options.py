"""listener options: flow control, ordering, filters, headers, signing keys

Revision ID: 0007
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0008"
branch_labels = None
depends_on = None

# (name, type, nullable, server default): every column is nullable or has a default,
# so adding them is instant on a large table, on both databases.
_COLUMNS = (
    ("max_in_flight", sa.Integer(), True, None),
    ("rate_limit", sa.Float(), True, None),
    ("rate_next_at", sa.Float(), False, "0"),
    ("ordered", sa.Boolean(), False, sa.false()),
    ("headers", sa.Text(), True, None),
    ("filter", sa.Text(), True, None),
    ("options_version", sa.Integer(), False, "1"),
    ("signature_scheme", sa.String(length=8), False, "v1"),
    ("signing_key", sa.String(length=128), True, None),
    ("previous_scheme", sa.String(length=8), True, None),
    ("previous_signing_key", sa.String(length=128), True, None),
    ("previous_secret_expires_at", sa.BigInteger(), True, None),
)


def upgrade() -> None:
    with op.batch_alter_table("listeners", schema=None) as batch_op:
        for name, kind, nullable, default in _COLUMNS:
            batch_op.add_column(sa.Column(name, kind, nullable=nullable, server_default=default))
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deliveries_leased",
            ["listener_id", "lease_until"],
            unique=False,
            postgresql_where=sa.text("state = 'pending' AND lease_until > 0"),
            sqlite_where=sa.text("state = 'pending' AND lease_until > 0"),
        )


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_deliveries_leased")
    with op.batch_alter_table("listeners", schema=None) as batch_op:
        for name, *_ in reversed(_COLUMNS):
            batch_op.drop_column(name)
