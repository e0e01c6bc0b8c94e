"""Admin JSON API under /admin/api, behind ``Authorization: Bearer $ADMIN_TOKEN``.

With no ADMIN_TOKEN configured the API is closed, never open.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from shop.api.admin_auth import failed_admin_auth_limit, record_failure
from shop.api.errors import parse_body, request_body
from shop.errors import RequestRejected
from shop.extensions import services
from shop.schemas import ProductUpdate, ProductView
from shop.services import admin
from shop.services import dashboard as dashboard_service
from shop.services.queue_stats import queue_stats
from shop.services.refunds import refund_order
from shop.states import OrderStatus

bp = Blueprint("admin_api", __name__, url_prefix="/admin/api")
# Checked before require_admin_token: a client out of failed attempts gets 429, whatever it sends.
failed_admin_auth_limit(bp)

MAX_SEARCH_LENGTH = 254  # the longest email address; an order id is shorter


def token_is_valid(candidate: str) -> bool:
    expected = current_app.config.get("ADMIN_TOKEN") or ""
    return bool(expected) and hmac.compare_digest(candidate.encode(), expected.encode())


@bp.before_request
def require_admin_token() -> None:
    if not current_app.config.get("ADMIN_TOKEN"):
        raise RequestRejected(403, "admin_disabled", "the admin API is closed: set ADMIN_TOKEN")
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token_is_valid(token.strip()):
        record_failure("bearer")
        raise RequestRejected(401, "unauthorized", "send Authorization: Bearer <ADMIN_TOKEN>")


def int_arg(name: str) -> int | None:
    """An optional integer query parameter; anything else is a 422 (out-of-range values are clamped later)."""
    raw = request.args.get(name, "")
    if not raw.strip():
        return None
    try:
        return int(raw)
    except ValueError:
        raise RequestRejected(422, "validation_error", f"{name} must be an integer", [{"loc": [name]}]) from None


def order_list_args() -> tuple[str | None, str | None, int | None, int | None]:
    """status, q, limit and offset of an order list request, checked."""
    status = request.args.get("status") or None
    if status and status not in set(OrderStatus):
        raise RequestRejected(422, "invalid_status", f"status must be one of {sorted(OrderStatus)}")
    search = request.args.get("q", "").strip() or None
    if search and len(search) > MAX_SEARCH_LENGTH:
        raise RequestRejected(
            422, "validation_error", f"q is longer than {MAX_SEARCH_LENGTH} characters", [{"loc": ["q"]}]
        )
    return status, search, int_arg("limit"), int_arg("offset")


@bp.get("/orders")
def orders() -> Response:
    """Recent orders, one page, optionally filtered by status or searched by id or email.

    The body stays a JSON list; a ``Link: <…>; rel="next"`` header points at the next page."""
    status, search, limit, offset = order_list_args()
    page = admin.list_orders(services(), status, search, limit, offset)
    response = jsonify(
        [
            {
                "order_id": o.id,
                "status": o.status,
                "failure_reason": o.failure_reason,
                "email": o.customer_email,
                "priority": o.priority,
                "total_cents": o.total_cents,
                "created_at": o.created_at.isoformat(),
            }
            for o in page.orders
        ]
    )
    if page.has_more:
        after = url_for(".orders", status=status, q=search, limit=page.limit, offset=page.offset + page.limit)
        response.headers["Link"] = f'<{after}>; rel="next"'
    return response


@bp.get("/dead-letters")
def dead_letters() -> Response:
    """Steps that exhausted their retries, oldest first."""
    return jsonify([d.as_json() for d in admin.list_dead_letters(services())])


@bp.post("/dead-letters/<int:step_run_id>/replay")
def replay(step_run_id: int) -> tuple[Response, int]:
    """Dispatch a dead-lettered step again with a fresh retry budget."""
    replayed = admin.replay_dead_letter(services(), step_run_id, bearer_actor())
    return jsonify({"replayed": replayed.as_json()}), 202


@bp.post("/orders/<order_id>/refund")
def refund(order_id: str) -> Response:
    """Refund a completed order in full: 200 (also when already refunded), 404, or 409 ``not_refundable``."""
    result = refund_order(services(), order_id, bearer_actor())
    return jsonify(
        {
            "order_id": result.order_id,
            "status": result.status,
            "refund": {"amount_cents": result.amount_cents, "currency": result.currency},
            "already_refunded": result.already,
        }
    )


def bearer_actor() -> str:
    """Who acts, for the order's history. ADMIN_TOKEN is shared and names no one:
    what is known is that the bearer token was used, and from which address."""
    return f"admin-api ({request.remote_addr or 'unknown address'})"


@bp.get("/queues")
def queues() -> Response:
    """Waiting, in flight, scheduled and dead, per queue."""
    return jsonify(queue_stats(services(), current_app.config["CELERY_BROKER_URL"]))


@bp.get("/dashboard")
def dashboard() -> Response:
    """The dashboard's series: ``window=hour`` (minutes, the default) or ``day`` (15 minutes)."""
    window = request.args.get("window", "hour")
    if window not in dashboard_service.WINDOWS:
        raise RequestRejected(422, "invalid_window", "window must be hour or day", [{"loc": ["window"]}])
    return jsonify(dashboard_service.dashboard(services(), current_app.config["CELERY_BROKER_URL"], window))


@bp.put("/products/<sku>")
def put_product(sku: str) -> tuple[Response, int]:
    """Create or update a product's name, price and stock."""
    data = parse_body(ProductUpdate, request_body(), request.is_json)
    product, created = admin.upsert_product(services(), sku, data)
    return jsonify(ProductView.model_validate(product, from_attributes=True).model_dump()), 201 if created else 200
