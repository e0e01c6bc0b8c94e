"""invoice numbers without gaps, seller and tax on the invoice

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

# shop.services.invoice_numbers.SERIES: one deployment is one shop, one series.
SERIES = "shop"


def upgrade() -> None:
    counters = op.create_table(
        "invoice_counters",
        sa.Column("shop", sa.String(length=40), nullable=False),
        sa.Column("next_number", sa.Integer(), nullable=False),
        sa.CheckConstraint("next_number >= 1", name="next_number_positive"),
        sa.PrimaryKeyConstraint("shop"),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("invoice_number", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("invoiced_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_unique_constraint("uq_orders_invoice_number", ["invoice_number"])
    issued = _number_orders_already_invoiced()
    op.bulk_insert(counters, [{"shop": SERIES, "next_number": issued + 1}])


def _number_orders_already_invoiced() -> int:
    """Orders whose invoice step started before this revision get their numbers
    now, oldest first: the run gives a number only to an order that has none, so
    they would otherwise be invoiced without one. Returns how many."""
    bind = op.get_bind()
    started = bind.execute(
        sa.text(
            "SELECT o.id, o.created_at FROM orders o JOIN step_runs s ON s.order_id = o.id "
            "WHERE s.step = 'invoice' AND s.status NOT IN ('pending', 'skipped') ORDER BY o.created_at, o.id"
        )
    ).all()
    for number, (order_id, created_at) in enumerate(started, start=1):
        bind.execute(
            sa.text("UPDATE orders SET invoice_number = :n, invoiced_at = :at WHERE id = :o"),
            {"n": number, "at": created_at, "o": order_id},
        )
    return len(started)


def downgrade() -> None:
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_constraint("uq_orders_invoice_number", type_="unique")
        batch_op.drop_column("invoiced_at")
        batch_op.drop_column("invoice_number")
    op.drop_table("invoice_counters")
