"""Usable by everyone: labels, keyboard, a 375 px phone, and pages that render fast."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Browser, Page, expect

from tests.e2e.conftest import SCREENSHOTS
from tests.e2e.shopper import add_to_cart
from tests.support.processes import ServerThread
from tests.support.stack import ADMIN_TOKEN, Stack, order_payload

Screenshot = Callable[[Page, str], Path]
CHECKOUT_FIELDS = {
    "name",
    "email",
    "line1",
    "city",
    "postal_code",
    "country",
    "payment_token",
    "priority",
}
UNLABELLED_FIELDS = """() => [...document.querySelectorAll(
    'main input:not([type=hidden]), main select, main textarea')]
    .filter((field) => field.labels.length === 0).map((field) => field.name)"""
# The target is 50 ms; the test allows twice that so a busy CI runner does not fail it.
RENDER_TARGET_MS = 50
RENDER_LIMIT_MS = 2 * RENDER_TARGET_MS


def test_every_checkout_field_has_a_label_and_is_reachable_by_keyboard(page: Page) -> None:
    page.goto("/")
    add_to_cart(page, "MUG-002", 1)
    page.goto("/checkout")

    assert page.evaluate(UNLABELLED_FIELDS) == []
    reached = set()
    for _ in range(30):
        page.keyboard.press("Tab")
        reached.add(page.evaluate("document.activeElement.name || document.activeElement.textContent.trim()"))
    assert CHECKOUT_FIELDS <= reached
    assert "Place order" in reached


def test_a_keyboard_alone_can_put_a_product_in_the_cart(page: Page) -> None:
    page.goto("/")
    for _ in range(12):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.hasAttribute('data-add-to-cart')"):
            break
    page.keyboard.press("Enter")

    expect(page.locator("[data-cart-count]")).to_have_text("1")


def test_pages_fit_a_375_px_phone_screen(
    browser: Browser, live_server: ServerThread, stack: Stack, screenshot: Screenshot
) -> None:
    order_id = stack.place(order_payload(("NB-001", 1)))["order_id"]
    phone = browser.new_context(base_url=live_server.url, viewport={"width": 375, "height": 812})
    page = phone.new_page()
    page.goto("/")
    add_to_cart(page, "NB-001", 1)

    for name, path in [
        ("mobile-shop", "/"),
        ("mobile-product", "/catalog/NB-001"),
        ("mobile-cart", "/cart"),
        ("mobile-checkout", "/checkout"),
        ("mobile-tracking", f"/track/{order_id}"),
    ]:
        page.goto(path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 375, f"{path} scrolls sideways"
        assert page.evaluate("parseFloat(getComputedStyle(document.body).fontSize)") >= 16
        screenshot(page, name)
    phone.close()


def test_pages_render_fast_with_the_demo_catalog(page: Page, stack: Stack) -> None:
    order_id = stack.place(order_payload(("MUG-001", 2), ("TEE-002", 1)))["order_id"]
    page.goto("/")
    add_to_cart(page, "MUG-001", 1)
    add_to_cart(page, "TEE-002", 2)
    page.request.post("/admin/login", form={"token": ADMIN_TOKEN, "csrf_token": csrf_token(page)})
    pages = [
        "/",
        "/catalog/MUG-001",
        "/cart",
        "/checkout",
        f"/track/{order_id}",
        "/admin/",
        "/admin/orders",
        f"/admin/orders/{order_id}",
        "/admin/dead-letters",
        "/admin/queues",
        "/admin/products",
    ]

    medians = {path: median_server_ms(page, path) for path in pages}

    SCREENSHOTS.parent.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS.parent / "page-timings.json").write_text(json.dumps(medians, indent=2))
    slow = {path: ms for path, ms in medians.items() if ms > RENDER_LIMIT_MS}
    assert not slow, f"median server time over {RENDER_LIMIT_MS} ms: {slow}"


def csrf_token(page: Page) -> str:
    return page.locator('input[name="csrf_token"]').first.get_attribute("value") or ""


def median_server_ms(page: Page, path: str, runs: int = 8) -> float:
    """Median of the Server-Timing the app reports, after one warm-up request."""
    timings = []
    for _ in range(runs + 1):
        response = page.request.get(path)
        assert response.ok, f"{path}: {response.status}"
        timings.append(float(response.headers["server-timing"].split("dur=")[1]))
    return round(statistics.median(timings[1:]), 1)


def test_browser_pages_show_an_html_error_page_while_the_api_keeps_json_errors(page: Page) -> None:
    missing_page = page.goto("/track/no-such-order")
    assert missing_page is not None and missing_page.status == 404
    expect(page.get_by_role("heading", name="Not Found")).to_be_visible()
    expect(page.get_by_role("link", name="Back to the shop")).to_be_visible()

    api_answer = page.request.get("/orders/no-such-order/status")
    assert api_answer.status == 404
    assert api_answer.json()["error"]["code"] == "not_found"
