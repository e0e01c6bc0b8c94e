"""From the checkout form to a placed order.

The form's fields become an ``OrderRequest`` (the same pydantic model that
validates ``POST /orders``); its errors are mapped back onto the form fields so
the page can show each one next to what the customer typed.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

from flask import session
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from shop.errors import Refused
from shop.extensions import ShopServices
from shop.schemas import OrderRequest
from shop.services.checkout import place_order
from shop.web.forms import CheckoutForm

FIELD_BY_LOCATION: dict[tuple[Any, ...], str] = {
    ("customer", "name"): "name",
    ("customer", "email"): "email",
    ("shipping_address", "line1"): "line1",
    ("shipping_address", "city"): "city",
    ("shipping_address", "postal_code"): "postal_code",
    ("shipping_address", "country"): "country",
    ("payment_token",): "payment_token",
    ("priority",): "priority",
}

REJECTIONS = {
    "unknown_sku": "A product in your cart is no longer sold. Please remove it from the cart.",
    "idempotency_key_reused": (
        "This form was already used for another order. Check the details and place the order again."
    ),
}

# The refusals of shop.free_text, in the customer's words.
TEXT_WORDING = {
    "control_character": "Please remove special characters such as tabs, line breaks or text-direction marks.",
    "invisible_text": "Please use letters or numbers: this holds only spaces or invisible characters.",
}

NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
# The contact and address details the next checkout form starts with: kept in the
# signed session after "Pay with another card", only for the browser that placed
# the declined order (the tracking link alone does not reveal them).
DETAILS_KEY = "checkout_details"


def new_nonce() -> str:
    return secrets.token_urlsafe(16)


def blank_or_prefilled_form() -> CheckoutForm:
    """A fresh checkout form, with the details remembered for paying again, if any."""
    return CheckoutForm(nonce=new_nonce(), **session.get(DETAILS_KEY, {}))


def remember_details(details: dict[str, str]) -> None:
    session[DETAILS_KEY] = details


def forget_details() -> None:
    session.pop(DETAILS_KEY, None)


def order_request(form: CheckoutForm, cart: dict[str, int]) -> OrderRequest | None:
    """The order the form describes, or None with the errors attached to the fields."""
    raw = {
        "customer": {"name": form.name.data or "", "email": (form.email.data or "").strip()},
        "items": [{"sku": sku, "quantity": quantity} for sku, quantity in cart.items()],
        "shipping_address": {
            "line1": form.line1.data or "",
            "city": form.city.data or "",
            "postal_code": form.postal_code.data or "",
            "country": (form.country.data or "").strip().upper(),
        },
        "payment_token": form.payment_token.data,
        "priority": form.priority.data,
    }
    try:
        return OrderRequest.model_validate(raw)
    except ValidationError as exc:
        for error in exc.errors(include_url=False):
            _attach(form, error)
        return None


def _attach(form: CheckoutForm, error: ErrorDetails) -> None:
    field_name = FIELD_BY_LOCATION.get(tuple(error["loc"][:2])) or FIELD_BY_LOCATION.get(tuple(error["loc"][:1]))
    if field_name is None:
        form.form_errors.append("Your cart is empty." if error["loc"][0] == "items" else error["msg"])
        return
    field = form[field_name]
    field.errors = [*field.errors, _wording(field_name, error)]


def _wording(field_name: str, error: ErrorDetails) -> str:
    if not str(error.get("input") or "").strip():
        return "Please choose a country." if field_name == "country" else "Please fill this in."
    if error["type"] in TEXT_WORDING:
        return TEXT_WORDING[error["type"]]
    if error["type"] == "string_too_long":
        return f"Please keep it under {error.get('ctx', {}).get('max_length')} characters."
    if field_name == "email":
        return "Please enter a valid email address, like ada@example.com."
    if field_name == "country":
        return "Please choose a country from the list."
    if error["type"] == "literal_error":
        return "Please choose one of the options."
    return error["msg"]


def focus_first_error(form: CheckoutForm) -> None:
    """Put the cursor in the first field with an error (``autofocus``: no script needed)."""
    for name in FIELD_BY_LOCATION.values():
        field = form[name]
        if field.errors and name != "priority":  # radio buttons: the alert above them says it
            # A copy: WTForms shares one render_kw dict between every instance of the form.
            field.render_kw = {**(field.render_kw or {}), "autofocus": True}
            return


def place_from_form(svc: ShopServices, form: CheckoutForm, cart: dict[str, int]) -> str | None:
    """Place the order and return its id, or None with the reasons on the form."""
    request = order_request(form, cart)
    if request is None:
        return None
    nonce = form.nonce.data or ""
    key = f"checkout:{nonce}" if NONCE.match(nonce) else None
    try:
        return place_order(svc, request, key).order_id
    except Refused as exc:
        form.form_errors.append(REJECTIONS.get(exc.code, exc.message))
        if exc.code == "idempotency_key_reused":
            form.nonce.data = new_nonce()
        return None
