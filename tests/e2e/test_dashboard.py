"""An operator opens the admin in a real browser and lands on the dashboard: SVG charts of the
orders just placed, the dead-letter count in the menu, and numbers that refresh by themselves."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from playwright.sync_api import Page, expect
from sqlalchemy import update

from shop.models import Order, StepRun, utcnow
from tests.support.stack import ADMIN_TOKEN, Stack, order_payload

Screenshot = Callable[[Page, str], Path]


def dead_letter_one(stack: Stack) -> str:
    """An order whose warehouse step is in the dead-letter list (as the run leaves it)."""
    order_id = stack.place(order_payload(("MUG-001", 1)))["order_id"]
    stack.wait_for(order_id, "completed", timeout=30)
    now = utcnow()
    with stack.services.db.begin() as session:
        session.execute(update(Order).where(Order.id == order_id).values(status="needs_attention", updated_at=now))
        session.execute(
            update(StepRun)
            .where(StepRun.order_id == order_id, StepRun.step == "warehouse")
            .values(status="failed", last_error="permanent: dashboard test", dead_lettered_at=now)
        )
    return order_id


def test_operator_lands_on_a_dashboard_of_charts_that_refresh_by_themselves(
    page: Page, stack: Stack, screenshot: Screenshot
) -> None:
    placed = [stack.place(order_payload(("TEE-002", 1)))["order_id"] for _ in range(3)]
    for order_id in placed:
        stack.wait_for(order_id, "completed", timeout=30)
    dead_letter_one(stack)
    dead = stack.scalar("SELECT count(*) FROM step_runs WHERE dead_lettered_at IS NOT NULL")

    page.goto("/admin/login")
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Log in").click()

    expect(page).to_have_url(re.compile(r"/admin/$"))
    expect(page.get_by_role("heading", name="Dashboard")).to_be_visible()
    for chart in ("orders", "latency", "failures", "queues"):
        expect(page.locator(f'[data-chart="{chart}"] svg.chart')).to_be_visible()
    expect(page.locator('[data-chart="orders"] circle[data-series="completed"]').first).to_be_visible()
    expect(page.locator('[data-chart="latency"] rect[data-series="p95"]').first).to_be_visible()
    menu = page.get_by_role("navigation", name="Admin")
    expect(menu.get_by_role("link", name="Dead letters")).to_have_attribute("data-dead-letter-count", str(dead))
    expect(menu.locator(".pill")).to_have_text(str(dead))
    screenshot(page, "dashboard")

    shown = int(page.locator('[data-stat="orders"]').inner_text())
    stack.place(order_payload(("TEE-002", 1)))
    expect(page.locator('[data-stat="orders"]')).to_have_text(str(shown + 1), timeout=20_000)

    page.get_by_role("link", name="Last day").click()
    expect(page).to_have_url(re.compile(r"window=day"))
    expect(page.locator('[data-chart="orders"] circle[data-series="completed"]').first).to_be_visible()
    menu.get_by_role("link", name="Orders", exact=True).click()
    expect(page.get_by_role("heading", name="Orders")).to_be_visible()
