"""Retry budget, backoff, time limits and queue of every step: the one table.

The Celery task decorators, the lease given to a running step and the sweeper
all read this table; nothing else hard-codes a limit.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

from shop.states import Step


@dataclass(frozen=True)
class StepPolicy:
    queue: str
    max_attempts: int
    backoff_base: float  # seconds before the 2nd attempt (before jitter)
    backoff_cap: float  # no retry waits longer; must stay below the visibility timeout
    soft_limit: float  # SoftTimeLimitExceeded: a clean, counted retry
    hard_limit: float  # the pool kills the process; the lease expires, the sweeper redispatches
    latency: float  # simulated work in seconds at SIMULATED_LATENCY_SCALE=1


# Hard limits bound recovery: a step abandoned by a dead worker is handed out
# again once its lease (hard limit + grace) expires and the sweeper runs, so
# the longest lease plus the sweep interval must stay under 30 s.
STEP_POLICY: dict[Step, StepPolicy] = {
    Step.INVENTORY: StepPolicy("orders", 5, 1.0, 30.0, 8.0, 10.0, 0.5),
    Step.PAYMENT: StepPolicy("payments", 5, 2.0, 30.0, 10.0, 15.0, 1.5),
    Step.EMAIL: StepPolicy("fulfilment", 8, 2.0, 30.0, 10.0, 15.0, 0.8),
    Step.INVOICE: StepPolicy("fulfilment", 5, 1.0, 30.0, 10.0, 15.0, 1.2),
    Step.WAREHOUSE: StepPolicy("fulfilment", 8, 2.0, 30.0, 5.0, 10.0, 0.3),
}

LOAD_ORDER_LATENCY = 0.2  # the worked example's "load order", paid once, by inventory
EXPRESS_QUEUE = "express"
MAINTENANCE_QUEUE = "maintenance"
# Listed in the order a worker serving all of them should prefer.
QUEUES = ("maintenance", "express", "payments", "orders", "fulfilment")
# Seconds a lease outlives the hard limit: the pool needs a moment to kill and report.
LEASE_GRACE = 5.0


def _scale(name: str) -> float:
    return float(os.environ.get(name, "1") or 1)


def time_limits(step: Step) -> tuple[float, float]:
    """(soft, hard) seconds, scaled by STEP_TIME_LIMIT_SCALE (tests shrink them)."""
    policy, scale = STEP_POLICY[step], _scale("STEP_TIME_LIMIT_SCALE")
    return policy.soft_limit * scale, policy.hard_limit * scale


def lease_seconds(step: Step) -> float:
    return time_limits(step)[1] + LEASE_GRACE * _scale("STEP_TIME_LIMIT_SCALE")


def queue_for(step: Step, priority: str) -> str:
    """Express orders ride their own queue end to end, ahead of any backlog."""
    return EXPRESS_QUEUE if priority == "express" else STEP_POLICY[step].queue


def backoff_seconds(step: Step, attempt: int, rng: random.Random | None = None) -> float:
    """Exponential backoff with full jitter: uniform(0, min(cap, base * 2**(attempt-1)))."""
    policy = STEP_POLICY[step]
    ceiling = min(policy.backoff_cap, policy.backoff_base * 2 ** max(attempt - 1, 0))
    return (rng or random).uniform(0, ceiling * _scale("RETRY_BACKOFF_SCALE"))
