"""The warehouse rate limit holds across two workers; the payment breaker opens and closes."""

from __future__ import annotations

from collections.abc import Callable

from shop.integrations.circuit_breaker import CircuitBreaker
from tests.support.processes import RedisServer
from tests.support.receivers import WarehouseReceiver
from tests.support.stack import Stack, order_payload

RATE = 5


def test_warehouse_rate_limit_holds_across_two_workers(
    make_stack: Callable[..., Stack], own_redis: RedisServer, warehouse: WarehouseReceiver
) -> None:
    stack = make_stack(
        own_redis.url,
        WAREHOUSE_URL=warehouse.url,
        WAREHOUSE_RATE_PER_SECOND=str(RATE),
        WAREHOUSE_RATE_BURST="1",
        WAREHOUSE_RATE_MAX_WAIT_SECONDS="4",
    )
    workers = [stack.start_worker(wait=False, name=f"w{i}", concurrency=3) for i in range(2)]
    for worker in workers:
        worker.wait_ready()
    sku = stack.add_product(stock=100)
    order_ids = [stack.place(order_payload((sku, 1)))["order_id"] for _ in range(12)]

    assert set(stack.wait_all_final(order_ids, timeout=90).values()) == {"completed"}

    times = sorted(r["at"] for r in warehouse.requests if r["json"]["order_id"] in order_ids)
    assert len(times) == 12
    busiest_second = max(sum(1 for t in times if start <= t < start + 1) for start in times)
    assert busiest_second <= RATE + 1  # the rate, plus the one token of burst
    assert times[-1] - times[0] >= (12 - 1) / RATE * 0.9
    # Both workers called the warehouse: the limit is shared, not per worker.
    assert all('"step": "warehouse"' in w.logfile.read_text() for w in workers)


def test_open_breaker_holds_payments_until_a_probe_closes_it(
    make_stack: Callable[..., Stack], own_redis: RedisServer
) -> None:
    stack = make_stack(
        own_redis.url,
        PAYMENT_BREAKER_THRESHOLD="2",
        PAYMENT_BREAKER_RESET_SECONDS="2",
        RETRY_BACKOFF_SCALE="0.25",
    )
    breaker = CircuitBreaker(stack.services.redis, "payment", threshold=2, reset_seconds=2)
    stack.start_worker()
    breaker.record_failure()
    breaker.record_failure()  # as two workers would after two gateway timeouts
    assert breaker.state() == "open"

    order_id = stack.place(order_payload((stack.add_product(), 1)))["order_id"]
    status = stack.wait_for(order_id, "completed", timeout=60)

    payment = next(s for s in status["steps"] if s["name"] == "payment")
    assert payment["attempts"] >= 2  # held back while open, then charged
    assert stack.scalar("SELECT count(*) FROM payment_charges WHERE order_id = :o", o=order_id) == 1
    assert breaker.state() == "closed"
