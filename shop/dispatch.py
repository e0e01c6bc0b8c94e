"""The one interface through which shop hands work to the Celery workers.

shop never imports ``tasks``: it names tasks by their registered names and
publishes through a Celery client that knows only the broker. The names below
are the contract between the two packages.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Protocol

from celery import Celery

from shop.integrations import redis_transport
from shop.states import Step

log = logging.getLogger(__name__)

RUN_TASK = "orders.run"
PAYMENT_FAILED_EMAIL_TASK = "notifications.payment_failed_email"
REFUND_TASK = "payments.refund"


def step_task_name(step: Step | str) -> str:
    """A step's slow-path task: its retries, or a step too slow to run inline."""
    return f"steps.{step}"


@dataclass(frozen=True)
class TaskMessage:
    task_name: str
    queue: str
    task_id: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    # Seconds to hold it (a retry's backoff); kept below the visibility timeout.
    countdown: float | None = None


def run_task_message(order_id: str, queue: str, task_id: str) -> TaskMessage:
    """The message that runs (or resumes) an order's durable run."""
    return TaskMessage(RUN_TASK, queue, task_id, {"order_id": order_id})


class Publisher(Protocol):
    def publish(self, message: TaskMessage) -> None: ...


class CeleryPublisher:
    """Publishes by task name; the web process needs no task code to do it."""

    def __init__(self, celery: Celery, *, retry: bool) -> None:
        self.celery = celery
        # The web publishes once and leaves the rest to the outbox relay, so a
        # broker outage costs a checkout one refused connection, not seconds.
        self.retry = retry

    @classmethod
    def for_broker(cls, broker_url: str, *, retry: bool = False) -> CeleryPublisher:
        redis_transport.install()
        client = Celery("shop-publisher", broker=broker_url, set_as_current=False)
        client.conf.update(
            broker_connection_timeout=2,
            broker_connection_retry_on_startup=False,
            broker_transport_options={"socket_connect_timeout": 2, "socket_timeout": 5},
            task_send_sent_event=False,
        )
        return cls(client, retry=retry)

    def publish(self, message: TaskMessage) -> None:
        self.celery.send_task(
            message.task_name,
            kwargs=message.kwargs,
            queue=message.queue,
            task_id=message.task_id,
            countdown=message.countdown,
            retry=self.retry,
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2},
        )


def publish_all(publisher: Publisher, messages: list[TaskMessage]) -> list[TaskMessage]:
    """Publish after the commit; return what was published. Failures are left to
    the outbox relay and the sweep."""
    published = []
    for message in messages:
        try:
            publisher.publish(message)
        except Exception as exc:  # broker down: the database still holds the work
            log.warning("publish failed, left for the relay: %s (%s)", message.task_name, exc)
            break
        published.append(message)
    return published
