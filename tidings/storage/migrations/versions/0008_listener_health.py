"""listener health: the attempt log, status, breaker columns, alerts queue

Revision ID: 0008
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0006"
branch_labels = None
depends_on = None

# New columns carry server defaults (or are nullable): instant on a large table on
# PostgreSQL 11+ and on SQLite.
_LISTENER_COLUMNS = (
    sa.Column("status", sa.String(16), nullable=False, server_default="enabled"),
    sa.Column("disabled_reason", sa.String(16), nullable=True),
    sa.Column("health", sa.String(16), nullable=False, server_default="healthy"),
    sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("last_success_at", sa.BigInteger(), nullable=True),
    sa.Column("last_failure_at", sa.BigInteger(), nullable=True),
    sa.Column("failing_since", sa.BigInteger(), nullable=True),
    sa.Column("breaker_open_until", sa.BigInteger(), nullable=False, server_default="0"),
    sa.Column("breaker_cooldown_ms", sa.BigInteger(), nullable=False, server_default="0"),
)


def upgrade() -> None:
    op.create_table(
        "attempts",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("org_id", sa.String(64), nullable=False),
        sa.Column("queue_id", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(64), nullable=False),
        sa.Column("listener_id", sa.String(64), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("error", sa.String(32), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("listener_id", "id", name="pk_attempts"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_attempts_message", "attempts", ["message_id", "id"])
    for column in _LISTENER_COLUMNS:
        op.add_column("listeners", column)
    op.create_index(
        "ix_listeners_failing",
        "listeners",
        ["breaker_open_until"],
        postgresql_where=sa.text("health = 'failing'"),
        sqlite_where=sa.text("health = 'failing'"),
    )
    op.add_column("organizations", sa.Column("alerts_queue_id", sa.String(64), nullable=True))
    op.add_column("events", sa.Column("reason", sa.String(16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("reason")
    with op.batch_alter_table("organizations", schema=None) as batch_op:
        batch_op.drop_column("alerts_queue_id")
    op.drop_index("ix_listeners_failing", table_name="listeners")
    with op.batch_alter_table("listeners", schema=None) as batch_op:
        for column in reversed(_LISTENER_COLUMNS):
            batch_op.drop_column(column.name)
    op.drop_table("attempts")
