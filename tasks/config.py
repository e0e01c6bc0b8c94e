"""Celery settings derived from the shop's configuration.

Celery on Redis has sharp edges; each setting below names the one it avoids.
"""

from __future__ import annotations

import os
from typing import Any

from kombu import Queue

from shop.errors import TransientError
from shop.integrations import redis_transport
from shop.states import Step
from shop.step_policy import QUEUES, STEP_POLICY, time_limits

# Redis redelivers an unacknowledged message after this many seconds. It must
# outlast the longest hard limit plus the longest retry countdown (Celery holds
# ETA messages unacknowledged in the worker: a longer ETA would be redelivered
# again and again). Kept short so a message held by a dead worker comes back fast.
VISIBILITY_TIMEOUT = int(os.environ.get("BROKER_VISIBILITY_TIMEOUT", "60"))
_LONGEST_HOLD = max(time_limits(s)[1] + STEP_POLICY[s].backoff_cap for s in Step)
if VISIBILITY_TIMEOUT <= _LONGEST_HOLD:
    raise RuntimeError(f"BROKER_VISIBILITY_TIMEOUT={VISIBILITY_TIMEOUT} must exceed {_LONGEST_HOLD:.0f}s")

# Tasks outside the step ledger (refunds, customer emails) retry with Celery's
# own backoff: they are keyed, so a retry or a redelivery repeats nothing.
AUXILIARY_TASK_OPTIONS: dict[str, Any] = {
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (TransientError,),
    "retry_backoff": 2,
    "retry_backoff_max": 30,
    "retry_jitter": True,
}


def celery_config(flask_config: dict[str, Any]) -> dict[str, Any]:
    # kombu's Redis transport with one client per channel, not one per command.
    redis_transport.install()
    transport = {
        "visibility_timeout": VISIBILITY_TIMEOUT,
        "socket_connect_timeout": 5,
        "retry_on_timeout": True,
        "health_check_interval": 10,
    }
    return {
        "broker_url": flask_config["CELERY_BROKER_URL"],
        "result_backend": flask_config["CELERY_RESULT_BACKEND"],
        "broker_transport_options": transport,
        "result_backend_transport_options": {"visibility_timeout": VISIBILITY_TIMEOUT},
        # The ledger is the source of truth; results would cost ~14% of enqueue rate.
        "task_ignore_result": True,
        # At-least-once: ack after the task, requeue when the process dies mid-task,
        # and hold one message per process so a crash strands at most one.
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        # A lost broker connection cannot ack late tasks; cancel them so they are
        # redelivered instead of finishing into the void.
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "broker_connection_retry_on_startup": True,
        "task_queues": [Queue(name, routing_key=name) for name in QUEUES],
        # Each worker also consumes its own direct queue: the watchdog's canary
        # travels through it to prove this very worker still consumes.
        "worker_direct": True,
        "task_default_queue": "orders",
        "task_serializer": "json",
        "accept_content": ["json"],
        "timezone": "UTC",
        # Task events on: Flower shows every order's run and slow-path step from
        # the first order on. At one task per order they cost three broker
        # writes per order, not per step. The publisher's "task-sent" event
        # stays off: it would double the broker writes of every checkout.
        "worker_send_task_events": True,
        "task_send_sent_event": False,
        "task_track_started": True,
        "worker_hijack_root_logger": False,
        # No beat schedule: the relay, the sweep and the hand-over of due jobs
        # run inside the workers (tasks.maintenance). ``celery -A tasks beat``
        # still starts, with nothing to send.
        "beat_schedule": {},
    }
