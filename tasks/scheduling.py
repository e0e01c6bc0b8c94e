"""Scheduled jobs: beat's hand-over of what is due, and running one job."""

from __future__ import annotations

from shop.extensions import services
from shop.services import scheduling
from tasks.app import app


@app.task(name=scheduling.HAND_OVER_TASK, ignore_result=True, soft_time_limit=20, time_limit=30)
def hand_over_due_jobs() -> int:
    """Claim due follow-ups and unpaid-order cancellations, and publish them."""
    return scheduling.hand_over_due_jobs(services())


@app.task(
    name=scheduling.RUN_JOB_TASK,
    ignore_result=True,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=30,
    time_limit=45,
)
def run_job(job_id: int, order_id: str) -> str:
    """Run one scheduled job; ``order_id`` rides along for the logs."""
    return scheduling.run_scheduled_job(services(), job_id)
