"""Maintenance needs workers only: one worker at a time holds the lease, and another
takes it over within seconds when that one dies, then relays what was left."""

from __future__ import annotations

import redis

from shop.dispatch import CeleryPublisher
from tasks.maintenance import LEADER_KEY
from tests.support.processes import free_port, wait_until
from tests.support.stack import Stack, order_payload


def _leader(stack: Stack) -> str | None:
    value = redis.Redis.from_url(stack.env["REDIS_URL"]).get(LEADER_KEY)
    return value.decode() if value else None


def test_a_worker_takes_over_maintenance_within_seconds_when_its_holder_dies(chaos_stack: Stack) -> None:
    stack = chaos_stack
    first, second = stack.start_worker(name="first"), stack.start_worker(name="second")
    by_name = {first.name: first, second.name: second}
    holder = wait_until(lambda: _leader(stack), 15, 0.1, "a worker to take the maintenance lease")
    assert holder in by_name

    by_name[holder].kill_group()
    survivor = next(name for name in by_name if name != holder)
    wait_until(lambda: _leader(stack) == survivor, 10, 0.1, "the survivor to take the lease over")

    # An order whose publish failed waits in the outbox; only maintenance can send it.
    web = stack.services.publisher
    stack.services.publisher = CeleryPublisher.for_broker(f"redis://127.0.0.1:{free_port()}/0")
    order_id = stack.place(order_payload((stack.add_product(), 1)))["order_id"]
    stack.services.publisher = web
    assert stack.scalar("SELECT count(*) FROM outbox_messages WHERE published_at IS NULL") == 1
    stack.wait_for(order_id, "completed", timeout=30)
    assert stack.scalar("SELECT count(*) FROM outbox_messages WHERE published_at IS NULL") == 0
