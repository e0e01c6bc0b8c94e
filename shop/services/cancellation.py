"""Cancelling an order: a database state every step checks, not a Celery revoke.

A revoke lives in worker memory and is lost with the worker; the order's
status is what every claim and every success record re-reads. The warehouse
step row decides the race with shipping: whichever conditional UPDATE of that
row commits first wins, so an order is either cancelled or shipped, never both.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Select, or_, select, update
from sqlalchemy.orm import Session

from shop.dispatch import REFUND_TASK, TaskMessage
from shop.errors import Conflict, NotFound
from shop.extensions import ShopServices
from shop.models import Order, StepRun, new_uuid, utcnow
from shop.services import ledger
from shop.services.outbox import add_to_outbox, publish_outbox
from shop.services.stock import release_stock
from shop.states import CLAIMABLE_STEP_STATUSES, OrderStatus, Step, StepStatus
from shop.step_policy import STEP_POLICY


@dataclass(frozen=True)
class Cancellation:
    order_id: str
    status: str
    refund: bool
    already: bool = False


def cancel_order(svc: ShopServices, order_id: str) -> Cancellation:
    """Cancel before shipment: stop the pipeline, release stock, refund if charged."""
    with svc.db.begin() as session:
        order = session.get(Order, order_id, with_for_update=True)
        if order is None:
            raise NotFound("order")
        if order.status == OrderStatus.CANCELLED:
            return Cancellation(order_id, order.status, refund=False, already=True)
        if order.status in (OrderStatus.COMPLETED, OrderStatus.FAILED):
            raise Conflict("not_cancellable", f"the order is already {order.status}")
        _stop_shipping(session, order_id)
        ledger.skip_open_steps(session, order_id)
        _clear_dead_letters(session, order_id)
        ledger.transition_order(session, order_id, OrderStatus.CANCELLED, failure_reason=None)
        release_stock(session, order_id)
        ledger.mark_step(session, order_id, Step.INVENTORY, StepStatus.SUCCEEDED, StepStatus.COMPENSATED)
        paid = session.scalar(_step_status(order_id, Step.PAYMENT)) in (StepStatus.SUCCEEDED, StepStatus.RUNNING)
        ledger.mark_step(session, order_id, Step.PAYMENT, StepStatus.SUCCEEDED, StepStatus.COMPENSATED)
        # Refund even when the charge is still in flight: the gateway refund is
        # keyed like the charge, and a payment step that charges after this
        # commit refunds itself when it finds the order cancelled.
        refund = TaskMessage(REFUND_TASK, STEP_POLICY[Step.PAYMENT].queue, new_uuid(), {"order_id": order_id})
        if paid:
            add_to_outbox(session, refund, order_id)
    if paid:
        publish_outbox(svc.db, svc.publisher, [refund])
    return Cancellation(order_id, OrderStatus.CANCELLED, refund=paid)


def _step_status(order_id: str, step: Step) -> Select[str]:
    return select(StepRun.status).where(StepRun.order_id == order_id, StepRun.step == step)


def _stop_shipping(session: Session, order_id: str) -> None:
    """Take the warehouse step out of reach, or refuse: it is (being) shipped."""
    taken = session.execute(
        update(StepRun)
        .where(
            StepRun.order_id == order_id,
            StepRun.step == Step.WAREHOUSE,
            or_(StepRun.status.in_(CLAIMABLE_STEP_STATUSES), StepRun.dead_lettered_at.is_not(None)),
        )
        .values(status=StepStatus.SKIPPED, finished_at=utcnow())
    )
    if taken.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict("already_shipped", "the order was handed to the warehouse; it can no longer be cancelled")


def _clear_dead_letters(session: Session, order_id: str) -> None:
    """A cancelled order has nothing left to replay."""
    session.execute(
        update(StepRun)
        .where(StepRun.order_id == order_id, StepRun.dead_lettered_at.is_not(None))
        .values(status=StepStatus.SKIPPED, dead_lettered_at=None)
    )


def refund_payment(svc: ShopServices, order_id: str) -> None:
    """Refund the order's charge, if any (idempotent at the gateway)."""
    svc.gateway.refund(idempotency_key=f"order:{order_id}:{Step.PAYMENT}")
