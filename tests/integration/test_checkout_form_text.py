"""The checkout form refuses control characters and invisible-only text as the API does:
an error next to the field, and nothing written."""

from __future__ import annotations

import html
import re

import pytest
from flask.testing import FlaskClient

from tests.support.stack import Stack

INPUT = re.compile(r"<input\b[^>]*>")
ATTRIBUTE = re.compile(r'\b(name|value)="([^"]*)"')
FIELD_ERROR = re.compile(r'<p class="field-error" id="([a-z0-9_]+)-error">([^<]*)</p>')
DETAILS = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "line1": "1 Main St",
    "city": "London",
    "postal_code": "N1 9GU",
    "country": "GB",
    "payment_token": "tok_visa",
    "priority": "standard",
}


def _hidden(page: str) -> dict[str, str]:
    """The CSRF token and the nonce of the page's form."""
    fields = {}
    for tag in INPUT.findall(page):
        attributes = dict(ATTRIBUTE.findall(tag))
        if attributes.get("name") in ("csrf_token", "nonce"):
            fields[attributes["name"]] = html.unescape(attributes.get("value", ""))
    return fields


def _checkout_with_a_mug(stack: Stack) -> tuple[FlaskClient, dict[str, str]]:
    """A browser with one mug in its cart, on the checkout page: its client and the form's hidden fields."""
    sku = stack.add_product()
    client = stack.client
    product = client.get(f"/catalog/{sku}").get_data(as_text=True)
    added = client.post("/cart/add", data={**_hidden(product), "sku": sku, "quantity": "1"})
    assert added.status_code == 303
    checkout = client.get("/checkout")
    assert checkout.status_code == 200
    return client, _hidden(checkout.get_data(as_text=True))


@pytest.mark.parametrize(
    ("field", "value", "wording"),
    [
        ("name", "Ada\x00Lovelace", "special characters"),
        ("name", "\u200b\u200b", "invisible characters"),
        ("name", "\u3164", "invisible characters"),
        ("line1", "1 Main St\u202e", "special characters"),
        ("city", "Lon\x1bdon", "special characters"),
        ("city", "\u00a0\u2060", "invisible characters"),
        ("postal_code", "N1\t9GU", "special characters"),
    ],
)
def test_checkout_form_shows_a_field_error_for_control_or_invisible_text_and_writes_nothing(
    db_stack: Stack, field: str, value: str, wording: str
) -> None:
    client, hidden = _checkout_with_a_mug(db_stack)
    response = client.post("/checkout", data={**hidden, **DETAILS, field: value})
    assert response.status_code == 422
    errors = dict(FIELD_ERROR.findall(response.get_data(as_text=True)))
    assert list(errors) == [field] and wording in errors[field]
    assert db_stack.scalar("SELECT count(*) FROM orders") == 0


def test_the_same_form_with_visible_text_places_the_order(db_stack: Stack) -> None:
    client, hidden = _checkout_with_a_mug(db_stack)
    response = client.post("/checkout", data={**hidden, **DETAILS, "name": "  Zoë\u200dO'Brien  "})
    assert response.status_code == 303 and "/track/" in response.headers["Location"]
    assert db_stack.scalar("SELECT customer_name FROM orders") == "Zoë\u200dO'Brien"
