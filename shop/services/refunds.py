"""Refunding a completed order: the money goes back, the goods stay shipped.

A cancel already refunds an order that has not shipped (``cancellation``);
once the order is completed a cancel is refused, and a refund is the
operator's way to give the money back (a return, a goodwill gesture). The
order stays ``completed`` (it was delivered); its payment step becomes
``compensated``, the ledger's mark of a charge undone, which the tracking page
shows as "Refunded" and which makes a second refund a no-op.

Only completed orders: their run is over, so nothing can start the payment
step again once it is no longer ``succeeded``. An active order is cancelled
instead (which refunds it), never refunded under a running pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

from shop.errors import Conflict
from shop.extensions import ShopServices
from shop.models import utcnow
from shop.pipeline import reactions
from shop.services import history
from shop.services.cancellation import lock_order
from shop.services.outbox import publish_outbox
from shop.states import OrderStatus, Step, StepStatus


@dataclass(frozen=True)
class Refund:
    order_id: str
    status: str
    amount_cents: int
    currency: str
    already: bool = False


def refund_order(svc: ShopServices, order_id: str, actor: str) -> Refund:
    """Refund a completed order's charge in full; refunding it again changes nothing.

    ``actor`` (who asked) goes into the order's history with the refund."""
    now = utcnow()
    with svc.db.begin() as session:
        # The row lock serialises two operators refunding at once; the
        # conditional UPDATE of the payment step would refuse the second anyway.
        order, payment = lock_order(session, order_id)
        refund = Refund(order_id, order.status, order.total_cents, order.currency)
        if order.status != OrderStatus.COMPLETED:
            raise Conflict("not_refundable", _why_not(order.status))
        if payment == StepStatus.COMPENSATED:
            return Refund(order_id, order.status, order.total_cents, order.currency, already=True)
        messages = reactions.on_refunded(session, order_id)
        if messages is None:
            raise Conflict("not_refundable", "the order has no charge to refund")
        detail = f"{order.total_cents / 100:.2f} {order.currency} refunded in full; the goods stay shipped"
        history.record_action(
            session, order_id, history.EventKind.REFUNDED, actor, now, detail, step=Step.PAYMENT.value
        )
    publish_outbox(svc.db, svc.publisher, messages)
    return refund


def _why_not(status: str) -> str:
    if status == OrderStatus.CANCELLED:
        return "the order was cancelled: its charge, if any, was refunded with the cancel"
    if status == OrderStatus.FAILED:
        return "the order failed before it was paid: nothing was charged"
    return f"the order is still {status}: cancel it instead (a cancel refunds the charge), or refund it once completed"
