"""Prove that each worker still consumes, and make it exit when it does not.

Celery workers on Redis are known to stop consuming silently after some broker
reconnects: the process lives, the queues grow. A live process proves nothing,
so a thread in each worker's main process sends a canary task to the worker's
own direct queue every CONSUMPTION_CHECK_INTERVAL seconds; the canary, when a
pool process runs it, writes its send time to Redis. If the newest canary
consumed is older than three intervals while sending works, the worker is not
consuming: it shuts down so that its supervisor (systemd, compose, Kubernetes)
starts a fresh one.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
import time
from typing import Any

import redis
from celery import bootsteps
from celery.utils.nodenames import worker_direct

from tasks.app import app

log = logging.getLogger(__name__)

CANARY_TASK = "maintenance.canary"
INTERVAL = float(os.environ.get("CONSUMPTION_CHECK_INTERVAL", "10"))
MISSED_INTERVALS = 3
EXIT_NOT_CONSUMING = 75  # EX_TEMPFAIL: try again (a fresh process will)


def canary_key(hostname: str) -> str:
    return f"shop:canary:{hostname}"


def _redis() -> redis.Redis:
    return redis.Redis.from_url(app.conf.broker_url, socket_connect_timeout=2, socket_timeout=2)


class HideCanaryLines(logging.Filter):
    """Celery logs every task received and succeeded at INFO: for the canary
    that is 12 lines a minute per worker about nothing. Its failures still show."""

    def filter(self, record: logging.LogRecord) -> bool:
        data = getattr(record, "data", None)
        return not (isinstance(data, dict) and data.get("name") == CANARY_TASK and record.levelno <= logging.INFO)


for _logger in ("celery.worker.strategy", "celery.app.trace"):
    logging.getLogger(_logger).addFilter(HideCanaryLines())


# send_events=False: the canary is the workers' own business; in Flower's task
# list it would bury the orders (six a minute per worker).
@app.task(name=CANARY_TASK, ignore_result=True, acks_late=False, send_events=False)
def canary(hostname: str, sent_at: float) -> None:
    """Record that this worker consumed a message sent at ``sent_at``."""
    _redis().set(canary_key(hostname), sent_at, ex=int(INTERVAL * 10) + 60)


def is_stuck(last_consumed: float | None, started_at: float, now: float) -> bool:
    """No canary consumed for three intervals. A canary recorded before this worker
    started (a predecessor under the same hostname, e.g. ``make run`` restarted
    within the key's lifetime) says nothing about this one: the clock starts at
    the later of the two."""
    since = started_at if last_consumed is None else max(last_consumed, started_at)
    return now - since > INTERVAL * MISSED_INTERVALS


class ConsumptionWatchdog(bootsteps.StartStopStep):
    """Worker bootstep: runs the canary loop in a daemon thread."""

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        self.stopped = threading.Event()
        self.hostname = ""

    def start(self, worker: Any) -> None:
        self.hostname = worker.hostname
        self.started_at = time.time()
        threading.Thread(target=self._loop, name="consumption-watchdog", daemon=True).start()

    def stop(self, worker: Any) -> None:
        self.stopped.set()

    def _loop(self) -> None:
        while not self.stopped.wait(INTERVAL):
            if not self._send_canary():
                continue  # the broker is down: kombu reconnects; judge once it is back
            if self._is_stuck():
                self._give_up()
                return

    def _send_canary(self) -> bool:
        try:
            app.send_task(
                CANARY_TASK,
                args=[self.hostname, time.time()],
                queue=worker_direct(self.hostname),
                expires=INTERVAL * MISSED_INTERVALS,
                retry=False,
            )
            return True
        except Exception as exc:
            log.warning("canary not sent (broker unreachable?): %s", exc)
            return False

    def _is_stuck(self) -> bool:
        try:
            raw: bytes | None = _redis().get(canary_key(self.hostname))  # type: ignore[assignment]
        except redis.RedisError:
            return False
        return is_stuck(float(raw) if raw else None, self.started_at, time.time())

    def _give_up(self) -> None:
        log.critical(
            "worker %s has not consumed its canary for %.0fs: shutting down for a restart",
            self.hostname,
            INTERVAL * MISSED_INTERVALS,
        )
        # Exit non-zero after the warm shutdown, so "restart on failure" applies.
        atexit.register(os._exit, EXIT_NOT_CONSUMING)
        os.kill(os.getpid(), signal.SIGTERM)
        # Should the warm shutdown hang on a dead connection, do not linger.
        threading.Timer(60, os._exit, args=(EXIT_NOT_CONSUMING,)).start()


app.steps["worker"].add(ConsumptionWatchdog)
