"""Retry budget, backoff, time limits and queue of every step: the one table.

The order's run, the slow-path step tasks, the lease of a running phase and
the sweep all read this table; nothing else hard-codes a limit.

How the limits map onto one durable run (see README, "The durable run"):
- ``inline_budget``: how long the step may take inside the order's run. Past it
  the step is interrupted (cooperatively: every wait inside a step is bounded by
  the budget left) and continues as its own slow-path task.
- ``soft_limit`` / ``hard_limit``: Celery's limits of the step's slow-path task.
  Inside the run, a step that ignores its budget is killed at ``hard_limit``
  (the process is ended, the attempt counted, the run resumed elsewhere).
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

from shop.states import Step, StepStatus


@dataclass(frozen=True)
class StepPolicy:
    queue: str
    max_attempts: int
    backoff_base: float  # seconds before the 2nd attempt (before jitter)
    backoff_cap: float  # no retry waits longer; must stay below the visibility timeout
    soft_limit: float  # SoftTimeLimitExceeded: a clean, counted retry
    hard_limit: float  # the process is killed; the attempt counts, the run resumes elsewhere
    latency: float  # simulated work in seconds at SIMULATED_LATENCY_SCALE=1
    inline_budget: float  # longest time inside the order's run; beyond it, the slow path


# Hard limits bound recovery: a step abandoned by a dead worker is handed out
# again once its lease (hard limit + grace) expires and the sweeper runs, so
# the longest lease plus the sweep interval must stay under 30 s.
# Inline budgets are about twice the step's simulated latency at scale 1 (the
# demo's): a step that takes longer is not "short" in Temporal's sense and must
# not hold the order's run, and the worker slot the run sits in, any longer.
STEP_POLICY: dict[Step, StepPolicy] = {
    Step.INVENTORY: StepPolicy("orders", 5, 1.0, 30.0, 8.0, 10.0, 0.5, 2.0),
    Step.PAYMENT: StepPolicy("payments", 5, 2.0, 30.0, 10.0, 15.0, 1.5, 5.0),
    Step.EMAIL: StepPolicy("fulfilment", 8, 2.0, 30.0, 10.0, 15.0, 0.8, 3.0),
    Step.INVOICE: StepPolicy("fulfilment", 5, 1.0, 30.0, 10.0, 15.0, 1.2, 3.0),
    Step.WAREHOUSE: StepPolicy("fulfilment", 8, 2.0, 30.0, 5.0, 10.0, 0.3, 2.0),
}

LOAD_ORDER_LATENCY = 0.2  # the worked example's "load order", paid once, by inventory
EXPRESS_QUEUE = "express"
RUN_QUEUE = "orders"  # the order's run; inventory's slow path shares it
# Listed in the order a worker serving all of them should prefer.
QUEUES = ("express", "payments", "orders", "fulfilment")
# Payment step states of an order that has not paid (and is not being charged right now).
UNPAID_STEP_STATUSES = (StepStatus.PENDING, StepStatus.RETRYING, StepStatus.FAILED)
# Seconds a lease outlives the hard limit: the pool needs a moment to kill and report.
LEASE_GRACE = 5.0


def _scale(name: str) -> float:
    return float(os.environ.get(name, "1") or 1)


def time_limits(step: Step) -> tuple[float, float]:
    """(soft, hard) seconds, scaled by STEP_TIME_LIMIT_SCALE (tests shrink them)."""
    policy, scale = STEP_POLICY[step], _scale("STEP_TIME_LIMIT_SCALE")
    return policy.soft_limit * scale, policy.hard_limit * scale


def stale_dispatch_seconds() -> float:
    """How long a sent run may wait unstarted before the sweep sends another
    (only when its queue is empty, or after ten times this: a backlog is not
    flooded with copies). 20 s: a message lost with a killed worker (delivered
    to it, never started) is sent again within the 30 s recovery bound, as a
    run abandoned mid-step is by its lease."""
    return float(os.environ.get("STALE_DISPATCH_SECONDS") or 20)


def inline_budget(step: Step) -> float:
    return STEP_POLICY[step].inline_budget * _scale("STEP_TIME_LIMIT_SCALE")


def lease_seconds(*steps: Step) -> float:
    """How long a run (or a slow-path task) owns the order while these steps run:
    the longest hard limit, after which the process is killed, plus a grace."""
    return max(time_limits(step)[1] for step in steps) + LEASE_GRACE * _scale("STEP_TIME_LIMIT_SCALE")


def queue_for(step: Step, priority: str) -> str:
    """Express orders ride their own queue end to end, ahead of any backlog."""
    return EXPRESS_QUEUE if priority == "express" else STEP_POLICY[step].queue


def run_queue(priority: str) -> str:
    return EXPRESS_QUEUE if priority == "express" else RUN_QUEUE


def backoff_seconds(step: Step, attempt: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**(attempt-1)))."""
    policy = STEP_POLICY[step]
    ceiling = min(policy.backoff_cap, policy.backoff_base * 2 ** max(attempt - 1, 0))
    return (rng or random).uniform(0, ceiling * _scale("RETRY_BACKOFF_SCALE"))
