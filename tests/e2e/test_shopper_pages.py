"""The shopper's side of the pages: a declined card has a way forward, the tracking
page speaks the shopper's words, and the checkout form helps instead of tripping."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import requests
from playwright.sync_api import Page, expect

from tests.e2e.shopper import CUSTOMER, buy, order_count
from tests.support.processes import ServerThread
from tests.support.stack import Stack, order_payload

Screenshot = Callable[[Page, str], Path]
# Names of the ledger and the operators: a shopper never reads them.
INTERNAL_WORDS = re.compile(
    r"needs_attention|needs attention|compensated|skipped|succeeded|retrying|Hand over to the warehouse"
    r"|Charge the card|payment_declined",
    re.IGNORECASE,
)
VISIBLE_TEXT = "document.querySelector('main').innerText"


def _charges(stack: Stack, first: str, second: str) -> list[tuple[str, str, str]]:
    """(order, status, idempotency key) of the gateway's charges for two orders, oldest first."""
    rows = stack.rows(
        "SELECT order_id, status, idempotency_key FROM payment_charges WHERE order_id IN (:a, :b) ORDER BY created_at",
        a=first,
        b=second,
    )
    return [(row[0], row[1], row[2]) for row in rows]


def _expect_shopper_words(page: Page) -> str:
    text: str = page.evaluate(VISIBLE_TEXT)
    assert not INTERNAL_WORDS.search(text), f"internal words on the page: {INTERNAL_WORDS.findall(text)}"
    return text


def test_a_declined_card_offers_another_card_and_the_second_card_completes_with_one_charge(
    page: Page, stack: Stack, screenshot: Screenshot
) -> None:
    declined_id = buy(page, "CAP-001", "MUG-001", card="tok_chargeDeclined", city="Cambridge")

    expect(page.locator("[data-order-status]")).to_have_attribute("data-order-status", "failed", timeout=20_000)
    expect(page.get_by_role("heading", level=1)).to_have_text("Your card was declined")
    expect(page.locator("[data-failure-reason]")).to_contain_text("Nothing was charged")
    expect(page.locator("[data-pay-again]")).to_contain_text("pay with another card")
    assert "Thank you" not in _expect_shopper_words(page)
    screenshot(page, "tracking-declined-pay-again")

    page.get_by_role("button", name="Pay with another card").click()

    page.wait_for_url("**/checkout")
    expect(page.locator(".flash")).to_contain_text("Choose another card")
    expect(page.locator("[data-cart-count]")).to_have_text("2")
    expect(page.locator('[name="name"]')).to_have_value(CUSTOMER["name"])
    expect(page.locator('[name="email"]')).to_have_value(CUSTOMER["email"])
    expect(page.locator('[name="city"]')).to_have_value("Cambridge")
    expect(page.locator('[name="country"]')).to_have_value("GB")
    expect(page.locator('[name="payment_token"]')).to_have_value("tok_visa")
    screenshot(page, "checkout-pay-again")
    page.get_by_role("button", name="Place order").click()

    page.wait_for_url("**/track/*")
    paid_id = page.url.rsplit("/", 1)[-1]
    assert paid_id != declined_id, "another card is another payment attempt: a new order with its own key"
    expect(page.locator("[data-order-status]")).to_have_attribute("data-order-status", "completed", timeout=20_000)
    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you for your order")
    charges = _charges(stack, declined_id, paid_id)
    assert [(order, status) for order, status, _ in charges] == [(declined_id, "declined"), (paid_id, "succeeded")]
    assert len({key for _, _, key in charges}) == 2, "each payment attempt has its own idempotency key"

    # Going back to the declined order and paying again does not double anything either.
    page.goto(f"/track/{declined_id}")
    page.get_by_role("button", name="Pay with another card").click()
    page.wait_for_url("**/checkout")
    page.goto(f"/track/{declined_id}")
    page.get_by_role("button", name="Pay with another card").click()
    expect(page.locator("[data-cart-count]")).to_have_text("2")


def test_paying_again_from_a_shared_tracking_link_does_not_reveal_the_address(page: Page, stack: Stack) -> None:
    """The tracking link is all a stranger needs to see the page; the details stay with the browser that typed them."""
    declined_id = stack.place(order_payload(("NB-001", 3), token="tok_chargeDeclined"))["order_id"]
    stack.wait_for(declined_id, "failed")

    page.goto(f"/track/{declined_id}")
    page.get_by_role("button", name="Pay with another card").click()

    page.wait_for_url("**/checkout")
    expect(page.locator("[data-cart-count]")).to_have_text("3")
    expect(page.locator('[name="email"]')).to_have_value("")
    expect(page.locator('[name="line1"]')).to_have_value("")


def test_the_tracking_page_speaks_the_shoppers_words_live_and_after_a_reload(page: Page) -> None:
    buy(page, "BAG-001", card="tok_chargeDeclined")
    page.evaluate("window.stillTheSamePage = true")

    # Redrawn live by the page's script as the steps finish...
    expect(page.locator('[data-step="inventory"]')).to_have_attribute("data-step-status", "compensated", timeout=20_000)
    assert page.evaluate("window.stillTheSamePage === true")
    live = _expect_shopper_words(page)
    # ...and rendered by the server after a reload: the same words.
    page.reload()
    assert _expect_shopper_words(page) == live
    expect(page.locator('[data-step="inventory"]')).to_contain_text("Put back on the shelf")
    expect(page.locator('[data-step="invoice"]')).to_contain_text("Not needed")
    expect(page.locator('[data-step="warehouse"]')).to_contain_text("Packing")
    expect(page.locator("[data-order-status]")).to_have_text("Not completed")


def test_a_completed_order_reads_in_the_shoppers_words(page: Page, stack: Stack) -> None:
    order_id = stack.place(order_payload(("STK-001", 1)))["order_id"]
    stack.wait_for(order_id, "completed")

    page.goto(f"/track/{order_id}")

    text = _expect_shopper_words(page)
    assert "Thank you for your order" in text
    expect(page.locator('[data-step="payment"]')).to_contain_text("Paid")
    expect(page.locator('[data-step="warehouse"]')).to_contain_text("With our packers")
    expect(page.locator("[data-order-status]")).to_have_text("Complete")


def test_the_country_is_chosen_from_a_list_and_an_unknown_code_is_refused(
    page: Page, stack: Stack, live_server: ServerThread, screenshot: Screenshot
) -> None:
    page.goto("/")
    page.locator('[data-sku="SOC-001"]').get_by_role("button", name="Add").click()
    page.goto("/checkout")

    country = page.locator('select[name="country"]')
    expect(country).to_have_value("")  # nothing looks chosen before the shopper chooses
    expect(country.locator("option").first).to_have_text("Choose a country")
    expect(country.locator('option[value="GB"]')).to_have_text("United Kingdom")
    expect(country.locator('option[value="DE"]')).to_have_text("Germany")
    assert country.locator("option").count() > 240
    assert country.get_attribute("placeholder") is None
    screenshot(page, "checkout-country")

    # A tampered form, and the API, are still checked against ISO 3166-1.
    orders_before = order_count(stack)
    for name, value in CUSTOMER.items():
        if name != "country":
            page.fill(f'[name="{name}"]', value)
    page.evaluate("document.querySelector('[name=country]').add(new Option('Atlantis', 'XA', true, true))")
    page.get_by_role("button", name="Place order").click()
    expect(page.locator("#country-error")).to_have_text("Please choose a country from the list.")
    payload = order_payload(("SOC-001", 1))
    payload["shipping_address"]["country"] = "XA"
    answer = requests.post(f"{live_server.url}/orders", json=payload, timeout=10)
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "validation_error"
    assert order_count(stack) == orders_before


def test_focus_moves_to_the_first_field_with_an_error(page: Page) -> None:
    page.goto("/")
    page.locator('[data-sku="PST-001"]').get_by_role("button", name="Add").click()
    page.goto("/checkout")
    page.fill('[name="name"]', "Ada Lovelace")
    page.fill('[name="email"]', "ada-at-example")
    page.fill('[name="city"]', "")

    page.get_by_role("button", name="Place order").click()

    expect(page.locator("#email-error")).to_be_visible()
    expect(page.locator('[name="email"]')).to_be_focused()
    page.fill('[name="name"]', "")
    page.get_by_role("button", name="Place order").click()
    expect(page.locator('[name="name"]')).to_be_focused()


def test_adding_to_the_cart_says_how_many_of_what(page: Page) -> None:
    page.goto("/catalog/MUG-001")
    page.get_by_label("Quantity").fill("2")

    page.get_by_role("button", name="Add to cart").click()

    expect(page.locator(".flash-success")).to_have_text("Added 2 × Enamel mug to your cart.")
    expect(page.locator("[data-cart-count]")).to_have_text("2")
