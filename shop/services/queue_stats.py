"""Queue statistics: waiting and in flight from Redis; running, scheduled and dead from the ledger.

Per queue: ``waiting`` (in the Redis list), ``in_flight`` (delivered, not yet
acknowledged: running, or held by a worker for a retry countdown), ``running``,
``scheduled`` (retrying) and ``dead`` (dead-lettered) steps from the ledger.
"""

from __future__ import annotations

from typing import Any

import redis
from sqlalchemy import func, select

from shop.extensions import ShopServices
from shop.integrations import broker
from shop.models import StepRun
from shop.states import StepStatus
from shop.step_policy import QUEUES

# None: unknown (the broker did not answer).
EMPTY_ROW: dict[str, int | None] = {
    "waiting": None,
    "in_flight": None,
    "running": 0,
    "scheduled": 0,
    "dead": 0,
}


def queue_stats(svc: ShopServices, broker_url: str) -> dict[str, Any]:
    with svc.db.begin() as session:
        rows = session.execute(
            select(StepRun.queue, StepRun.status, func.count())
            .where(StepRun.status.in_((StepStatus.RUNNING, StepStatus.RETRYING, StepStatus.FAILED)))
            .where((StepRun.status != StepStatus.FAILED) | StepRun.dead_lettered_at.is_not(None))
            .group_by(StepRun.queue, StepRun.status)
        ).all()
    per_queue: dict[str, dict[str, int | None]] = {q: dict(EMPTY_ROW) for q in QUEUES}
    names = {StepStatus.RUNNING: "running", StepStatus.RETRYING: "scheduled", StepStatus.FAILED: "dead"}
    for queue, status, count in rows:
        per_queue.setdefault(queue, dict(EMPTY_ROW))
        per_queue[queue][names[StepStatus(status)]] = count
    in_flight = None
    try:
        depths = broker.queue_depths(broker_url)
        in_flight = depths.pop("in_flight")
        for queue, waiting in depths.items():
            per_queue[queue]["waiting"] = waiting
        delivered = broker.in_flight_by_queue(broker_url)
        for queue in QUEUES:
            per_queue[queue]["in_flight"] = delivered.get(queue, 0)
        broker_ok = True
    except redis.RedisError:
        broker_ok = False
    return {
        "broker_reachable": broker_ok,
        "in_flight": in_flight,
        "queues": per_queue,
        "totals": {key: sum((v[key] or 0) for v in per_queue.values()) for key in EMPTY_ROW},
    }
