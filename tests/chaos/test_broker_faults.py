"""Redis killed and restarted mid-run; a worker that silently stops consuming."""

from __future__ import annotations

import random
import time

from tests.chaos.invariants import assert_exactly_once_effects
from tests.chaos.supervisor import supervised
from tests.support.processes import RedisServer, wait_until
from tests.support.stack import Stack, order_payload


def test_redis_killed_and_restarted_mid_run_loses_no_accepted_order(chaos_stack: Stack, own_redis: RedisServer) -> None:
    stack, rng = chaos_stack, random.Random(3)
    sku = stack.add_product(stock=10_000)
    with supervised(stack, workers=2, concurrency=2) as supervisor:
        before = [stack.place(order_payload((sku, 1)))["order_id"] for _ in range(60)]
        time.sleep(rng.uniform(0.5, 1.5))
        own_redis.kill()  # no persistence: every queued message is gone
        during = [stack.place(order_payload((sku, 1)))["order_id"] for _ in range(20)]
        time.sleep(3)
        own_redis.start()
        statuses = stack.wait_all_final(before + during, timeout=120)
        assert set(statuses.values()) == {"completed"}
        # The workers still consume after the reconnect: new orders go through.
        after = [stack.place(order_payload((sku, 1)))["order_id"] for _ in range(10)]
        assert set(stack.wait_all_final(after, timeout=60).values()) == {"completed"}
    assert_exactly_once_effects(stack, before + during + after, {sku: 10_000})
    print(f"Redis restart: {len(before + during + after)} orders completed, {supervisor.restarts} worker restarts")


def test_a_worker_that_stops_consuming_exits_for_its_supervisor_to_restart(chaos_stack: Stack) -> None:
    from shop.step_policy import QUEUES
    from tasks.watchdog import EXIT_NOT_CONSUMING

    stack = chaos_stack
    worker = stack.start_worker()
    control = stack.services.publisher.celery.control  # type: ignore[attr-defined]
    # Simulate Celery's silent stall: the process lives on, consuming nothing.
    for queue in [*QUEUES, f"{worker.name}.dq2"]:
        control.cancel_consumer(queue, destination=[worker.name], reply=True, timeout=5)
    started = time.monotonic()
    assert worker.process is not None
    exit_code = wait_until(lambda: worker.process.poll(), 60, 0.2, "the stalled worker to exit")  # type: ignore[union-attr]
    assert exit_code == EXIT_NOT_CONSUMING
    assert b"has not consumed its canary" in worker.logfile.read_bytes()
    print(f"stalled worker exited after {time.monotonic() - started:.1f}s")

    sku = stack.add_product()
    stack.start_worker(name="replacement")
    order_id = stack.place(order_payload((sku, 1)))["order_id"]
    stack.wait_for(order_id, "completed", timeout=60)
