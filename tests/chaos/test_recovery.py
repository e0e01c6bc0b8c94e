"""Fast recovery with the production settings and workers only (no beat): a step
abandoned by a killed worker runs again within 30 s, not after Redis' one-hour
redelivery default, and so does an order whose message a dead worker had taken
before starting it. The killed worker may have held the maintenance lease too."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import redis

from tests.support.processes import RedisServer, wait_until
from tests.support.stack import Stack, order_payload

PRODUCTION_TIMING = {
    "STEP_TIME_LIMIT_SCALE": "1",
    "SWEEP_INTERVAL": "5",
    "STALE_DISPATCH_SECONDS": "",  # empty: the shop's default
    "RETRY_BACKOFF_SCALE": "1",
    # The payment takes 4.5 s, so the kill lands while it runs inside the order's
    # run (inline budget 5 s, hard limit 15 s).
    "SIMULATED_LATENCY_SCALE": "3",
}


def _payment_started(stack: Stack, order_id: str) -> datetime | None:
    row = stack.rows("SELECT status, started_at FROM step_runs WHERE order_id = :o AND step = 'payment'", o=order_id)[0]
    return row[1] if row[0] == "running" else None


def test_step_of_a_killed_worker_runs_again_within_30_seconds(make_stack: Any, own_redis: RedisServer) -> None:
    stack: Stack = make_stack(own_redis.url, "postgresql", **PRODUCTION_TIMING)
    doomed = stack.start_worker(name="doomed", queues="payments,orders")
    order_id = stack.place(order_payload((stack.add_product(), 1)))["order_id"]
    first_start = wait_until(lambda: _payment_started(stack, order_id), 30, 0.05, "the payment to start")
    stack.start_worker(name="survivor")

    doomed.kill_group()
    killed_at = time.monotonic()
    wait_until(
        lambda: (
            (s := _payment_started(stack, order_id))
            and s > first_start
            or stack.status(order_id)["steps"][1]["attempts"] > 1
        ),
        40,
        0.1,
        "the payment to be taken up again",
    )
    recovery = time.monotonic() - killed_at
    print(f"\nrecovery after SIGKILL: {recovery:.1f}s")
    assert recovery <= 30
    status = stack.wait_for(order_id, "completed", timeout=60)
    assert status["steps"][1]["attempts"] == 2
    assert stack.scalar("SELECT count(*) FROM payment_charges WHERE order_id = :o", o=order_id) == 1


def test_an_order_whose_message_a_dead_worker_took_runs_within_30_seconds(
    make_stack: Any, own_redis: RedisServer
) -> None:
    """kombu pops a message, then records it as unacknowledged: a worker killed in
    between (or holding it unstarted) takes it along, and Redis would give it back
    only after the visibility timeout. The sweep sends the run again once the
    order's dispatch deadline (STALE_DISPATCH_SECONDS, by default) has passed."""
    stack: Stack = make_stack(own_redis.url, "postgresql", **{**PRODUCTION_TIMING, "SIMULATED_LATENCY_SCALE": "0.01"})
    order_id = stack.place(order_payload((stack.add_product(), 1)))["order_id"]
    placed = time.monotonic()
    redis.Redis.from_url(own_redis.url).delete("orders")  # the message went with the dead worker
    stack.start_worker(name="survivor")
    stack.wait_for(order_id, "completed", timeout=45)
    recovery = time.monotonic() - placed
    print(f"\nlost first message: run again and completed {recovery:.1f}s after checkout")
    assert recovery <= 30
