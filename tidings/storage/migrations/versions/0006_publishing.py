"""publishing: idempotency keys, delayed messages, per-queue retention

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("org_id", sa.String(length=64), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "key", name="pk_idempotency_keys"),
    )
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.create_index("ix_idempotency_keys_expires", ["expires_at"], unique=False)
    # Nullable and without a default: instant on a large table, on both databases.
    # Existing queues keep their messages forever (NULL): an upgrade deletes nothing.
    op.add_column("messages", sa.Column("deliver_at", sa.BigInteger(), nullable=True))
    op.add_column("queues", sa.Column("retention_seconds", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.create_index("ix_messages_queue_created", ["queue_id", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_queue_created")
        batch_op.drop_column("deliver_at")
    with op.batch_alter_table("queues", schema=None) as batch_op:
        batch_op.drop_column("retention_seconds")
    with op.batch_alter_table("idempotency_keys", schema=None) as batch_op:
        batch_op.drop_index("ix_idempotency_keys_expires")
    op.drop_table("idempotency_keys")
