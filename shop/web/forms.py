"""Flask-WTF forms: each one checks the CSRF token; pydantic checks the content.

The JSON API (``POST /orders``, ``/admin/api``) takes no CSRF token, so CSRF is
enforced per form here instead of with a global ``CSRFProtect``.
"""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    EmailField,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import InputRequired, NumberRange

from shop.countries import COUNTRIES
from shop.schemas import MAX_QUANTITY

TEST_CARDS = [
    SelectChoice("tok_visa", "Visa — succeeds"),
    SelectChoice("tok_chargeDeclined", "Declined card"),
]
# An empty first choice: a preselected country looks filled in and gets submitted unread.
COUNTRY_CHOICES = [
    SelectChoice("", "Choose a country"),
    *(SelectChoice(code, name) for code, name in COUNTRIES.items()),
]
DELIVERY = [
    SelectChoice("standard", "Standard — 3 to 5 days"),
    SelectChoice("express", "Express — next day"),
]


class CartLineForm(FlaskForm):
    """Add a product to the cart, or change a line's quantity."""

    sku = HiddenField(validators=[InputRequired()])
    quantity = IntegerField("Quantity", default=1, validators=[NumberRange(1, MAX_QUANTITY)])


class CartRemoveForm(FlaskForm):
    sku = HiddenField(validators=[InputRequired()])


class CheckoutForm(FlaskForm):
    # No validators: OrderRequest (pydantic) is the one definition of a valid
    # order, for the API and the form alike; its errors land on these fields.
    name = StringField("Full name", render_kw={"autocomplete": "name"})
    email = EmailField("Email", render_kw={"autocomplete": "email"})
    line1 = StringField("Street address", render_kw={"autocomplete": "address-line1"})
    city = StringField("City", render_kw={"autocomplete": "address-level2"})
    postal_code = StringField("Postal code", render_kw={"autocomplete": "postal-code"})
    country = SelectField(
        "Country", choices=COUNTRY_CHOICES, default="", validate_choice=False, render_kw={"autocomplete": "country"}
    )
    payment_token = SelectField("Test card", choices=TEST_CARDS, default="tok_visa", validate_choice=False)
    priority = RadioField("Delivery", choices=DELIVERY, default="standard", validate_choice=False)
    # One nonce per rendered form: a double submit carries the same one and so
    # the same Idempotency-Key, which makes it the same order.
    nonce = HiddenField()


class AdminLoginForm(FlaskForm):
    token = PasswordField("Admin token", render_kw={"autocomplete": "current-password"})


class ActionForm(FlaskForm):
    """A button that changes something (log out, replay): only the CSRF token."""


class ProductForm(FlaskForm):
    sku = StringField("SKU")
    name = StringField("Name")
    price = StringField("Price")
    stock = StringField("Stock")
    currency = StringField("Currency", default="EUR")
    description = TextAreaField("Description", default="")
