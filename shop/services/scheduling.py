"""Work that falls due later: the follow-up email, and cancelling orders left unpaid.

Due times live in ``scheduled_jobs`` (see ``ScheduledJob`` for why not a Celery
ETA). The workers' maintenance loop runs ``hand_over_due_jobs`` every few seconds: it claims due rows with
a conditional UPDATE (so two hand-overs never take the same row) and publishes
one ``run_job`` message per row after the commit. A message or worker lost
after that leaves the claim to go stale, and the row is handed over again; the
job itself is idempotent (the email is keyed, the cancellation a state change),
so a second run does nothing twice. Settings are read when used, like the step
policy's scales, so tests can shrink them per process.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from email.message import Message

from sqlalchemy import exists, insert, literal, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import ColumnElement, Exists

from shop.database import Executor, insert_ignoring_duplicates, rowcount
from shop.dispatch import TaskMessage, publish_all
from shop.extensions import ShopServices
from shop.models import Order, ScheduledJob, StepRun, UTCDateTime, new_uuid, utcnow
from shop.services.notifications import customer_email, send_at_least_once
from shop.states import ACTIVE_ORDER_STATUSES, OrderStatus, Step
from shop.step_policy import STEP_POLICY, UNPAID_STEP_STATUSES

log = logging.getLogger(__name__)

FOLLOW_UP_EMAIL = "follow_up_email"
CANCEL_UNPAID = "cancel_unpaid"
RUN_JOB_TASK = "scheduling.run_job"
JOB_QUEUES = {
    FOLLOW_UP_EMAIL: STEP_POLICY[Step.EMAIL].queue,
    CANCEL_UNPAID: STEP_POLICY[Step.INVENTORY].queue,
}
# A job that failed this often stays undone for an operator (metrics: shop_scheduled_jobs_due).
MAX_JOB_ATTEMPTS = 10


def _seconds(name: str, default: float) -> float:
    return float(os.environ.get(name) or default)


def follow_up_delay() -> float:
    return _seconds("FOLLOW_UP_DELAY_SECONDS", 24 * 3600)


def unpaid_deadline() -> float:
    return _seconds("UNPAID_ORDER_DEADLINE_SECONDS", 3600)


def claim_seconds() -> float:
    return _seconds("SCHEDULED_JOB_CLAIM_SECONDS", 300)


def schedule_follow_up(session: Executor, order_id: str, now: datetime) -> None:
    """Schedule the follow-up email, in the transaction that completes the order.

    ON CONFLICT DO NOTHING rather than a plain add: a duplicate must never make
    the completing checkpoint fail on the unique (order, kind) constraint."""
    job = {
        "order_id": order_id,
        "kind": FOLLOW_UP_EMAIL,
        "due_at": now + timedelta(seconds=follow_up_delay()),
        "attempts": 0,
        "created_at": now,
    }
    insert_ignoring_duplicates(session, ScheduledJob, [job])


def _job_exists(order_id: object, kind: str) -> Exists:
    return exists().where(ScheduledJob.order_id == order_id, ScheduledJob.kind == kind)


def _insert_job(session: Session, order_ids: object, kind: str, due: datetime, now: datetime) -> int:
    rows = select(
        order_ids.subquery().c[0],  # type: ignore[attr-defined]
        literal(kind),
        literal(due, UTCDateTime()),
        literal(0),
        literal(now, UTCDateTime()),
    )
    result = session.execute(
        insert(ScheduledJob).from_select(["order_id", "kind", "due_at", "attempts", "created_at"], rows)
    )
    return rowcount(result)


def enqueue_unpaid_deadlines(session: Session, now: datetime) -> int:
    """A cancellation job, due now, for each active order unpaid past the deadline."""
    overdue = (
        select(Order.id)
        .join(StepRun, (StepRun.order_id == Order.id) & (StepRun.step == Step.PAYMENT))
        .where(
            Order.status.in_(ACTIVE_ORDER_STATUSES),
            Order.created_at < now - timedelta(seconds=unpaid_deadline()),
            StepRun.status.in_(UNPAID_STEP_STATUSES),
            ~_job_exists(Order.id, CANCEL_UNPAID),
        )
        .limit(500)
    )
    return _insert_job(session, overdue, CANCEL_UNPAID, now, now)


def hand_over_due_jobs(svc: ShopServices, batch: int = 200) -> int:
    """Claim due jobs and publish them; returns how many were handed over."""
    now = utcnow()
    stale = now - timedelta(seconds=claim_seconds())
    claimable = [
        ScheduledJob.done_at.is_(None),
        ScheduledJob.due_at <= now,
        ScheduledJob.attempts < MAX_JOB_ATTEMPTS,
        or_(ScheduledJob.claimed_at.is_(None), ScheduledJob.claimed_at < stale),
    ]
    with svc.db.begin() as session:
        enqueue_unpaid_deadlines(session, now)
        due = session.execute(
            select(ScheduledJob.id, ScheduledJob.order_id, ScheduledJob.kind)
            .where(*claimable)
            .order_by(ScheduledJob.due_at)
            .limit(batch)
        ).all()
        messages = [
            TaskMessage(RUN_JOB_TASK, JOB_QUEUES[kind], new_uuid(), {"job_id": job, "order_id": order})
            for job, order, kind in due
            if _claim(session, job, claimable, now)
        ]
    # After the commit; an unpublished message is handed over again once its claim is stale.
    return len(publish_all(svc.publisher, messages))


def _claim(session: Session, job_id: int, claimable: list[ColumnElement[bool]], now: datetime) -> bool:
    claimed = session.execute(
        update(ScheduledJob)
        .where(ScheduledJob.id == job_id, *claimable)
        .values(claimed_at=now, attempts=ScheduledJob.attempts + 1)
    )
    return rowcount(claimed) == 1


JobRunner = Callable[[ShopServices, str], str]


def run_scheduled_job(svc: ShopServices, job_id: int, runners: dict[str, JobRunner]) -> str:
    """Run one handed-over job with its runner and mark it done; a failure is left
    for the next hand-over. The runners come from the caller (``tasks``), so this
    module needs none of the services it schedules for."""
    with svc.db.begin() as session:
        job = session.get(ScheduledJob, job_id)
        if job is None or job.done_at is not None:
            return "skipped"
        kind, order_id = job.kind, job.order_id
    try:
        outcome = runners[kind](svc, order_id)
    except Exception as exc:  # transient or not: the claim expires and the job comes back
        log.warning("scheduled %s for %s failed: %s", kind, order_id, exc)
        _update_job(svc, job_id, last_error=f"{type(exc).__name__}: {exc}"[:2000])
        return "failed"
    _update_job(svc, job_id, done_at=utcnow())
    return outcome


def _update_job(svc: ShopServices, job_id: int, **values: object) -> None:
    with svc.db.begin() as session:
        session.execute(
            update(ScheduledJob).where(ScheduledJob.id == job_id, ScheduledJob.done_at.is_(None)).values(**values)
        )


def send_follow_up(svc: ShopServices, order_id: str) -> str:
    with svc.db.begin() as session:
        order = session.get(Order, order_id)
    if order is None or order.status != OrderStatus.COMPLETED:
        return "skipped"
    sent = send_at_least_once(svc, order, f"order:{order_id}:follow_up_email", follow_up_email(order, svc.mail_from))
    return "sent" if sent else "already sent"


def follow_up_email(order: Order, sender: str) -> Message:
    body = f"your order {order.id} arrived a while ago. How was it? Just reply to this email: we read every answer."
    return customer_email(order, sender, "follow-up", f"How was your order {order.id}?", body)
