"""An operator in a real browser: login, orders, a dead letter replayed, queues, stock."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from celery.app.control import Control
from playwright.sync_api import Page, expect

from shop.dispatch import CeleryPublisher
from shop.schemas import ProductUpdate
from shop.services.admin import upsert_product
from shop.services.catalog import DEMO_CATALOG
from tests.support.processes import CeleryWorker
from tests.support.stack import Stack, order_payload

Screenshot = Callable[[Page, str], Path]
ADMIN_PAGES = [
    "/admin/",
    "/admin/orders",
    "/admin/dead-letters",
    "/admin/queues",
    "/admin/products",
    "/admin/orders/any-order-id",
]


@pytest.fixture(scope="module", autouse=True)
def faulty_express_lane(stack: Stack) -> Iterator[CeleryWorker]:
    """For this module, express orders go to a worker whose warehouse step always fails.

    The healthy worker stops consuming the express queue; the faulty one boots
    in the background while the first tests run (a worker takes seconds to start).
    """
    healthy = [w.name for w in stack.workers if w.process and w.process.poll() is None]
    assert control(stack).cancel_consumer("express", destination=healthy, reply=True)
    faulty = stack.start_worker(wait=False, queues="express", name="faulty", env={"FAULTS": "warehouse:permanent=1"})
    yield faulty
    faulty.stop()
    control(stack).add_consumer("express", destination=healthy, reply=True)


@pytest.fixture
def dead_lettered_order(stack: Stack, faulty_express_lane: CeleryWorker) -> tuple[str, str]:
    """(order id, email) of an order whose warehouse step failed for good, on a real worker.

    Afterwards the express queue is back with the healthy worker, so a replay succeeds.
    """
    faulty_express_lane.wait_ready()
    email = f"replay-{secrets.token_hex(4)}@example.com"
    order_id = stack.place(order_payload(("CAP-001", 1), email=email, priority="express"))["order_id"]
    stack.wait_for(order_id, "needs_attention", timeout=30)
    healthy = [w.name for w in stack.workers if w is not faulty_express_lane and w.process.poll() is None]
    assert control(stack).cancel_consumer("express", destination=[faulty_express_lane.name], reply=True)
    assert control(stack).add_consumer("express", destination=healthy, reply=True)
    return order_id, email


def control(stack: Stack) -> Control:
    publisher = stack.services.publisher
    assert isinstance(publisher, CeleryPublisher)
    return publisher.celery.control


@pytest.fixture
def poster_stock(stack: Stack) -> Iterator[str]:
    """The poster's SKU; its demo stock is restored afterwards."""
    yield "PST-001"
    with stack.app.app_context():
        upsert_product(stack.services, "PST-001", ProductUpdate(**DEMO_CATALOG["PST-001"]))


def test_admin_pages_refuse_access_without_login(page: Page, stack: Stack) -> None:
    for path in ADMIN_PAGES:
        page.goto(path)
        expect(page).to_have_url(re.compile(r"/admin/login\?next="))
        expect(page.get_by_role("heading", name="Admin login")).to_be_visible()
        expect(page.locator("table")).to_have_count(0)

    page.request.post("/admin/products", form={"sku": "MUG-001", "name": "Hacked", "price": "0", "stock": "0"})
    assert stack.scalar("SELECT name FROM products WHERE sku = 'MUG-001'") == "Enamel mug"

    page.goto("/admin/login")
    page.get_by_label("Admin token").fill("not-the-token")
    page.get_by_role("button", name="Log in").click()
    expect(page.locator("#token-error")).to_have_text("That token is not right.")
    page.goto("/admin/")
    expect(page.get_by_role("heading", name="Admin login")).to_be_visible()


def test_admin_is_closed_when_no_admin_token_is_set(
    admin_page: Page, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(stack.app.config, "ADMIN_TOKEN", "")

    for path in ["/admin/login", "/admin/"]:
        response = admin_page.goto(path)
        assert response is not None and response.status == 403
        expect(admin_page.get_by_text("The admin is closed")).to_be_visible()


def test_operator_logs_in_and_out(admin_page: Page, screenshot: Screenshot) -> None:
    expect(admin_page.get_by_role("heading", name="Dashboard")).to_be_visible()
    expect(admin_page.get_by_role("link", name="Flower ↗")).to_have_attribute("href", "http://localhost:5555")
    admin_page.get_by_role("button", name="Log out").click()

    expect(admin_page.get_by_role("heading", name="Admin login")).to_be_visible()
    screenshot(admin_page, "admin-login")
    admin_page.goto("/admin/")
    expect(admin_page.get_by_role("heading", name="Admin login")).to_be_visible()


def test_operator_finds_a_stuck_order_and_replays_its_dead_letter(
    admin_page: Page, dead_lettered_order: tuple[str, str], screenshot: Screenshot
) -> None:
    order_id, email = dead_lettered_order
    page = admin_page
    page.get_by_role("link", name="Orders", exact=True).click()  # the admin opens on the dashboard
    page.get_by_label("Status").select_option("needs_attention")
    page.get_by_label("Order id or email").fill(email)
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("[data-order-row]")).to_have_count(1)
    expect(page.locator("[data-order-row]")).to_have_attribute("data-order-row", order_id)
    screenshot(page, "admin-orders")
    page.get_by_label("Status").select_option("completed")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("[data-order-row]")).to_have_count(0)

    page.goto(f"/admin/orders/{order_id}")
    expect(page.locator("[data-order-status]")).to_have_text("needs_attention")
    warehouse = page.locator('[data-step="warehouse"]')
    expect(warehouse).to_have_attribute("data-step-status", "failed")
    expect(warehouse).to_contain_text("permanent: injected permanent fault in warehouse")
    screenshot(page, "admin-order")

    page.get_by_role("link", name="Dead letters").click()
    letter = page.locator("[data-dead-letter]").filter(has=page.locator(f'a[href="/admin/orders/{order_id}"]'))
    expect(letter).to_contain_text("Hand over to the warehouse")
    screenshot(page, "admin-dead-letters")
    letter.get_by_role("button", name="Replay").click()
    expect(page.locator(".flash-success")).to_contain_text(f"Replayed the warehouse step of order {order_id}")
    expect(letter).to_have_count(0)

    page.goto(f"/track/{order_id}")
    expect(page.locator("[data-order-status]")).to_have_attribute("data-order-status", "completed", timeout=20_000)
    expect(page.locator('[data-step="warehouse"]')).to_have_attribute("data-step-status", "succeeded")
    page.goto(f"/admin/orders/{order_id}")
    expect(page.locator("[data-order-status]")).to_have_text("completed")
    expect(page.get_by_role("button", name="Replay")).to_have_count(0)


def test_queues_page_shows_every_queue_and_the_running_worker(admin_page: Page, screenshot: Screenshot) -> None:
    admin_page.get_by_role("link", name="Queues").click()

    for queue in ("express", "payments", "orders", "fulfilment"):
        expect(admin_page.locator(f'[data-queue="{queue}"]')).to_be_visible()
    expect(admin_page.locator("[data-worker-count]")).to_have_attribute("data-worker-count", re.compile(r"^[1-9]"))
    screenshot(admin_page, "admin-queues")


def test_operator_sets_stock_to_zero_and_the_catalog_shows_it_sold_out(
    admin_page: Page, stack: Stack, poster_stock: str, screenshot: Screenshot
) -> None:
    admin_page.get_by_role("link", name="Products").click()
    row = admin_page.locator(f'[data-product="{poster_stock}"]')
    row.get_by_label(f"Stock of {poster_stock}").fill("0")
    row.get_by_label(f"Price of {poster_stock} in EUR").fill("31.50")
    row.get_by_role("button", name="Save").click()

    expect(admin_page.locator(".flash-success")).to_have_text(f"Saved {poster_stock}.")
    screenshot(admin_page, "admin-products")
    assert stack.stock(poster_stock) == 0
    admin_page.goto("/")
    card = admin_page.locator(f'[data-sku="{poster_stock}"]')
    expect(card).to_contain_text("Sold out")
    expect(card).to_contain_text("€31.50")
    expect(card.get_by_role("button", name="Add")).to_be_disabled()
