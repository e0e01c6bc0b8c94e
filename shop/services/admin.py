"""Operator actions: list orders and dead letters, replay a dead letter, edit products."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from shop.dispatch import run_task_message
from shop.errors import Conflict, NotFound
from shop.extensions import ShopServices
from shop.models import Order, Product, StepRun, new_uuid, utcnow
from shop.pipeline import ledger
from shop.schemas import ProductUpdate
from shop.services import history
from shop.services.outbox import add_to_outbox, publish_outbox
from shop.step_policy import run_queue, stale_dispatch_seconds


@dataclass(frozen=True)
class DeadLetter:
    id: int
    order_id: str
    step: str
    attempts: int
    error: str | None
    dead_lettered_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "order_id": self.order_id,
            "step": self.step,
            "attempts": self.attempts,
            "error": self.error,
            "dead_lettered_at": self.dead_lettered_at.isoformat() if self.dead_lettered_at else None,
        }


# A page of the admin order list. The cap keeps one request from loading the whole table.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
MAX_OFFSET = 1_000_000_000  # beyond any real table; larger values overflow the databases' integers
LIKE_ESCAPE = "\\"


@dataclass(frozen=True)
class OrderPage:
    orders: list[Order]
    limit: int
    offset: int
    has_more: bool


def page_bounds(limit: int | None, offset: int | None) -> tuple[int, int]:
    """``limit`` clamped to 1..MAX_PAGE_SIZE (default DEFAULT_PAGE_SIZE), ``offset`` to 0..MAX_OFFSET."""
    limit = DEFAULT_PAGE_SIZE if limit is None else min(max(limit, 1), MAX_PAGE_SIZE)
    return limit, min(max(offset or 0, 0), MAX_OFFSET)


def escape_like(text: str) -> str:
    """``text`` matched literally inside a LIKE pattern: ``%`` and ``_`` are not wildcards."""
    return text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2).replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_")


def list_orders(
    svc: ShopServices,
    status: str | None = None,
    search: str | None = None,
    limit: int | None = None,
    offset: int | None = None,
) -> OrderPage:
    """Newest first, one page; searched by exact order id or a literal part of the email."""
    limit, offset = page_bounds(limit, offset)
    # The id breaks ties between orders placed in the same instant, so pages never overlap.
    query = select(Order).order_by(Order.created_at.desc(), Order.id.desc()).limit(limit + 1).offset(offset)
    if status:
        query = query.where(Order.status == status)
    if search:
        pattern = f"%{escape_like(search)}%"
        query = query.where(or_(Order.id == search, Order.customer_email.ilike(pattern, escape=LIKE_ESCAPE)))
    with svc.db.begin() as session:
        rows = list(session.scalars(query))
    return OrderPage(rows[:limit], limit, offset, has_more=len(rows) > limit)


def dead_letter_count(session: Session) -> int:
    """Steps in the dead-letter list now: one COUNT on an indexed column (the
    admin menu, the dashboard, the alerts and /metrics all read this one)."""
    return session.scalar(select(func.count()).where(StepRun.dead_lettered_at.is_not(None))) or 0


def list_dead_letters(svc: ShopServices) -> list[DeadLetter]:
    with svc.db.begin() as session:
        rows = session.scalars(
            select(StepRun).where(StepRun.dead_lettered_at.is_not(None)).order_by(StepRun.dead_lettered_at)
        ).all()
    return [DeadLetter(r.id, r.order_id, r.step, r.attempts, r.last_error, r.dead_lettered_at) for r in rows]


def replay_dead_letter(svc: ShopServices, step_run_id: int, actor: str) -> DeadLetter:
    """Give a dead-lettered step a fresh retry budget and send the order's run again.

    ``actor`` (who asked) goes into the order's history with the replay."""
    now = utcnow()
    with svc.db.begin() as session:
        if session.get(StepRun, step_run_id) is None:
            raise NotFound("dead letter")
        priority = session.scalar(
            select(Order.priority).join(StepRun, StepRun.order_id == Order.id).where(StepRun.id == step_run_id)
        )
        queue = run_queue(priority or "standard")
        wake = now + timedelta(seconds=stale_dispatch_seconds())
        run = ledger.replay(session, step_run_id, now, wake, queue)
        if run is None:
            raise Conflict("not_dead_lettered", "this step is not in the dead-letter list")
        detail = f"fresh retry budget after {run.attempts} attempts"
        history.record_action(session, run.order_id, history.EventKind.REPLAYED, actor, now, detail, step=run.step)
        message = run_task_message(run.order_id, queue, new_uuid())
        add_to_outbox(session, message, run.order_id)
        replayed = DeadLetter(run.id, run.order_id, run.step, 0, run.last_error, None)
    publish_outbox(svc.db, svc.publisher, [message])
    return replayed


def upsert_product(svc: ShopServices, sku: str, data: ProductUpdate) -> tuple[Product, bool]:
    with svc.db.begin() as session:
        product = session.get(Product, sku, with_for_update=True)
        created = product is None
        if product is None:
            product = Product(sku=sku)
            session.add(product)
        for field, value in data.model_dump().items():
            setattr(product, field, value)
    return product, created


def seed_products(svc: ShopServices, catalog: dict[str, ProductUpdate], reset: bool) -> int:
    """Add the products that are missing (all of them with ``reset``); return how many."""
    with svc.db.begin() as session:
        existing = set(session.scalars(select(Product.sku).where(Product.sku.in_(catalog))))
    chosen = [sku for sku in catalog if reset or sku not in existing]
    for sku in chosen:
        upsert_product(svc, sku, catalog[sku])
    return len(chosen)
