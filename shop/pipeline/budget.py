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

    Armed around each phase of a run; arming is a variable write, not a new
    thread per phase. The thread is started lazily, after Celery's fork."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._deadline: float | None = None
        self._on_expiry: Callable[[], None] | None = None
        self._what = ""
        self._thread: threading.Thread | None = None
        os.register_at_fork(after_in_child=self._forget_thread)

    def _forget_thread(self) -> None:
        self._condition = threading.Condition()
        self._thread, self._deadline = None, None

    @contextmanager
    def armed(self, seconds: float, what: str, on_expiry: Callable[[], None]) -> Iterator[None]:
        with self._condition:
            if self._thread is None:
                self._thread = threading.Thread(target=self._watch, name="hard-limit", daemon=True)
                self._thread.start()
            self._deadline, self._on_expiry, self._what = time.monotonic() + seconds, on_expiry, what
            self._seconds = seconds
            self._condition.notify()
        try:
            yield
        finally:
            with self._condition:
                self._deadline = None

    def _watch(self) -> None:
        with self._condition:
            while True:
                if self._deadline is None:
                    self._condition.wait()
                    continue
                left = self._deadline - time.monotonic()
                if left > 0:
                    self._condition.wait(left)
                    continue
                break
            on_expiry, what, seconds = self._on_expiry, self._what, self._seconds
        log.critical("Hard time limit (%.2fs) exceeded by %s: killing this process", seconds, what)
        try:
            if on_expiry is not None:
                on_expiry()
        finally:
            os.kill(os.getpid(), signal.SIGKILL)


hard_limit = HardLimit()
