"""Order and step states, the steps of the pipeline and their allowed transitions.

A transition is applied as a conditional ``UPDATE … WHERE status IN (:expected)``
(see ``shop.pipeline.ledger``), so two workers can never both move the same row.
"""

from __future__ import annotations

from enum import StrEnum


class OrderStatus(StrEnum):
    RECEIVED = "received"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    NEEDS_ATTENTION = "needs_attention"
    CANCELLED = "cancelled"


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    COMPENSATED = "compensated"


class FailureReason(StrEnum):
    OUT_OF_STOCK = "out_of_stock"
    PAYMENT_DECLINED = "payment_declined"
    STEP_FAILED = "step_failed"
    UNPAID_TIMEOUT = "unpaid_timeout"


class Step(StrEnum):
    INVENTORY = "inventory"
    PAYMENT = "payment"
    EMAIL = "email"
    INVOICE = "invoice"
    WAREHOUSE = "warehouse"


STEPS: tuple[Step, ...] = tuple(Step)
FANOUT: tuple[Step, ...] = (Step.EMAIL, Step.INVOICE, Step.WAREHOUSE)
# The run's phases, in order: a phase starts once every step before it succeeded;
# the steps of one phase run concurrently.
PHASES: tuple[tuple[Step, ...], ...] = ((Step.INVENTORY,), (Step.PAYMENT,), FANOUT)

# Order statuses from which no step may start any more.
FINAL_ORDER_STATUSES = frozenset({OrderStatus.COMPLETED, OrderStatus.FAILED, OrderStatus.CANCELLED})
ACTIVE_ORDER_STATUSES = tuple(s for s in OrderStatus if s not in FINAL_ORDER_STATUSES)

ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.RECEIVED: frozenset({OrderStatus.PROCESSING, OrderStatus.FAILED, OrderStatus.CANCELLED}),
    OrderStatus.PROCESSING: frozenset(
        {
            OrderStatus.COMPLETED,
            OrderStatus.FAILED,
            OrderStatus.NEEDS_ATTENTION,
            OrderStatus.CANCELLED,
        }
    ),
    OrderStatus.NEEDS_ATTENTION: frozenset({OrderStatus.PROCESSING, OrderStatus.COMPLETED, OrderStatus.CANCELLED}),
    OrderStatus.COMPLETED: frozenset(),
    OrderStatus.FAILED: frozenset(),
    OrderStatus.CANCELLED: frozenset(),
}

# Step statuses an attempt may start from. RUNNING only for the holder of the
# order's lease: the attempt before it was killed or lost with its worker.
STARTABLE_STEP_STATUSES = frozenset({StepStatus.PENDING, StepStatus.RETRYING, StepStatus.RUNNING})
# Step statuses that let the next phase start, or the order complete.
DONE_STEP_STATUSES = frozenset({StepStatus.SUCCEEDED})


def sources_of(target: OrderStatus) -> tuple[OrderStatus, ...]:
    """The order statuses from which ``target`` may be reached."""
    return tuple(s for s, allowed in ORDER_TRANSITIONS.items() if target in allowed)
