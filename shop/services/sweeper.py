"""Nothing stuck: find steps whose owner vanished or whose message was lost, and redispatch.

Runs from beat every few seconds. Redispatching a step that is in fact still
queued is harmless: the claim's conditional UPDATE lets one copy through.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.orm import Session

from shop.dispatch import TaskMessage, publish_all, step_task_name
from shop.extensions import ShopServices
from shop.models import Order, StepRun, new_uuid, utcnow
from shop.services import ledger
from shop.states import Step, StepStatus
from shop.step_policy import lease_seconds, queue_for

log = logging.getLogger(__name__)


def sweep(svc: ShopServices, *, stale_dispatch_seconds: float = 60.0, batch: int = 500) -> int:
    """Redispatch (a) running or retrying steps past their lease and (b) dispatched
    steps not started after ``stale_dispatch_seconds`` (message lost, e.g. Redis
    restarted without persistence). Returns how many were redispatched."""
    now = utcnow()
    stale = now - timedelta(seconds=stale_dispatch_seconds)
    with svc.db.begin() as session:
        rows = session.execute(
            select(StepRun.order_id, StepRun.step, Order.priority)
            .join(Order, Order.id == StepRun.order_id)
            .where(
                Order.status.in_(ledger.ACTIVE_ORDER_STATUSES),
                or_(
                    and_(
                        StepRun.status.in_((StepStatus.RUNNING, StepStatus.RETRYING)),
                        StepRun.lease_expires_at < now,
                    ),
                    and_(StepRun.status == StepStatus.PENDING, StepRun.dispatched_at < stale),
                ),
            )
            .limit(batch)
        ).all()
        messages: list[TaskMessage] = []
        for order_id, step, priority in rows:
            messages += _redispatch(session, order_id, Step(step), priority, now)
    published = publish_all(svc.publisher, messages)
    if published:
        log.warning("sweeper redispatched %d stuck steps", len(published))
    return len(published)


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
