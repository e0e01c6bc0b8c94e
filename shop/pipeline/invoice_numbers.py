"""Invoice numbers: one per order, in sequence per shop, without gaps.

A counter row per shop (``invoice_counters``) holds the next number. An order
takes its number in the transaction that starts its invoice step, the one
that also records its payment: a rollback (a lost lease, a cancel that
committed first, a crash before the commit) takes the number back with
everything else, and a redelivered or recovered run finds it already set. Only
a paid order takes one, so declined and cancelled orders leave no holes.

The counter row stays locked from the moment a number is taken to the commit
(``FOR UPDATE`` on PostgreSQL; SQLite's BEGIN IMMEDIATE serialises writers),
so concurrent runs queue on it for the rest of a short checkpoint and never
share a number. The run's fence folds the taking into its own UPDATE of the
order (``ledger.renew_and_number_invoice``): a number costs the happy path one
statement, the counter's move.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from shop.database import Executor, insert_ignoring_duplicates
from shop.models import InvoiceCounter, Order, table_of

# One deployment is one shop: one series (migrations/versions/…_0004_invoices.py seeds it).
SERIES = "shop"

counters = table_of(InvoiceCounter)
orders = table_of(Order)

_NEXT_NUMBER = select(counters.c.next_number).where(counters.c.shop == SERIES).with_for_update().scalar_subquery()

# Folded into an UPDATE of the order's row: its number, unless it has one.
TAKE_NUMBER = {
    "invoice_number": func.coalesce(orders.c.invoice_number, _NEXT_NUMBER),
    "invoiced_at": func.coalesce(orders.c.invoiced_at, bindparam("b_now")),
}

_TAKE = (
    update(orders).where(orders.c.id == bindparam("b_order")).values(**TAKE_NUMBER).returning(orders.c.invoice_number)
)

# Past ``b_number`` only if that is the counter's value, i.e. the number was just
# taken: an order that already had one (a redelivery) leaves the counter alone.
_MOVE_PAST = (
    update(counters)
    .where(counters.c.shop == SERIES, counters.c.next_number == bindparam("b_number"))
    .values(next_number=counters.c.next_number + 1)
)


def take_number(session: Session, order_id: str, now: datetime) -> int:
    """The order's invoice number, taken now unless it has one. The caller holds the order's lease."""
    number = session.scalar(_TAKE, {"b_order": order_id, "b_now": now})
    return move_counter(session, order_id, now, number)


def move_counter(session: Executor, order_id: str, now: datetime, number: Any) -> int:
    """After the order's UPDATE that took ``number``: move the counter past it."""
    if number is None:
        # No counter row (removed by hand): start it after the highest number
        # issued. Two runs doing this at once: ON CONFLICT lets one insert it.
        issued = session.scalar(select(func.coalesce(func.max(orders.c.invoice_number), 0)))
        insert_ignoring_duplicates(session, InvoiceCounter, [{"shop": SERIES, "next_number": int(issued or 0) + 1}])
        number = session.scalar(_TAKE, {"b_order": order_id, "b_now": now})
    session.execute(_MOVE_PAST, {"b_number": number})
    return int(number)
