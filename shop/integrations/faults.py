"""Simulated latency and injected faults (SIMULATED_LATENCY_SCALE, FAULTS).

``FAULTS="payment:transient=0.3,email:hang=0.05,invoice:crash=0.02"``
  transient  raise a TransientError before the side effect (retried)
  permanent  raise a PermanentError before the side effect (dead letter)
  slow       sleep past the inline budget and the soft time limit, not the hard one (clean, counted retries)
  hang       stay stuck past the hard time limit, deaf to the soft one (the pool kills the process)
  crash      SIGKILL this process after the side effect, before it is recorded
"""

from __future__ import annotations

import os
import random
import signal
import time
from dataclasses import dataclass, field

from shop.errors import PermanentError, TransientError
from shop.pipeline import budget
from shop.states import Step
from shop.step_policy import STEP_POLICY, time_limits

FAULT_KINDS = ("transient", "permanent", "slow", "hang", "crash")


def parse_faults(spec: str) -> dict[Step, dict[str, float]]:
    """Parse FAULTS; raise ValueError with a readable message on a bad spec."""
    faults: dict[Step, dict[str, float]] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        try:
            step_name, rest = item.split(":", 1)
            kind, rate_text = rest.split("=", 1)
            step, rate = Step(step_name.strip()), float(rate_text)
        except ValueError as exc:
            raise ValueError(f"bad FAULTS entry {item!r}: want step:kind=rate") from exc
        if kind not in FAULT_KINDS or not 0 <= rate <= 1:
            raise ValueError(f"bad FAULTS entry {item!r}: kind in {FAULT_KINDS}, rate in 0..1")
        faults.setdefault(step, {})[kind] = rate
    return faults


@dataclass
class Simulation:
    latency_scale: float = 1.0
    faults: dict[Step, dict[str, float]] = field(default_factory=dict)
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        # Celery forks its pool from a process that already built this RNG. Without
        # a reseed every child draws the same sequence, so a child that crashes on
        # its first step is replaced by one that crashes on it again, forever.
        os.register_at_fork(after_in_child=self.rng.seed)

    @classmethod
    def from_config(cls, latency_scale: float, faults_spec: str) -> Simulation:
        return cls(latency_scale, parse_faults(faults_spec))

    def sleep(self, seconds: float) -> None:
        """Simulated work: bounded by the step's inline budget, like every wait in a step."""
        if seconds > 0 and self.latency_scale > 0:
            budget.sleep(seconds * self.latency_scale)

    def work(self, step: Step) -> None:
        """The step's simulated latency."""
        self.sleep(STEP_POLICY[step].latency)

    def _hit(self, step: Step, kind: str) -> bool:
        rate = self.faults.get(step, {}).get(kind, 0.0)
        return rate > 0 and self.rng.random() < rate

    def before_effect(self, step: Step) -> None:
        if self._hit(step, "transient"):
            raise TransientError(f"injected transient fault in {step}")
        if self._hit(step, "permanent"):
            raise PermanentError(f"injected permanent fault in {step}")
        if self._hit(step, "slow"):
            soft, hard = time_limits(step)
            budget.sleep((soft + hard) / 2)  # the inline budget or the soft limit ends this sleep
        if self._hit(step, "hang"):
            hang_past_hard_limit(step)

    def after_effect(self, step: Step) -> None:
        if self._hit(step, "crash"):
            os.kill(os.getpid(), signal.SIGKILL)


def hang_past_hard_limit(step: Step) -> None:
    """Stay stuck past the hard limit, like a call blocked in C that the soft
    limit's exception cannot interrupt: only killing the process ends it."""
    deadline = time.monotonic() + time_limits(step)[1] + 5
    while time.monotonic() < deadline:
        try:
            time.sleep(max(deadline - time.monotonic(), 0))
        except BaseException as exc:  # the soft limit's exception, swallowed on purpose
            if type(exc).__name__ != "SoftTimeLimitExceeded":
                raise
