"""The five step tasks. Thin: each calls ``run_step`` and turns its verdict into a retry.

Limits, queues and retry budgets come from ``shop.step_policy.STEP_POLICY``.
"""

from __future__ import annotations

from celery import Task

from shop.dispatch import step_task_name
from shop.extensions import services
from shop.services.steps import run_step
from shop.states import Step
from shop.step_policy import STEP_POLICY, time_limits
from tasks.app import app


def step_task(step: Step) -> Task:
    soft, hard = time_limits(step)

    @app.task(
        name=step_task_name(step),
        bind=True,
        queue=STEP_POLICY[step].queue,
        soft_time_limit=soft,
        time_limit=hard,
        acks_late=True,
        reject_on_worker_lost=True,
        max_retries=None,  # the ledger counts attempts, across redeliveries too
    )
    def run(self: Task, order_id: str) -> str:
        outcome = run_step(services(), order_id, step, self.request.id)
        if outcome.retry_in is not None:
            raise self.retry(countdown=outcome.retry_in)
        return outcome.status

    return run


inventory = step_task(Step.INVENTORY)
payment = step_task(Step.PAYMENT)
email = step_task(Step.EMAIL)
invoice = step_task(Step.INVOICE)
warehouse = step_task(Step.WAREHOUSE)
