"""Operations: Flower, /metrics (also under gunicorn) and JSON logs, against a real worker."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from shop.logs import ORDER_FIELDS, json_handler
from tests.conftest import Databases
from tests.support.processes import RedisServer, flower, gunicorn, wait_until
from tests.support.receivers import SmtpSink, WarehouseReceiver
from tests.support.stack import Stack, order_payload

STEPS = {"inventory", "payment", "email", "invoice", "warehouse"}


@pytest.fixture(scope="module")
def ops_stack(
    databases: Databases,
    smtp: SmtpSink,
    warehouse: WarehouseReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """One PostgreSQL shop with one worker and a Redis of its own (queue depths start at 0)."""
    workdir = tmp_path_factory.mktemp("ops")
    redis_server = RedisServer(workdir / "redis").start()
    with Stack(
        databases.new("postgresql"),
        redis_server.url,
        workdir,
        SMTP_URL=smtp.url,
        WAREHOUSE_URL=warehouse.url,
        METRICS_CACHE_SECONDS="0",  # these tests compare each scrape with the database at that moment
    ) as s:
        s.start_worker()
        yield s
    redis_server.kill()


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text page, keyed by (name, sorted labels)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def metric(samples: dict, name: str, **labels: str) -> float:  # type: ignore[type-arg]
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_count_orders_steps_and_worker_health(ops_stack: Stack) -> None:
    before = scrape(ops_stack.client.get("/metrics", headers=ops_stack.metrics_headers()).get_data(as_text=True))
    sku = ops_stack.add_product(stock=10)
    placed = [ops_stack.place(order_payload((sku, 1)))["order_id"] for _ in range(2)]
    declined = ops_stack.place(order_payload((sku, 1), token="tok_chargeDeclined"))["order_id"]
    for order_id in placed:
        ops_stack.wait_for(order_id, "completed")
    ops_stack.wait_for(declined, "failed")

    def settled() -> dict | None:  # type: ignore[type-arg]
        # Outcome counters are written just after the task returns: wait for the last one.
        now = scrape(ops_stack.client.get("/metrics", headers=ops_stack.metrics_headers()).get_data(as_text=True))

        def grew(outcome: str, step: str) -> float:
            key = {"step": step, "outcome": outcome}
            return metric(now, "shop_step_outcomes_total", **key) - metric(before, "shop_step_outcomes_total", **key)

        # The declined order's payment-failed email leaves through the outbox
        # just after its run's commit: wait until it is out, too.
        sent = metric(now, "shop_outbox_backlog") == 0
        return now if grew("succeeded", "warehouse") == 2 and grew("failed", "payment") == 1 and sent else None

    after = wait_until(settled, 10, 0.2, "step counters to settle")

    def delta(name: str, **labels: str) -> float:
        return metric(after, name, **labels) - metric(before, name, **labels)

    assert delta("shop_orders", status="completed") == 2
    assert delta("shop_orders", status="failed") == 1
    assert metric(after, "shop_orders", status="completed") == ops_stack.scalar(
        "SELECT count(*) FROM orders WHERE status = 'completed'"
    )
    assert delta("shop_step_outcomes_total", step="inventory", outcome="succeeded") == 3
    assert delta("shop_step_outcomes_total", step="payment", outcome="succeeded") == 2
    assert delta("shop_step_outcomes_total", step="payment", outcome="failed") == 1
    assert delta("shop_step_duration_seconds_count", step="payment") == 3
    assert delta("shop_step_duration_seconds_bucket", step="payment", le="+Inf") == 3
    assert delta("shop_step_duration_seconds_sum", step="payment") > 0
    assert delta("shop_step_retries_total", step="payment") == 0
    assert metric(after, "shop_dead_letters") == 0
    assert metric(after, "shop_outbox_backlog") == ops_stack.scalar(
        "SELECT count(*) FROM outbox_messages WHERE published_at IS NULL"
    )
    assert metric(after, "shop_queue_depth", queue="orders") == 0
    assert metric(after, "shop_database_up") == 1 and metric(after, "shop_redis_up") == 1
    worker = ops_stack.workers[0].name
    assert 0 <= metric(after, "shop_worker_heartbeat_age_seconds", worker=worker) < 10
    assert metric(after, "shop_last_worker_heartbeat_age_seconds") < 10


def test_every_gunicorn_process_answers_the_same_metrics(ops_stack: Stack) -> None:
    with gunicorn(ops_stack.env, ops_stack.workdir / "gunicorn.log", workers=3) as base:
        # A generous timeout: the other processes may still be importing the app.
        headers = {"Connection": "close", **ops_stack.metrics_headers()}
        pages = [scrape(requests.get(f"{base}/metrics", timeout=60, headers=headers).text) for _ in range(9)]
        completed = {metric(p, "shop_orders", status="completed") for p in pages}
        assert completed == {ops_stack.scalar("SELECT count(*) FROM orders WHERE status = 'completed'")}
        assert len({metric(p, "shop_step_outcomes_total", step="inventory", outcome="succeeded") for p in pages}) == 1


def test_flower_shows_the_worker_and_every_step_task_with_its_arguments(ops_stack: Stack) -> None:
    auth = ("ops", "s3cret")
    with flower({**ops_stack.env, "FLOWER_BASIC_AUTH": "ops:s3cret"}, ops_stack.workdir / "flower.log") as base:

        def worker_listed() -> bool:
            try:
                workers = requests.get(f"{base}/api/workers?refresh=1", auth=auth, timeout=5)
            except requests.ConnectionError:
                return False
            return workers.status_code == 200 and ops_stack.workers[0].name in workers.json()

        wait_until(worker_listed, 40, 0.5, "Flower to list the worker")
        # Task events are always on (one task per order): the first order placed
        # once Flower is up is in its task list, with its run's outcome.
        order_id = ops_stack.place(order_payload((ops_stack.add_product(), 1)))["order_id"]
        ops_stack.wait_for(order_id, "completed")

        def order_run() -> dict | None:  # type: ignore[type-arg]
            tasks = requests.get(f"{base}/api/tasks", auth=auth, timeout=5).json().values()
            mine = [t for t in tasks if order_id in str(t.get("kwargs"))]
            return mine[0] if len(mine) == 1 and mine[0]["state"] == "SUCCESS" else None

        run = wait_until(order_run, 15, 0.5, "Flower to show the order's run")
        assert run["name"] == "orders.run" and run["uuid"] == order_id  # the first run's task id is the order id
        assert "completed" in str(run["result"]) and run["retries"] == 0
        assert run["worker"] == ops_stack.workers[0].name
        assert requests.get(f"{base}/api/workers", timeout=5).status_code == 401
        assert requests.get(f"{base}/api/tasks", auth=("ops", "wrong"), timeout=5).status_code == 401


def test_worker_log_lines_about_an_order_are_json_with_its_context(ops_stack: Stack) -> None:
    order_id = ops_stack.place(order_payload((ops_stack.add_product(), 1)))["order_id"]
    ops_stack.wait_for(order_id, "completed")
    logfile: Path = ops_stack.workers[0].logfile

    def lines_for_every_step() -> list[dict] | None:  # type: ignore[type-arg]
        lines = [json.loads(line) for line in logfile.read_text().splitlines() if order_id in line]
        return lines if {line["step"] for line in lines} >= STEPS else None

    lines = wait_until(lines_for_every_step, 10, 0.2, "log lines for each step")
    for line in lines:
        assert set(ORDER_FIELDS) <= line.keys()
        assert line["order_id"] == order_id and line["task_id"] == order_id  # the run's task id
        assert line["attempt"] in (1, None)  # None: the "received" line, before the task runs
        assert line["step"] in STEPS | {None}  # None: the run's own lines (received, succeeded)
    assert sum(1 for line in lines if line["step"]) == len(STEPS)  # one line per step
    task_ids = {r[0] for r in ops_stack.rows("SELECT task_id FROM step_runs WHERE order_id = :o", o=order_id)}
    assert task_ids == {order_id}


def test_web_logs_the_accepted_order_with_its_id(ops_stack: Stack) -> None:
    stream = io.StringIO()
    handler = json_handler(stream)
    logging.getLogger().addHandler(handler)
    try:
        order_id = ops_stack.place(order_payload((ops_stack.add_product(), 1)))["order_id"]
        ops_stack.client.get(f"/orders/{order_id}/status")
    finally:
        logging.getLogger().removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    accepted = [line for line in lines if line["message"] == "order accepted"]
    assert len(accepted) == 1 and accepted[0]["order_id"] == order_id
    assert all(set(ORDER_FIELDS) <= line.keys() for line in lines)
