"""The ledger: every write to an order's status, its run lease and its steps' statuses.

Each write is a conditional UPDATE checked by its row count: a duplicate
message, a redelivery or the sweep can never make two processes own one
order's run, or record one outcome twice. Writes made by the run also check
the lease (``lease_token``) and that the order is still active, so a cancel
that commits first makes the run's checkpoint roll back.

Only this module writes ``orders.status``, ``orders.lease_*`` and
``step_runs.status``; checkout inserts the rows, everything else calls here.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Update, and_, bindparam, case, false, or_, select, update
from sqlalchemy.orm import Session, joinedload

from shop.database import Executor, rowcount
from shop.models import Order, StepRun, new_uuid, table_of
from shop.pipeline import invoice_numbers
from shop.services import history
from shop.services.history import EventKind
from shop.states import (
    ACTIVE_ORDER_STATUSES,
    STARTABLE_STEP_STATUSES,
    OrderStatus,
    Step,
    StepStatus,
    sources_of,
)

steps = table_of(StepRun)
orders = table_of(Order)

_ACTIVE = [status.value for status in ACTIVE_ORDER_STATUSES]
_STARTABLE = [status.value for status in STARTABLE_STEP_STATUSES]
_OPEN = [StepStatus.PENDING.value, StepStatus.RETRYING.value, StepStatus.RUNNING.value]


class LeaseLost(Exception):
    """The run no longer owns the order (cancelled, or its lease expired and was taken)."""


@dataclass(frozen=True)
class Lease:
    order_id: str
    token: str
    task_id: str


def _names(values: Iterable[Step]) -> list[str]:
    return [Step(value).value for value in values]


# --- the order's status ----------------------------------------------------


def transition_order(session: Session, order_id: str, target: OrderStatus, **values: object) -> bool:
    """Move the order to ``target`` if its current status allows it."""
    sources = [status.value for status in sources_of(target)]
    result = session.execute(
        update(orders)
        .where(orders.c.id == order_id, orders.c.status.in_(sources))
        .values(status=target.value, **values)
    )
    return rowcount(result) == 1


# --- the run's lease -------------------------------------------------------


def _any_of(column: Any, values: Iterable[str]) -> ColumnElement[bool]:
    """``column = 'a' OR column = 'b'``: fixed values as ordinary parameters. An IN
    list is an expanding parameter, rendered again at every execution."""
    return or_(false(), *(column == value for value in values))


def _lease_is(token: Any) -> list[ColumnElement[bool]]:
    return [orders.c.id == bindparam("b_order"), orders.c.lease_token == token, _any_of(orders.c.status, _ACTIVE)]


# The statements every order runs (take, renew, complete, advance, the read) are
# built once with bound parameters: building one through the expression
# language cost about as much CPU as executing it. Measured with
# ``python -m bench.profile_steps 60`` (CPU per order, in process, PostgreSQL):
# run_order 19.0 ms built per call → 14.3–14.7 ms prebuilt.
_TAKE_LEASE = (
    update(orders)
    .where(
        orders.c.id == bindparam("b_order"),
        _any_of(orders.c.status, _ACTIVE),
        or_(orders.c.lease_token.is_(None), orders.c.lease_expires_at < bindparam("b_now")),
    )
    .values(
        lease_token=bindparam("b_token"),
        lease_expires_at=bindparam("b_until"),
        status=case(
            (orders.c.status == OrderStatus.RECEIVED.value, OrderStatus.PROCESSING.value), else_=orders.c.status
        ),
        updated_at=bindparam("b_now"),
    )
)
_RENEW = (
    update(orders)
    .where(*_lease_is(bindparam("b_token")))
    .values(lease_expires_at=bindparam("b_until"), updated_at=bindparam("b_now"))
)
# The fence of the checkpoint that starts the invoice step: it also gives the
# order its invoice number (shop/pipeline/invoice_numbers.py), in the same statement.
_RENEW_NUMBERING = (
    update(orders)
    .where(*_lease_is(bindparam("b_token")))
    .values(lease_expires_at=bindparam("b_until"), updated_at=bindparam("b_now"), **invoice_numbers.TAKE_NUMBER)
    .returning(orders.c.invoice_number)
)
_COMPLETE = (
    update(orders)
    .where(
        *_lease_is(bindparam("b_token")), _any_of(orders.c.status, [s.value for s in sources_of(OrderStatus.COMPLETED)])
    )
    .values(status=OrderStatus.COMPLETED.value, lease_token=None, lease_expires_at=None, updated_at=bindparam("b_now"))
)


def take_lease(session: Executor, order_id: str, task_id: str, now: datetime, seconds: float) -> Lease | None:
    """Own the order's run for ``seconds``, or None: final, or another process owns it."""
    token = new_uuid()
    params = {"b_order": order_id, "b_now": now, "b_token": token, "b_until": now + timedelta(seconds=seconds)}
    return Lease(order_id, token, task_id) if rowcount(session.execute(_TAKE_LEASE, params)) == 1 else None


def _held(lease: Lease) -> list[Any]:
    return [orders.c.id == lease.order_id, orders.c.lease_token == lease.token, orders.c.status.in_(_ACTIVE)]


def renew(session: Executor, lease: Lease, now: datetime, seconds: float) -> None:
    """The fence of every checkpoint: still ours and still active, for ``seconds`` more.

    It runs first in its transaction: the row lock it takes serialises the
    checkpoint with a concurrent cancel (which locks the same row)."""
    params = {"b_order": lease.order_id, "b_token": lease.token, "b_now": now}
    if rowcount(session.execute(_RENEW, {**params, "b_until": now + timedelta(seconds=seconds)})) != 1:
        raise LeaseLost(lease.order_id)


def renew_and_number_invoice(session: Executor, lease: Lease, now: datetime, seconds: float) -> int:
    """``renew``, and the order's invoice number: taken now unless the order has one."""
    params = {"b_order": lease.order_id, "b_token": lease.token, "b_now": now}
    row = session.execute(_RENEW_NUMBERING, {**params, "b_until": now + timedelta(seconds=seconds)}).first()
    if row is None:
        raise LeaseLost(lease.order_id)
    return invoice_numbers.move_counter(session, lease.order_id, now, row[0])


def release(session: Session, lease: Lease, now: datetime, wake_at: datetime | None, queue: str) -> None:
    """Give the run up. ``wake_at``: when the message just sent to ``queue`` (a
    slow-path step, or the run's continuation) should have been picked up;
    None when nothing is expected (waiting for an operator)."""
    result = session.execute(
        update(orders)
        .where(*_held(lease))
        .values(lease_token=None, lease_expires_at=wake_at, dispatch_queue=queue, updated_at=now)
    )
    if rowcount(result) != 1:
        raise LeaseLost(lease.order_id)


def complete(session: Executor, lease: Lease, now: datetime) -> None:
    """Every step succeeded: the order is completed and its run ends."""
    if rowcount(session.execute(_COMPLETE, {"b_order": lease.order_id, "b_token": lease.token, "b_now": now})) != 1:
        raise LeaseLost(lease.order_id)


def expire_lease(session: Session, lease: Lease, now: datetime) -> None:
    """Let the next delivery of the run take the order at once (its process is about to die)."""
    session.execute(update(orders).where(*_held(lease)).values(lease_expires_at=now))


# --- reading the run's state -----------------------------------------------

# The order, its lines and its ledger in one statement (a joined eager load:
# an order has a handful of lines and five steps).
_ORDER_WITH_LEDGER = (
    select(Order).where(Order.id == bindparam("b_order")).options(joinedload(Order.lines), joinedload(Order.steps))
)


def read_order(session: Session, order_id: str) -> Order:
    """The order, detached: the run keeps its own view of the ledger in these
    objects, and every write goes through this module's UPDATEs, never a flush."""
    order = session.scalars(_ORDER_WITH_LEDGER, {"b_order": order_id}).unique().one()
    session.expunge(order)  # cascades to its lines and steps
    return order


# --- steps -----------------------------------------------------------------


@cache
def _advance_statement(done: tuple[str, ...], start: tuple[str, ...]) -> Update:
    is_done = _any_of(steps.c.step, done)
    return (
        update(steps)
        .where(
            steps.c.order_id == bindparam("b_order"),
            or_(
                and_(is_done, steps.c.status == StepStatus.RUNNING.value),
                and_(_any_of(steps.c.step, start), _any_of(steps.c.status, _STARTABLE)),
            ),
        )
        .values(
            status=case((is_done, StepStatus.SUCCEEDED.value), else_=StepStatus.RUNNING.value),
            attempts=case((is_done, steps.c.attempts), else_=steps.c.attempts + 1),
            started_at=case((is_done, steps.c.started_at), else_=bindparam("b_now")),
            finished_at=case((is_done, bindparam("b_now")), else_=None),
            last_error=case((is_done, None), else_=steps.c.last_error),
            task_id=case((is_done, steps.c.task_id), else_=bindparam("b_task")),
            due_at=None,
        )
        .returning(steps.c.step, steps.c.attempts)
    )


def advance(
    session: Executor, lease: Lease, now: datetime, succeeded: Iterable[Step] = (), begin: Iterable[Step] = ()
) -> dict[Step, int]:
    """Checkpoint ``succeeded`` and start an attempt of each of ``begin``, in one UPDATE.

    Returns the attempt number of each step begun. An attempt is counted when
    it starts, before its side effect: a step whose process is killed every
    time still reaches its maximum instead of looping."""
    done, start = tuple(_names(succeeded)), tuple(_names(begin))
    statement = _advance_statement(done, start)
    result = session.execute(statement, {"b_order": lease.order_id, "b_now": now, "b_task": lease.task_id})
    touched = {Step(step): attempts for step, attempts in result}
    if any(Step(step) not in touched for step in done):
        raise LeaseLost(lease.order_id)
    return {step: attempts for step, attempts in touched.items() if step.value in start}


def _update_running(session: Session, order_id: str, step: Step, **values: Any) -> bool:
    result = session.execute(
        update(steps)
        .where(steps.c.order_id == order_id, steps.c.step == step.value, steps.c.status == StepStatus.RUNNING.value)
        .values(**values)
    )
    return rowcount(result) == 1


def schedule_retry(
    session: Session, order_id: str, step: Step, error: str, due_at: datetime, now: datetime, task_id: str
) -> None:
    """The attempt failed and may be retried from ``due_at`` on, by the slow-path
    task ``task_id``: any other copy of a slow-path message for the step is stale."""
    retrying = _update_running(
        session,
        order_id,
        step,
        status=StepStatus.RETRYING.value,
        last_error=error[:2000],
        due_at=due_at,
        finished_at=now,
        task_id=task_id,
    )
    if retrying:  # the next attempt overwrites last_error: the history keeps this one
        history.record_step_failure(session, order_id, step, EventKind.ATTEMPT_FAILED, error, now)


def expect_task(session: Session, order_id: str, step: Step, task_id: str) -> None:
    """A retrying step's message is sent again (the first one was not picked up)."""
    session.execute(
        update(steps)
        .where(steps.c.order_id == order_id, steps.c.step == step.value, steps.c.status == StepStatus.RETRYING.value)
        .values(task_id=task_id)
    )


def dead_letter(session: Session, order_id: str, step: Step, error: str, now: datetime) -> None:
    """Park the step for an operator; the order needs attention until it is replayed."""
    parked = _update_running(
        session,
        order_id,
        step,
        status=StepStatus.FAILED.value,
        last_error=error[:2000],
        finished_at=now,
        dead_lettered_at=now,
    )
    if parked:  # a replay resets the step's attempts and, at its next failure, its error
        history.record_step_failure(session, order_id, step, EventKind.DEAD_LETTERED, error, now)
    transition_order(session, order_id, OrderStatus.NEEDS_ATTENTION, updated_at=now)


def fail_order(session: Session, lease: Lease, step: Step, reason: str, error: str, now: datetime) -> None:
    """A business failure (no stock, declined card): the step fails, the rest is skipped, the run ends."""
    if _update_running(
        session, lease.order_id, step, status=StepStatus.FAILED.value, last_error=error[:2000], finished_at=now
    ):
        history.record_step_failure(session, lease.order_id, step, EventKind.STEP_FAILED, error, now)
    skip_open_steps(session, lease.order_id, now)
    result = session.execute(
        update(orders)
        .where(*_held(lease))
        .values(
            status=OrderStatus.FAILED.value,
            failure_reason=reason,
            lease_token=None,
            lease_expires_at=None,
            updated_at=now,
        )
    )
    if rowcount(result) != 1:
        raise LeaseLost(lease.order_id)


def skip_open_steps(session: Session, order_id: str, now: datetime, but: Iterable[Step] = ()) -> None:
    session.execute(
        update(steps)
        .where(steps.c.order_id == order_id, steps.c.status.in_(_OPEN), steps.c.step.not_in(_names(but)))
        .values(status=StepStatus.SKIPPED.value, finished_at=now, due_at=None)
    )


def compensate(session: Session, order_id: str, step: Step) -> bool:
    """Mark a succeeded step undone (stock released, charge refunded)."""
    result = session.execute(
        update(steps)
        .where(steps.c.order_id == order_id, steps.c.step == step.value, steps.c.status == StepStatus.SUCCEEDED.value)
        .values(status=StepStatus.COMPENSATED.value)
    )
    return rowcount(result) == 1


# --- operators and the sweep -------------------------------------------------


def stop_shipping(session: Session, order_id: str, now: datetime) -> bool:
    """Take the warehouse step out of reach; False if it is (being) shipped.

    The warehouse row decides the race with shipping: the run starts the step
    with a conditional UPDATE of the same row, so one of the two wins."""
    result = session.execute(
        update(steps)
        .where(
            steps.c.order_id == order_id,
            steps.c.step == Step.WAREHOUSE.value,
            or_(
                steps.c.status.in_([StepStatus.PENDING.value, StepStatus.RETRYING.value]),
                steps.c.dead_lettered_at.is_not(None),
            ),
        )
        .values(status=StepStatus.SKIPPED.value, finished_at=now, dead_lettered_at=None, due_at=None)
    )
    return rowcount(result) == 1


def cancel(session: Session, order_id: str, now: datetime) -> bool:
    """Cancel the order: open and dead-lettered steps skipped, the run's lease dropped.
    The caller has stopped shipping first, in the same transaction."""
    session.execute(
        update(steps)
        .where(steps.c.order_id == order_id, steps.c.dead_lettered_at.is_not(None))
        .values(status=StepStatus.SKIPPED.value, dead_lettered_at=None)
    )
    skip_open_steps(session, order_id, now)
    return transition_order(
        session,
        order_id,
        OrderStatus.CANCELLED,
        failure_reason=None,
        lease_token=None,
        lease_expires_at=None,
        updated_at=now,
    )


def replay(session: Session, step_run_id: int, now: datetime, wake_at: datetime, queue: str) -> StepRun | None:
    """A dead-lettered step gets a fresh retry budget; the order's run is due again.
    Returns the step's row, or None if it is not dead-lettered."""
    row = session.get(StepRun, step_run_id)
    result = session.execute(
        update(steps)
        .where(steps.c.id == step_run_id, steps.c.dead_lettered_at.is_not(None))
        .values(status=StepStatus.PENDING.value, attempts=0, dead_lettered_at=None, finished_at=None, due_at=None)
    )
    if row is None or rowcount(result) != 1:
        return None
    still_dead = session.scalar(
        select(steps.c.id).where(steps.c.order_id == row.order_id, steps.c.dead_lettered_at.is_not(None)).limit(1)
    )
    if still_dead is None:
        transition_order(session, row.order_id, OrderStatus.PROCESSING, updated_at=now)
    session.execute(
        update(orders)
        .where(orders.c.id == row.order_id, orders.c.lease_token.is_(None))
        .values(lease_expires_at=wake_at, dispatch_queue=queue)
    )
    return row


def mark_redispatched(
    session: Session, order_id: str, seen_token: str | None, seen_expiry: datetime, wake_at: datetime, queue: str
) -> bool:
    """The sweep sent the order's run again: only if the lease is as the sweep saw it."""
    token_matches = orders.c.lease_token.is_(None) if seen_token is None else orders.c.lease_token == seen_token
    result = session.execute(
        update(orders)
        .where(
            orders.c.id == order_id,
            orders.c.status.in_(_ACTIVE),
            token_matches,
            orders.c.lease_expires_at == seen_expiry,
        )
        .values(lease_token=None, lease_expires_at=wake_at, dispatch_queue=queue)
    )
    return rowcount(result) == 1
