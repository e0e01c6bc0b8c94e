"""The operators' dashboard over HTTP: /admin/ draws SVG charts of the ledger, /admin/api/dashboard
serves the same series as JSON, and the admin menu carries the dead-letter count.

Real PostgreSQL and SQLite (the buckets are computed in SQL on both), real Redis.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import update

from shop.models import Order, StepRun, utcnow
from shop.services.dashboard import record_queue_depth
from tests.support.stack import ADMIN_TOKEN, Stack, order_payload

CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
BACKENDS = pytest.mark.parametrize("db_stack", ["postgresql", "sqlite"], indirect=True)


def log_in_to_admin(client: FlaskClient) -> None:
    page = client.get("/admin/login").get_data(as_text=True)
    match = CSRF_FIELD.search(page)
    assert match, "the login page has no CSRF field"
    answer = client.post("/admin/login", data={"csrf_token": match.group(1), "token": ADMIN_TOKEN})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    assert answer.headers["Location"].endswith("/admin/"), "after login the operator lands on the dashboard"


def drawn(html: str, series: str) -> float:
    """The sum of the data points a chart draws for ``series``."""
    return sum(float(v) for v in re.findall(rf'<circle [^>]*data-series="{series}" data-value="([^"]+)"', html))


def complete(stack: Stack, order_id: str, step_ms: dict[str, int]) -> None:
    """Mark an order completed now, its steps succeeded with the given durations."""
    now = utcnow()
    with stack.services.db.begin() as session:
        session.execute(update(Order).where(Order.id == order_id).values(status="completed", updated_at=now))
        for step, ms in step_ms.items():
            session.execute(
                update(StepRun)
                .where(StepRun.order_id == order_id, StepRun.step == step)
                .values(status="succeeded", attempts=1, started_at=now - timedelta(milliseconds=ms), finished_at=now)
            )


@pytest.fixture
def busy_shop(db_stack: Stack) -> dict[str, list[str]]:
    """Five orders this minute: two completed (EUR 20.00 each), one dead-lettered, two still waiting."""
    sku = db_stack.add_product(price_cents=1000)
    ids = [db_stack.place(order_payload((sku, 2)))["order_id"] for _ in range(5)]
    complete(db_stack, ids[0], {"inventory": 100, "payment": 300})
    complete(db_stack, ids[1], {"inventory": 200, "payment": 500})
    db_stack.dead_letter_by_hand(ids[2], "warehouse")
    return {"completed": ids[:2], "dead": ids[2:3], "waiting": ids[3:]}


@BACKENDS
def test_admin_opens_on_a_dashboard_of_svg_charts_drawn_from_the_ledger(
    db_stack: Stack, busy_shop: dict[str, list[str]]
) -> None:
    client = db_stack.client
    log_in_to_admin(client)

    page = client.get("/admin/")

    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<h1>Dashboard</h1>" in html
    for chart in ("orders", "latency", "failures", "queues"):
        assert re.search(rf'data-chart="{chart}".*?<svg class="chart"', html, re.S), f"no {chart} chart"
    # Points for this minute (or two, when the test straddles a minute's end).
    assert drawn(html, "completed") == 2
    assert drawn(html, "needs_attention") == 1
    assert drawn(html, "in_progress") == 2
    assert drawn(html, "dead_letters") == 1
    assert re.search(r'<rect [^>]*data-series="p95" data-value="500"', html), "payment p95 is 500 ms"
    assert re.search(r'data-stat="revenue">\s*€40.00', html), "revenue today: two completed orders of €20"
    assert re.search(r'data-stat="orders">5<', html)
    assert "style=" not in html, "the CSP allows no inline styles"


@BACKENDS
def test_dashboard_api_serves_the_series_for_the_last_hour_and_the_last_day(
    db_stack: Stack, busy_shop: dict[str, list[str]]
) -> None:
    headers = db_stack.admin_headers()

    hour = db_stack.client.get("/admin/api/dashboard", headers=headers).get_json()
    day = db_stack.client.get("/admin/api/dashboard?window=day", headers=headers).get_json()

    assert (hour["window"], hour["bucket_seconds"], len(hour["buckets"])) == ("hour", 60, 60)
    assert (day["window"], day["bucket_seconds"], len(day["buckets"])) == ("day", 900, 96)
    for answer in (hour, day):
        recent = {name: sum(values[-2:]) for name, values in answer["orders"].items()}
        assert recent == {"completed": 2, "failed": 0, "needs_attention": 1, "cancelled": 0, "in_progress": 2}
        assert answer["orders_total"] == 5
        assert sum(answer["dead_letters"][-2:]) == 1 and answer["dead_letters_now"] == 1
        assert sum(answer["retries"][-2:]) == 2, "the dead letter took 3 attempts: 2 retries"
        latency = {row["step"]: row for row in answer["latency"]}
        assert (latency["inventory"]["p50_ms"], latency["inventory"]["p95_ms"]) == (100.0, 200.0)
        assert (latency["payment"]["p50_ms"], latency["payment"]["p95_ms"]) == (300.0, 500.0)
        assert latency["email"]["count"] == 0 and latency["email"]["p50_ms"] is None
        assert answer["revenue_today"] == [{"currency": "EUR", "cents": 4000, "orders": 2}]


@BACKENDS
def test_revenue_today_leaves_out_refunded_orders(db_stack: Stack, busy_shop: dict[str, list[str]]) -> None:
    headers = db_stack.admin_headers()
    refunded = busy_shop["completed"][0]
    assert db_stack.client.post(f"/admin/api/orders/{refunded}/refund", headers=headers).status_code == 200

    answer = db_stack.client.get("/admin/api/dashboard", headers=headers).get_json()

    assert answer["revenue_today"] == [{"currency": "EUR", "cents": 2000, "orders": 1}]


def test_dashboard_draws_queue_depth_sampled_by_the_workers(db_stack: Stack) -> None:
    sku = db_stack.add_product()
    for _ in range(3):  # no worker runs: the three runs wait in their queue
        db_stack.place(order_payload((sku, 1)))
    with db_stack.app.app_context():
        waiting = record_queue_depth(db_stack.services, db_stack.app.config["CELERY_BROKER_URL"])
    assert waiting >= 3

    answer = db_stack.client.get("/admin/api/dashboard", headers=db_stack.admin_headers()).get_json()
    client = db_stack.client
    log_in_to_admin(client)
    html = client.get("/admin/dashboard/charts?window=day").get_data(as_text=True)

    assert waiting in answer["queue_depth"]["waiting"][-2:]
    assert drawn(html, "waiting") == waiting


def test_dashboard_api_refuses_an_unknown_window_with_a_json_error(db_stack: Stack) -> None:
    answer = db_stack.client.get("/admin/api/dashboard?window=week", headers=db_stack.admin_headers())

    assert answer.status_code == 422
    assert answer.get_json()["error"]["code"] == "invalid_window"
    assert db_stack.client.get("/admin/api/dashboard").status_code == 401


def test_orders_list_keeps_its_own_page_and_the_menu_shows_the_dead_letter_count(
    db_stack: Stack, busy_shop: dict[str, list[str]]
) -> None:
    client = db_stack.client
    log_in_to_admin(client)

    orders = client.get("/admin/orders?status=needs_attention").get_data(as_text=True)

    assert "<h1>Orders</h1>" in orders
    assert f'data-order-row="{busy_shop["dead"][0]}"' in orders
    menu = re.search(r'<nav aria-label="Admin">.*?</nav>', orders, re.S)
    assert menu and 'href="/admin/orders"' in menu.group(0) and 'href="/admin/"' in menu.group(0)
    assert re.search(r'data-dead-letter-count="1">Dead letters <span class="pill">1</span>', menu.group(0))
