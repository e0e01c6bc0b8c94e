"""Stock moves: reserve and release, each one conditional UPDATE per product.

Rows are touched in SKU (primary key) order so that two orders sharing
products always lock them in the same order and cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import insert, update
from sqlalchemy.orm import Session

from shop.database import rowcount
from shop.errors import OutOfStock
from shop.models import OrderLine, Product, StockReservation, utcnow


def reserve_stock(session: Session, order_id: str, lines: Iterable[OrderLine]) -> None:
    """Take stock for every line of the order, or raise OutOfStock (caller rolls back).

    Called once per order: the reservation commits with the inventory step's
    checkpoint, so a repeat finds the step succeeded and never gets here (the
    unique (order, sku) constraint stands behind that)."""
    ordered = sorted(lines, key=lambda line: line.sku)
    for line in ordered:
        taken = session.execute(
            update(Product)
            .where(Product.sku == line.sku, Product.stock >= line.quantity)
            .values(stock=Product.stock - line.quantity)
        )
        if rowcount(taken) != 1:
            raise OutOfStock(line.sku)
    now = utcnow()
    session.execute(
        insert(StockReservation),
        [{"order_id": order_id, "sku": line.sku, "quantity": line.quantity, "created_at": now} for line in ordered],
    )


def release_stock(session: Session, order_id: str) -> int:
    """Give back every unreleased reservation of the order; return units released."""
    released = session.execute(
        update(StockReservation)
        .where(StockReservation.order_id == order_id, StockReservation.released_at.is_(None))
        .values(released_at=utcnow())
        .returning(StockReservation.sku, StockReservation.quantity)
    ).all()
    for sku, quantity in sorted(released):
        session.execute(update(Product).where(Product.sku == sku).values(stock=Product.stock + quantity))
    return sum(quantity for _, quantity in released)
