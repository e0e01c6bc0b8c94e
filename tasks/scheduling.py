"""Scheduled jobs: running one handed-over job (the hand-over is in ``tasks.maintenance``)."""

from __future__ import annotations

from shop.extensions import services
from shop.services import scheduling
from shop.services.cancellation import cancel_unpaid_order
from tasks.app import app

# What each kind of job does; composed here so that scheduling imports none of them.
RUNNERS: dict[str, scheduling.JobRunner] = {
    scheduling.FOLLOW_UP_EMAIL: scheduling.send_follow_up,
    scheduling.CANCEL_UNPAID: cancel_unpaid_order,
}


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
    return scheduling.run_scheduled_job(services(), job_id, RUNNERS)
