"""One rate limit for every order write (POST /orders, the checkout form, cancel), counted per
real client: behind TRUSTED_PROXIES proxies from X-Forwarded-For, otherwise from the socket."""

from __future__ import annotations

import re
from collections.abc import Callable

import redis
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.processes import RedisServer
from tests.support.stack import Stack, order_payload

MakeStack = Callable[..., Stack]
FIELD = re.compile(r'name="(csrf_token|nonce)"[^>]*value="([^"]+)"')
ADDRESS = {"name": "Ada Lovelace", "email": "ada@example.com", "line1": "1 Main St", "city": "London"}


def fresh_window(stack: Stack, per_minute: int) -> None:
    redis.Redis.from_url(stack.env["REDIS_URL"]).flushdb()
    stack.app.config["RATE_LIMIT_PER_MINUTE"] = per_minute


def submit_checkout(client: FlaskClient, sku: str) -> TestResponse:
    """Put ``sku`` in the cart and send the checkout form the way a browser does."""
    catalog = dict(FIELD.findall(client.get("/").get_data(as_text=True)))
    client.post("/cart/add", data={"csrf_token": catalog["csrf_token"], "sku": sku, "quantity": 1})
    form = dict(FIELD.findall(client.get("/checkout").get_data(as_text=True)))
    fields = {**ADDRESS, "postal_code": "N1 9GU", "country": "GB", "payment_token": "tok_visa"}
    return client.post("/checkout", data={**form, **fields, "priority": "standard"})


def test_checkout_form_and_cancel_share_the_order_limit_of_the_api(db_stack: Stack) -> None:
    fresh_window(db_stack, 3)
    sku = db_stack.add_product()
    browser, api = db_stack.client, db_stack.client
    first = api.post("/orders", json=order_payload((sku, 1)))
    checkout = submit_checkout(browser, sku)
    cancel = api.post(f"/orders/{first.get_json()['order_id']}/cancel")
    assert [first.status_code, checkout.status_code, cancel.status_code] == [201, 303, 200]
    placed_in_browser = checkout.headers["Location"].rsplit("/", 1)[-1]

    limited_checkout = submit_checkout(browser, sku)
    limited_cancel = api.post(f"/orders/{placed_in_browser}/cancel")
    limited_order = api.post("/orders", json=order_payload((sku, 1)))

    assert limited_checkout.status_code == 429 and limited_checkout.mimetype == "text/html"
    assert limited_cancel.status_code == 429 and limited_cancel.get_json()["error"]["code"] == "rate_limited"
    assert limited_order.status_code == 429
    assert db_stack.scalar("SELECT count(*) FROM orders") == 2  # nothing written past the limit
    assert db_stack.status(placed_in_browser)["status"] != "cancelled"


def test_checkout_form_is_not_limited_when_the_limit_is_off(db_stack: Stack) -> None:
    fresh_window(db_stack, 0)
    sku = db_stack.add_product()
    browser = db_stack.client

    assert [submit_checkout(browser, sku).status_code for _ in range(3)] == [303, 303, 303]


def orders_from(stack: Stack, sku: str, forwarded_for: str, count: int) -> list[int]:
    headers = {"X-Forwarded-For": forwarded_for}
    return [
        stack.client.post("/orders", json=order_payload((sku, 1)), headers=headers).status_code for _ in range(count)
    ]


def test_behind_one_trusted_proxy_each_forwarded_client_has_its_own_budget(
    make_stack: MakeStack, redis_server: RedisServer
) -> None:
    stack = make_stack(redis_server.url, TRUSTED_PROXIES="1")
    fresh_window(stack, 2)
    sku = stack.add_product()

    assert orders_from(stack, sku, "203.0.113.7", 3) == [201, 201, 429]
    assert orders_from(stack, sku, "198.51.100.9", 2) == [201, 201]
    # The proxy appends the address it saw: a client's own X-Forwarded-For entry
    # in front of it changes nothing.
    assert orders_from(stack, sku, "198.51.100.200, 203.0.113.7", 1) == [429]


def test_without_trusted_proxies_x_forwarded_for_is_ignored(make_stack: MakeStack, redis_server: RedisServer) -> None:
    stack = make_stack(redis_server.url, TRUSTED_PROXIES="0")
    fresh_window(stack, 2)
    sku = stack.add_product()

    assert orders_from(stack, sku, "203.0.113.7", 2) == [201, 201]
    assert orders_from(stack, sku, "198.51.100.9", 1) == [429]  # same socket address, same budget
