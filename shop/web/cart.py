"""The cart, kept in the signed session cookie as {sku: quantity}, and its prices."""

from __future__ import annotations

from dataclasses import dataclass

from flask import session

from shop.database import Database
from shop.models import Product
from shop.schemas import MAX_LINES, MAX_QUANTITY
from shop.web.reads import products_by_sku

SESSION_KEY = "cart"


def quantities() -> dict[str, int]:
    return dict(session.get(SESSION_KEY, {}))


def _save(cart: dict[str, int]) -> None:
    session[SESSION_KEY] = cart


def add(sku: str, quantity: int) -> int:
    """Add up to ``quantity`` units; returns how many went in (a line holds at most MAX_QUANTITY)."""
    cart = quantities()
    if sku not in cart and len(cart) >= MAX_LINES:
        return 0
    before = cart.get(sku, 0)
    cart[sku] = max(1, min(MAX_QUANTITY, before + quantity))
    _save(cart)
    return cart[sku] - before


def replace(items: dict[str, int]) -> None:
    """The cart becomes exactly ``items``: paying again for an order twice gives the same cart."""
    _save({sku: max(1, min(MAX_QUANTITY, quantity)) for sku, quantity in list(items.items())[:MAX_LINES]})


def set_quantity(sku: str, quantity: int) -> None:
    cart = quantities()
    if sku in cart:
        cart[sku] = max(1, min(MAX_QUANTITY, quantity))
        _save(cart)


def remove(sku: str) -> None:
    cart = quantities()
    cart.pop(sku, None)
    _save(cart)


def clear() -> None:
    session.pop(SESSION_KEY, None)


def item_count() -> int:
    return sum(quantities().values())


@dataclass(frozen=True)
class CartLine:
    product: Product
    quantity: int

    @property
    def total_cents(self) -> int:
        return self.product.price_cents * self.quantity

    @property
    def short_of_stock(self) -> bool:
        return self.quantity > self.product.stock


@dataclass(frozen=True)
class PricedCart:
    lines: list[CartLine]

    @property
    def total_cents(self) -> int:
        return sum(line.total_cents for line in self.lines)

    @property
    def currency(self) -> str:
        return self.lines[0].product.currency if self.lines else "EUR"


def priced(db: Database, cart: dict[str, int]) -> PricedCart:
    """The cart with today's prices; products deleted since they were added drop out."""
    products = products_by_sku(db, cart)
    return PricedCart([CartLine(products[sku], q) for sku, q in sorted(cart.items()) if sku in products])
