"""Cancelling an order: a database state every checkpoint checks, not a Celery revoke.

A revoke lives in worker memory and is lost with the worker; the order's
status is what every lease and every checkpoint re-reads. The warehouse step
row decides the race with shipping (``ledger.stop_shipping``): an order is
either cancelled or shipped, never both.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from shop.errors import Conflict, NotFound
from shop.extensions import ShopServices
from shop.models import Order, StepRun, utcnow
from shop.pipeline import ledger, reactions
from shop.services import history
from shop.services.outbox import publish_outbox
from shop.states import OrderStatus, Step, StepStatus
from shop.step_policy import UNPAID_STEP_STATUSES


@dataclass(frozen=True)
class Cancellation:
    order_id: str
    status: str
    refund: bool
    already: bool = False


# Who cancels an order nobody paid for in time, in its history.
UNPAID_TIMEOUT_ACTOR = "shop (unpaid past its deadline)"


def lock_order(session: Session, order_id: str) -> tuple[Order, str | None]:
    """The order, row-locked so that two operators (or a cancel and a refund) act
    one after the other, and its payment step's status."""
    order = session.get(Order, order_id, with_for_update=True)
    if order is None:
        raise NotFound("order")
    payment = session.scalar(select(StepRun.status).where(StepRun.order_id == order_id, StepRun.step == Step.PAYMENT))
    return order, payment


def cancel_order(svc: ShopServices, order_id: str, actor: str) -> Cancellation:
    """Cancel before shipment: stop the pipeline, release stock, refund if charged.

    ``actor`` (who asked) goes into the order's history with the cancel."""
    now = utcnow()
    with svc.db.begin() as session:
        order, payment = lock_order(session, order_id)
        if order.status == OrderStatus.CANCELLED:
            return Cancellation(order_id, order.status, refund=False, already=True)
        if order.status in (OrderStatus.COMPLETED, OrderStatus.FAILED):
            raise Conflict("not_cancellable", f"the order is already {order.status}")
        if not ledger.stop_shipping(session, order_id, now):
            raise Conflict("already_shipped", "the order was handed to the warehouse; it can no longer be cancelled")
        charged = payment in (StepStatus.SUCCEEDED, StepStatus.RUNNING)
        ledger.cancel(session, order_id, now)
        messages = reactions.on_cancelled(session, order_id, charged)
        detail = "the charge is refunded" if charged else "nothing was charged"
        history.record_action(session, order_id, history.EventKind.CANCELLED, actor, now, detail)
    publish_outbox(svc.db, svc.publisher, messages)
    return Cancellation(order_id, OrderStatus.CANCELLED, refund=charged)


def cancel_unpaid_order(svc: ShopServices, order_id: str) -> str:
    """The scheduled job for an order still unpaid past its deadline."""
    with svc.db.begin() as session:
        payment = session.scalar(
            select(StepRun.status).where(StepRun.order_id == order_id, StepRun.step == Step.PAYMENT)
        )
    if payment not in UNPAID_STEP_STATUSES:
        return "skipped"  # paid (or being charged) after all
    try:
        cancel_order(svc, order_id, UNPAID_TIMEOUT_ACTOR)
    except Conflict:
        return "skipped"  # finished or shipped meanwhile
    return "cancelled"
