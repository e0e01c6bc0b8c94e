"""Browser fixtures: one shop (PostgreSQL, Redis, a real worker) served over HTTP, and Chromium.

The stack lives for the whole e2e session: building it (a database, a worker
process) costs seconds, and each test works on its own orders and products.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from shop.schemas import ProductUpdate
from shop.services.admin import seed_products
from shop.services.catalog import DEMO_CATALOG
from tests.support.processes import ROOT, RedisServer, ServerThread
from tests.support.stack import ADMIN_TOKEN, Stack

if TYPE_CHECKING:
    from tests.conftest import Databases

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
# Screenshots the README shows; refreshed only on request so test runs leave git clean.
DOC_SCREENSHOTS = {
    "shop": ROOT / "docs/screenshots/shop.png",
    "tracking": ROOT / "docs/screenshots/tracking.png",
    "dashboard": ROOT / "docs/screenshots/dashboard.png",
    "tracking-declined-pay-again": ROOT / "docs/screenshots/declined.png",
    "admin-order-refunded": ROOT / "docs/screenshots/admin-order.png",
}
# Slow enough that a customer sees the steps tick by (about 1.5 s an order),
# fast enough for a suite of about a dozen orders.
LATENCY_SCALE = "0.4"


@pytest.fixture(scope="session")
def e2e_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A Redis of the browser tests' own: their worker lives all session and must
    never take (and apply to its own database) a task another test published."""
    server = RedisServer(tmp_path_factory.mktemp("e2e-redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def stack(databases: Databases, e2e_redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The demo shop on PostgreSQL with one running worker."""
    workdir = tmp_path_factory.mktemp("e2e-stack")
    with Stack(
        databases.new("postgresql"),
        e2e_redis.url,
        workdir,
        SIMULATED_LATENCY_SCALE=LATENCY_SCALE,
    ) as shop:
        worker = shop.start_worker(wait=False)  # boots while the catalog is seeded
        catalog = {sku: ProductUpdate(**fields) for sku, fields in DEMO_CATALOG.items()}
        with shop.app.app_context():
            seed_products(shop.services, catalog, reset=True)
        worker.wait_ready()
        yield shop


@pytest.fixture(scope="session")
def live_server(stack: Stack) -> Iterator[ServerThread]:
    with ServerThread(stack.app) as server:
        yield server


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def context(browser: Browser, live_server: ServerThread) -> Iterator[BrowserContext]:
    """A fresh browser profile per test: its own cookies, so its own cart and login."""
    ctx = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 860}, accept_downloads=True)
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def admin_page(page: Page) -> Page:
    """A page whose session is logged in to the admin."""
    page.goto("/admin/login")
    page.get_by_label("Admin token").fill(ADMIN_TOKEN)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url("**/admin/")
    return page


@pytest.fixture
def screenshot() -> Callable[[Page, str], Path]:
    """Save the page to test-artifacts/screenshots/<name>.png (and docs/, when asked)."""

    def save(page: Page, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        if name in DOC_SCREENSHOTS and os.environ.get("UPDATE_DOC_SCREENSHOTS") == "1":
            shutil.copyfile(path, DOC_SCREENSHOTS[name])
        return path

    return save
