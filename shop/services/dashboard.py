"""The operators' dashboard: time series of the last hour or day, from the ledger and Redis.

A handful of aggregate queries, bucketed in SQL (by minute over an hour, by
15 minutes over a day) so a busy day costs a few hundred result rows, not one
per order: orders by outcome, retries, dead letters, revenue today. Step
latency percentiles need the durations themselves (SQLite has no percentile
function), so that one reads a bounded sample of the newest steps. Queue depth
has no history in the ledger: the workers' maintenance loop samples it into a
Redis sorted set (``record_queue_depth``) that keeps one day.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import redis
from sqlalchemy import BigInteger, ColumnElement, Integer, cast, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from shop.extensions import ShopServices
from shop.integrations import broker
from shop.models import Order, StepRun, utcnow
from shop.services.admin import dead_letter_count
from shop.services.queue_stats import queue_stats
from shop.states import STEPS, OrderStatus, Step, StepStatus

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Window:
    seconds: int
    bucket_seconds: int


WINDOWS = {"hour": Window(3600, 60), "day": Window(86400, 900)}
# Outcomes drawn on the orders chart: the final statuses, and everything not final yet.
OUTCOMES = ("completed", "failed", "needs_attention", "cancelled", "in_progress")
IN_PROGRESS = frozenset({OrderStatus.RECEIVED, OrderStatus.PROCESSING})
# Newest steps read for the latency percentiles: a day of a busy shop is
# hundreds of thousands of steps; this many give stable p95s in ~50 ms.
LATENCY_SAMPLE = 20_000
QUEUE_SAMPLES_KEY = "shop:dashboard:queue_depth"  # member JSON {"t", "waiting", "in_flight"}, score unix time
QUEUE_SAMPLES_KEPT = 86400


def dashboard(svc: ShopServices, broker_url: str, window_name: str) -> dict[str, Any]:
    """Everything the dashboard draws for ``window_name`` (``hour`` or ``day``), JSON-ready."""
    window = WINDOWS[window_name]
    now = utcnow()
    first = int(now.timestamp()) // window.bucket_seconds - window.seconds // window.bucket_seconds + 1
    since = datetime.fromtimestamp(first * window.bucket_seconds, UTC)
    size = window.seconds // window.bucket_seconds
    with svc.db.begin() as session:
        dialect = session.get_bind().dialect.name
        orders = _orders_by_outcome(session, dialect, window, since, first, size)
        retried = func.sum(StepRun.attempts - 1)
        retries = _series(session, dialect, window, StepRun.started_at, retried, since, first, size)
        dead = _series(session, dialect, window, StepRun.dead_lettered_at, func.count(), since, first, size)
        durations = _step_durations(session, since)
        revenue = _revenue_today(session, now)
        dead_now = dead_letter_count(session)
    return {
        "window": window_name,
        "generated_at": now.isoformat(),
        "bucket_seconds": window.bucket_seconds,
        "buckets": [(since + timedelta(seconds=i * window.bucket_seconds)).isoformat() for i in range(size)],
        "orders": orders,
        "orders_total": sum(sum(values) for values in orders.values()),
        "retries": retries,
        "dead_letters": dead,
        "dead_letters_now": dead_now,
        "latency": [_latency_row(step, durations.get(step, [])) for step in STEPS],
        "queue_depth": _queue_samples(svc.redis, first, window, size),
        "queues": queue_stats(svc, broker_url),
        "revenue_today": revenue,
    }


def record_queue_depth(svc: ShopServices, broker_url: str) -> int:
    """Sample the messages waiting (and in flight) into Redis for the queue-depth chart; keeps a day."""
    depths = broker.queue_depths(broker_url)
    in_flight = depths.pop("in_flight")
    waiting = sum(depths.values())
    now = time.time()
    sample = json.dumps({"t": round(now, 3), "waiting": waiting, "in_flight": in_flight})
    pipe = svc.redis.pipeline(transaction=False)
    pipe.zadd(QUEUE_SAMPLES_KEY, {sample: now})
    pipe.zremrangebyscore(QUEUE_SAMPLES_KEY, "-inf", now - QUEUE_SAMPLES_KEPT)
    pipe.execute()
    return waiting


def _bucket(column: ColumnElement[Any] | InstrumentedAttribute[Any], width: int, dialect: str) -> ColumnElement[Any]:
    """The unix-time bucket number of a timestamp column, in SQL both databases run."""
    if dialect == "postgresql":
        seconds: ColumnElement[Any] = cast(func.floor(func.extract("epoch", column)), BigInteger)
    else:  # SQLite keeps UTC timestamps as text, which strftime('%s') reads as unix seconds
        seconds = cast(func.strftime("%s", column), Integer)
    return seconds / width  # integer division on both


def _orders_by_outcome(
    session: Session, dialect: str, window: Window, since: datetime, first: int, size: int
) -> dict[str, list[int]]:
    bucket = _bucket(Order.created_at, window.bucket_seconds, dialect).label("bucket")
    rows = session.execute(
        select(bucket, Order.status, func.count()).where(Order.created_at >= since).group_by(bucket, Order.status)
    ).all()
    series = {outcome: [0] * size for outcome in OUTCOMES}
    for number, status, count in rows:
        outcome = "in_progress" if status in IN_PROGRESS else status
        if outcome in series and 0 <= int(number) - first < size:
            series[outcome][int(number) - first] += count
    return series


def _series(
    session: Session,
    dialect: str,
    window: Window,
    column: InstrumentedAttribute[Any],
    measure: ColumnElement[Any],
    since: datetime,
    first: int,
    size: int,
) -> list[int]:
    bucket = _bucket(column, window.bucket_seconds, dialect).label("bucket")
    values = [0] * size
    for number, value in session.execute(select(bucket, measure).where(column >= since).group_by(bucket)).all():
        if 0 <= int(number) - first < size:
            values[int(number) - first] += int(value or 0)
    return values


def _step_durations(session: Session, since: datetime) -> dict[str, list[float]]:
    rows = session.execute(
        select(StepRun.step, StepRun.started_at, StepRun.finished_at)
        .where(StepRun.finished_at >= since, StepRun.status == StepStatus.SUCCEEDED, StepRun.started_at.is_not(None))
        .order_by(StepRun.finished_at.desc())
        .limit(LATENCY_SAMPLE)
    ).all()
    durations: dict[str, list[float]] = defaultdict(list)
    for step, started, finished in rows:
        if finished is None or started is None:  # excluded by the query; for the type checker
            continue
        durations[step].append(max(0.0, (finished - started).total_seconds()))
    return durations


def _latency_row(step: str, durations: list[float]) -> dict[str, Any]:
    ordered = sorted(durations)
    return {"step": step, "count": len(ordered), "p50_ms": _percentile(ordered, 50), "p95_ms": _percentile(ordered, 95)}


def _percentile(ordered: list[float], percent: int) -> float | None:
    """Nearest-rank percentile, in milliseconds; None without data."""
    if not ordered:
        return None
    rank = max(1, math.ceil(percent / 100 * len(ordered)))
    return round(ordered[rank - 1] * 1000, 1)


def _revenue_today(session: Session, now: datetime) -> list[dict[str, Any]]:
    # A completed order is not touched again, so its updated_at is when it completed.
    # A refunded one (its payment step compensated) is no revenue.
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    refunded = (
        select(StepRun.id)
        .where(StepRun.order_id == Order.id, StepRun.step == Step.PAYMENT, StepRun.status == StepStatus.COMPENSATED)
        .exists()
    )
    rows = session.execute(
        select(Order.currency, func.sum(Order.total_cents), func.count())
        .where(Order.status == OrderStatus.COMPLETED, Order.updated_at >= midnight, ~refunded)
        .group_by(Order.currency)
        .order_by(Order.currency)
    ).all()
    return [{"currency": currency, "cents": int(cents or 0), "orders": count} for currency, cents, count in rows]


def _queue_samples(client: redis.Redis, first: int, window: Window, size: int) -> dict[str, Any]:
    """Most messages waiting per bucket (None: no sample, e.g. no worker ran the loop)."""
    waiting: list[int | None] = [None] * size
    in_flight: list[int | None] = [None] * size
    try:
        raw = client.zrangebyscore(QUEUE_SAMPLES_KEY, first * window.bucket_seconds, "+inf")
    except redis.RedisError as exc:
        log.warning("dashboard: queue samples unavailable: %s", exc)
        raw = []
    for member in raw:  # type: ignore[union-attr]
        sample = json.loads(member)
        index = int(sample["t"]) // window.bucket_seconds - first
        if 0 <= index < size:
            waiting[index] = max(waiting[index] or 0, sample["waiting"])
            in_flight[index] = max(in_flight[index] or 0, sample["in_flight"])
    return {"waiting": waiting, "in_flight": in_flight}
