"""The five post-purchase steps and how one is run against the ledger.

Each step: claim it in the ledger (skip if done, owned or cancelled) → the side
effect, keyed ``order:{id}:{step}`` → record the outcome and dispatch what it
unlocks in one transaction → publish after the commit. Network calls (gateway,
SMTP, warehouse) never run inside a database transaction.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session, configure_mappers, joinedload

from shop.database import insert_ignoring_duplicate
from shop.dispatch import PAYMENT_FAILED_EMAIL_TASK, TaskMessage, publish_all
from shop.errors import OutOfStock, PaymentDeclined, PermanentError, TransientError
from shop.extensions import ShopServices
from shop.integrations.invoices import render_invoice, write_invoice
from shop.models import Order, SideEffect, StepRun, new_uuid, utcnow
from shop.services import ledger
from shop.services.cancellation import refund_payment
from shop.services.notifications import confirmation_email, payment_failed_email, send_once
from shop.services.outbox import add_to_outbox, publish_outbox
from shop.services.stock import release_stock, reserve_stock
from shop.states import NEXT_STEPS, OrderStatus, Step, StepStatus
from shop.step_policy import LOAD_ORDER_LATENCY, STEP_POLICY, backoff_seconds

log = logging.getLogger(__name__)


def effect_key(order_id: str, step: Step | str) -> str:
    return f"order:{order_id}:{step}"


@dataclass
class StepOutcome:
    status: str  # succeeded | skipped | retry | failed | dead_letter
    retry_in: float | None = None
    messages: list[TaskMessage] = field(default_factory=list)
    error: str | None = None


def load_order(svc: ShopServices, order_id: str) -> Order:
    with svc.db.begin() as session:
        return order_with_lines(session, order_id)


# The order and its lines in one statement (a step reads them, never changes them).
_ORDER_WITH_LINES = select(Order).where(Order.id == bindparam("b_order")).options(joinedload(Order.lines))


def order_with_lines(session: Session, order_id: str) -> Order:
    return session.scalars(_ORDER_WITH_LINES, {"b_order": order_id}).unique().one()


def _record(svc: ShopServices, claim: ledger.Claim, effect_record: dict[str, str] | None = None) -> list[TaskMessage]:
    with svc.db.begin() as session:
        if effect_record is not None:
            insert_ignoring_duplicate(session, SideEffect, effect_record)
        return ledger.record_success(session, claim, utcnow())


def reserve_inventory(svc: ShopServices, claim: ledger.Claim, order: Order) -> list[TaskMessage]:
    svc.simulation.sleep(LOAD_ORDER_LATENCY)
    svc.simulation.work(Step.INVENTORY)
    # Reservation and ledger commit together: a crash before the commit undoes both.
    with svc.db.begin() as session:
        reserve_stock(session, order.id, order.lines)
        svc.simulation.after_effect(Step.INVENTORY)
        return ledger.record_success(session, claim, utcnow())


def charge_payment(svc: ShopServices, claim: ledger.Claim, order: Order) -> list[TaskMessage]:
    svc.simulation.work(Step.PAYMENT)
    # Outside any transaction: the gateway is remote. Its idempotency key makes
    # a redelivered step get the first charge back instead of a second one.
    svc.gateway.charge(
        idempotency_key=effect_key(order.id, Step.PAYMENT),
        order_id=order.id,
        amount_cents=order.total_cents,
        currency=order.currency,
        token=order.payment_token,
    )
    svc.simulation.after_effect(Step.PAYMENT)
    return _record(svc, claim)


def send_confirmation(svc: ShopServices, claim: ledger.Claim, order: Order) -> list[TaskMessage]:
    svc.simulation.work(Step.EMAIL)
    send_once(svc, order, effect_key(order.id, Step.EMAIL), confirmation_email(order, svc.mail_from))
    svc.simulation.after_effect(Step.EMAIL)
    return _record(svc, claim)


def create_invoice(svc: ShopServices, claim: ledger.Claim, order: Order) -> list[TaskMessage]:
    svc.simulation.work(Step.INVOICE)
    # One file per order under a fixed name: a rerun rewrites it, never adds one.
    path = write_invoice(svc.invoice_dir, order)
    svc.simulation.after_effect(Step.INVOICE)
    key = effect_key(order.id, Step.INVOICE)
    return _record(svc, claim, {"key": key, "order_id": order.id, "kind": "invoice", "detail": str(path)})


def notify_warehouse(svc: ShopServices, claim: ledger.Claim, order: Order) -> list[TaskMessage]:
    svc.simulation.work(Step.WAREHOUSE)
    key = effect_key(order.id, Step.WAREHOUSE)
    svc.warehouse.notify(idempotency_key=key, shipment=shipment_of(order))
    svc.simulation.after_effect(Step.WAREHOUSE)
    return _record(svc, claim, {"key": key, "order_id": order.id, "kind": "warehouse"})


def shipment_of(order: Order) -> dict[str, object]:
    return {
        "order_id": order.id,
        "priority": order.priority,
        "ship_to": {"name": order.customer_name, **order.shipping_address},
        "lines": [{"sku": line.sku, "quantity": line.quantity} for line in order.lines],
    }


STEP_EFFECTS: dict[Step, Callable[[ShopServices, ledger.Claim, Order], list[TaskMessage]]] = {
    Step.INVENTORY: reserve_inventory,
    Step.PAYMENT: charge_payment,
    Step.EMAIL: send_confirmation,
    Step.INVOICE: create_invoice,
    Step.WAREHOUSE: notify_warehouse,
}


def run_step(svc: ShopServices, order_id: str, step: Step, task_id: str) -> StepOutcome:
    """Run one step for one order; decide retry or failure from the exception kind."""
    # The claim and the read of the order share one transaction.
    with svc.db.begin() as session:
        claim = ledger.claim_step(session, order_id, step, task_id, utcnow())
        if claim is None:
            return StepOutcome("skipped")
        order = order_with_lines(session, order_id)
    try:
        svc.simulation.before_effect(step)
        messages = STEP_EFFECTS[step](svc, claim, order)
    except ledger.LeaseLost:
        settle_lost_lease(svc, claim)
        return StepOutcome("skipped")
    except (OutOfStock, PaymentDeclined) as exc:
        publish_outbox(svc.db, svc.publisher, fail_order(svc, claim, exc))
        return StepOutcome("failed", error=str(exc))
    except PermanentError as exc:
        with svc.db.begin() as session:
            ledger.dead_letter(session, order_id, step, claim.lease_token, f"permanent: {exc}", utcnow())
        return StepOutcome("dead_letter", error=str(exc))
    except Exception as exc:  # transient, soft time limit, or a bug: retry within budget
        return schedule_retry(svc, claim, exc)
    # After the commit; a lost publish is found again by the sweeper.
    publish_all(svc.publisher, messages)
    return StepOutcome("succeeded", messages=messages)


def settle_lost_lease(svc: ShopServices, claim: ledger.Claim) -> None:
    """The step's outcome could not be recorded. If the order was cancelled
    meanwhile, close the step, and give back a charge made after the cancel."""
    with svc.db.begin() as session:
        cancelled = session.scalar(select(Order.status).where(Order.id == claim.order_id)) == OrderStatus.CANCELLED
        if cancelled:
            session.execute(
                update(StepRun)
                .where(StepRun.order_id == claim.order_id, StepRun.lease_token == claim.lease_token)
                .values(status=StepStatus.SKIPPED, finished_at=utcnow(), lease_expires_at=None)
            )
    if cancelled and claim.step == Step.PAYMENT:
        refund_payment(svc, claim.order_id)


def schedule_retry(svc: ShopServices, claim: ledger.Claim, exc: Exception) -> StepOutcome:
    error = f"{type(exc).__name__}: {exc}"
    delay = backoff_seconds(claim.step, claim.attempt)
    if isinstance(exc, TransientError) and exc.retry_after:
        delay = max(delay, min(exc.retry_after, STEP_POLICY[claim.step].backoff_cap))
    with svc.db.begin() as session:
        scheduled = ledger.record_retry(session, claim, error, delay, utcnow())
    if not scheduled:
        log.error("step %s of %s dead-lettered after %d attempts: %s", claim.step, claim.order_id, claim.attempt, error)
        return StepOutcome("dead_letter", error=error)
    log.warning("step %s of %s retries in %.2fs: %s", claim.step, claim.order_id, delay, error)
    return StepOutcome("retry", retry_in=delay, error=error)


def fail_order(svc: ShopServices, claim: ledger.Claim, exc: OutOfStock | PaymentDeclined) -> list[TaskMessage]:
    """Fail the order; after a declined card, release the stock and tell the customer."""
    messages: list[TaskMessage] = []
    with svc.db.begin() as session:
        failed = ledger.fail_order(session, claim, exc.reason, str(exc), utcnow())
        if failed and isinstance(exc, PaymentDeclined):
            release_stock(session, claim.order_id)
            ledger.mark_step(session, claim.order_id, Step.INVENTORY, StepStatus.SUCCEEDED, StepStatus.COMPENSATED)
            message = TaskMessage(
                PAYMENT_FAILED_EMAIL_TASK, STEP_POLICY[Step.EMAIL].queue, new_uuid(), {"order_id": claim.order_id}
            )
            add_to_outbox(session, message, claim.order_id)
            messages.append(message)
    return messages


def send_payment_failed_email(svc: ShopServices, order_id: str) -> bool:
    order = load_order(svc, order_id)
    return send_once(svc, order, f"order:{order_id}:payment_failed_email", payment_failed_email(order, svc.mail_from))


def warm_up(svc: ShopServices) -> None:
    """Do once, before a worker forks its pool, what every child process would
    otherwise repeat on its first tasks: configure the mappers, compile the step
    statements into the engine's cache (each matches no row, in a transaction
    rolled back) and import what building an email and an invoice needs.
    Children inherit all of it; without it a fresh child spent its first tasks
    compiling (a fifth of the worker's CPU in a 300-order bench run)."""
    configure_mappers()
    now, nobody = utcnow(), ""
    with svc.db.sessions() as session:
        ledger.claim_step(session, nobody, Step.INVENTORY, nobody, now)
        session.scalars(_ORDER_WITH_LINES, {"b_order": nobody}).unique().first()
        claim = ledger.Claim(nobody, Step.INVENTORY, 1, nobody, "standard")
        with contextlib.suppress(ledger.LeaseLost):
            ledger.record_success(session, claim, now)
        for step in Step:
            session.execute(ledger.ORDER_AFTER[step], {"b_order": nobody, "b_now": now})
            ledger.dispatch_steps(session, nobody, NEXT_STEPS[step] or (step,), "standard", now)
        session.rollback()
    svc.db.engine.dispose()  # the connection, not the compiled statements: children open their own
    sample = Order(id=nobody, customer_email="warm@example.com", customer_name="", total_cents=0, currency="EUR")
    sample.created_at = now
    confirmation_email(sample, svc.mail_from).as_bytes()
    render_invoice(sample)
