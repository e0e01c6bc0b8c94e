"""What the durable run does next, decided from the ledger alone; the inline budget."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from shop.models import Order, StepRun, utcnow
from shop.pipeline import budget
from shop.pipeline.run import plan
from shop.states import STEPS, Step, StepStatus
from shop.step_policy import STEP_POLICY


def order_with(**statuses: tuple[str, int]) -> Order:
    order = Order(id="o1")
    order.steps = [
        StepRun(
            step=step,
            position=i,
            status=statuses.get(step, (StepStatus.PENDING, 0))[0],
            attempts=statuses.get(step, (StepStatus.PENDING, 0))[1],
        )
        for i, step in enumerate(STEPS)
    ]
    return order


def test_a_new_order_starts_with_inventory_inline() -> None:
    assert plan(order_with(), utcnow()).inline == [Step.INVENTORY]


def test_after_the_payment_the_three_fanout_steps_start_together() -> None:
    done = (StepStatus.SUCCEEDED, 1)
    assert plan(order_with(inventory=done, payment=done), utcnow()).inline == [Step.EMAIL, Step.INVOICE, Step.WAREHOUSE]


def test_a_step_found_running_was_killed_and_goes_to_the_slow_path_with_backoff() -> None:
    todo = plan(order_with(inventory=(StepStatus.SUCCEEDED, 1), payment=(StepStatus.RUNNING, 2)), utcnow())
    assert todo.inline == [] and [step for step, _ in todo.slow] == [Step.PAYMENT]
    assert 0 <= todo.slow[0][1] <= STEP_POLICY[Step.PAYMENT].backoff_cap


def test_a_step_killed_at_every_attempt_is_exhausted_not_retried() -> None:
    exhausted = (StepStatus.RUNNING, STEP_POLICY[Step.INVENTORY].max_attempts)
    assert plan(order_with(inventory=exhausted), utcnow()).exhausted == [Step.INVENTORY]


def test_a_retry_is_left_to_its_message_until_it_is_overdue_by_a_whole_lease() -> None:
    from shop.step_policy import lease_seconds

    done, now = (StepStatus.SUCCEEDED, 1), utcnow()
    order = order_with(inventory=done, payment=done, email=done, warehouse=done, invoice=(StepStatus.RETRYING, 1))
    for due_in in (30, -1):  # not yet due; due, its message still on its way
        order.steps[3].due_at = now + timedelta(seconds=due_in)
        assert plan(order, now).waiting == [Step.INVOICE]
    order.steps[3].due_at = now - timedelta(seconds=lease_seconds(Step.INVOICE) + 1)  # lost
    assert plan(order, now).slow == [(Step.INVOICE, 0.0)]


def test_every_step_succeeded_means_finished() -> None:
    done = (StepStatus.SUCCEEDED, 1)
    assert plan(order_with(**{step.value: done for step in STEPS}), utcnow()).finished


def test_a_wait_inside_the_inline_budget_ends_when_the_budget_does() -> None:
    started = time.monotonic()
    with budget.inline_budget(0.05), pytest.raises(budget.OutgrewInlineBudget):
        budget.sleep(5)
    assert time.monotonic() - started < 1
    budget.sleep(0.01)  # outside a budget: plain sleep


def test_a_phase_that_outlives_its_hard_limit_kills_its_process_after_expiring_the_lease() -> None:
    import os
    import signal

    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child arms the watchdog and hangs, deaf to everything
        try:
            with budget.hard_limit.armed(0.2, "a hanging step", lambda: os.write(writer, b"expired")):
                time.sleep(30)
        finally:
            os._exit(0)  # only reached if the watchdog did not kill the process
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    assert os.read(reader, 16) == b"expired"


def test_a_phase_within_its_hard_limit_disarms_the_watchdog() -> None:
    with budget.hard_limit.armed(0.2, "a quick step", lambda: None):
        pass
    time.sleep(0.4)  # still alive: nothing killed this process
