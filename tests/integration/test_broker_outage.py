"""Accepted means kept: with Redis down, checkout still answers 201, and the
orders complete once Redis is back (the outbox relay publishes them)."""

from __future__ import annotations

from typing import Any

from tests.support.processes import RedisServer, wait_until
from tests.support.stack import order_payload


def test_checkout_with_redis_down_answers_201_and_orders_complete_after_it_returns(
    make_stack: Any, own_redis: RedisServer
) -> None:
    stack = make_stack(own_redis.url, RELAY_INTERVAL="0.5")
    sku = stack.add_product(stock=50)
    stack.start_worker()
    warmup = stack.place(order_payload((sku, 1)))["order_id"]
    stack.wait_for(warmup, "completed")

    own_redis.stop()
    answers = [stack.client.post("/orders", json=order_payload((sku, 1))) for _ in range(5)]
    ready = stack.client.get("/readyz")

    assert [a.status_code for a in answers] == [201] * 5
    assert ready.status_code == 503 and ready.get_json()["checks"]["broker"] == "unreachable"
    order_ids = [a.get_json()["order_id"] for a in answers]
    assert stack.scalar("SELECT count(*) FROM outbox_messages WHERE published_at IS NULL") == 5

    own_redis.start()
    statuses = stack.wait_all_final(order_ids, timeout=90)
    assert set(statuses.values()) == {"completed"}
    assert stack.client.get("/readyz").status_code == 200
    assert stack.stock(sku) == 50 - 6
    assert stack.scalar("SELECT count(*) FROM outbox_messages WHERE published_at IS NULL") == 0
    assert wait_until(lambda: stack.scalar("SELECT count(*) FROM payment_charges") == 6, 5)
