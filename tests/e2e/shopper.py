"""What a shopper does in the browser, as steps the tests can read like a script."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page, expect

from tests.support.stack import Stack

CUSTOMER = {
    "name": "Ada Lovelace",
    "email": "ada@example.com",
    "line1": "12 St James's Square",
    "city": "London",
    "postal_code": "SW1Y 4JH",
    "country": "GB",
}


def add_to_cart(page: Page, sku: str, items_in_cart_after: int) -> None:
    page.locator(f'[data-sku="{sku}"]').get_by_role("button", name="Add").click()
    expect(page.locator("[data-cart-count]")).to_have_text(str(items_in_cart_after))


def fill_checkout(page: Page, card: str = "tok_visa", priority: str = "standard", **fields: str) -> None:
    """Fill the checkout form by its field names (the hooks the form promises)."""
    for name, value in {**CUSTOMER, **fields}.items():
        if name == "country":  # a list of countries, by code
            page.select_option('[name="country"]', value)
        else:
            page.fill(f'[name="{name}"]', value)
    page.select_option('[name="payment_token"]', card)
    page.check(f'[name="priority"][value="{priority}"]')


def buy(page: Page, *skus: str, card: str = "tok_visa", **fields: str) -> str:
    """From the catalog to the tracking page; returns the order id."""
    page.goto("/")
    for count, sku in enumerate(skus, start=1):
        add_to_cart(page, sku, count)
    page.goto("/checkout")
    fill_checkout(page, card=card, **fields)
    page.get_by_role("button", name="Place order").click()
    page.wait_for_url("**/track/*")
    return page.url.rsplit("/", 1)[-1]


def order_count(stack: Stack) -> int:
    return int(stack.scalar("SELECT count(*) FROM orders"))


def form_fields(page: Page, selector: str) -> dict[str, Any]:
    """The fields a form would submit, as the browser sees them."""
    return page.evaluate(f"Object.fromEntries(new FormData(document.querySelector('{selector}')))")  # type: ignore[no-any-return]
