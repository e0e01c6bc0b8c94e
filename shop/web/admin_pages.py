"""The admin pages: the dashboard, orders, one order's timeline, dead letters with replay, queues, products.

Closed when ADMIN_TOKEN is unset; otherwise a login form starts an admin
session (shop.web.admin_session: revocable, expiring, tied to the token).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as cookie_session
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from shop.api.admin import order_list_args, token_is_valid
from shop.api.admin_auth import failed_admin_auth_limit, record_failure
from shop.errors import Refused
from shop.extensions import services
from shop.services import admin, history
from shop.services.admin import dead_letter_count
from shop.services.cancellation import cancel_order
from shop.services.dashboard import WINDOWS, dashboard
from shop.services.queue_stats import queue_stats
from shop.services.refunds import refund_order
from shop.states import OrderStatus
from shop.web import admin_session, reads
from shop.web.admin_forms import product_update, worker_names
from shop.web.charts import dashboard_charts
from shop.web.forms import ActionForm, AdminLoginForm, ProductForm
from shop.web.shop_pages import local_path

bp = Blueprint("admin", __name__, url_prefix="/admin")

OPEN_ENDPOINTS = frozenset({"admin.login", "admin.login_submit"})
is_logged_in = admin_session.is_active


@bp.before_request
def require_login() -> Response | None:
    if not current_app.config.get("ADMIN_TOKEN"):
        abort(403, "The admin is closed: set ADMIN_TOKEN to open it.")
    if request.endpoint not in OPEN_ENDPOINTS and not is_logged_in():
        return redirect(url_for(".login", next=request.full_path.rstrip("?")), 303)
    return None


@bp.app_context_processor
def admin_context() -> dict[str, object]:
    return {
        "admin_logged_in": is_logged_in,
        "flower_url": current_app.config.get("FLOWER_URL"),
        "dead_letter_count": dead_letter_count_now,
    }


def dead_letter_count_now() -> int | None:
    """For the admin menu, called by the layout only when logged in; None when the database is away."""
    try:
        with services().db.begin() as session:
            return dead_letter_count(session)
    except SQLAlchemyError:
        return None


@bp.get("/login")
def login() -> str:
    """The login form."""
    return render_template("admin/login.html", form=AdminLoginForm())


@bp.post("/login")
@failed_admin_auth_limit
def login_submit() -> tuple[str, int] | Response:
    """Check the token; on success start a fresh admin session."""
    form = AdminLoginForm()
    if form.validate_on_submit() and token_is_valid(form.token.data or ""):
        admin_session.start()
        return redirect(local_path(request.args.get("next"), url_for(".index")), 303)
    record_failure("login form")
    form.token.errors = ["That token is not right."]
    return render_template("admin/login.html", form=form), 401


@bp.post("/logout")
def logout() -> Response:
    """End the admin session, for this browser and any copy of its cookie."""
    if ActionForm().validate_on_submit():
        admin_session.end()
    return redirect(url_for(".login"), 303)


@bp.get("/")
def index() -> str:
    """The dashboard: orders, latency, retries, dead letters and queues over the last hour or day."""
    return _render_dashboard("admin/dashboard.html")


@bp.get("/dashboard/charts")
def dashboard_fragment() -> str:
    """The dashboard's numbers and charts alone: what its live refresh swaps in."""
    return _render_dashboard("admin/_dashboard_charts.html")


def _render_dashboard(template: str) -> str:
    window = request.args.get("window", "hour")
    window = window if window in WINDOWS else "hour"
    data = dashboard(services(), current_app.config["CELERY_BROKER_URL"], window)
    return render_template(template, data=data, charts=dashboard_charts(data), window=window)


@bp.get("/orders")
def orders() -> str:
    """Recent orders, one page at a time, filtered by status and searched by order id or email."""
    status, search, limit, offset = order_list_args()
    page = admin.list_orders(services(), status, search, limit, offset)
    return render_template(
        "admin/orders.html", orders=page.orders, page=page, status=status, q=search or "", statuses=list(OrderStatus)
    )


@bp.get("/orders/<order_id>")
def order(order_id: str) -> str:
    """One order: customer, lines, the step timeline, and its history of failures and actions."""
    order = reads.order_for_admin(services().db, order_id)
    return render_template("admin/order.html", order=order, history=history.order_history(services().db, order_id))


def acting_admin() -> str:
    """Who acts, for the order's history. ADMIN_TOKEN is shared and names no one, so
    the admin session stands for the operator: a hash of its id (the id itself
    is a credential and never stored), and the client address."""
    data = cookie_session.get(admin_session.SESSION_KEY)
    session_id = data.get("id") if isinstance(data, dict) else None
    who = f"admin (session {hashlib.sha256(str(session_id).encode()).hexdigest()[:8]})" if session_id else "admin"
    return f"{who} from {request.remote_addr or 'an unknown address'}"


# The order page's actions: each is confirmed on its own page, then posted with a CSRF token.
ORDER_ACTIONS: dict[str, Callable[[str, str], object]] = {
    "cancel": lambda order_id, actor: cancel_order(services(), order_id, actor),
    "refund": lambda order_id, actor: refund_order(services(), order_id, actor),
}
ORDER_ACTION_DONE = {"cancel": "Cancelled", "refund": "Refunded"}


@bp.get("/orders/<order_id>/<any(cancel, refund):action>")
def confirm_order_action(order_id: str, action: str) -> str:
    """Ask before cancelling or refunding: the button that does it is on this page."""
    order = reads.order_for_admin(services().db, order_id)
    return render_template("admin/order_action_confirm.html", order=order, action=action)


@bp.post("/orders/<order_id>/<any(cancel, refund):action>")
def order_action(order_id: str, action: str) -> Response:
    """Cancel or refund the order through the same service as the API, then show its page."""
    if not ActionForm().validate_on_submit():
        flash("Nothing changed: the form expired, try again.", "error")
    else:
        try:
            ORDER_ACTIONS[action](order_id, acting_admin())
            flash(f"{ORDER_ACTION_DONE[action]} order {order_id}.", "success")
        except Refused as exc:
            flash(f"Not done: {exc.message}.", "error")
    return redirect(url_for(".order", order_id=order_id), 303)


@bp.get("/dead-letters")
def dead_letters() -> str:
    """Steps that exhausted their retries, each with a Replay button."""
    return render_template("admin/dead_letters.html", letters=admin.list_dead_letters(services()))


@bp.post("/dead-letters/<int:step_run_id>/replay")
def replay(step_run_id: int) -> Response:
    """Dispatch a dead-lettered step again with a fresh retry budget."""
    if ActionForm().validate_on_submit():
        try:
            replayed = admin.replay_dead_letter(services(), step_run_id, acting_admin())
            flash(f"Replayed the {replayed.step} step of order {replayed.order_id}.", "success")
        except Refused as exc:
            flash(f"Not replayed: {exc.message}.", "error")
    return redirect(local_path(request.form.get("next"), url_for(".dead_letters")), 303)


@bp.get("/queues")
def queues() -> str:
    """Queue depths from Redis and the ledger; the worker list loads after the page."""
    stats = queue_stats(services(), current_app.config["CELERY_BROKER_URL"])
    return render_template("admin/queues.html", stats=stats)


@bp.get("/workers")
def workers() -> str:
    """The workers that answer a ping, as a fragment for the queues page."""
    # A ping waits its full 0.5 s for replies, so it is kept off the page's render path.
    return render_template("admin/_workers.html", workers=worker_names(services()))


@bp.get("/products")
def products() -> str:
    """Every product with inline editing of name, price and stock."""
    return render_template("admin/products.html", products=reads.all_products(services().db), new=ProductForm())


@bp.post("/products")
def save_product() -> tuple[str, int] | Response:
    """Create or update one product."""
    form = ProductForm()
    update = product_update(form) if form.validate_on_submit() else None
    if update is None:
        problems = "; ".join(form.form_errors) or "the form expired, try again"
        flash(f"Product {form.sku.data or ''} not saved: {problems}.", "error")
        return render_template("admin/products.html", products=reads.all_products(services().db), new=form), 422
    _, created = admin.upsert_product(services(), form.sku.data.strip(), update)
    flash(f"{'Created' if created else 'Saved'} {form.sku.data.strip()}.", "success")
    return redirect(url_for(".products"), 303)
