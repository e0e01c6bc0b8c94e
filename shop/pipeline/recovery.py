"""Nothing stuck: the sweep that sends an order's run again when nobody is running it.

An active order whose ``lease_expires_at`` has passed is in one of two states:
- its lease is held (``lease_token`` set): the holder died or hung. The run is
  sent again at once (recovery = lease + one sweep);
- nobody holds it: the message sent for it (the first run, a continuation, a
  slow-path step) should have been picked up by then and was not, most likely
  lost with Redis. It is sent again when its queue is empty, or after ten times
  ``STALE_DISPATCH_SECONDS``: a queue with a backlog most likely still holds it,
  and copies would only flood the backlog.

Sending a run twice is harmless: the lease lets one through. Run by the
workers' maintenance loop (``tasks.maintenance``), no beat needed.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import redis
from sqlalchemy import ColumnElement, and_, or_, select

from shop.dispatch import TaskMessage, publish_all, run_task_message
from shop.extensions import ShopServices
from shop.integrations import broker
from shop.models import Order, new_uuid, utcnow
from shop.pipeline import ledger
from shop.states import ACTIVE_ORDER_STATUSES, STEPS
from shop.step_policy import QUEUES, lease_seconds, run_queue, stale_dispatch_seconds

log = logging.getLogger(__name__)


def sweep(svc: ShopServices, broker_url: str, *, batch: int = 500) -> int:
    """Send again the runs of orders nobody runs; return how many were sent."""
    now = utcnow()
    with svc.db.begin() as session:
        rows = session.execute(
            select(Order.id, Order.lease_token, Order.lease_expires_at, Order.priority)
            .where(Order.status.in_(ACTIVE_ORDER_STATUSES), Order.lease_expires_at < now, _resendable(broker_url))
            .order_by(Order.lease_expires_at)
            .limit(batch)
        ).all()
        # A whole lease for the copy to start before the next sweep looks again.
        wake = now + timedelta(seconds=lease_seconds(*STEPS))
        messages: list[TaskMessage] = [
            run_task_message(order_id, run_queue(priority), new_uuid())
            for order_id, token, expiry, priority in rows
            if expiry is not None
            and ledger.mark_redispatched(session, order_id, token, expiry, wake, run_queue(priority))
        ]
    published = publish_all(svc.publisher, messages)
    if published:
        log.warning("sweep sent %d orders' runs again (owner gone or message lost)", len(published))
    return len(published)


def _resendable(broker_url: str) -> ColumnElement[bool]:
    very_stale = utcnow() - timedelta(seconds=9 * stale_dispatch_seconds())
    unowned_long_ago = and_(Order.lease_token.is_(None), Order.lease_expires_at < very_stale)
    try:
        depths = broker.queue_depths(broker_url)
    except redis.RedisError:
        # Publishing would fail as well; the leases are still checked.
        return or_(Order.lease_token.is_not(None), unowned_long_ago)
    empty = [queue for queue in QUEUES if depths.get(queue) == 0]
    unowned_queue_empty = and_(Order.lease_token.is_(None), Order.dispatch_queue.in_(empty))
    return or_(Order.lease_token.is_not(None), unowned_queue_empty, unowned_long_ago)
