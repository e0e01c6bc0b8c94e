"""No oversell under real concurrency on PostgreSQL, and graceful shutdown on SIGTERM."""

from __future__ import annotations

import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from tests.support.processes import RedisServer, ServerThread, wait_until
from tests.support.stack import Stack, order_payload


def test_three_hundred_concurrent_orders_for_one_hundred_units_sell_exactly_one_hundred(
    make_stack: Any, own_redis: RedisServer
) -> None:
    stack: Stack = make_stack(own_redis.url, "postgresql")
    sku = stack.add_product(stock=100)
    stack.start_worker(name="a", concurrency=4)
    stack.start_worker(name="b", concurrency=4)
    lowest = [100]
    done = threading.Event()

    def watch_stock() -> None:
        while not done.is_set():
            lowest[0] = min(lowest[0], stack.stock(sku))

    watcher = threading.Thread(target=watch_stock, daemon=True)
    watcher.start()
    with ServerThread(stack.app) as server, ThreadPoolExecutor(24) as pool:
        answers = list(
            pool.map(
                lambda _: requests.post(f"{server.url}/orders", json=order_payload((sku, 1)), timeout=60), range(300)
            )
        )
    assert [a.status_code for a in answers].count(201) == 300
    statuses = stack.wait_all_final([a.json()["order_id"] for a in answers], timeout=180)
    done.set()
    watcher.join()

    outcomes = stack.rows("SELECT status, failure_reason, count(*) FROM orders GROUP BY status, failure_reason")
    assert sorted(outcomes) == [("completed", None, 100), ("failed", "out_of_stock", 200)]
    assert len(statuses) == 300
    assert stack.stock(sku) == 0 and lowest[0] >= 0
    assert stack.scalar("SELECT sum(quantity) FROM stock_reservations WHERE released_at IS NULL") == 100
    assert stack.scalar("SELECT count(*) FROM payment_charges") == 100


def test_sigterm_lets_running_steps_finish_and_loses_or_repeats_nothing(
    make_stack: Any, own_redis: RedisServer
) -> None:
    # Steps take 0.3-1.5 s, so SIGTERM lands while some run.
    stack: Stack = make_stack(own_redis.url, "postgresql", SIMULATED_LATENCY_SCALE="1")
    sku = stack.add_product(stock=100)
    worker = stack.start_worker(concurrency=2)
    order_ids = [stack.place(order_payload((sku, 1)))["order_id"] for _ in range(4)]
    running = wait_until(
        lambda: stack.rows("SELECT order_id, step FROM step_runs WHERE status = 'running'"), 30, 0.02, "a running step"
    )

    worker.signal(signal.SIGTERM)
    assert worker.process is not None
    assert worker.process.wait(60) == 0

    for order_id, step in running:
        state = stack.rows(
            "SELECT status, attempts FROM step_runs WHERE order_id = :o AND step = :s", o=order_id, s=step
        )
        assert state == [("succeeded", 1)], f"{step} of {order_id} did not finish on SIGTERM: {state}"
    assert stack.scalar("SELECT count(*) FROM step_runs WHERE status = 'running'") == 0

    stack.start_worker(name="next", concurrency=2)
    assert set(stack.wait_all_final(order_ids, timeout=90).values()) == {"completed"}
    assert stack.scalar("SELECT max(attempts) FROM step_runs") == 1  # nothing ran twice
    assert stack.scalar("SELECT count(*) FROM payment_charges") == 4
    assert stack.stock(sku) == 96
