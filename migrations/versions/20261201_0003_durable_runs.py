"""durable runs: one lease per order instead of one per step

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 00:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lease_token", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("dispatch_queue", sa.String(length=32), nullable=False, server_default="orders"))
        batch_op.drop_constraint("pending_fanout_not_negative", type_="check")
        batch_op.drop_column("pending_fanout")
        batch_op.create_index("ix_orders_status_lease", ["status", "lease_expires_at"], unique=False)
    with op.batch_alter_table("step_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_step_runs_status_lease")
        batch_op.add_column(sa.Column("due_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_column("dispatched_at")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("lease_token")
        batch_op.create_index("ix_step_runs_dead_lettered", ["dead_lettered_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("step_runs", schema=None) as batch_op:
        batch_op.drop_index("ix_step_runs_dead_lettered")
        batch_op.add_column(sa.Column("lease_token", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.drop_column("due_at")
        batch_op.create_index("ix_step_runs_status_lease", ["status", "lease_expires_at"], unique=False)
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_index("ix_orders_status_lease")
        batch_op.add_column(sa.Column("pending_fanout", sa.Integer(), nullable=False, server_default="0"))
        batch_op.create_check_constraint("pending_fanout_not_negative", "pending_fanout >= 0")
        batch_op.drop_column("dispatch_queue")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("lease_token")
