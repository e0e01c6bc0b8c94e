"""Undo tasks: give money back after a cancellation."""

from __future__ import annotations

from shop.dispatch import REFUND_TASK
from shop.extensions import services
from shop.pipeline.reactions import refund_payment
from tasks.app import app
from tasks.config import AUXILIARY_TASK_OPTIONS


@app.task(
    name=REFUND_TASK,
    **AUXILIARY_TASK_OPTIONS,
    max_retries=10,
    soft_time_limit=15,
    time_limit=20,
)
def refund(order_id: str) -> None:
    refund_payment(services(), order_id)
