"""What the tracking page shows beyond the status read model: the refund, and paying again.

A refund is read from the payment gateway's record of the charge (the
simulated gateway keeps it in ``payment_charges``): the ledger says a payment
was undone, the gateway says when and how much went back.

A declined card ends its order ``failed`` (stock released, "payment failed"
email); the shopper pays with another card by placing a *new* order with the
same items. The payment's idempotency key is per order, so the new attempt
has its own key and no retry can charge twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from shop.database import Database
from shop.errors import NotFound
from shop.models import Order, PaymentCharge
from shop.states import FailureReason, OrderStatus
from shop.web.formatting import money, short_date


@dataclass(frozen=True)
class Refund:
    amount_cents: int
    currency: str
    refunded_at: datetime | None  # None: cancelled after the charge, the refund is on its way

    @property
    def words(self) -> str:
        amount = money(self.amount_cents, self.currency)
        if self.refunded_at is None:
            return f"Refund of {amount} on its way"
        return f"Refunded {amount} on {short_date(self.refunded_at)}"


def refund_of(db: Database, order_id: str, order_status: str) -> Refund | None:
    """The order's refund: done, or due because a cancelled order had been charged."""
    if order_status not in (OrderStatus.CANCELLED, OrderStatus.COMPLETED):
        return None  # only a cancel or an operator's refund gives money back: no query for the rest
    with db.begin() as session:
        charge = session.scalars(
            select(PaymentCharge).where(PaymentCharge.order_id == order_id, PaymentCharge.status == "succeeded")
        ).first()
    if charge is None or (charge.refunded_at is None and order_status != OrderStatus.CANCELLED):
        return None
    return Refund(charge.amount_cents, charge.currency, charge.refunded_at)


@dataclass(frozen=True)
class DeclinedOrder:
    """What paying again needs: the items, and the details the shopper typed."""

    items: dict[str, int]
    details: dict[str, str]


def declined_order(db: Database, order_id: str) -> DeclinedOrder | None:
    """The order if its card was declined (None if it was not); NotFound if there is none."""
    with db.begin() as session:
        order = session.scalar(select(Order).where(Order.id == order_id).options(selectinload(Order.lines)))
    if order is None:
        raise NotFound("order")
    if order.status != OrderStatus.FAILED or order.failure_reason != FailureReason.PAYMENT_DECLINED:
        return None
    address = order.shipping_address
    details = {
        "name": order.customer_name,
        "email": order.customer_email,
        **{field: str(address.get(field, "")) for field in ("line1", "city", "postal_code", "country")},
        "priority": order.priority,
    }
    return DeclinedOrder({line.sku: line.quantity for line in order.lines}, details)
