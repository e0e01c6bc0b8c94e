"""An order's history: every failed attempt, dead letter and operator action, kept.

The step ledger holds only a step's latest attempt (``last_error``), and a
replay resets its attempts, so what happened before would be lost. Each event
is one INSERT in the transaction of the ledger write it describes, so the
history never says something the ledger rolled back. Events are written only
on failures and operator actions: the happy path writes none
(``tests/integration/test_order_costs.py`` counts its statements).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from shop.database import Database
from shop.models import OrderEvent, StepRun, table_of
from shop.states import Step

events = table_of(OrderEvent)
steps = table_of(StepRun)

MAX_DETAIL = 2000  # like step_runs.last_error: an error's text, not its whole traceback
MAX_ACTOR = 200


class EventKind(StrEnum):
    ATTEMPT_FAILED = "attempt_failed"  # a retry is scheduled
    DEAD_LETTERED = "dead_lettered"  # no retry left, or a permanent error: waits for an operator
    STEP_FAILED = "step_failed"  # a business failure (declined card, no stock): the order fails
    REPLAYED = "replayed"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"


def record_step_failure(
    session: Session, order_id: str, step: Step, kind: EventKind, error: str, now: datetime
) -> None:
    """A step's attempt failed; the attempt number is read from its ledger row in the same INSERT."""
    attempt = select(steps.c.attempts).where(steps.c.order_id == order_id, steps.c.step == step.value).scalar_subquery()
    session.execute(
        insert(events).values(
            order_id=order_id, step=step.value, kind=kind.value, attempt=attempt, detail=error[:MAX_DETAIL], at=now
        )
    )


def record_action(
    session: Session,
    order_id: str,
    kind: EventKind,
    actor: str,
    now: datetime,
    detail: str | None = None,
    step: str | None = None,
) -> None:
    """An operator's (or the customer's) action on the order, and who took it."""
    session.execute(
        insert(events).values(
            order_id=order_id,
            step=step,
            kind=kind.value,
            detail=detail[:MAX_DETAIL] if detail else None,
            actor=actor[:MAX_ACTOR],
            at=now,
        )
    )


def order_history(db: Database, order_id: str) -> list[OrderEvent]:
    """The order's events, oldest first (the id orders events of one instant)."""
    with db.begin() as session:
        return list(
            session.scalars(
                select(OrderEvent).where(OrderEvent.order_id == order_id).order_by(OrderEvent.at, OrderEvent.id)
            )
        )
