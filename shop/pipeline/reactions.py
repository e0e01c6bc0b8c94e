"""What follows an order's outcome, in one place.

- completed → the follow-up email is scheduled, in the completing transaction;
- payment declined → the reserved stock goes back, inventory is compensated and
  the customer gets a "payment failed" email (through the outbox);
- cancelled → stock goes back, and a charge, made or in flight, is refunded;
- refunded by an operator (a completed order) → the charge is refunded.

Each reaction runs inside the transaction that records the outcome; the
messages it returns are published after that commit.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from shop.database import Executor
from shop.dispatch import PAYMENT_FAILED_EMAIL_TASK, REFUND_TASK, TaskMessage
from shop.extensions import ShopServices
from shop.models import Order, new_uuid
from shop.pipeline import ledger
from shop.pipeline.effects import effect_key
from shop.services.notifications import payment_failed_email, send_at_least_once
from shop.services.outbox import add_to_outbox
from shop.services.scheduling import schedule_follow_up
from shop.services.stock import release_stock
from shop.states import OrderStatus, Step
from shop.step_policy import STEP_POLICY


def on_completed(session: Executor, order_id: str, now: datetime) -> None:
    schedule_follow_up(session, order_id, now)


def on_payment_declined(session: Session, order_id: str) -> list[TaskMessage]:
    release_stock(session, order_id)
    ledger.compensate(session, order_id, Step.INVENTORY)
    message = TaskMessage(PAYMENT_FAILED_EMAIL_TASK, STEP_POLICY[Step.EMAIL].queue, new_uuid(), {"order_id": order_id})
    add_to_outbox(session, message, order_id)
    return [message]


def on_cancelled(session: Session, order_id: str, charged: bool) -> list[TaskMessage]:
    release_stock(session, order_id)
    ledger.compensate(session, order_id, Step.INVENTORY)
    ledger.compensate(session, order_id, Step.PAYMENT)
    if not charged:
        return []
    # Refund even when the charge is still in flight: the gateway refund is
    # keyed like the charge, and a run that charges after the cancel
    # refunds by itself (``after_lost_lease``).
    return [_queue_refund(session, order_id)]


def on_refunded(session: Session, order_id: str) -> list[TaskMessage] | None:
    """An operator refunds a completed order: the charge is undone, the goods
    stay shipped. None when the order has no charge to undo."""
    if not ledger.compensate(session, order_id, Step.PAYMENT):
        return None
    return [_queue_refund(session, order_id)]


def _queue_refund(session: Session, order_id: str) -> TaskMessage:
    """The gateway is called by the refund task after the commit (no network
    I/O inside the transaction), through the outbox in case the broker is away."""
    message = TaskMessage(REFUND_TASK, STEP_POLICY[Step.PAYMENT].queue, new_uuid(), {"order_id": order_id})
    add_to_outbox(session, message, order_id)
    return message


def send_payment_failed_email(svc: ShopServices, order_id: str) -> bool:
    """The compensation's email (its own task, through the outbox); at least once."""
    with svc.db.begin() as session:
        order = session.get(Order, order_id)
    if order is None:
        return False
    message = payment_failed_email(order, svc.mail_from, svc.public_base_url)
    return send_at_least_once(svc, order, effect_key(order_id, "payment_failed_email"), message)


def refund_payment(svc: ShopServices, order_id: str) -> None:
    """Refund the order's charge, if any (idempotent at the gateway)."""
    svc.gateway.refund(idempotency_key=effect_key(order_id, Step.PAYMENT))


def after_lost_lease(svc: ShopServices, order_id: str, ran: tuple[Step, ...]) -> None:
    """The run could not record its steps. If the order was cancelled meanwhile,
    give back a charge the run made after the cancel."""
    if Step.PAYMENT not in ran:
        return
    with svc.db.begin() as session:
        cancelled = session.scalar(select(Order.status).where(Order.id == order_id)) == OrderStatus.CANCELLED
    if cancelled:
        refund_payment(svc, order_id)
