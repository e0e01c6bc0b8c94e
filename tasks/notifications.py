"""Customer emails that are not pipeline steps."""

from __future__ import annotations

from celery import Task

from shop.dispatch import PAYMENT_FAILED_EMAIL_TASK
from shop.extensions import services
from shop.pipeline.reactions import send_payment_failed_email
from tasks.app import app
from tasks.config import AUXILIARY_TASK_OPTIONS


@app.task(
    name=PAYMENT_FAILED_EMAIL_TASK,
    bind=True,
    **AUXILIARY_TASK_OPTIONS,
    max_retries=8,
    soft_time_limit=10,
    time_limit=15,
)
def payment_failed_email(self: Task, order_id: str) -> bool:
    return send_payment_failed_email(services(), order_id)
