"""Placing an order: one transaction for the order, its lines, its ledger and its outbox row.

The 201 goes out only after the commit; the broker publish follows it and may
fail without losing anything (the relay republishes what is left). Retried
requests are made safe by the ``Idempotency-Key``: a unique constraint on the
order decides, so even concurrent duplicates resolve to one order.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from shop.dispatch import TaskMessage, step_task_name
from shop.errors import RequestRejected
from shop.extensions import ShopServices
from shop.models import Order, OrderLine, Product, StepRun, new_uuid, utcnow
from shop.schemas import MAX_QUANTITY, OrderRequest
from shop.services.outbox import add_to_outbox, publish_outbox
from shop.states import FIRST_STEP, STEPS, Step
from shop.step_policy import queue_for


@dataclass(frozen=True)
class PlacedOrder:
    order_id: str
    task_id: str
    status: str
    replayed: bool = False


def fingerprint(request: OrderRequest) -> str:
    return hashlib.sha256(request.model_dump_json().encode()).hexdigest()


def place_order(svc: ShopServices, request: OrderRequest, idempotency_key: str | None) -> PlacedOrder:
    digest = fingerprint(request)
    if idempotency_key:
        earlier = _find_by_key(svc, idempotency_key, digest)
        if earlier:
            return earlier
    try:
        with svc.db.begin() as session:
            order = _new_order(session, request, idempotency_key, digest)
            message = _dispatch_first_step(session, order)
    except IntegrityError:
        # A concurrent request with the same key committed first: answer as it did.
        earlier = _find_by_key(svc, idempotency_key, digest) if idempotency_key else None
        if earlier is None:
            raise
        return earlier
    publish_outbox(svc.db, svc.publisher, [message])
    return PlacedOrder(order.id, message.task_id, order.status)


def _find_by_key(svc: ShopServices, key: str, digest: str) -> PlacedOrder | None:
    with svc.db.begin() as session:
        order = session.scalar(select(Order).where(Order.idempotency_key == key))
        if order is None:
            return None
        if order.request_fingerprint != digest:
            raise RequestRejected(422, "idempotency_key_reused", "this Idempotency-Key was used with a different body")
        task_id = session.scalar(
            select(StepRun.task_id).where(StepRun.order_id == order.id, StepRun.step == FIRST_STEP)
        )
        return PlacedOrder(order.id, task_id or "", order.status, replayed=True)


def _merged_quantities(request: OrderRequest) -> dict[str, int]:
    quantities: dict[str, int] = {}
    for item in request.items:
        quantities[item.sku] = quantities.get(item.sku, 0) + item.quantity
    return quantities


def _new_order(session: Session, request: OrderRequest, key: str | None, digest: str) -> Order:
    quantities = _merged_quantities(request)
    products = {p.sku: p for p in session.scalars(select(Product).where(Product.sku.in_(quantities)))}
    problems = [
        {"loc": ["items", i, "sku"], "msg": f"unknown SKU {item.sku!r}", "type": "unknown_sku"}
        for i, item in enumerate(request.items)
        if item.sku not in products
    ]
    if problems:
        raise RequestRejected(422, "unknown_sku", "the order names products that do not exist", problems)
    if any(q > MAX_QUANTITY for q in quantities.values()):
        raise RequestRejected(422, "invalid_quantity", f"at most {MAX_QUANTITY} units of one product")
    currencies = {products[sku].currency for sku in quantities}
    if len(currencies) != 1:
        raise RequestRejected(422, "mixed_currency", "all products of one order must share a currency")
    order = Order(
        status="received",
        customer_email=str(request.customer.email),
        customer_name=request.customer.name,
        shipping_address=request.shipping_address.model_dump(),
        payment_token=request.payment_token,
        priority=request.priority,
        currency=currencies.pop(),
        total_cents=sum(products[sku].price_cents * q for sku, q in quantities.items()),
        idempotency_key=key,
        request_fingerprint=digest,
        lines=[
            OrderLine(sku=sku, name=products[sku].name, quantity=q, unit_price_cents=products[sku].price_cents)
            for sku, q in sorted(quantities.items())
        ],
        steps=[StepRun(step=step, position=i, queue=queue_for(step, request.priority)) for i, step in enumerate(STEPS)],
    )
    session.add(order)
    session.flush()
    return order


def _dispatch_first_step(session: Session, order: Order) -> TaskMessage:
    first: Step = FIRST_STEP
    message = TaskMessage(step_task_name(first), queue_for(first, order.priority), new_uuid(), {"order_id": order.id})
    run = next(s for s in order.steps if s.step == first)
    run.task_id, run.dispatched_at = message.task_id, utcnow()
    add_to_outbox(session, message, order.id)
    return message
