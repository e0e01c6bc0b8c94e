"""Order endpoints: place an order, read its status and its details, download its invoice."""

from __future__ import annotations

import math
import re
import time

from flask import Blueprint, Response, current_app, jsonify, request, send_file
from flask_limiter import Limiter, RequestLimit
from flask_limiter.util import get_remote_address

from shop.api.errors import parse_body, request_body
from shop.errors import NotFound, RequestRejected
from shop.extensions import services
from shop.integrations.invoices import invoice_path
from shop.schemas import OrderAccepted, OrderRequest
from shop.services import queries
from shop.services.cancellation import cancel_order
from shop.services.checkout import place_order

bp = Blueprint("orders", __name__)

IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


def _retry_after(breached: RequestLimit) -> Response:
    """A 429 says when the window reopens (RFC 6585): the error handler copies this header onto the JSON answer."""
    try:
        wait = breached.window.reset_time - time.time()
    except Exception:  # the limiter's storage went away between the check and now: a whole window is safe
        wait = breached.limit.get_expiry()
    return Response(status=429, headers={"Retry-After": str(max(1, math.ceil(wait)))})


limiter = Limiter(
    key_func=get_remote_address,
    on_breach=_retry_after,
    strategy="fixed-window",
    # The limiter must never be why a checkout fails: with Redis down it falls
    # back to per-process memory and the order is still accepted.
    swallow_errors=True,
    in_memory_fallback_enabled=True,
)


def _checkout_limit() -> str:
    return f"{current_app.config['RATE_LIMIT_PER_MINUTE']}/minute"


# One budget per client for every request that places or cancels an order, the
# JSON API and the checkout form alike: a client cannot get around the limit of
# one by switching to the other.
order_writes_limit = limiter.shared_limit(
    _checkout_limit, scope="order-writes", exempt_when=lambda: current_app.config["RATE_LIMIT_PER_MINUTE"] <= 0
)


@bp.post("/orders")
@order_writes_limit
def create_order() -> tuple[Response, int]:
    """Accept an order; 201 once it is committed."""
    key = request.headers.get("Idempotency-Key")
    if key is not None and not IDEMPOTENCY_KEY.fullmatch(key):
        raise RequestRejected(422, "invalid_idempotency_key", "Idempotency-Key: 1-255 visible ASCII characters")
    body = parse_body(OrderRequest, request_body(), request.is_json)
    placed = place_order(services(), body, key)
    accepted = OrderAccepted(
        order_id=placed.order_id,
        task_id=placed.task_id,
        status=placed.status,
        status_url=f"/orders/{placed.order_id}/status",
    )
    response = jsonify(accepted.model_dump())
    response.headers["Location"] = f"/orders/{placed.order_id}"
    if placed.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response, 201


@bp.get("/orders/<order_id>/status")
def order_status(order_id: str) -> Response:
    """The order's progress, step by step, from the ledger."""
    return jsonify(queries.order_status(services().db, order_id).model_dump(mode="json"))


@bp.get("/orders/<order_id>")
def order_detail(order_id: str) -> Response:
    """The order with its lines and totals; the email is masked."""
    return jsonify(queries.order_detail(services().db, order_id).model_dump(mode="json"))


@bp.get("/orders/<order_id>/invoice.pdf")
def order_invoice(order_id: str) -> Response:
    """The invoice PDF, once the invoice step has written it."""
    queries.order_status(services().db, order_id)  # 404 for unknown orders
    path = invoice_path(services().invoice_dir, order_id)
    if not path.is_file():
        raise NotFound("invoice")
    return send_file(path, mimetype="application/pdf", download_name=f"invoice-{order_id}.pdf")


@bp.post("/orders/<order_id>/cancel")
@order_writes_limit
def cancel(order_id: str) -> Response:
    """Cancel before shipment: 200 (also when already cancelled), 404, or 409 once shipped."""
    result = cancel_order(services(), order_id, f"customer via API ({request.remote_addr or 'unknown address'})")
    return jsonify({"order_id": result.order_id, "status": result.status, "refund": result.refund})
