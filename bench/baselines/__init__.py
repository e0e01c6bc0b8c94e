"""The designs a user would otherwise pick, as small Celery apps of their own.

No database: the same simulated latencies as the shop's steps, and a record of
when each order finished (a Redis list) so the harness can measure them as it
measures the shop. Both get the shop's delivery settings (late acks, prefetch
1, no result storage), so the comparison is about the design, not the tuning.

Baseline (c), ``seed_app``, is the exception to "no database": the worked example's
Flask app as written (web, PostgreSQL, one task per order), on the same settings; it
records completion in its own ``orders`` table (``seed_system.SeedApp`` drives it).
"""

from __future__ import annotations

import os
import time

import redis
from celery import Celery

SCALE = float(os.environ.get("SIMULATED_LATENCY_SCALE", "0.01"))
# The worked example's latencies in seconds (load order is paid once, up front).
LATENCY = {
    "load": 0.2,
    "inventory": 0.5,
    "payment": 1.5,
    "email": 0.8,
    "invoice": 1.2,
    "warehouse": 0.3,
}
DONE_KEY = "bench:done"
_client: redis.Redis | None = None


def make_app(name: str, queue: str) -> Celery:
    app = Celery(name, broker=os.environ["BENCH_BROKER_URL"])
    app.conf.update(
        task_default_queue=queue,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
    )
    return app


def simulate(step: str) -> None:
    time.sleep(LATENCY[step] * SCALE)


def redis_client() -> redis.Redis:
    global _client
    if _client is None:
        _client = redis.Redis.from_url(os.environ["BENCH_BROKER_URL"])
    return _client


def record_done(order_id: str, created: float) -> None:
    redis_client().rpush(DONE_KEY, f"{order_id} {created} {time.time()}")
