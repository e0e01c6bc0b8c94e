"""Nothing stuck: find steps whose owner vanished or whose message was lost, and redispatch.

Runs from beat every few seconds. Redispatching a step that is in fact still
queued is harmless: the claim's conditional UPDATE lets one copy through.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import redis
from sqlalchemy import ColumnElement, and_, case, or_, select, update
from sqlalchemy.orm import Session

from shop.dispatch import TaskMessage, publish_all, step_task_name
from shop.extensions import ShopServices
from shop.integrations import broker
from shop.models import Order, StepRun, new_uuid, utcnow
from shop.states import ACTIVE_ORDER_STATUSES, Step, StepStatus
from shop.step_policy import QUEUES, lease_seconds, queue_for

log = logging.getLogger(__name__)


def sweep(svc: ShopServices, broker_url: str, *, stale_dispatch_seconds: float = 60.0, batch: int = 500) -> int:
    """Redispatch (a) running or retrying steps past their lease and (b) dispatched
    steps not started after ``stale_dispatch_seconds`` whose queue is empty (the
    message was lost, e.g. Redis restarted without persistence). Returns how
    many were redispatched."""
    now = utcnow()
    with svc.db.begin() as session:
        rows = session.execute(
            select(StepRun.order_id, StepRun.step, Order.priority)
            .join(Order, Order.id == StepRun.order_id)
            .where(Order.status.in_(ACTIVE_ORDER_STATUSES), or_(*_stuck(now, broker_url, stale_dispatch_seconds)))
            .limit(batch)
        ).all()
        messages: list[TaskMessage] = []
        for order_id, step, priority in rows:
            messages += _redispatch(session, order_id, Step(step), priority, now)
    published = publish_all(svc.publisher, messages)
    if published:
        log.warning("sweeper redispatched %d stuck steps", len(published))
    return len(published)


def _stuck(now: datetime, broker_url: str, stale_seconds: float) -> list[ColumnElement[bool]]:
    """Which steps count as stuck now.

    A pending step whose queue still holds messages is most likely waiting in
    it: resending it would flood a backlog with copies (each sweep adding more
    than the workers take). So a stale pending step is resent only when its
    queue is empty, or after ten times the threshold in a queue that never is.
    """
    stale, very_stale = now - timedelta(seconds=stale_seconds), now - timedelta(seconds=10 * stale_seconds)
    stuck: list[ColumnElement[bool]] = [
        and_(StepRun.status.in_((StepStatus.RUNNING, StepStatus.RETRYING)), StepRun.lease_expires_at < now),
        and_(StepRun.status == StepStatus.PENDING, StepRun.dispatched_at < very_stale),
    ]
    try:
        depths = broker.queue_depths(broker_url)
    except redis.RedisError:
        return stuck  # publishing would fail as well; the leases are still checked
    empty = [queue for queue in QUEUES if depths.get(queue) == 0]
    stuck.append(and_(StepRun.status == StepStatus.PENDING, StepRun.dispatched_at < stale, StepRun.queue.in_(empty)))
    return stuck


def _redispatch(session: Session, order_id: str, step: Step, priority: str, now: datetime) -> list[TaskMessage]:
    """Hand the step out again. A step whose lease expired becomes ``retrying``
    with a fresh lease, so the next sweep waits a whole lease before sending it
    once more (a backlog is not flooded with copies)."""
    task_id = new_uuid()
    lease = now + timedelta(seconds=lease_seconds(step))
    session.execute(
        update(StepRun)
        .where(StepRun.order_id == order_id, StepRun.step == step)
        .values(
            dispatched_at=now,
            task_id=task_id,
            status=case((StepRun.status == StepStatus.RUNNING, StepStatus.RETRYING), else_=StepRun.status),
            last_error=case(
                (StepRun.status == StepStatus.RUNNING, "lease expired: worker lost or hard time limit"),
                else_=StepRun.last_error,
            ),
            lease_expires_at=case((StepRun.status == StepStatus.PENDING, None), else_=lease),
        )
    )
    return [TaskMessage(step_task_name(step), queue_for(step, priority), task_id, {"order_id": order_id})]
