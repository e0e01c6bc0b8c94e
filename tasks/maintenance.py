"""Maintenance inside the workers: the outbox relay, the sweep, the hand-over of due jobs, the alerts.

Every worker runs this loop in a thread of its main process, but only the one
holding the maintenance lease in Redis does the work; the others wait to take
the lease over, which they do within ``MAINTENANCE_LEASE`` seconds of its
holder's death. So a deployment of workers alone, with no beat, recovers
everything. The work itself is idempotent (conditional UPDATEs, keyed
messages): two holders at once, after a network split, only repeat a look.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from celery import bootsteps
from redis.lock import Lock

from shop.extensions import services
from shop.pipeline.recovery import sweep
from shop.services.alerts import AlertSettings, check_alerts
from shop.services.dashboard import record_queue_depth
from shop.services.outbox import relay_outbox
from shop.services.scheduling import hand_over_due_jobs
from tasks.app import app, flask_app

log = logging.getLogger(__name__)

RELAY_INTERVAL = float(os.environ.get("RELAY_INTERVAL", "2"))
SWEEP_INTERVAL = float(os.environ.get("SWEEP_INTERVAL", "5"))
SCHEDULER_INTERVAL = float(os.environ.get("SCHEDULER_INTERVAL", "10"))
MAINTENANCE_LEASE = float(os.environ.get("MAINTENANCE_LEASE_SECONDS", "5"))
ALERT_INTERVAL = float(os.environ.get("ALERT_INTERVAL", "30"))
# The dashboard's queue-depth chart: a point every 30 s is 48 per 15-minute bucket of a day.
QUEUE_SAMPLE_INTERVAL = 30.0
LEADER_KEY = "shop:maintenance:leader"
# The loop wakes often enough to renew the lease well before it runs out.
TICK = min(RELAY_INTERVAL, SWEEP_INTERVAL, SCHEDULER_INTERVAL, ALERT_INTERVAL, MAINTENANCE_LEASE / 3)


def _relay() -> int:
    return relay_outbox(services().db, services().publisher)


def _sweep() -> int:
    return sweep(services(), app.conf.broker_url)


def _hand_over() -> int:
    return hand_over_due_jobs(services())


_alerting: list[threading.Thread] = []


def _check_alerts() -> int:
    """Look for incidents in a thread of its own, one look at a time: a notice waits on a mail
    server or a webhook for up to 10 s, longer than the lease this loop must keep renewing."""
    if _alerting and _alerting[0].is_alive():
        return 0
    _alerting[:] = [threading.Thread(target=_alert_look, name="alerts", daemon=True)]
    _alerting[0].start()
    return 1


def _alert_look() -> None:
    try:
        with flask_app.app_context():
            check_alerts(services(), app.conf.broker_url, AlertSettings.from_config(flask_app.config))
    except Exception:  # the database or Redis is away: the next look tries again
        log.warning("maintenance alerts failed", exc_info=True)


def _sample_queues() -> int:
    return record_queue_depth(services(), app.conf.broker_url)


JOBS: list[tuple[str, float, Callable[[], int]]] = [
    ("relay", RELAY_INTERVAL, _relay),
    ("sweep", SWEEP_INTERVAL, _sweep),
    ("due jobs", SCHEDULER_INTERVAL, _hand_over),
    ("alerts", ALERT_INTERVAL, _check_alerts),
    ("queue samples", QUEUE_SAMPLE_INTERVAL, _sample_queues),
]


class Leadership:
    """The maintenance lease: a redis-py ``Lock`` held and renewed by one worker."""

    def __init__(self, client: redis.Redis, hostname: str) -> None:
        self.lock = Lock(client, LEADER_KEY, timeout=MAINTENANCE_LEASE, thread_local=False)
        self.hostname = hostname
        self.held = False

    def hold(self) -> bool:
        try:
            if self.held:
                self.lock.reacquire()
            else:
                self.held = bool(self.lock.acquire(blocking=False, token=self.hostname))
                if self.held:
                    log.info("worker %s took the maintenance lease", self.hostname)
        except redis.exceptions.LockError:
            log.warning("worker %s lost the maintenance lease", self.hostname)
            self.held = False
        except redis.RedisError as exc:
            log.warning("maintenance lease unavailable (Redis): %s", exc)
            self.held = False
        return self.held

    def give_up(self) -> None:
        if self.held:
            try:
                self.lock.release()
            except redis.RedisError:
                pass  # it expires by itself
            self.held = False


class Maintenance(bootsteps.StartStopStep):
    """Worker bootstep: the maintenance loop, in a daemon thread of the main process."""

    def __init__(self, worker: Any, **kwargs: Any) -> None:
        self.stopped = threading.Event()
        self.leadership: Leadership | None = None

    def start(self, worker: Any) -> None:
        self.leadership = Leadership(flask_app.extensions["shop"].redis, worker.hostname)
        threading.Thread(target=self._loop, name="maintenance", daemon=True).start()

    def stop(self, worker: Any) -> None:
        self.stopped.set()
        if self.leadership is not None:
            self.leadership.give_up()

    def _loop(self) -> None:
        assert self.leadership is not None
        last_run = {name: 0.0 for name, _, _ in JOBS}
        while not self.stopped.wait(TICK):
            if not self.leadership.hold():
                continue
            for name, interval, job in JOBS:
                if time.monotonic() - last_run[name] < interval:
                    continue
                last_run[name] = time.monotonic()
                try:
                    with flask_app.app_context():
                        job()
                except Exception:  # the database or Redis is away: try again next time
                    log.warning("maintenance %s failed", name, exc_info=True)


app.steps["worker"].add(Maintenance)
