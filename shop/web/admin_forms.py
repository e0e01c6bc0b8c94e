"""Helpers behind the admin pages: the product form as a ProductUpdate, and the live workers."""

from __future__ import annotations

import logging
import re
from decimal import Decimal, InvalidOperation

from pydantic import ValidationError

from shop.dispatch import CeleryPublisher
from shop.extensions import ShopServices
from shop.schemas import ProductUpdate
from shop.web.forms import ProductForm

log = logging.getLogger(__name__)

SKU = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def _cents(price: str) -> int | None:
    try:
        amount = Decimal(price.strip())
    except InvalidOperation:
        return None
    cents = amount * 100
    return int(cents) if cents == cents.to_integral_value() and amount.is_finite() else None


def product_update(form: ProductForm) -> ProductUpdate | None:
    """The product the form describes, or None with the problems in ``form.form_errors``."""
    sku, cents = (form.sku.data or "").strip(), _cents(form.price.data or "")
    stock = (form.stock.data or "").strip()
    if not SKU.match(sku):
        form.form_errors.append("the SKU takes letters, digits, - and _")
    if cents is None:
        form.form_errors.append("enter the price like 12.50")
    if not stock.isdigit():
        form.form_errors.append("enter the stock as a whole number")
    if form.form_errors:
        return None
    try:
        return ProductUpdate(
            name=form.name.data or "",
            price_cents=cents or 0,
            stock=int(stock),
            currency=(form.currency.data or "").strip().upper(),
            description=form.description.data or "",
        )
    except ValidationError as exc:
        form.form_errors.extend(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        return None


def worker_names(svc: ShopServices) -> list[str] | None:
    """Workers that answered a ping within 0.5 s; None when the broker cannot be asked."""
    if not isinstance(svc.publisher, CeleryPublisher):
        return None
    try:
        replies = svc.publisher.celery.control.ping(timeout=0.5)
    except Exception as exc:  # broker down: the page still shows what the database knows
        log.warning("worker ping failed: %s", exc)
        return None
    return sorted(name for reply in replies for name in reply)
