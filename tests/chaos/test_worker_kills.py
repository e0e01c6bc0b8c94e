"""Workers SIGKILLed at random moments, or crashing right after a side effect:
every order ends, and nothing that must happen once happens twice."""

from __future__ import annotations

import random
import time

import pytest

from tests.chaos.invariants import assert_exactly_once_effects
from tests.chaos.supervisor import supervised
from tests.support.receivers import SmtpSink, WarehouseReceiver
from tests.support.stack import Stack, order_payload

ORDERS = 200


def _place_orders(stack: Stack, skus: list[str], count: int, rng: random.Random) -> list[str]:
    return [
        stack.place(order_payload(*[(sku, rng.randint(1, 3)) for sku in rng.sample(skus, rng.randint(1, 2))]))[
            "order_id"
        ]
        for _ in range(count)
    ]


@pytest.mark.parametrize("seed", [11, 22, 33])
def test_sigkill_at_random_moments_loses_no_order_and_repeats_no_effect(
    seed: int, chaos_stack: Stack, smtp: SmtpSink, warehouse: WarehouseReceiver
) -> None:
    rng = random.Random(seed)
    stack = chaos_stack
    skus = [stack.add_product(stock=10_000) for _ in range(3)]
    initial = {sku: 10_000 for sku in skus}
    with supervised(stack, workers=2, concurrency=2) as supervisor:
        order_ids: list[str] = []
        kills = []
        deadline = time.monotonic() + 25
        while len(order_ids) < ORDERS or (time.monotonic() < deadline and len(kills) < 12):
            order_ids += _place_orders(stack, skus, min(25, ORDERS - len(order_ids)), rng)
            time.sleep(rng.uniform(0.2, 1.0))
            kills.append(supervisor.kill_randomly(rng))
        statuses = stack.wait_all_final(order_ids, timeout=150)
    assert set(statuses.values()) == {"completed"}
    assert_exactly_once_effects(stack, order_ids, initial, smtp, warehouse)
    print(
        f"seed {seed}: {len(order_ids)} orders, {len(kills)} kills ({kills.count('whole worker')} whole workers), "
        f"{supervisor.restarts} restarts"
    )


def test_crash_after_every_kind_of_side_effect_is_recovered_exactly_once(
    make_stack: object, own_redis: object, smtp: SmtpSink, warehouse: WarehouseReceiver
) -> None:
    from tests.chaos.conftest import CHAOS_ENV

    faults = ",".join(f"{step}:crash=0.15" for step in ("inventory", "payment", "email", "invoice", "warehouse"))
    stack: Stack = make_stack(
        own_redis.url,
        "postgresql",
        SMTP_URL=smtp.url,
        WAREHOUSE_URL=warehouse.url,  # type: ignore[operator,attr-defined]
        **{**CHAOS_ENV, "FAULTS": faults},
    )
    rng = random.Random(5)
    skus = [stack.add_product(stock=10_000) for _ in range(2)]
    with supervised(stack, workers=2, concurrency=2):
        order_ids = _place_orders(stack, skus, 60, rng)
        statuses = stack.wait_all_final(order_ids, timeout=150)
    assert set(statuses.values()) == {"completed"}
    assert_exactly_once_effects(stack, order_ids, {sku: 10_000 for sku in skus}, smtp, warehouse)
    crashed = stack.scalar("SELECT count(*) FROM step_runs WHERE attempts > 1")
    assert crashed > 10, "the crash fault should have fired on many steps"
    print(f"{crashed} steps were retried after a crash")
