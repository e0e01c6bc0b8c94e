"""A baseline Celery app driven like the shop: submit orders, read when each finished."""

from __future__ import annotations

import importlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import redis

from bench.baselines import DONE_KEY
from bench.processes import BIN, Proc, Processes
from bench.stack import WorkerSpec
from tests.support.waiting import free_port, wait_until


@dataclass
class Baseline:
    name: str  # single_task | canvas
    procs: Processes
    broker_url: str
    workers: list[Proc] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.env = {"BENCH_BROKER_URL": self.broker_url, "SIMULATED_LATENCY_SCALE": "0.01"}
        import os

        os.environ["BENCH_BROKER_URL"] = self.broker_url
        self.module = importlib.import_module(f"bench.baselines.{self.name}")
        self.redis = redis.Redis.from_url(self.broker_url)

    def start_workers(self, spec: WorkerSpec, tag: str = "b") -> list[Proc]:
        started = []
        for n in range(spec.processes):
            node = f"{self.name}-{tag}{n}-{free_port()}@bench"
            proc = self.procs.start(
                node.split("@")[0],
                [
                    str(BIN / "celery"),
                    "-A",
                    f"bench.baselines.{self.name}",
                    "worker",
                    "-n",
                    node,
                    "-Q",
                    self.module.QUEUE,
                    "-c",
                    str(max(1, spec.concurrency // spec.processes)),
                    "-P",
                    spec.pool,
                    "-l",
                    "WARNING",
                    "--without-mingle",
                    "--without-gossip",
                ],
                self.env,
            )
            proc.node = node  # type: ignore[attr-defined]
            started.append(proc)
        for proc in started:
            wait_until(
                lambda p=proc: p.alive() and self.module.app.control.ping([p.node], timeout=0.5),
                60,
                what=f"{proc.name} to answer ping",
            )
        self.workers += started
        return started

    def stop_workers(self) -> None:
        for proc in self.workers:
            self.procs.stop(proc)
        self.workers = []

    def worker_pids(self) -> list[int]:
        return [p.pid for p in self.workers]

    def reset(self) -> None:
        self.redis.delete(DONE_KEY, "bench:fanout", self.module.QUEUE)

    def place(self, payload: dict[str, Any]) -> str:
        order_id = secrets.token_urlsafe(16)
        self.module.submit({"id": order_id, "created": time.time(), **payload})
        return order_id

    def completion_times(self, order_ids: list[str]) -> dict[str, tuple[float, float]]:
        wanted = set(order_ids)
        out = {}
        for raw in self.redis.lrange(DONE_KEY, 0, -1):
            order_id, created, done = raw.decode().split()
            if order_id in wanted:
                out[order_id] = (float(created), float(done))
        return out

    def count_completed(self, order_ids: list[str]) -> int:
        return len(self.completion_times(order_ids))

    def wait_completed(self, order_ids: list[str], timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while (done := int(self.redis.llen(DONE_KEY))) < len(order_ids) and time.monotonic() < deadline:
            time.sleep(0.25)
        return self.count_completed(order_ids) if done >= len(order_ids) else done
