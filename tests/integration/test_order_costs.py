"""What an order costs on the happy path, counted (not timed): the budget of the durable run.

Budget (issue "Durable order runs"): web and worker together at most 6
transactions and 20 SQL statements, and one broker message per order. The
simulated gateway keeps its charges in the same database, so its one
transaction and INSERT are counted too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from sqlalchemy import event

from shop.dispatch import CeleryPublisher, TaskMessage, run_task_message
from shop.pipeline.run import run_order
from tests.support.processes import RedisServer
from tests.support.stack import Stack, order_payload

MAX_TRANSACTIONS = 6
MAX_STATEMENTS = 20


class CountingPublisher:
    """The stack's real publisher (real Redis), counting what goes through it."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.sent = inner, Counter[str]()

    def publish(self, message: TaskMessage) -> None:
        self.inner.publish(message)
        self.sent[message.task_name] += 1


@contextmanager
def counted(stack: Stack) -> Iterator[dict[str, list[str]]]:
    engine = stack.services.db.engine
    seen: dict[str, list[str]] = {"statements": [], "transactions": []}

    def statement(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        seen["statements"].append(sql.split(None, 1)[0].upper())

    def begin(conn: Any) -> None:
        seen["transactions"].append("BEGIN")

    event.listen(engine, "before_cursor_execute", statement)
    event.listen(engine, "begin", begin)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", statement)
        event.remove(engine, "begin", begin)


def test_one_order_costs_at_most_six_transactions_twenty_statements_and_one_message(db_stack: Stack) -> None:
    sku = db_stack.add_product(stock=10)
    publisher = CountingPublisher(db_stack.services.publisher)
    db_stack.services.publisher = publisher
    run_order(db_stack.services, db_stack.place(order_payload((sku, 1)))["order_id"], "warm")  # mappers, caches

    with counted(db_stack) as checkout:
        order_id = db_stack.place(order_payload((sku, 1)))["order_id"]
    with counted(db_stack) as worker:
        assert run_order(db_stack.services, order_id, order_id) == "completed"

    transactions = len(checkout["transactions"]) + len(worker["transactions"])
    statements = checkout["statements"] + worker["statements"]
    print(f"\ncheckout {checkout}\nworker {worker}")
    assert len(checkout["transactions"]) == 1, "checkout is one transaction"
    assert transactions <= MAX_TRANSACTIONS, (transactions, statements)
    assert len(statements) <= MAX_STATEMENTS, statements
    assert sum(publisher.sent.values()) == 2  # one per order: the warm-up's and this one's
    assert db_stack.scalar("SELECT count(*) FROM outbox_messages") == 0


def test_publishing_builds_one_redis_client_per_channel_not_one_per_message(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kombu's own Redis transport builds a ``redis.Redis`` for every publish (redis-py
    issue #3624); ours keeps one per channel. Counted on a real Redis."""
    publisher = CeleryPublisher.for_broker(redis_server.url)
    built = Counter[str]()
    original = redis.Redis.__init__

    def counting(self: redis.Redis, *args: Any, **kwargs: Any) -> None:
        built["clients"] += 1
        original(self, *args, **kwargs)

    queue = "test-publish-costs"  # its own queue: the other tests' messages are not counted
    publisher.publish(run_task_message("warm", queue, "warm"))  # connects: the channel's client
    monkeypatch.setattr(redis.Redis, "__init__", counting)
    for n in range(20):
        publisher.publish(run_task_message(f"order-{n}", queue, f"task-{n}"))
    client = redis.Redis.from_url(redis_server.url)
    assert client.llen(queue) == 21
    client.delete(queue)
    assert built["clients"] <= 1, built
