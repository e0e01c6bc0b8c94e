"""What an operator finds in Flower and in the worker's log: the orders, not the
workers' own chatter; business failures and retries with their reasons."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.processes import RedisServer, flower, wait_until
from tests.support.stack import Stack, order_payload

FLOWER_AUTH = ("ops", "flower-password-for-tests")


@pytest.fixture
def flower_stack(make_stack: Any, own_redis: RedisServer) -> Iterator[tuple[Stack, str]]:
    """A shop whose emails always fail for a moment, a worker at ``-l WARNING`` with a
    canary every second, and Flower started the way `make run` starts it."""
    stack: Stack = make_stack(own_redis.url, FAULTS="email:transient=1", CONSUMPTION_CHECK_INTERVAL="1")
    stack.start_worker(wait=False, extra=["-l", "WARNING"])  # no "ready." line at WARNING: Flower waits for it
    env = {**stack.env, "FLOWER_BASIC_AUTH": ":".join(FLOWER_AUTH)}  # not on the command line
    with flower(env, stack.workdir / "flower.log") as base:

        def worker_listed() -> bool:
            answer = requests.get(f"{base}/api/workers?refresh=1", auth=FLOWER_AUTH, timeout=5)
            return answer.status_code == 200 and stack.workers[0].name in answer.json()

        wait_until(worker_listed, 40, 0.5, "Flower to list the worker")
        yield stack, base


def flower_tasks(base: str) -> list[dict[str, Any]]:
    return list(requests.get(f"{base}/api/tasks", auth=FLOWER_AUTH, timeout=5).json().values())


def test_flower_shows_business_failures_and_retry_reasons_but_not_the_canary(flower_stack: tuple[Stack, str]) -> None:
    stack, base = flower_stack
    sku = stack.add_product()
    declined = stack.place(order_payload((sku, 1), token="tok_chargeDeclined"))["order_id"]
    retrying = stack.place(order_payload((sku, 1)))["order_id"]
    stack.wait_for(declined, "failed")

    def seen() -> tuple[dict[str, Any], dict[str, Any]] | None:
        tasks = flower_tasks(base)
        run = next((t for t in tasks if t["uuid"] == declined and t["state"] == "SUCCESS"), None)
        retry = next((t for t in tasks if t["name"] == "steps.email" and retrying in str(t.get("kwargs"))), None)
        return (run, retry) if run and retry and retry.get("exception") else None

    run, retry = wait_until(seen, 30, 0.5, "Flower to show the declined run and the email's retry")
    assert run["result"] == repr("failed: payment_declined")  # not just 'failed'
    assert "injected transient fault in email" in retry["exception"]  # the step's error, not "None"
    # Several canaries went through the worker meanwhile; none is in the task list.
    assert not [t for t in flower_tasks(base) if t["name"] == "maintenance.canary"]


def test_the_worker_honours_its_log_level_and_hides_the_canary(flower_stack: tuple[Stack, str]) -> None:
    stack, _ = flower_stack
    order_id = stack.place(order_payload((stack.add_product(), 1), token="tok_chargeDeclined"))["order_id"]
    stack.wait_for(order_id, "failed")
    lines = [line for line in stack.workers[0].logfile.read_text().splitlines() if line.startswith("{")]
    records = [json.loads(line) for line in lines]
    assert records, "the worker logged its warnings"
    assert {r["level"] for r in records} <= {"WARNING", "ERROR", "CRITICAL"}  # -l WARNING, as Celery's docs say
    assert not [r for r in records if "canary" in r["message"]]


def test_the_admin_order_page_links_to_the_orders_tasks_in_flower(flower_stack: tuple[Stack, str]) -> None:
    stack, _ = flower_stack
    order_id = stack.place(order_payload((stack.add_product(), 1)))["order_id"]

    def email_handed_over() -> str | None:
        task_id = stack.scalar("SELECT task_id FROM step_runs WHERE order_id = :o AND step = 'email'", o=order_id)
        return task_id if task_id and task_id != order_id else None

    email_task = wait_until(email_handed_over, 30, 0.3, "the email to continue on its slow path")
    client = stack.client
    login = client.get("/admin/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', login)
    assert csrf is not None
    client.post("/admin/login", data={"csrf_token": csrf.group(1), "token": stack.env["ADMIN_TOKEN"]})
    page = client.get(f"/admin/orders/{order_id}").get_data(as_text=True)
    flower = stack.env.get("FLOWER_URL", "http://localhost:5555")
    assert f'href="{flower}/task/{order_id}"' in page
    assert f'href="{flower}/task/{email_task}"' in page


def test_flower_shows_the_queue_lengths(flower_stack: tuple[Stack, str]) -> None:
    """Flower picks its broker client by the broker URI's scheme: the shop's Redis
    transport keeps it ``redis://``, so the Broker page and its API show the queues."""
    _, base = flower_stack
    answer = requests.get(f"{base}/api/queues/length", auth=FLOWER_AUTH, timeout=10)
    assert answer.status_code == 200, answer.text
    queues = {queue["name"] for queue in answer.json()["active_queues"]}
    assert {"orders", "payments", "fulfilment", "express"} <= queues
