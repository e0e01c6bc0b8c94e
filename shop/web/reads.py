"""Read-only queries the pages need beyond the JSON API's read models."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from shop.database import Database
from shop.errors import NotFound
from shop.models import Order, Product


def all_products(db: Database) -> list[Product]:
    with db.begin() as session:
        return list(session.scalars(select(Product).order_by(Product.sku)))


def product(db: Database, sku: str) -> Product:
    with db.begin() as session:
        found = session.get(Product, sku)
    if found is None:
        raise NotFound("product")
    return found


def products_by_sku(db: Database, skus: Iterable[str]) -> dict[str, Product]:
    wanted = list(skus)
    if not wanted:
        return {}
    with db.begin() as session:
        return {p.sku: p for p in session.scalars(select(Product).where(Product.sku.in_(wanted)))}


def order_for_admin(db: Database, order_id: str) -> Order:
    """The whole order, unmasked, with its lines and its step ledger."""
    with db.begin() as session:
        order = session.scalar(
            select(Order).where(Order.id == order_id).options(selectinload(Order.lines), selectinload(Order.steps))
        )
    if order is None:
        raise NotFound("order")
    return order
