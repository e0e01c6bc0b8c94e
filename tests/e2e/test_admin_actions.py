"""An operator in a real browser cancels and refunds from the order page, and reads its history."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from playwright.sync_api import Page, expect

from shop.models import utcnow
from tests.support.inline_worker import record_messages
from tests.support.stack import Stack, order_payload

Screenshot = Callable[[Page, str], Path]
ADMIN_ACTOR = re.compile(r"^admin \(session [0-9a-f]{8}\) from 127\.0\.0\.1$")


def waiting_order(stack: Stack) -> str:
    """An order accepted but not yet picked up by a worker (its message held back), so it
    can still be cancelled whatever the worker's speed."""
    publisher = stack.services.publisher
    record_messages(stack.services)
    try:
        order_id = stack.place(order_payload(("MUG-001", 1), email="cancel-me@example.com"))["order_id"]
    finally:
        stack.services.publisher = publisher
    # Keep the workers' sweep from sending the held-back run during the test.
    stack.rows(
        "UPDATE orders SET lease_expires_at = :later WHERE id = :o RETURNING id",
        o=order_id,
        later=utcnow() + timedelta(hours=1),
    )
    return order_id


def test_operator_cancels_an_order_after_confirming_and_sees_it_in_the_timeline(
    admin_page: Page, stack: Stack, screenshot: Screenshot
) -> None:
    order_id = waiting_order(stack)
    page = admin_page
    page.goto(f"/admin/orders/{order_id}")
    expect(page.locator("[data-order-status]")).to_have_text("received")

    page.get_by_role("link", name="Cancel order…").click()
    expect(page.get_by_role("heading", name="Cancel this order?")).to_be_visible()
    assert stack.status(order_id)["status"] == "received"  # nothing happens before the confirmation
    screenshot(page, "admin-cancel-confirm")
    page.get_by_role("button", name="Yes, cancel the order").click()

    expect(page).to_have_url(re.compile(rf"/admin/orders/{order_id}$"))
    expect(page.locator(".flash-success")).to_contain_text(f"Cancelled order {order_id}")
    expect(page.locator("[data-order-status]")).to_have_text("cancelled")
    cancelled = page.locator('[data-history] [data-event="cancelled"]')
    expect(cancelled).to_contain_text("nothing was charged")
    expect(cancelled.locator("[data-event-actor]")).to_have_text(ADMIN_ACTOR)
    expect(page.locator("[data-order-action]")).to_have_count(0)  # nothing left to cancel
    screenshot(page, "admin-order-cancelled")
    assert stack.status(order_id)["status"] == "cancelled"


def test_operator_refunds_a_completed_order_and_the_shopper_sees_the_refund(
    admin_page: Page, stack: Stack, screenshot: Screenshot
) -> None:
    order_id = stack.place(order_payload(("MUG-001", 1), email="refund-me@example.com"))["order_id"]
    stack.wait_for(order_id, "completed", timeout=30)
    page = admin_page
    page.goto(f"/admin/orders/{order_id}")
    expect(page.get_by_role("link", name="Cancel order…")).to_have_count(0)  # shipped: refund only

    page.get_by_role("link", name="Refund…").click()
    expect(page.get_by_role("heading", name="Refund this order?")).to_be_visible()
    page.get_by_role("button", name=re.compile(r"^Yes, refund ")).click()

    expect(page.locator(".flash-success")).to_contain_text(f"Refunded order {order_id}")
    expect(page.locator("[data-order-status]")).to_have_text("completed")
    expect(page.locator('[data-step="payment"]')).to_have_attribute("data-step-status", "compensated")
    refunded = page.locator('[data-history] [data-event="refunded"]')
    expect(refunded.locator("[data-event-actor]")).to_have_text(ADMIN_ACTOR)
    screenshot(page, "admin-order-refunded")
    page.goto(f"/track/{order_id}")  # the worker's refund task reached the gateway
    expect(page.locator("[data-refund]")).to_contain_text("Refunded", timeout=20_000)
