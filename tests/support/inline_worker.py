"""The test as the worker: record what the shop publishes, then run it in this process.

For tests that drive the pipeline step by step. Tests that need the broker
use a real worker process (``Stack.start_worker``) and a real Redis.
"""

from __future__ import annotations

from shop.dispatch import PAYMENT_FAILED_EMAIL_TASK, REFUND_TASK, RUN_TASK, TaskMessage
from shop.extensions import ShopServices
from shop.pipeline.reactions import refund_payment, send_payment_failed_email
from shop.pipeline.run import run_order, run_slow_step
from shop.states import Step


class RecordingPublisher:
    """Keeps published messages instead of sending them."""

    def __init__(self) -> None:
        self.messages: list[TaskMessage] = []

    def publish(self, message: TaskMessage) -> None:
        self.messages.append(message)

    def take(self) -> list[TaskMessage]:
        taken, self.messages = self.messages, []
        return taken


def record_messages(svc: ShopServices) -> RecordingPublisher:
    recorder = RecordingPublisher()
    svc.publisher = recorder
    return recorder


def execute(svc: ShopServices, message: TaskMessage) -> str:
    """Run one message as its task would (countdowns are not waited for)."""
    order_id = message.kwargs["order_id"]
    if message.task_name == RUN_TASK:
        return run_order(svc, order_id, message.task_id)
    if message.task_name.startswith("steps."):
        return run_slow_step(svc, order_id, Step(message.task_name.split(".", 1)[1]), message.task_id).outcome
    if message.task_name == REFUND_TASK:
        refund_payment(svc, order_id)
        return "refunded"
    if message.task_name == PAYMENT_FAILED_EMAIL_TASK:
        return "sent" if send_payment_failed_email(svc, order_id) else "skipped"
    raise AssertionError(f"no inline runner for {message.task_name}")


def drain(svc: ShopServices, recorder: RecordingPublisher, limit: int = 50) -> list[str]:
    """Run every recorded message, and what they publish in turn, until none is left."""
    outcomes: list[str] = []
    while recorder.messages and len(outcomes) < limit:
        outcomes += [execute(svc, message) for message in recorder.take()]
    return outcomes
