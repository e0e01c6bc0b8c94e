"""How long a step may take: its inline budget, and the kill at its hard limit.

Inside the order's run a step is interrupted cooperatively: every wait it
makes (simulated work, the SMTP and warehouse timeouts) is bounded by the
budget left, and past it raises ``OutgrewInlineBudget``, a transient error
that sends the step to its slow-path task. A step deaf to that (blocked in C,
the ``hang`` fault) is killed at its hard limit: a watchdog thread expires the
run's lease and SIGKILLs the process, which Celery reports as a lost worker
and redelivers (``task_reject_on_worker_lost``); the attempt was counted when
it started. Celery's own time limits apply per task, so they bound the
slow-path step tasks, where one task is one step; here they would bound the
whole run.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from shop.errors import TransientError

log = logging.getLogger(__name__)

_local = threading.local()


class OutgrewInlineBudget(TransientError):
    """The step took longer than it may inside the order's run."""


@contextmanager
def inline_budget(seconds: float | None) -> Iterator[None]:
    """Bound every wait of the step running in this thread; None: no bound."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = None if seconds is None else time.monotonic() + seconds
    _local.budget = seconds
    try:
        yield
    finally:
        _local.deadline = previous


def remaining() -> float | None:
    deadline = getattr(_local, "deadline", None)
    return None if deadline is None else deadline - time.monotonic()


def timeout(default: float) -> float:
    """A network timeout that ends with the step's budget (at least 50 ms)."""
    left = remaining()
    return default if left is None else max(min(default, left), 0.05)


def sleep(seconds: float) -> None:
    """Sleep, or raise ``OutgrewInlineBudget`` once the budget runs out first."""
    left = remaining()
    if left is None or left >= seconds:
        time.sleep(seconds)
        return
    time.sleep(max(left, 0))
    raise OutgrewInlineBudget(f"outgrew its inline budget of {getattr(_local, 'budget', 0):.2f}s")


class HardLimit:
    """One watchdog thread per process: kills the process when an armed deadline passes.

    Armed around each phase of a run. Arming and disarming are plain attribute
    writes; the thread looks every ``POLL`` seconds (a Condition notified per
    phase cost 3 % of the pool's CPU). It is started lazily, after Celery's fork."""

    POLL = 0.1

    def __init__(self) -> None:
        self._armed: tuple[float, float, str, Callable[[], None]] | None = None
        self._thread: threading.Thread | None = None
        os.register_at_fork(after_in_child=self._forget_thread)

    def _forget_thread(self) -> None:
        self._thread, self._armed = None, None

    @contextmanager
    def armed(self, seconds: float, what: str, on_expiry: Callable[[], None]) -> Iterator[None]:
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="hard-limit", daemon=True)
            self._thread.start()
        self._armed = (time.monotonic() + seconds, seconds, what, on_expiry)
        try:
            yield
        finally:
            self._armed = None

    def _watch(self) -> None:
        while True:
            time.sleep(self.POLL)
            armed = self._armed
            if armed is not None and time.monotonic() >= armed[0]:
                break
        _, seconds, what, on_expiry = armed
        log.critical("Hard time limit (%.2fs) exceeded by %s: killing this process", seconds, what)
        try:
            on_expiry()
        finally:
            os.kill(os.getpid(), signal.SIGKILL)


hard_limit = HardLimit()
