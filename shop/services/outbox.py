"""Transactional outbox: tasks written with their data, published after the commit.

Used where a message must not depend on the publish going through: refunds,
the payment-failed email, a replayed dead letter, and a checkout whose
publish failed. The workers' relay publishes what is left unpublished.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from shop.database import Database
from shop.dispatch import Publisher, TaskMessage, publish_all
from shop.models import OutboxMessage, utcnow


def add_to_outbox(session: Session, message: TaskMessage, order_id: str | None) -> None:
    session.add(
        OutboxMessage(
            id=message.task_id,
            order_id=order_id,
            task_name=message.task_name,
            queue=message.queue,
            args=message.kwargs,
        )
    )


def publish_outbox(db: Database, publisher: Publisher, messages: list[TaskMessage]) -> int:
    """Publish messages whose outbox rows are committed, then mark them published."""
    published = publish_all(publisher, messages)
    if published:
        with db.begin() as session:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_([m.task_id for m in published]))
                .values(published_at=utcnow())
            )
    return len(published)


def publish_or_keep(db: Database, publisher: Publisher, message: TaskMessage, order_id: str | None) -> bool:
    """Publish now; if the broker refuses, keep the message in the outbox for the
    relay (a second transaction, paid only when the publish failed)."""
    if publish_all(publisher, [message]):
        return True
    with db.begin() as session:
        add_to_outbox(session, message, order_id)
    return False


def relay_outbox(db: Database, publisher: Publisher, *, min_age: float = 2.0, batch: int = 500) -> int:
    """Publish outbox rows left unpublished (broker was down, process died after commit).

    ``min_age`` leaves fresh rows to the request that wrote them, which is
    about to publish them itself; publishing one twice is harmless anyway
    (the task id is the row id and steps are idempotent).
    """
    cutoff: datetime = utcnow() - timedelta(seconds=min_age)
    with db.begin() as session:
        rows = session.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.published_at.is_(None), OutboxMessage.created_at <= cutoff)
            .order_by(OutboxMessage.created_at)
            .limit(batch)
        ).all()
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_([r.id for r in rows]))
            .values(publish_attempts=OutboxMessage.publish_attempts + 1)
        )
    messages = [TaskMessage(r.task_name, r.queue, r.id, dict(r.args)) for r in rows]
    return publish_outbox(db, publisher, messages)


def outbox_backlog(session: Session) -> tuple[int, datetime | None]:
    """Messages not yet published, and when the oldest was written (/metrics and the alerts)."""
    count, oldest = session.execute(
        select(func.count(), func.min(OutboxMessage.created_at)).where(OutboxMessage.published_at.is_(None))
    ).one()
    return int(count), oldest
