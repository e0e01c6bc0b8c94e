"""The retry policy: exponential backoff with full jitter, capped; limits and queues per step."""

from __future__ import annotations

import random

import pytest

from shop.states import Step
from shop.step_policy import STEP_POLICY, backoff_seconds, queue_for, time_limits


@pytest.mark.parametrize("step", list(Step))
def test_backoff_is_full_jitter_below_an_exponential_ceiling_and_a_cap(step: Step) -> None:
    policy, rng = STEP_POLICY[step], random.Random(7)
    for attempt in range(1, 12):
        ceiling = min(policy.backoff_cap, policy.backoff_base * 2 ** (attempt - 1))
        delays = [backoff_seconds(step, attempt, rng) for _ in range(300)]
        assert all(0 <= d <= ceiling for d in delays)
        assert max(delays) > 0.8 * ceiling  # the jitter spans the whole range
        assert min(delays) < 0.2 * ceiling


def test_backoff_never_exceeds_the_cap_however_many_attempts() -> None:
    assert max(backoff_seconds(Step.PAYMENT, 50) for _ in range(200)) <= STEP_POLICY[Step.PAYMENT].backoff_cap


def test_every_soft_limit_comes_before_its_hard_limit() -> None:
    for step in Step:
        soft, hard = time_limits(step)
        assert 0 < soft < hard


def test_time_limits_scale_for_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEP_TIME_LIMIT_SCALE", "0.1")
    assert time_limits(Step.PAYMENT) == pytest.approx((1.0, 1.5))


def test_express_orders_use_the_express_queue_and_payments_their_own() -> None:
    assert queue_for(Step.PAYMENT, "express") == "express"
    assert queue_for(Step.PAYMENT, "standard") == "payments"
    assert queue_for(Step.EMAIL, "standard") == queue_for(Step.INVOICE, "standard") == "fulfilment"
