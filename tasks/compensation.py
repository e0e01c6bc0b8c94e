"""Undo tasks: give money back after a cancellation."""

from __future__ import annotations

from shop.dispatch import REFUND_TASK
from shop.errors import TransientError
from shop.extensions import services
from shop.services.cancellation import refund_payment
from tasks.app import app


@app.task(
    name=REFUND_TASK,
    acks_late=True,
    reject_on_worker_lost=True,
    autoretry_for=(TransientError,),
    retry_backoff=2,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=10,
    soft_time_limit=15,
    time_limit=20,
)
def refund(order_id: str) -> None:
    refund_payment(services(), order_id)
