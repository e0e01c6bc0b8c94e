"""The step ledger: claim a step, record its outcome, hand on to the next steps.

Every change is a conditional UPDATE checked by its row count, so a duplicate
delivery, a visibility-timeout redelivery or the sweeper can never make two
workers own one step, or record one outcome twice.

The statements a step runs every time (claim, succeed, count down the fan-out,
dispatch, move the order) are built once, at import, with bound parameters and
against the tables rather than the mapped classes: building a statement cost
as much CPU as running it, and the ORM's bulk-update path (session
synchronisation) as much again; neither buys anything for a row the session
never loaded. Measured in bench/ (README: "What was tried, and what each change bought").
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Table,
    Update,
    and_,
    bindparam,
    case,
    exists,
    literal,
    literal_column,
    null,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from shop.dispatch import TaskMessage, step_task_name
from shop.models import Order, StepRun, new_uuid
from shop.services.scheduling import schedule_follow_up
from shop.states import (
    ACTIVE_ORDER_STATUSES,
    CLAIMABLE_STEP_STATUSES,
    FANOUT,
    NEXT_STEPS,
    OrderStatus,
    Step,
    StepStatus,
    sources_of,
)
from shop.step_policy import STEP_POLICY, lease_seconds, queue_for

log = logging.getLogger(__name__)

steps = cast(Table, StepRun.__table__)
orders = cast(Table, Order.__table__)


class LeaseLost(Exception):
    """Another claimant owns the step now; this one must not record anything."""


@dataclass(frozen=True)
class Claim:
    order_id: str
    step: Step
    attempt: int
    lease_token: str
    priority: str


def _inline(value: str) -> ColumnElement[str]:
    """One of our own state names as an SQL literal: constants need no parameter."""
    return literal_column(f"'{value}'")


def _one_of(column: Any, values: Iterable[str]) -> ColumnElement[bool]:
    """``column IN ('a', 'b')`` with the values inline: an expanding parameter
    would be re-rendered on every execution."""
    return column.in_([_inline(value) for value in sorted(values)])  # type: ignore[no-any-return]


def _owned() -> list[ColumnElement[bool]]:
    return [
        steps.c.order_id == bindparam("b_order"),
        steps.c.step == bindparam("b_step"),
        steps.c.lease_token == bindparam("b_token"),
        steps.c.status == _inline(StepStatus.RUNNING),
    ]


def _order_is_active() -> ColumnElement[bool]:
    return _one_of(orders.c.status, ACTIVE_ORDER_STATUSES)


@cache
def _transition_statement(target: OrderStatus, extra: tuple[str, ...]) -> Update:
    return (
        update(orders)
        .where(orders.c.id == bindparam("b_order"), _one_of(orders.c.status, sources_of(target)))
        .values(status=_inline(target), **{name: bindparam(f"v_{name}") for name in extra})
    )


def transition_order(session: Session, order_id: str, target: OrderStatus, **values: object) -> bool:
    """Move the order to ``target`` if its current status allows it."""
    statement = _transition_statement(target, tuple(sorted(values)))
    result = session.execute(statement, {"b_order": order_id, **{f"v_{k}": v for k, v in values.items()}})
    return result.rowcount == 1  # type: ignore[attr-defined]


_CLAIM = (
    update(steps)
    .where(
        steps.c.order_id == bindparam("b_order"),
        steps.c.step == bindparam("b_step"),
        # Dispatched means its predecessors succeeded: a stray message for a
        # later step can never jump the queue.
        steps.c.dispatched_at.is_not(None),
        or_(
            _one_of(steps.c.status, CLAIMABLE_STEP_STATUSES),
            and_(steps.c.status == _inline(StepStatus.RUNNING), steps.c.lease_expires_at < bindparam("b_now")),
        ),
        exists().where(orders.c.id == bindparam("b_order"), _order_is_active()),
    )
    .values(
        status=_inline(StepStatus.RUNNING),
        attempts=steps.c.attempts + 1,
        started_at=bindparam("b_now"),
        lease_expires_at=bindparam("b_lease_until"),
        lease_token=bindparam("b_token"),
        task_id=bindparam("b_task"),
        last_error=case(
            (
                steps.c.status == _inline(StepStatus.RUNNING),
                literal("lease expired: worker lost or hard time limit"),
            ),
            else_=steps.c.last_error,
        ),
    )
    .returning(steps.c.attempts, select(orders.c.priority).where(orders.c.id == bindparam("b_order")).scalar_subquery())
)


def claim_step(session: Session, order_id: str, step: Step, task_id: str, now: datetime) -> Claim | None:
    """Take the step for this worker, or return None (done, owned, cancelled, exhausted)."""
    token = new_uuid()
    claimed = session.execute(
        _CLAIM,
        {
            "b_order": order_id,
            "b_step": step.value,
            "b_now": now,
            "b_lease_until": now + timedelta(seconds=lease_seconds(step)),
            "b_token": token,
            "b_task": task_id,
        },
    ).first()
    if claimed is None:
        return None
    attempt, priority = claimed
    if attempt > STEP_POLICY[step].max_attempts:
        # The previous attempt never reported back (killed at the hard limit):
        # it still counts, so a step that always hangs ends here, not in a loop.
        # This claim is not an attempt: give its count back before parking.
        session.execute(
            update(steps).where(*_owned()).values(attempts=steps.c.attempts - 1),
            {"b_order": order_id, "b_step": step.value, "b_token": token},
        )
        dead_letter(session, order_id, step, token, "attempts exhausted: every lease expired (hung or lost)", now)
        log.error("step %s of %s dead-lettered: every one of its leases expired", step, order_id)
        return None
    if step == Step.INVENTORY:
        transition_order(session, order_id, OrderStatus.PROCESSING)
    return Claim(order_id, step, attempt, token, priority)


@cache
def _dispatch_statement(targets: tuple[Step, ...]) -> Update:
    """Dispatch ``targets`` of one order in one UPDATE; each gets its own task id and queue."""
    names = [step.value for step in targets]
    return (
        update(steps)
        .where(
            steps.c.order_id == bindparam("b_order"),
            _one_of(steps.c.step, names),
            _one_of(steps.c.status, CLAIMABLE_STEP_STATUSES),
        )
        .values(
            dispatched_at=bindparam("b_now"),
            task_id=case({name: bindparam(f"task_{name}") for name in names}, value=steps.c.step),
            queue=case({name: bindparam(f"queue_{name}") for name in names}, value=steps.c.step),
        )
        .returning(steps.c.step)
    )


def dispatch_steps(
    session: Session, order_id: str, targets: tuple[Step, ...], priority: str, now: datetime
) -> list[TaskMessage]:
    """Mark steps dispatched; the caller publishes the returned messages after commit."""
    if not targets:
        return []
    planned = {
        step.value: TaskMessage(step_task_name(step), queue_for(step, priority), new_uuid(), {"order_id": order_id})
        for step in targets
    }
    params: dict[str, Any] = {"b_order": order_id, "b_now": now}
    for name, message in planned.items():
        params[f"task_{name}"], params[f"queue_{name}"] = message.task_id, message.queue
    dispatched = set(session.scalars(_dispatch_statement(targets), params))
    return [message for name, message in planned.items() if name in dispatched]


_SUCCEED = (
    update(steps)
    .where(*_owned())
    .values(
        status=_inline(StepStatus.SUCCEEDED),
        finished_at=bindparam("b_now"),
        lease_expires_at=null(),
        last_error=null(),
    )
)


def _count_down(fanout: ColumnElement[int]) -> Update:
    # One UPDATE of the order row does three jobs. It locks the row and checks the
    # order is still active (a cancel that committed first makes this transaction
    # roll back, and a reservation with it). It arms the fan-out counter after the
    # payment. And the lock serialises the three fan-out finishers, so the one
    # that brings the counter to zero completes the order.
    return (
        update(orders)
        .where(orders.c.id == bindparam("b_order"), _order_is_active())
        .values(updated_at=bindparam("b_now"), pending_fanout=fanout)
        .returning(orders.c.pending_fanout)
    )


ORDER_AFTER: dict[Step, Update] = {
    step: _count_down(
        literal(len(FANOUT))
        if step == Step.PAYMENT
        else case((orders.c.pending_fanout > 0, orders.c.pending_fanout - 1), else_=0)
        if step in FANOUT
        else orders.c.pending_fanout
    )
    for step in Step
}


def record_success(session: Session, claim: Claim, now: datetime) -> list[TaskMessage]:
    """Mark the step succeeded and dispatch what it unlocks, in the caller's transaction."""
    params = {"b_order": claim.order_id, "b_step": claim.step.value, "b_token": claim.lease_token, "b_now": now}
    if session.execute(_SUCCEED, params).rowcount != 1:  # type: ignore[attr-defined]
        raise LeaseLost(f"{claim.step} of {claim.order_id}")
    remaining = session.execute(ORDER_AFTER[claim.step], {"b_order": claim.order_id, "b_now": now}).scalar()
    if remaining is None:
        raise LeaseLost(f"order {claim.order_id} is no longer active")
    if claim.step in FANOUT and remaining == 0:
        transition_order(session, claim.order_id, OrderStatus.COMPLETED)
        schedule_follow_up(session, claim.order_id, now)
    return dispatch_steps(session, claim.order_id, NEXT_STEPS[claim.step], claim.priority, now)


def _update_owned(session: Session, order_id: str, step: Step, token: str, **values: Any) -> int:
    result = session.execute(
        update(steps).where(*_owned()).values(**values), {"b_order": order_id, "b_step": step.value, "b_token": token}
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def record_retry(session: Session, claim: Claim, error: str, delay: float, now: datetime) -> bool:
    """Schedule another attempt, or dead-letter the step when its budget is spent."""
    if claim.attempt >= STEP_POLICY[claim.step].max_attempts:
        dead_letter(session, claim.order_id, claim.step, claim.lease_token, error, now)
        return False
    # The retry rides a Celery countdown; should that message be lost, the
    # lease below lets the sweeper redispatch the step after it is due.
    due = now + timedelta(seconds=delay + lease_seconds(claim.step))
    updated = _update_owned(
        session,
        claim.order_id,
        claim.step,
        claim.lease_token,
        status=StepStatus.RETRYING.value,
        last_error=error[:2000],
        lease_expires_at=due,
    )
    return updated == 1


def dead_letter(session: Session, order_id: str, step: Step, token: str, error: str, now: datetime) -> None:
    """Park the step for an operator; the order needs attention until it is replayed."""
    _fail_step(session, order_id, step, token, error, now, dead_lettered_at=now)
    transition_order(session, order_id, OrderStatus.NEEDS_ATTENTION)


def fail_order(session: Session, claim: Claim, reason: str, error: str, now: datetime) -> bool:
    """A permanent business failure: the step fails, later steps are skipped."""
    if _fail_step(session, claim.order_id, claim.step, claim.lease_token, error, now) != 1:
        return False
    skip_open_steps(session, claim.order_id)
    return transition_order(session, claim.order_id, OrderStatus.FAILED, failure_reason=reason)


def _fail_step(
    session: Session, order_id: str, step: Step, token: str, error: str, now: datetime, **values: Any
) -> int:
    return _update_owned(
        session,
        order_id,
        step,
        token,
        status=StepStatus.FAILED.value,
        last_error=error[:2000],
        finished_at=now,
        lease_expires_at=None,
        **values,
    )


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
