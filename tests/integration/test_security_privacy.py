"""Less personal data on the public side, a guarded and cached /metrics, bounded admin lists.

Through the Flask test client, on real PostgreSQL and SQLite and a real Redis;
the SMTP refusal comes from a real SMTP server on loopback, through a real worker.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from flask import url_for
from flask.testing import FlaskClient
from sqlalchemy import event, update

from shop.models import Order, StepRun, utcnow
from shop.public_errors import PUBLIC_MESSAGES, PublicErrorCode
from shop.services.admin import MAX_PAGE_SIZE
from tests.conftest import BACKENDS
from tests.support.processes import RedisServer, free_port, wait_until
from tests.support.stack import ADMIN_TOKEN, Stack, order_payload

MakeStack = Callable[..., Stack]
CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')
# What a mail server's refusal quotes: a host, an address, the customer's email.
SMTP_REFUSAL = "5.7.1 relay mx-7.internal.example [10.0.0.7] refuses mail for <ada@example.com>"


# --- less personal data ----------------------------------------------------------


def test_order_detail_answers_without_the_full_name_or_the_street_address(stack: Stack) -> None:
    payload = order_payload((stack.add_product(), 1), email="grace.hopper@example.com")
    payload["customer"]["name"] = "Grace Brewster Hopper"
    payload["shipping_address"].update(line1="7 Harbour Lane", line2="Flat 3", postal_code="EC1A 1BB")
    order_id = stack.place(payload)["order_id"]

    detail = stack.client.get(f"/orders/{order_id}").get_json()
    tracking = stack.client.get(f"/track/{order_id}").get_data(as_text=True)

    assert detail["customer"] == {"email": "g***@example.com"}
    assert detail["shipping_address"] == {"city": "London", "country": "GB"}
    for page in (str(detail), tracking):
        for private in ("Grace", "Hopper", "Harbour", "Flat 3", "EC1A", "grace.hopper"):
            assert private not in page


def test_declined_card_shows_the_public_code_and_message_on_the_status_and_the_tracking_page(stack: Stack) -> None:
    order_id = stack.place(order_payload((stack.add_product(), 1), token="tok_chargeDeclined"))["order_id"]

    status = stack.wait_for(order_id, "failed")

    errors = {s["name"]: s["error"] for s in status["steps"]}
    declined = PUBLIC_MESSAGES[PublicErrorCode.PAYMENT_DECLINED]
    assert errors == {
        "inventory": None,
        "payment": {"code": "payment_declined", "message": declined},
        "email": None,
        "invoice": None,
        "warehouse": None,
    }
    raw = stack.scalar("SELECT last_error FROM step_runs WHERE order_id = :o AND step = 'payment'", o=order_id)
    assert raw and raw not in str(status)
    tracking = stack.client.get(f"/track/{order_id}").get_data(as_text=True)
    assert declined in tracking and 'data-error-code="payment_declined"' in tracking and raw not in tracking


class RefusingSmtpServer:
    """A real SMTP server that refuses every message for good, quoting its internals."""

    def __init__(self) -> None:
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        return f"554 {SMTP_REFUSAL}"


@pytest.fixture
def refusing_smtp() -> Iterator[RefusingSmtpServer]:
    server = RefusingSmtpServer()
    server.controller.start()
    yield server
    server.controller.stop()


def test_public_status_never_quotes_the_smtp_reply_that_the_admin_sees(
    make_stack: MakeStack, own_redis: RedisServer, refusing_smtp: RefusingSmtpServer
) -> None:
    # Its own Redis: the module's shared stack has a worker that would take this order's messages.
    stack = make_stack(own_redis.url, "postgresql", SMTP_URL=f"smtp://127.0.0.1:{refusing_smtp.port}")
    stack.start_worker()
    order_id = stack.place(order_payload((stack.add_product(), 1)))["order_id"]

    status = stack.wait_for(order_id, "needs_attention")

    email = next(s for s in status["steps"] if s["name"] == "email")
    assert email["error"] == {"code": "internal_error", "message": PUBLIC_MESSAGES[PublicErrorCode.INTERNAL_ERROR]}
    public = stack.client.get(f"/orders/{order_id}/status").get_data(as_text=True)
    tracking = stack.client.get(f"/track/{order_id}").get_data(as_text=True)
    for page in (public, tracking):
        assert "internal.example" not in page and "10.0.0.7" not in page and "refuses mail" not in page
    letters = stack.client.get("/admin/api/dead-letters", headers=stack.admin_headers()).get_json()
    assert [(d["order_id"], d["step"]) for d in letters] == [(order_id, "email")]
    assert "mx-7.internal.example" in letters[0]["error"]  # the operator still reads the raw reply
    admin = logged_in_admin(stack)
    assert "mx-7.internal.example" in admin.get(f"/admin/orders/{order_id}").get_data(as_text=True)


@pytest.mark.parametrize("db_stack", BACKENDS, indirect=True)
@pytest.mark.parametrize(
    ("step_status", "public_code"),
    [("retrying", "temporary_failure"), ("running", "temporary_failure"), ("failed", "internal_error")],
)
def test_a_step_error_is_shown_publicly_as_a_code_by_the_steps_state(
    db_stack: Stack, step_status: str, public_code: str
) -> None:
    order_id = db_stack.place(order_payload((db_stack.add_product(), 1)))["order_id"]
    raw = "OperationalError: connection to db-primary.internal:5432 failed; SELECT * FROM payment_charges"
    record_step_error(db_stack, order_id, "warehouse", step_status, raw)

    status = db_stack.client.get(f"/orders/{order_id}/status")

    warehouse = next(s for s in status.get_json()["steps"] if s["name"] == "warehouse")
    assert warehouse["error"] == {"code": public_code, "message": PUBLIC_MESSAGES[PublicErrorCode(public_code)]}
    assert "db-primary" not in status.get_data(as_text=True) and "SELECT" not in status.get_data(as_text=True)


def record_step_error(stack: Stack, order_id: str, step: str, status: str, error: str) -> None:
    """Put the ledger where a worker would leave it after a failed attempt."""
    with stack.services.db.begin() as session:
        session.execute(
            update(StepRun)
            .where(StepRun.order_id == order_id, StepRun.step == step)
            .values(status=status, attempts=2, last_error=error, finished_at=utcnow())
        )


@pytest.mark.parametrize("db_stack", BACKENDS, indirect=True)
def test_sql_parameters_never_reach_the_logs_or_the_error_message(
    db_stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "ada.private@example.com"
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")

    with pytest.raises(sa.exc.DBAPIError) as failure:
        with db_stack.services.db.begin() as session:
            session.execute(sa.text("SELECT :email FROM no_such_table"), {"email": secret})

    assert "no_such_table" in str(failure.value)  # the statement is still there to debug
    assert secret not in str(failure.value)
    assert caplog.records and secret not in caplog.text


# --- /metrics ----------------------------------------------------------------------


def test_metrics_are_closed_when_no_metrics_token_is_set(make_stack: MakeStack, redis_server: RedisServer) -> None:
    stack = make_stack(redis_server.url, "sqlite", METRICS_TOKEN="")

    answer = stack.client.get("/metrics", headers={"Authorization": "Bearer "})

    assert answer.status_code == 403 and answer.get_json()["error"]["code"] == "metrics_disabled"


@pytest.mark.parametrize("db_stack", ["sqlite"], indirect=True)
def test_metrics_need_the_bearer_token(db_stack: Stack) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token"}, {"Authorization": f"Bearer {ADMIN_TOKEN}"}):
        answer = db_stack.client.get("/metrics", headers=headers)
        assert answer.status_code == 401 and answer.get_json()["error"]["code"] == "unauthorized"

    answer = db_stack.client.get("/metrics", headers=db_stack.metrics_headers())

    assert answer.status_code == 200 and "shop_orders" in answer.get_data(as_text=True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_flood_of_scrapes_reads_the_database_once_per_cache_period(
    make_stack: MakeStack, redis_server: RedisServer, backend: str
) -> None:
    stack = make_stack(redis_server.url, backend, METRICS_CACHE_SECONDS="1")
    with counted_statements(stack) as statements:
        first = stack.client.get("/metrics", headers=stack.metrics_headers())
        after_first = len(statements)
        stack.place(order_payload((stack.add_product(), 1)))
        before_flood = len(statements)
        flood = [stack.client.get("/metrics", headers=stack.metrics_headers()) for _ in range(20)]
        after_flood = len(statements)

        assert first.status_code == 200 and after_first > 0
        assert after_flood == before_flood  # twenty scrapes, not one statement
        assert {page.get_data() for page in flood} == {first.get_data()}

        def fresh_page() -> bool:
            page = stack.client.get("/metrics", headers=stack.metrics_headers()).get_data(as_text=True)
            return 'shop_orders{status="received"} 1.0' in page

        wait_until(fresh_page, 5, 0.1, "a fresh metrics page")  # the period over, the next scrape reads again
        assert len(statements) > after_flood


@contextmanager
def counted_statements(stack: Stack) -> Iterator[list[str]]:
    """Every SQL statement the app's engine sends while inside the block."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(stack.services.db.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(stack.services.db.engine, "before_cursor_execute", count)


# --- admin lists -------------------------------------------------------------------


def add_orders(stack: Stack, emails: list[str]) -> list[str]:
    """Orders placed a second apart, the first email the oldest; their ids newest first."""
    start = utcnow() - timedelta(days=1)
    rows = [
        Order(
            customer_email=email,
            customer_name="Test Customer",
            shipping_address={"line1": "1 Main St", "city": "London", "postal_code": "N1 9GU", "country": "GB"},
            payment_token="tok_visa",
            total_cents=1000,
            currency="EUR",
            created_at=start + timedelta(seconds=i),
        )
        for i, email in enumerate(emails)
    ]
    with stack.services.db.begin() as session:
        session.add_all(rows)
    return [o.id for o in reversed(rows)]


def admin_orders(stack: Stack, **params: Any) -> Any:
    return stack.client.get("/admin/api/orders", query_string=params, headers=stack.admin_headers())


@pytest.mark.parametrize("db_stack", BACKENDS, indirect=True)
def test_admin_order_list_comes_in_pages_linked_by_a_next_header(db_stack: Stack) -> None:
    newest_first = add_orders(db_stack, [f"pager{i}@example.com" for i in range(5)])
    seen, url = [], "/admin/api/orders?q=pager&limit=2"
    while url:
        answer = db_stack.client.get(url, headers=db_stack.admin_headers())
        assert answer.status_code == 200 and len(answer.get_json()) <= 2
        seen += [o["order_id"] for o in answer.get_json()]
        link = answer.headers.get("Link")
        url = re.fullmatch(r'<(.+)>; rel="next"', link).group(1) if link else ""  # type: ignore[union-attr]

    assert seen == newest_first


@pytest.mark.parametrize("db_stack", BACKENDS, indirect=True)
def test_admin_order_list_clamps_limit_and_offset(db_stack: Stack) -> None:
    add_orders(db_stack, [f"many{i}@example.com" for i in range(MAX_PAGE_SIZE + 5)])

    huge = admin_orders(db_stack, q="many", limit=10**30)
    assert huge.status_code == 200 and len(huge.get_json()) == MAX_PAGE_SIZE
    assert f"limit={MAX_PAGE_SIZE}&offset={MAX_PAGE_SIZE}" in huge.headers["Link"]
    assert len(admin_orders(db_stack, q="many", limit=0).get_json()) == 1
    assert len(admin_orders(db_stack, q="many", limit=-7).get_json()) == 1
    assert (
        admin_orders(db_stack, q="many", limit=3, offset=-5).get_json()
        == admin_orders(db_stack, q="many", limit=3).get_json()
    )
    assert admin_orders(db_stack, q="many", offset=10**30).get_json() == []


@pytest.mark.parametrize("db_stack", ["postgresql"], indirect=True)
@pytest.mark.parametrize("bad", [{"limit": "ten"}, {"offset": "1.5"}, {"q": "x" * 300}, {"status": "lost"}])
def test_admin_order_list_rejects_malformed_parameters_with_a_json_error(db_stack: Stack, bad: dict[str, str]) -> None:
    answer = admin_orders(db_stack, **bad)

    assert answer.status_code == 422
    assert set(answer.get_json()["error"]) == {"code", "message", "details"}


@pytest.mark.parametrize("db_stack", BACKENDS, indirect=True)
def test_admin_search_matches_percent_underscore_and_backslash_literally(db_stack: Stack) -> None:
    literal = ["wild_card@example.com", "wild%card@example.com", "wild\\card@example.com"]
    add_orders(db_stack, [*literal, "wildXcard@example.com", "wildcard@example.com"])

    def found(search: str) -> list[str]:
        return sorted(o["email"] for o in admin_orders(db_stack, q=search).get_json())

    assert found("wild_card") == ["wild_card@example.com"]
    assert found("wild%card") == ["wild%card@example.com"]
    assert found("wild\\card") == ["wild\\card@example.com"]
    assert found("_") == ["wild_card@example.com"]
    assert found("%") == ["wild%card@example.com"]
    assert len(found("wild")) == 5


def logged_in_admin(stack: Stack) -> FlaskClient:
    client = stack.client
    login = client.get("/admin/login").get_data(as_text=True)
    match = CSRF_FIELD.search(login)
    assert match, "the login page has no CSRF field"
    answer = client.post("/admin/login", data={"csrf_token": match.group(1), "token": ADMIN_TOKEN})
    assert answer.status_code == 303, answer.get_data(as_text=True)
    return client


@pytest.mark.parametrize("db_stack", ["sqlite"], indirect=True)
def test_admin_orders_page_shows_one_page_with_links_to_the_next_and_previous(db_stack: Stack) -> None:
    newest_first = add_orders(db_stack, [f"paged{i}@example.com" for i in range(5)])
    admin = logged_in_admin(db_stack)

    with db_stack.app.test_request_context():
        orders_page = url_for("admin.orders")

    def page(**params: Any) -> str:
        return admin.get(orders_page, query_string={"q": "paged", **params}).get_data(as_text=True)

    first, second, last = page(limit=2), page(limit=2, offset=2), page(limit=2, offset=4)

    def rows(page: str) -> list[str]:
        return re.findall(r'data-order-row="([^"]+)"', page)

    assert rows(first) + rows(second) + rows(last) == newest_first
    assert 'data-page="older"' in first and 'data-page="newer"' not in first
    assert 'data-page="older"' in second and 'data-page="newer"' in second
    assert 'data-page="older"' not in last and "offset=2" in last
    assert rows(page(limit=100000)) == newest_first
