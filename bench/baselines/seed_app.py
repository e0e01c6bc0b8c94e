"""Baseline (c): the worked example's Flask app as written — web, database, one task per order.

``POST /orders`` validates minimally, inserts the order through SQLAlchemy, commits and
calls ``process_order.delay(order_id)``. The task loads the order and runs the
integrations in sequence, each after the shop's simulated latency: stock, a charge row
(the simulated gateway), the confirmation email into a maildir, the invoice PDF (fpdf2,
the shop's layout), the warehouse (simulated: the latency only). Then it marks the order
completed. No ledger, no outbox, no idempotency, no retries; SQLAlchemy's defaults.

Its own database (``BENCH_SEED_DATABASE_URL``, the bench creates ``shop_bench_seed``),
its own Celery app, Redis DB number and queue; nothing is imported from ``shop``.

    gunicorn 'bench.baselines.seed_app:create_app()' -k gthread
    celery -A bench.baselines.seed_app worker -Q seed
"""

from __future__ import annotations

import mailbox
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Flask, jsonify, request
from sqlalchemy import JSON, DateTime, ForeignKey, Integer, String, create_engine, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship, selectinload, sessionmaker

from bench.baselines import make_app, simulate

# The same integration code as the shop: its invoice layout (fpdf2) and its email.
from shop.integrations.invoices import render_invoice
from shop.services.notifications import confirmation_email

QUEUE = "seed"
app = make_app("bench_seed_app", QUEUE)
BASE_URL = "http://127.0.0.1"  # the tracking link in its email
_sessions: sessionmaker[Session] | None = None


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Product(Base):
    __tablename__ = "products"

    sku: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    price_cents: Mapped[int] = mapped_column(Integer)
    stock: Mapped[int] = mapped_column(Integer)


class Order(Base):
    __tablename__ = "orders"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    customer_email: Mapped[str] = mapped_column(String(320))
    customer_name: Mapped[str] = mapped_column(String(200))
    shipping_address: Mapped[dict[str, Any]] = mapped_column(JSON)
    payment_token: Mapped[str] = mapped_column(String(64))
    total_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3), default="EUR")
    status: Mapped[str] = mapped_column(String(20), default="received")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    items: Mapped[list[OrderItem]] = relationship(back_populates="order")

    @property
    def lines(self) -> list[OrderItem]:  # the name the shop's integrations read
        return self.items

    # The shop's invoice prints a number and its date; the example numbers nothing.
    @property
    def invoice_number(self) -> int | None:
        return None

    @property
    def invoiced_at(self) -> datetime | None:
        return None


class OrderItem(Base):
    __tablename__ = "order_items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(Integer)
    order: Mapped[Order] = relationship(back_populates="items")

    @property
    def total_cents(self) -> int:
        return self.quantity * self.unit_price_cents


class Charge(Base):
    __tablename__ = "charges"

    id: Mapped[str] = mapped_column(String(40), primary_key=True, default=lambda: "ch_" + uuid.uuid4().hex[:24])
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    amount_cents: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


def sessions() -> sessionmaker[Session]:
    """Created on first use, so each gunicorn worker and each pool process has its own pool."""
    global _sessions
    if _sessions is None:
        # SQLAlchemy's defaults, as the example has them: after a commit the next
        # attribute access reads the order again.
        _sessions = sessionmaker(create_engine(os.environ["BENCH_SEED_DATABASE_URL"]))
    return _sessions


def var_dir() -> Path:
    return Path(os.environ.get("BENCH_SEED_VAR_DIR", "var/seed"))


# --- web ----------------------------------------------------------------------


def _bad(message: str) -> tuple[Any, int]:
    return jsonify(error=message), 400


def create_app() -> Flask:
    web = Flask(__name__)

    @web.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok")

    @web.post("/orders")
    def create_order() -> Any:
        data = request.get_json(silent=True)
        if not isinstance(data, dict):
            return _bad("expected a JSON object")
        customer, items = data.get("customer") or {}, data.get("items") or []
        if not customer.get("email") or not data.get("payment_token") or not items:
            return _bad("customer.email, payment_token and items are required")
        with sessions()() as session:
            skus = {item.get("sku") for item in items}
            products = {p.sku: p for p in session.scalars(select(Product).where(Product.sku.in_(skus)))}
            lines = []
            for item in items:
                product, quantity = products.get(item.get("sku")), item.get("quantity")
                if product is None or not isinstance(quantity, int) or quantity < 1:
                    return _bad(f"bad item {item!r}")
                lines.append(
                    OrderItem(
                        sku=product.sku, name=product.name, quantity=quantity, unit_price_cents=product.price_cents
                    )
                )
            order = Order(
                customer_email=customer["email"],
                customer_name=customer.get("name", ""),
                shipping_address=data.get("shipping_address") or {},
                payment_token=data["payment_token"],
                total_cents=sum(line.quantity * line.unit_price_cents for line in lines),
                items=lines,
            )
            session.add(order)
            session.commit()
            process_order.delay(order.id)
            return jsonify(order_id=order.id, status="received"), 201

    return web


# --- worker -------------------------------------------------------------------


@app.task(name="seed.process_order")
def process_order(order_id: str) -> None:
    with sessions()() as session:
        simulate("load")
        order = session.scalars(select(Order).where(Order.id == order_id).options(selectinload(Order.items))).one()

        simulate("inventory")
        for item in order.items:
            session.execute(update(Product).where(Product.sku == item.sku).values(stock=Product.stock - item.quantity))
        session.commit()

        simulate("payment")
        session.add(Charge(order_id=order.id, amount_cents=order.total_cents, currency=order.currency, status="ok"))
        session.commit()

        simulate("email")
        var_dir().mkdir(parents=True, exist_ok=True)
        email = confirmation_email(order, "shop@example.com", BASE_URL)
        mailbox.Maildir(str(var_dir() / "maildir"), create=True).add(email)

        simulate("invoice")
        invoices = var_dir() / "invoices"
        invoices.mkdir(parents=True, exist_ok=True)
        (invoices / f"{order.id}.pdf").write_bytes(render_invoice(order))

        simulate("warehouse")
        order.status, order.completed_at = "completed", utcnow()
        session.commit()
