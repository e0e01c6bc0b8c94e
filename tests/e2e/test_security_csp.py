"""The pages still work under their Content-Security-Policy: Chromium enforces it, and any
script or style it blocks shows up as a violation that fails the test."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.e2e.shopper import buy

# Every violation the browser reports to the page, kept where the test can read it.
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline")));
"""


class CspWatch:
    """The CSP violations of one page, from its console and from the DOM's events."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.console: list[str] = []
        page.add_init_script(RECORD_VIOLATIONS)
        page.on("console", self._on_console)

    def _on_console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text:
            self.console.append(message.text)

    def violations(self) -> list[str]:
        return self.console + list(self.page.evaluate("window.cspViolations || []"))


@pytest.fixture
def csp(page: Page) -> Iterator[CspWatch]:
    yield CspWatch(page)


def test_tracking_page_updates_live_under_its_csp_without_a_violation(page: Page, csp: CspWatch) -> None:
    with page.expect_response(re.compile(r"/track/")) as tracking:
        buy(page, "MUG-001")
    assert "script-src 'nonce-" in tracking.value.headers["content-security-policy"]

    # Only the page's inline script moves the status on: it polls and redraws.
    expect(page.locator("[data-order-status]")).to_have_attribute("data-order-status", "completed", timeout=20_000)
    assert csp.violations() == []


def test_catalog_draws_its_thumbnails_without_inline_styles(page: Page, csp: CspWatch) -> None:
    page.goto("/")

    hues = page.locator(".thumb").evaluate_all("(els) => els.map((e) => getComputedStyle(e).getPropertyValue('--hue'))")
    assert len(set(hues)) > 1, "each product keeps its own colour"
    assert csp.violations() == []


def test_queues_page_loads_its_worker_list_under_its_csp(admin_page: Page, csp: CspWatch) -> None:
    admin_page.goto("/admin/queues")

    expect(admin_page.locator("[data-worker-count]")).to_have_attribute("data-worker-count", re.compile(r"^[0-9?]"))
    assert csp.violations() == []
