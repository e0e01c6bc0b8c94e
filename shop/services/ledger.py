"""The step ledger: claim a step, record its outcome, hand on to the next steps.

Every change is a conditional UPDATE checked by its row count, so a duplicate
delivery, a visibility-timeout redelivery or the sweeper can never make two
workers own one step, or record one outcome twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, case, exists, literal, or_, select, update
from sqlalchemy.orm import Session

from shop.dispatch import TaskMessage, step_task_name
from shop.models import Order, StepRun, new_uuid
from shop.services.scheduling import schedule_follow_up
from shop.states import (
    CLAIMABLE_STEP_STATUSES,
    FANOUT,
    FINAL_ORDER_STATUSES,
    NEXT_STEPS,
    OrderStatus,
    Step,
    StepStatus,
    sources_of,
)
from shop.step_policy import STEP_POLICY, lease_seconds, queue_for

log = logging.getLogger(__name__)

ACTIVE_ORDER_STATUSES = tuple(s for s in OrderStatus if s not in FINAL_ORDER_STATUSES)


class LeaseLost(Exception):
    """Another claimant owns the step now; this one must not record anything."""


@dataclass(frozen=True)
class Claim:
    order_id: str
    step: Step
    attempt: int
    lease_token: str
    priority: str


def transition_order(session: Session, order_id: str, target: OrderStatus, **values: object) -> bool:
    """Move the order to ``target`` if its current status allows it."""
    result = session.execute(
        update(Order).where(Order.id == order_id, Order.status.in_(sources_of(target))).values(status=target, **values)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def claim_step(session: Session, order_id: str, step: Step, task_id: str, now: datetime) -> Claim | None:
    """Take the step for this worker, or return None (done, owned, cancelled, exhausted)."""
    token = new_uuid()
    order_is_active = exists().where(Order.id == order_id, Order.status.in_(ACTIVE_ORDER_STATUSES))
    claimed = session.execute(
        update(StepRun)
        .where(
            StepRun.order_id == order_id,
            StepRun.step == step,
            # Dispatched means its predecessors succeeded: a stray message for a
            # later step can never jump the queue.
            StepRun.dispatched_at.is_not(None),
            or_(
                StepRun.status.in_(CLAIMABLE_STEP_STATUSES),
                and_(StepRun.status == StepStatus.RUNNING, StepRun.lease_expires_at < now),
            ),
            order_is_active,
        )
        .values(
            status=StepStatus.RUNNING,
            attempts=StepRun.attempts + 1,
            started_at=now,
            lease_expires_at=now + timedelta(seconds=lease_seconds(step)),
            lease_token=token,
            task_id=task_id,
            last_error=case(
                (StepRun.status == StepStatus.RUNNING, "lease expired: worker lost or hard time limit"),
                else_=StepRun.last_error,
            ),
        )
        .returning(StepRun.attempts, select(Order.priority).where(Order.id == order_id).scalar_subquery())
    ).first()
    if claimed is None:
        return None
    attempt, priority = claimed
    if attempt > STEP_POLICY[step].max_attempts:
        # The previous attempt never reported back (killed at the hard limit):
        # it still counts, so a step that always hangs ends here, not in a loop.
        # This claim is not an attempt: give its count back before parking.
        session.execute(update(StepRun).where(*_owned(order_id, step, token)).values(attempts=StepRun.attempts - 1))
        dead_letter(session, order_id, step, token, "attempts exhausted: every lease expired (hung or lost)", now)
        log.error("step %s of %s dead-lettered: every one of its leases expired", step, order_id)
        return None
    if step == Step.INVENTORY:
        transition_order(session, order_id, OrderStatus.PROCESSING)
    return Claim(order_id, step, attempt, token, priority)


def _owned(claim_order: str, step: Step, token: str) -> list[ColumnElement[bool]]:
    return [
        StepRun.order_id == claim_order,
        StepRun.step == step,
        StepRun.lease_token == token,
        StepRun.status == StepStatus.RUNNING,
    ]


def dispatch_steps(
    session: Session, order_id: str, steps: tuple[Step, ...], priority: str, now: datetime
) -> list[TaskMessage]:
    """Mark steps dispatched; the caller publishes the returned messages after commit."""
    messages = []
    for step in steps:
        task_id = new_uuid()
        result = session.execute(
            update(StepRun)
            .where(
                StepRun.order_id == order_id,
                StepRun.step == step,
                StepRun.status.in_(CLAIMABLE_STEP_STATUSES),
            )
            .values(dispatched_at=now, task_id=task_id, queue=queue_for(step, priority))
        )
        if result.rowcount:  # type: ignore[attr-defined]
            messages.append(
                TaskMessage(step_task_name(step), queue_for(step, priority), task_id, {"order_id": order_id})
            )
    return messages


def record_success(session: Session, claim: Claim, now: datetime) -> list[TaskMessage]:
    """Mark the step succeeded and dispatch what it unlocks, in the caller's transaction."""
    result = session.execute(
        update(StepRun)
        .where(*_owned(claim.order_id, claim.step, claim.lease_token))
        .values(status=StepStatus.SUCCEEDED, finished_at=now, lease_expires_at=None, last_error=None)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLost(f"{claim.step} of {claim.order_id}")
    # One UPDATE of the order row does three jobs. It locks the row and checks the
    # order is still active (a cancel that committed first makes this transaction
    # roll back, and a reservation with it). It arms the fan-out counter after the
    # payment. And the lock serialises the three fan-out finishers, so the one
    # that brings the counter to zero completes the order.
    fanout: ColumnElement[int] = Order.pending_fanout.expression
    if claim.step == Step.PAYMENT:
        fanout = literal(len(FANOUT))
    elif claim.step in FANOUT:
        fanout = case((Order.pending_fanout > 0, Order.pending_fanout - 1), else_=0)
    remaining = session.execute(
        update(Order)
        .where(Order.id == claim.order_id, Order.status.in_(ACTIVE_ORDER_STATUSES))
        .values(updated_at=now, pending_fanout=fanout)
        .returning(Order.pending_fanout)
    ).scalar()
    if remaining is None:
        raise LeaseLost(f"order {claim.order_id} is no longer active")
    if claim.step in FANOUT and remaining == 0:
        transition_order(session, claim.order_id, OrderStatus.COMPLETED)
        schedule_follow_up(session, claim.order_id, now)
    return dispatch_steps(session, claim.order_id, NEXT_STEPS[claim.step], claim.priority, now)


def record_retry(session: Session, claim: Claim, error: str, delay: float, now: datetime) -> bool:
    """Schedule another attempt, or dead-letter the step when its budget is spent."""
    if claim.attempt >= STEP_POLICY[claim.step].max_attempts:
        dead_letter(session, claim.order_id, claim.step, claim.lease_token, error, now)
        return False
    # The retry rides a Celery countdown; should that message be lost, the
    # lease below lets the sweeper redispatch the step after it is due.
    due = now + timedelta(seconds=delay + lease_seconds(claim.step))
    result = session.execute(
        update(StepRun)
        .where(*_owned(claim.order_id, claim.step, claim.lease_token))
        .values(status=StepStatus.RETRYING, last_error=error[:2000], lease_expires_at=due)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def dead_letter(session: Session, order_id: str, step: Step, token: str, error: str, now: datetime) -> None:
    """Park the step for an operator; the order needs attention until it is replayed."""
    session.execute(
        update(StepRun)
        .where(*_owned(order_id, step, token))
        .values(
            status=StepStatus.FAILED,
            last_error=error[:2000],
            finished_at=now,
            dead_lettered_at=now,
            lease_expires_at=None,
        )
    )
    transition_order(session, order_id, OrderStatus.NEEDS_ATTENTION)


def fail_order(session: Session, claim: Claim, reason: str, error: str, now: datetime) -> bool:
    """A permanent business failure: the step fails, later steps are skipped."""
    result = session.execute(
        update(StepRun)
        .where(*_owned(claim.order_id, claim.step, claim.lease_token))
        .values(status=StepStatus.FAILED, last_error=error[:2000], finished_at=now, lease_expires_at=None)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    skip_open_steps(session, claim.order_id)
    return transition_order(session, claim.order_id, OrderStatus.FAILED, failure_reason=reason)


def skip_open_steps(session: Session, order_id: str) -> None:
    session.execute(
        update(StepRun)
        .where(StepRun.order_id == order_id, StepRun.status.in_(CLAIMABLE_STEP_STATUSES))
        .values(status=StepStatus.SKIPPED)
    )


def mark_step(session: Session, order_id: str, step: Step, frm: StepStatus, to: StepStatus) -> None:
    session.execute(
        update(StepRun)
        .where(StepRun.order_id == order_id, StepRun.step == step, StepRun.status == frm)
        .values(status=to)
    )
