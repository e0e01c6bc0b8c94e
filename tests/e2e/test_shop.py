"""A customer in a real browser: catalog, cart, checkout, live tracking, invoice."""

from __future__ import annotations

import io
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from playwright.sync_api import BrowserContext, Page, expect
from pypdf import PdfReader

from shop.states import STEPS
from tests.e2e.shopper import add_to_cart, buy, fill_checkout, form_fields, order_count
from tests.support.processes import ServerThread
from tests.support.stack import Stack

Screenshot = Callable[[Page, str], Path]


def test_customer_buys_two_products_and_watches_the_order_complete_live(
    page: Page, stack: Stack, screenshot: Screenshot
) -> None:
    orders_before = order_count(stack)
    page.goto("/")
    expect(page.locator('[data-sku="MUG-001"]')).to_contain_text("€12.00")
    expect(page.locator('[data-sku="LMP-001"]')).to_contain_text("Only 5 left")
    screenshot(page, "shop")
    page.locator('[data-sku="NB-001"]').get_by_role("link", name="Dot-grid notebook").click()
    expect(page.get_by_role("heading", name="Dot-grid notebook")).to_be_visible()
    screenshot(page, "product")

    page.goto("/")
    add_to_cart(page, "MUG-001", 1)
    add_to_cart(page, "NB-001", 2)
    page.get_by_role("link", name="Cart").click()
    expect(page.locator("[data-cart-line]")).to_have_count(2)
    expect(page.locator("[data-cart-total]")).to_have_text("€21.00")
    screenshot(page, "cart")
    page.get_by_role("link", name="Checkout").click()
    fill_checkout(page, priority="express")
    screenshot(page, "checkout")
    page.get_by_role("button", name="Place order").click()

    page.wait_for_url("**/track/*")
    status = page.locator("[data-order-status]")
    status_on_arrival = status.get_attribute("data-order-status")
    page.evaluate("window.stillTheSamePage = true")
    expect(status).to_have_attribute("data-order-status", "completed", timeout=20_000)
    assert status_on_arrival in {"received", "processing"}, "the page must update by itself, not arrive finished"
    assert page.evaluate("window.stillTheSamePage === true"), "the page updated without a reload"
    for step in STEPS:
        expect(page.locator(f'[data-step="{step}"]')).to_have_attribute("data-step-status", "succeeded")
    expect(page.locator('[data-step="payment"]')).to_contain_text("1 attempt")
    screenshot(page, "tracking")

    order_id = page.url.rsplit("/", 1)[-1]
    expect(page.locator("[data-order-id]")).to_have_text(order_id)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download invoice").click()
    pdf = Path(download.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    text = PdfReader(io.BytesIO(pdf)).pages[0].extract_text()
    assert order_id in text and "21.00 EUR" in text
    assert order_count(stack) == orders_before + 1


def test_declined_card_shows_the_failure_and_its_reason(page: Page, screenshot: Screenshot) -> None:
    buy(page, "BAG-001", card="tok_chargeDeclined")

    expect(page.locator("[data-order-status]")).to_have_attribute("data-order-status", "failed", timeout=20_000)
    reason = page.locator("[data-failure-reason]")
    expect(reason).to_have_attribute("data-failure-reason", "payment_declined")
    expect(reason).to_contain_text("Your card was declined. Nothing was charged")
    expect(page.locator('[data-step="payment"]')).to_have_attribute("data-step-status", "failed")
    expect(page.locator('[data-step="inventory"]')).to_have_attribute("data-step-status", "compensated")
    expect(page.locator('[data-step="invoice"]')).to_have_attribute("data-step-status", "skipped")
    expect(page.get_by_role("link", name="Download invoice")).to_be_hidden()
    screenshot(page, "tracking-declined")


def test_checkout_with_bad_input_shows_the_errors_next_to_the_fields_and_creates_nothing(
    page: Page, stack: Stack, screenshot: Screenshot
) -> None:
    page.goto("/")
    add_to_cart(page, "SOC-001", 1)
    page.goto("/checkout")
    orders_before = order_count(stack)

    fill_checkout(page, name="", email="ada-at-example", city="", country="")
    page.get_by_role("button", name="Place order").click()

    expect(page.locator("[data-form-errors]")).to_be_visible()
    expect(page.locator("#name-error")).to_have_text("Please fill this in.")
    expect(page.locator("#email-error")).to_contain_text("valid email address")
    expect(page.locator("#city-error")).to_have_text("Please fill this in.")
    expect(page.locator("#country-error")).to_have_text("Please choose a country.")
    expect(page.locator('[name="email"]')).to_have_attribute("aria-invalid", "true")
    expect(page.locator('[name="email"]')).to_have_value("ada-at-example")
    expect(page.locator('[name="country"]')).to_have_value("")
    expect(page.locator('[name="line1"]')).to_have_value("12 St James's Square")
    expect(page.locator("#line1-error")).to_have_count(0)
    screenshot(page, "checkout-errors")
    assert order_count(stack) == orders_before
    expect(page.locator("[data-cart-count]")).to_have_text("1")

    fill_checkout(page)
    page.get_by_role("button", name="Place order").click()
    page.wait_for_url("**/track/*")
    assert order_count(stack) == orders_before + 1


def test_cart_changes_quantities_and_removes_lines(page: Page) -> None:
    page.goto("/")
    add_to_cart(page, "TEE-001", 1)
    add_to_cart(page, "STK-001", 2)
    page.goto("/cart")

    page.get_by_label("Quantity of Organic cotton T-shirt").fill("3")
    page.locator('[data-cart-line="TEE-001"]').get_by_role("button", name="Update").click()
    expect(page.locator("[data-cart-total]")).to_have_text("€80.00")
    page.get_by_role("button", name="Remove Sticker pack").click()

    expect(page.locator("[data-cart-line]")).to_have_count(1)
    expect(page.locator("[data-cart-total]")).to_have_text("€75.00")
    expect(page.locator("[data-cart-count]")).to_have_text("3")


def test_a_checkout_form_submitted_twice_makes_one_order(
    page: Page, context: BrowserContext, stack: Stack, live_server: ServerThread
) -> None:
    page.goto("/")
    add_to_cart(page, "PEN-001", 1)
    page.goto("/checkout")
    fill_checkout(page)
    submitted = form_fields(page, "form.checkout-form")
    session_cookie = {c["name"]: c["value"] for c in context.cookies()}
    orders_before = order_count(stack)

    def submit(_: int) -> requests.Response:
        return requests.post(
            f"{live_server.url}/checkout",
            data=submitted,
            cookies=session_cookie,
            allow_redirects=False,
            timeout=10,
        )

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(submit, range(2)))

    assert [a.status_code for a in answers] == [303, 303]
    assert answers[0].headers["Location"] == answers[1].headers["Location"]
    assert "/track/" in answers[0].headers["Location"]
    assert order_count(stack) == orders_before + 1
