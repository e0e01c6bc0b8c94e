"""GET /metrics in Prometheus text format, computed at scrape time from shared stores.

The endpoint needs ``Authorization: Bearer $METRICS_TOKEN`` (closed with 403
when no token is configured) and reuses its rendered page for
METRICS_CACHE_SECONDS, so scrapes cannot be turned into database load.

Under gunicorn a scrape lands on any one of several processes, so no metric
lives in process memory: a custom collector reads the database (orders, steps,
dead letters, outbox, scheduled jobs) and Redis (queue depths, worker-side
counters, heartbeats) when the cached page expires, and any process answers the
same (each at most METRICS_CACHE_SECONDS old).

Worker-side observations — step outcomes, retries, durations — are counters in
Redis, added to by the order's run (and each slow-path task) when it ends: one
EVALSHA for all of its steps. Derived from the ledger instead, they would go backwards
when a dead letter is replayed (attempts reset) and cost a scan of step_runs per
scrape. Heartbeats: each worker's main process writes the time into a sorted
set on Celery's ``heartbeat_sent`` (every ~2 s), independent of beat and of
what the worker is busy with.
"""

from __future__ import annotations

import hmac
import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import cast

import redis
from flask import Flask, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from shop.database import Database
from shop.errors import RequestRejected
from shop.extensions import services
from shop.integrations import broker
from shop.models import Order, ScheduledJob, StepRun, utcnow
from shop.services.admin import dead_letter_count
from shop.services.outbox import outbox_backlog
from shop.states import OrderStatus, Step
from shop.step_policy import QUEUES

log = logging.getLogger(__name__)

DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, math.inf)
OUTCOMES_KEY = "shop:metrics:step_outcomes"  # field "<step>:<outcome>" -> count
DURATIONS_KEY = "shop:metrics:step_seconds"  # field "<step>:<bucket index>" -> count, "<step>:sum"
HEARTBEATS_KEY = "shop:workers:heartbeat"  # member worker hostname, score unix time
HEARTBEAT_RETENTION = 24 * 3600  # a worker silent this long is gone: forget it


# One round trip and one command for a whole run's steps: as a pipeline of
# three commands per step, redis-py spent 0.5 ms of CPU per order building it.
_RECORD_STEP_RUNS = """
for i = 1, #ARGV, 4 do
  redis.call('HINCRBY', KEYS[1], ARGV[i] .. ':' .. ARGV[i + 1], 1)
  redis.call('HINCRBY', KEYS[2], ARGV[i] .. ':' .. ARGV[i + 2], 1)
  redis.call('HINCRBYFLOAT', KEYS[2], ARGV[i] .. ':sum', ARGV[i + 3])
end
"""


def record_step_runs(client: redis.Redis, runs: list[tuple[str, str, float]]) -> None:
    """Count step attempts, as (step, outcome, seconds); outcome: succeeded, failed,
    dead_letter, retry. One round trip for all of a run's steps."""
    if not runs:
        return
    args: list[str | int | float] = []
    for step, outcome, seconds in runs:
        bucket = next(i for i, upper in enumerate(DURATION_BUCKETS) if seconds <= upper)
        args += [step, outcome, bucket, repr(float(seconds))]
    try:
        # EVALSHA, loading the script on first use (and again after a Redis restart).
        client.register_script(_RECORD_STEP_RUNS)(keys=[OUTCOMES_KEY, DURATIONS_KEY], args=args)
    except redis.RedisError as exc:  # metrics never fail a step
        log.debug("step metrics not recorded: %s", exc)


def record_worker_heartbeat(client: redis.Redis, worker: str) -> None:
    try:
        client.zadd(HEARTBEATS_KEY, {worker: time.time()})
    except redis.RedisError as exc:
        log.debug("heartbeat not recorded: %s", exc)


class ShopCollector(Collector):
    """Reads the ledger and Redis on every scrape; either may be down without failing the other."""

    def __init__(self, db: Database, client: redis.Redis, broker_url: str) -> None:
        self.db = db
        self.client = client
        self.broker_url = broker_url

    def collect(self) -> Iterator[Metric]:
        yield from self._guarded("database", self._ledger_metrics)
        yield from self._guarded("redis", self._redis_metrics)

    def _guarded(self, name: str, read: Callable[[], Iterator[Metric]]) -> Iterator[Metric]:
        up = GaugeMetricFamily(f"shop_{name}_up", f"1 if the {name} answered this scrape")
        try:
            metrics, answered = list(read()), 1
        except Exception as exc:  # a scrape reports an outage, it does not fail
            log.warning("metrics: %s unreachable: %s", name, exc)
            metrics, answered = [], 0
        up.add_metric([], answered)
        yield up
        yield from metrics

    def _ledger_metrics(self) -> Iterator[Metric]:
        now = utcnow()
        with self.db.begin() as session:
            orders = dict(session.execute(select(Order.status, func.count()).group_by(Order.status)).all())
            steps = session.execute(
                select(StepRun.step, StepRun.status, func.count()).group_by(StepRun.step, StepRun.status)
            ).all()
            dead = dead_letter_count(session)
            backlog, oldest = outbox_backlog(session)
            jobs_due = session.scalar(
                select(func.count()).where(ScheduledJob.done_at.is_(None), ScheduledJob.due_at <= now)
            )
        yield _gauge(
            "shop_orders",
            "Orders by status",
            ["status"],
            {(s.value,): orders.get(s, 0) for s in OrderStatus},
        )
        yield _gauge(
            "shop_steps",
            "Step ledger rows by step and status",
            ["step", "status"],
            {(str(step), str(status)): n for step, status, n in steps},
        )
        yield _gauge("shop_dead_letters", "Steps in the dead-letter list", [], {(): dead or 0})
        yield _gauge("shop_outbox_backlog", "Outbox messages not yet published", [], {(): backlog})
        age = (now - _aware(oldest)).total_seconds() if oldest else 0.0
        yield _gauge(
            "shop_outbox_oldest_unpublished_age_seconds",
            "Age of the oldest unpublished outbox message (0: none)",
            [],
            {(): age},
        )
        yield _gauge(
            "shop_scheduled_jobs_due",
            "Scheduled jobs due and not done yet",
            [],
            {(): jobs_due or 0},
        )

    def _redis_metrics(self) -> Iterator[Metric]:
        depths = broker.queue_depths(self.broker_url)
        depths.pop("in_flight")
        in_flight = broker.in_flight_by_queue(self.broker_url)
        yield _gauge(
            "shop_queue_depth",
            "Messages waiting in each queue",
            ["queue"],
            {(q,): depths.get(q, 0) for q in QUEUES},
        )
        yield _gauge(
            "shop_queue_in_flight",
            "Messages delivered and not yet acknowledged, per queue",
            ["queue"],
            {(q,): in_flight.get(q, 0) for q in QUEUES},
        )
        yield from self._step_counters()
        yield from self._heartbeats()

    def _step_counters(self) -> Iterator[Metric]:
        outcomes = {k.decode(): int(v) for k, v in self._hash(OUTCOMES_KEY).items()}
        durations = {k.decode(): float(v) for k, v in self._hash(DURATIONS_KEY).items()}
        runs = CounterMetricFamily("shop_step_outcomes", "Step task runs by outcome", labels=["step", "outcome"])
        retries = CounterMetricFamily("shop_step_retries", "Step runs that scheduled a retry", labels=["step"])
        histogram = HistogramMetricFamily("shop_step_duration_seconds", "Step task run time", labels=["step"])
        for field, count in sorted(outcomes.items()):
            step, _, outcome = field.partition(":")
            runs.add_metric([step, outcome], count)
        for step in Step:
            retries.add_metric([step.value], outcomes.get(f"{step}:retry", 0))
            cumulative, buckets = 0.0, []
            for i, upper in enumerate(DURATION_BUCKETS):
                cumulative += durations.get(f"{step}:{i}", 0)
                buckets.append(("+Inf" if math.isinf(upper) else str(upper), cumulative))
            histogram.add_metric([step.value], buckets, durations.get(f"{step}:sum", 0.0))
        yield from (runs, retries, histogram)

    def _hash(self, key: str) -> dict[bytes, bytes]:
        return cast(dict[bytes, bytes], self.client.hgetall(key))

    def _heartbeats(self) -> Iterator[Metric]:
        now = time.time()
        self.client.zremrangebyscore(HEARTBEATS_KEY, "-inf", now - HEARTBEAT_RETENTION)
        raw_beats = self.client.zrange(HEARTBEATS_KEY, 0, -1, withscores=True)
        beats = {w.decode(): now - at for w, at in cast(list[tuple[bytes, float]], raw_beats)}
        yield _gauge(
            "shop_worker_heartbeat_age_seconds",
            "Seconds since each worker's last heartbeat",
            ["worker"],
            {(w,): max(age, 0.0) for w, age in beats.items()},
        )
        yield _gauge(
            "shop_last_worker_heartbeat_age_seconds",
            "Seconds since any worker's last heartbeat (+Inf: none seen)",
            [],
            {(): max(min(beats.values()), 0.0) if beats else math.inf},
        )


def _gauge(name: str, doc: str, labels: list[str], values: dict[tuple[str, ...], float]) -> GaugeMetricFamily:
    gauge = GaugeMetricFamily(name, doc, labels=labels)
    for label_values, value in values.items():
        gauge.add_metric(list(label_values), value)
    return gauge


def _aware(moment: datetime) -> datetime:
    # An aggregate may come back naive on SQLite, which keeps no time zone.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class ScrapeCache:
    """The last rendered page of this process, reused for ``ttl`` seconds.

    A scrape costs five aggregate queries and a dozen Redis round trips; without
    this, a flood of scrapes (a misconfigured Prometheus, a script) would put
    that load on the database once per request. With it, each process renders
    at most once per ``ttl``: concurrent scrapes wait on the lock for the one
    render instead of each running their own."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._page = b""
        self._expires_at = 0.0

    def page(self, ttl: float, render: Callable[[], bytes]) -> bytes:
        with self._lock:
            now = time.monotonic()
            if now >= self._expires_at:
                self._page = render()
                self._expires_at = now + ttl
            return self._page


def require_metrics_token() -> None:
    """Metrics name queues, workers and volumes: closed without METRICS_TOKEN, like the admin."""
    expected = current_app.config.get("METRICS_TOKEN") or ""
    if not expected:
        raise RequestRejected(403, "metrics_disabled", "/metrics is closed: set METRICS_TOKEN")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected.encode()):
        raise RequestRejected(401, "unauthorized", "send Authorization: Bearer <METRICS_TOKEN>")


def register_metrics(app: Flask) -> None:
    cache = ScrapeCache()

    def render() -> bytes:
        svc = services()
        registry = CollectorRegistry(auto_describe=False)
        registry.register(ShopCollector(svc.db, svc.redis, current_app.config["CELERY_BROKER_URL"]))
        return bytes(generate_latest(registry))

    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus metrics, read from the ledger and Redis, at most once per METRICS_CACHE_SECONDS."""
        require_metrics_token()
        page = cache.page(float(current_app.config.get("METRICS_CACHE_SECONDS", 5.0)), render)
        return Response(page, mimetype=CONTENT_TYPE_LATEST)
