"""Queues: statistics per queue (admin API and CLI), and express orders overtaking a backlog."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shop.pipeline.run import run_order
from tests.support.processes import RedisServer, wait_until
from tests.support.stack import Stack, order_payload


def queues(stack: Stack) -> dict[str, Any]:
    response = stack.client.get("/admin/api/queues", headers=stack.admin_headers())
    assert response.status_code == 200
    return response.get_json()  # type: ignore[no-any-return]


def test_queue_stats_show_waiting_and_dead_per_queue_in_api_and_cli(
    make_stack: Callable[..., Stack], own_redis: RedisServer
) -> None:
    # No worker: every order's run stays waiting. The fault makes the one run
    # below dead-letter its inventory step at once.
    stack = make_stack(own_redis.url, FAULTS="inventory:permanent=1")
    sku = stack.add_product()
    standard = [stack.place(order_payload((sku, 1)))["order_id"] for _ in range(3)]
    for _ in range(2):
        stack.place(order_payload((sku, 1), priority="express"))
    with stack.app.app_context():
        assert run_order(stack.services, standard[0], "by-hand") == "waiting"  # dead-lettered: waits for an operator

    stats = queues(stack)

    assert stats["broker_reachable"] is True
    assert stats["queues"]["orders"] == {
        "waiting": 3,
        "in_flight": 0,
        "running": 0,
        "scheduled": 0,
        "dead": 1,
    }
    assert stats["queues"]["express"]["waiting"] == 2
    assert stats["totals"]["waiting"] == 5 and stats["totals"]["dead"] == 1
    with stack.app.app_context():  # `flask` pushes one; the bare test runner does not
        result = stack.app.test_cli_runner().invoke(args=["queues"])
    assert result.exit_code == 0, result.exception
    output = result.output
    assert output.splitlines()[0].split() == [
        "queue",
        "waiting",
        "in",
        "flight",
        "running",
        "scheduled",
        "dead",
    ]
    assert "orders 3 0 0 0 1" in [" ".join(line.split()) for line in output.splitlines()]


def test_express_orders_overtake_a_backlog_of_standard_orders(
    make_stack: Callable[..., Stack], own_redis: RedisServer
) -> None:
    # Each order costs 0.45 s of simulated work; one process serves the standard
    # queues, one the express queue (worker assignment is the priority).
    stack = make_stack(own_redis.url, SIMULATED_LATENCY_SCALE="0.1")
    standard_worker = stack.start_worker(
        wait=False, name="standard", queues="orders,payments,fulfilment", concurrency=1
    )
    express_worker = stack.start_worker(wait=False, name="express", queues="express", concurrency=1)
    standard_worker.wait_ready()
    express_worker.wait_ready()
    sku = stack.add_product(stock=100)
    backlog = [stack.place(order_payload((sku, 1)))["order_id"] for _ in range(10)]
    express = [stack.place(order_payload((sku, 1), priority="express"))["order_id"] for _ in range(2)]

    busy = wait_until(lambda: (s := queues(stack))["totals"]["in_flight"] >= 1 and s, 10, 0.05, "a step in flight")
    for order_id in express:
        stack.wait_for(order_id, "completed", timeout=30)

    statuses = dict(stack.rows("SELECT id, status FROM orders"))
    still_waiting = [o for o in backlog if statuses[o] != "completed"]
    assert len(still_waiting) >= 5, f"express should finish long before the backlog; left: {len(still_waiting)}"
    assert busy["totals"]["waiting"] >= 1
    express_queues = {q for o in express for (q,) in stack.rows("SELECT queue FROM step_runs WHERE order_id = :o", o=o)}
    assert express_queues == {"express"}


def test_a_fulfilment_backlog_does_not_delay_payments(make_stack: Callable[..., Stack], own_redis: RedisServer) -> None:
    # Every invoice outgrows its inline budget (0.3 s here) and goes to the slow
    # path, where each attempt runs into its 1 s soft limit: the fulfilment
    # queue backs up. Payments run inside the orders' runs, on other processes.
    stack = make_stack(own_redis.url, FAULTS="invoice:slow=1", STEP_TIME_LIMIT_SCALE="0.1")
    runs = stack.start_worker(wait=False, name="runs", queues="orders,payments", concurrency=1)
    fulfilment = stack.start_worker(wait=False, name="fulfilment", queues="fulfilment", concurrency=1)
    runs.wait_ready()
    fulfilment.wait_ready()
    sku = stack.add_product(stock=100)
    orders = [stack.place(order_payload((sku, 1)))["order_id"] for _ in range(8)]

    def paid() -> int:
        return int(stack.scalar("SELECT count(*) FROM step_runs WHERE step = 'payment' AND status = 'succeeded'") or 0)

    wait_until(lambda: paid() == len(orders), 20, 0.1, "every payment while the invoices back up")
    backlog = queues(stack)["queues"]["fulfilment"]
    assert (backlog["waiting"] or 0) + (backlog["in_flight"] or 0) + backlog["scheduled"] >= 4, backlog
    invoices_done = stack.scalar("SELECT count(*) FROM step_runs WHERE step = 'invoice' AND status = 'succeeded'")
    assert invoices_done == 0  # the fulfilment backlog is real: no invoice has made it yet
    assert stack.scalar("SELECT count(*) FROM payment_charges") == len(orders)
