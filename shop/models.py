"""The schema as typed SQLAlchemy 2.0 models. Created only by Alembic migrations."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from shop.states import OrderStatus, StepStatus


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_order_id() -> str:
    # 128 random bits, URL-safe: opaque and unguessable (DESIGN asks >= 122).
    return secrets.token_urlsafe(16)


def new_uuid() -> str:
    return str(uuid.uuid4())


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, also on SQLite (which drops tzinfo)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime; use shop.models.utcnow()")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Product(Base):
    __tablename__ = "products"
    __table_args__ = (
        CheckConstraint("stock >= 0", name="stock_not_negative"),
        CheckConstraint("price_cents >= 0", name="price_not_negative"),
    )

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    price_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    stock: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index("ix_orders_status_updated", "status", "updated_at"),
        Index("ix_orders_status_lease", "status", "lease_expires_at"),
        UniqueConstraint("invoice_number", name="uq_orders_invoice_number"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_order_id)
    status: Mapped[str] = mapped_column(String(20), default=OrderStatus.RECEIVED)
    failure_reason: Mapped[str | None] = mapped_column(String(40))
    customer_email: Mapped[str] = mapped_column(String(320), index=True)
    customer_name: Mapped[str] = mapped_column(String(200))
    shipping_address: Mapped[dict[str, Any]]
    payment_token: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(16), default="standard")
    total_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    # The order's durable run: whoever holds ``lease_token`` runs its steps until
    # ``lease_expires_at`` (renewed at every checkpoint). With no token, the
    # time is when the message last sent for the order (to ``dispatch_queue``)
    # should have been picked up; past it, the workers' sweep sends another.
    lease_token: Mapped[str | None] = mapped_column(String(36))
    lease_expires_at: Mapped[datetime | None]
    dispatch_queue: Mapped[str] = mapped_column(String(32), default="orders")
    idempotency_key: Mapped[str | None] = mapped_column(String(255), unique=True)
    request_fingerprint: Mapped[str | None] = mapped_column(String(64))
    # Issued once, by the checkpoint that starts the invoice step (InvoiceCounter):
    # null until the order is paid; a declined or cancelled order takes none.
    invoice_number: Mapped[int | None] = mapped_column(Integer)
    invoiced_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    lines: Mapped[list[OrderLine]] = relationship(
        back_populates="order", order_by="OrderLine.id", cascade="all, delete-orphan"
    )
    steps: Mapped[list[StepRun]] = relationship(
        back_populates="order", order_by="StepRun.position", cascade="all, delete-orphan"
    )


class OrderLine(Base):
    __tablename__ = "order_lines"
    __table_args__ = (CheckConstraint("quantity > 0", name="quantity_positive"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"))
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(Integer)

    order: Mapped[Order] = relationship(back_populates="lines")

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


class StepRun(Base):
    """One row per order and step: the ledger that says what is left to do."""

    __tablename__ = "step_runs"
    __table_args__ = (
        UniqueConstraint("order_id", "step", name="uq_step_runs_order_step"),
        Index("ix_step_runs_dead_lettered", "dead_lettered_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    step: Mapped[str] = mapped_column(String(20))
    position: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(20), default=StepStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # The task that ran (or runs) the latest attempt: the order's run, or the
    # step's own slow-path task.
    task_id: Mapped[str | None] = mapped_column(String(64))
    # Where the step's slow-path task goes (its retries, or a step too slow to run inline).
    queue: Mapped[str] = mapped_column(String(32))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    # A retrying step runs again no earlier than this (its backoff).
    due_at: Mapped[datetime | None]
    dead_lettered_at: Mapped[datetime | None]

    order: Mapped[Order] = relationship(back_populates="steps")


class OutboxMessage(Base):
    """A task to publish, written in the same transaction as the data it is about."""

    __tablename__ = "outbox_messages"
    __table_args__ = (Index("ix_outbox_unpublished", "published_at", "created_at"),)

    # Doubles as the Celery task id, so a re-publish is recognisably the same.
    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_uuid)
    order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"))
    task_name: Mapped[str] = mapped_column(String(100))
    queue: Mapped[str] = mapped_column(String(32))
    args: Mapped[dict[str, Any]]
    publish_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None]


class StockReservation(Base):
    """Stock taken for an order line; ``released_at`` is its undo."""

    __tablename__ = "stock_reservations"
    __table_args__ = (UniqueConstraint("order_id", "sku", name="uq_reservation_order_sku"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    sku: Mapped[str] = mapped_column(ForeignKey("products.sku"))
    quantity: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    released_at: Mapped[datetime | None]


class PaymentCharge(Base):
    """The simulated gateway's own record of charges, keyed like Stripe's."""

    __tablename__ = "payment_charges"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(100), unique=True)
    order_id: Mapped[str] = mapped_column(String(32), index=True)
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20))  # succeeded | declined
    decline_code: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    refunded_at: Mapped[datetime | None]


class SideEffect(Base):
    """A completed external effect (email, invoice, warehouse call) by its stable key.

    The unique key is what makes a redelivered step skip an effect it already had.
    """

    __tablename__ = "side_effects"

    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScheduledJob(Base):
    """Work due at a time: a follow-up email, the cancellation of an unpaid order.

    The due time lives here, not in a Celery ETA: an ETA message is held
    unacknowledged by a worker and comes back after the visibility timeout, so
    a 24-hour ETA would be redelivered every minute. Beat hands over due rows
    by a conditional UPDATE on ``claimed_at``; ``done_at`` marks one run.
    """

    __tablename__ = "scheduled_jobs"
    __table_args__ = (
        UniqueConstraint("order_id", "kind", name="uq_scheduled_jobs_order_kind"),
        Index("ix_scheduled_jobs_due", "done_at", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    kind: Mapped[str] = mapped_column(String(40))
    due_at: Mapped[datetime]
    # A hand-over owns the job until claimed_at + the claim time; a job whose
    # message or worker was lost is handed over again after that.
    claimed_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    done_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class InvoiceCounter(Base):
    """The shop's next invoice number: one row per series, moved only in the
    transaction that gives an order its number, so numbers have no gaps."""

    __tablename__ = "invoice_counters"
    __table_args__ = (CheckConstraint("next_number >= 1", name="next_number_positive"),)

    shop: Mapped[str] = mapped_column(String(40), primary_key=True)
    next_number: Mapped[int] = mapped_column(Integer)


class OrderEvent(Base):
    """What happened to an order off the happy path: a failed attempt, a dead letter,
    an operator's replay, cancel or refund, with who did it and when.

    Written only on failures and operator actions, in the transaction of the
    ledger write it describes (``shop.services.history``): a smooth order has none.
    """

    __tablename__ = "order_events"
    __table_args__ = (Index("ix_order_events_order_at", "order_id", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    step: Mapped[str | None] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(20))
    attempt: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[str | None] = mapped_column(Text)
    actor: Mapped[str | None] = mapped_column(String(200))
    at: Mapped[datetime]


def table_of(model: type[Base]) -> Table:
    """The model's Core table, typed: for the statements built without the ORM."""
    return cast(Table, model.__table__)


__all__ = [
    "Base",
    "InvoiceCounter",
    "Order",
    "OrderEvent",
    "OrderLine",
    "OutboxMessage",
    "PaymentCharge",
    "Product",
    "ScheduledJob",
    "SideEffect",
    "StepRun",
    "StockReservation",
    "func",
    "utcnow",
]
