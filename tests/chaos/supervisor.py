"""A tiny process supervisor for chaos tests: restarts dead workers, like systemd would."""

from __future__ import annotations

import os
import random
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.processes import CeleryWorker
from tests.support.stack import Stack


class Supervisor:
    def __init__(self, stack: Stack, workers: int = 2, concurrency: int = 2, env: dict[str, str] | None = None) -> None:
        self.stack = stack
        self.env = env or {}
        self.concurrency = concurrency
        self.workers = [self._spawn(i) for i in range(workers)]
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _spawn(self, index: int) -> CeleryWorker:
        return self.stack.start_worker(
            wait=False,
            name=f"sup{index}-{self.__dict__.get('restarts', 0)}",
            concurrency=self.concurrency,
            env=self.env,
        )

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            for i, worker in enumerate(self.workers):
                if worker.process and worker.process.poll() is not None:
                    self.restarts += 1
                    self.workers[i] = self._spawn(i)

    def kill_randomly(self, rng: random.Random) -> str:
        """SIGKILL one pool process, or a whole worker with its pool."""
        worker = rng.choice(self.workers)
        children = worker.child_pids()
        if children and rng.random() < 0.6:
            os.kill(rng.choice(children), signal.SIGKILL)
            return "pool process"
        worker.kill_group()
        return "whole worker"

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


@contextmanager
def supervised(stack: Stack, **kwargs: object) -> Iterator[Supervisor]:
    supervisor = Supervisor(stack, **kwargs)  # type: ignore[arg-type]
    try:
        yield supervisor
    finally:
        supervisor.stop()
