"""The order's durable run and the steps' slow-path tasks. Thin: each calls one service.

The run (``orders.run``) carries no Celery time limits of its own but a
backstop: each of its steps is bounded inside it (``shop.pipeline.budget``).
A slow-path task is one step, so the step's soft and hard limits from
``shop.step_policy.STEP_POLICY`` are its Celery limits.
"""

from __future__ import annotations

from typing import Any

from celery import Task
from sqlalchemy.exc import DBAPIError

from shop.dispatch import RUN_TASK, step_task_name
from shop.extensions import services
from shop.pipeline.run import run_order, run_slow_step
from shop.states import PHASES, Step
from shop.step_policy import LEASE_GRACE, STEP_POLICY, time_limits
from tasks.app import app

# Only if the in-run limits failed to act: every phase at its hard limit, plus grace.
RUN_BACKSTOP = sum(max(time_limits(step)[1] for step in phase) for phase in PHASES) + LEASE_GRACE


# The database away for a moment: try again with backoff rather than leave the
# order to the sweep (which would only find it once its lease ran out).
DATABASE_RETRIES: dict[str, Any] = {
    "autoretry_for": (DBAPIError,),
    "retry_backoff": 1,
    "retry_backoff_max": 30,
    "retry_jitter": True,
}


@app.task(
    name=RUN_TASK,
    bind=True,
    queue="orders",
    time_limit=RUN_BACKSTOP,
    acks_late=True,
    reject_on_worker_lost=True,
    max_retries=20,
    **DATABASE_RETRIES,
)
def run(self: Task, order_id: str) -> str:
    """Run or resume one order's pipeline."""
    return run_order(services(), order_id, self.request.id)


class StepWillRetry(Exception):
    """The error a slow-path step retries after (the ledger keeps it too)."""


def slow_step_task(step: Step) -> Task:
    soft, hard = time_limits(step)

    @app.task(
        name=step_task_name(step),
        bind=True,
        queue=STEP_POLICY[step].queue,
        soft_time_limit=soft,
        time_limit=hard + 1,  # the run's own watchdog kills at ``hard``; this is the backstop
        acks_late=True,
        reject_on_worker_lost=True,
        max_retries=None,  # the ledger counts attempts, across redeliveries too
        **DATABASE_RETRIES,
    )
    def run_step(self: Task, order_id: str) -> str:
        result = run_slow_step(services(), order_id, step, self.request.id)
        if result.outcome == "busy":  # another task of the same order holds its lease
            raise self.retry(countdown=1)
        if result.retry_in is not None:
            # With the step's error, Flower's retried task shows why, not "exception=None".
            raise self.retry(countdown=result.retry_in, exc=StepWillRetry(result.error or "retry"))
        return result.outcome

    return run_step


inventory = slow_step_task(Step.INVENTORY)
payment = slow_step_task(Step.PAYMENT)
email = slow_step_task(Step.EMAIL)
invoice = slow_step_task(Step.INVOICE)
warehouse = slow_step_task(Step.WAREHOUSE)
