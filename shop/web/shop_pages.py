"""The shop: catalog, product page, cart, checkout and the live tracking page."""

from __future__ import annotations

import re

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from shop.api.orders import order_writes_limit
from shop.extensions import services
from shop.services import queries
from shop.services.alerts import team_told
from shop.web import cart, reads, tracking
from shop.web.checkout_form import (
    blank_or_prefilled_form,
    focus_first_error,
    forget_details,
    place_from_form,
    remember_details,
)
from shop.web.formatting import NEEDS_ATTENTION_TOLD, PAY_AGAIN_HINT, tracking_wording
from shop.web.forms import ActionForm, CartLineForm, CartRemoveForm, CheckoutForm

bp = Blueprint("shop", __name__)

# The last order placed from this browser, so a form submitted twice lands on it.
PLACED_KEY = "placed"


# Browsers drop tabs and newlines from a URL and read a backslash as "/": "/<TAB>/evil.example"
# and "/\evil.example" both mean "//evil.example", another site.
_NOT_IN_LOCAL_PATH = re.compile(r"[\x00-\x1f\x7f\\]")


def local_path(candidate: str | None, default: str) -> str:
    """``candidate`` if it is a path on this site (no open redirect), else ``default``."""
    if candidate and candidate.startswith("/") and not candidate.startswith("//"):
        if not _NOT_IN_LOCAL_PATH.search(candidate):
            return candidate
    return default


@bp.app_context_processor
def cart_badge() -> dict[str, object]:
    return {"cart_count": cart.item_count}


@bp.get("/")
def catalog() -> str:
    """Every product with its price and availability."""
    return render_template("shop/catalog.html", products=queries.list_products(services().db))


@bp.get("/catalog/<sku>")
def product(sku: str) -> str:
    """One product with its description and an add-to-cart form."""
    return render_template("shop/product.html", product=reads.product(services().db, sku))


@bp.get("/cart")
def cart_page() -> str:
    """The cart's lines with today's prices."""
    return render_template("shop/cart.html", cart=cart.priced(services().db, cart.quantities()))


@bp.post("/cart/add")
def add_to_cart() -> Response:
    """Put a product in the cart (or more of it)."""
    form = CartLineForm()
    if form.validate_on_submit():
        item = reads.product(services().db, form.sku.data)
        if added := cart.add(item.sku, form.quantity.data):
            flash(f"Added {added} × {item.name} to your cart.", "success")
        else:
            flash("Your cart is full: check out or remove something first.", "error")
    else:
        flash("That could not be added: pick a quantity from 1 to 100.", "error")
    return redirect(local_path(request.form.get("next"), url_for(".catalog")), 303)


@bp.post("/cart/update")
def update_cart() -> Response:
    """Change the quantity of one cart line."""
    form = CartLineForm()
    if form.validate_on_submit():
        cart.set_quantity(form.sku.data, form.quantity.data)
    else:
        flash("Quantities go from 1 to 100.", "error")
    return redirect(url_for(".cart_page"), 303)


@bp.post("/cart/remove")
def remove_from_cart() -> Response:
    """Take a line out of the cart."""
    form = CartRemoveForm()
    if form.validate_on_submit():
        cart.remove(form.sku.data)
    return redirect(url_for(".cart_page"), 303)


@bp.get("/checkout")
def checkout() -> str | Response:
    """The checkout form, for a cart with something in it."""
    if not cart.quantities():
        flash("Your cart is empty.", "error")
        return redirect(url_for(".cart_page"), 303)
    form = blank_or_prefilled_form()
    return render_template("shop/checkout.html", form=form, cart=cart.priced(services().db, cart.quantities()))


@bp.post("/checkout")
@order_writes_limit
def submit_checkout() -> tuple[str, int] | Response:
    """Place the order, then go to its tracking page; on bad input show the form again."""
    form = CheckoutForm()
    earlier = session.get(PLACED_KEY)
    if earlier and earlier[0] == form.nonce.data:  # the same form submitted again
        return redirect(url_for(".track", order_id=earlier[1]), 303)
    if form.validate_on_submit() and (order_id := place_from_form(services(), form, cart.quantities())):
        cart.clear()
        forget_details()
        session[PLACED_KEY] = [form.nonce.data, order_id]
        return redirect(url_for(".track", order_id=order_id), 303)
    focus_first_error(form)
    return render_template("shop/checkout.html", form=form, cart=cart.priced(services().db, cart.quantities())), 422


@bp.get("/track/<order_id>")
def track(order_id: str) -> str:
    """The order's progress, step by step; the page polls the status endpoint."""
    db = services().db
    progress = queries.order_status(db, order_id)
    # "Our team has been told" only once an alert about the stuck order went out.
    told = progress.status == "needs_attention" and team_told(services().redis)
    return render_template(
        "shop/track.html",
        progress=progress,
        team_told=told,
        order=queries.order_detail(db, order_id),
        refund=tracking.refund_of(db, order_id, progress.status),
        pay_again=ActionForm(),
        pay_again_hint=PAY_AGAIN_HINT,
        wording=tracking_wording() | ({"needs_attention": NEEDS_ATTENTION_TOLD} if told else {}),
    )


@bp.post("/track/<order_id>/pay-again")
def pay_again(order_id: str) -> Response:
    """After a declined card: the same items back in the cart, then checkout for another card."""
    back = redirect(url_for(".track", order_id=order_id), 303)
    if not ActionForm().validate_on_submit():
        flash("This page expired. Please try again.", "error")
        return back
    declined = tracking.declined_order(services().db, order_id)
    if declined is None:
        flash("This order's payment was not declined, so there is nothing to pay again.", "error")
        return back
    cart.replace(declined.items)
    placed = session.get(PLACED_KEY)
    if placed and placed[1] == order_id:  # this browser placed it: its details, not a stranger's
        remember_details(declined.details)
    flash("Your card was declined and nothing was charged. Choose another card to place the order.", "info")
    return redirect(url_for(".checkout"), 303)
