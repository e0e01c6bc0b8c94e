"""Read models for the API: order status, order detail, catalog."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from shop.database import Database
from shop.errors import NotFound
from shop.models import Order, Product, StepRun
from shop.public_errors import PUBLIC_MESSAGES, public_step_error
from shop.schemas import (
    LineView,
    OrderStatusView,
    OrderView,
    ProductView,
    PublicAddress,
    PublicCustomer,
    StepError,
    StepView,
)
from shop.states import OrderStatus, Step, StepStatus

_PROCESSING_STATUS = {
    OrderStatus.RECEIVED: "PENDING",
    OrderStatus.PROCESSING: "STARTED",
    OrderStatus.COMPLETED: "SUCCESS",
    OrderStatus.FAILED: "FAILURE",
    OrderStatus.NEEDS_ATTENTION: "FAILURE",
    OrderStatus.CANCELLED: "REVOKED",
}


def _order(db: Database, order_id: str, *, with_lines: bool = False) -> Order:
    options = [selectinload(Order.steps)]
    if with_lines:
        options.append(selectinload(Order.lines))
    with db.begin() as session:
        order = session.scalars(select(Order).where(Order.id == order_id).options(*options)).first()
    if order is None:
        raise NotFound("order")
    return order


def order_status(db: Database, order_id: str) -> OrderStatusView:
    """The ledger as the status endpoint shows it: no personal data."""
    order = _order(db, order_id)
    processing = _PROCESSING_STATUS[OrderStatus(order.status)]
    if processing == "STARTED" and any(s.status == StepStatus.RETRYING for s in order.steps):
        processing = "RETRY"
    return OrderStatusView(
        order_id=order.id,
        status=order.status,
        processing_status=processing,  # type: ignore[arg-type]
        failure_reason=order.failure_reason,
        updated_at=max([order.updated_at] + [s.finished_at or s.started_at or order.updated_at for s in order.steps]),
        steps=[
            StepView(
                name=s.step,
                status=s.status,
                attempts=s.attempts,
                error=_public_error(s, order.failure_reason),
                started_at=s.started_at,
                finished_at=s.finished_at,
            )
            for s in order.steps
        ],
    )


def _public_error(step: StepRun, failure_reason: str | None) -> StepError | None:
    # Never the raw last_error: it can quote SMTP replies, hosts or SQL (the admin keeps it).
    code = public_step_error(step.step, step.status, step.last_error, failure_reason)
    return StepError(code=code, message=PUBLIC_MESSAGES[code]) if code else None


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def order_detail(db: Database, order_id: str) -> OrderView:
    """The order as anyone holding its id sees it: no full name, no street address."""
    order = _order(db, order_id, with_lines=True)
    # The invoice step records its file in the same transaction as its success.
    has_invoice = any(s.step == Step.INVOICE and s.status == StepStatus.SUCCEEDED for s in order.steps)
    return OrderView(
        order_id=order.id,
        status=order.status,
        failure_reason=order.failure_reason,
        customer=PublicCustomer(email=mask_email(order.customer_email)),
        shipping_address=PublicAddress(
            city=order.shipping_address.get("city", ""), country=order.shipping_address.get("country", "")
        ),
        priority=order.priority,
        lines=[
            LineView(
                sku=line.sku,
                name=line.name,
                quantity=line.quantity,
                unit_price_cents=line.unit_price_cents,
                total_cents=line.total_cents,
            )
            for line in order.lines
        ],
        total_cents=order.total_cents,
        currency=order.currency,
        created_at=order.created_at,
        updated_at=order.updated_at,
        invoice_url=f"/orders/{order.id}/invoice.pdf" if has_invoice else None,
    )


def list_products(db: Database) -> list[ProductView]:
    with db.begin() as session:
        products = session.scalars(select(Product).order_by(Product.sku)).all()
    return [ProductView.model_validate(p, from_attributes=True) for p in products]
