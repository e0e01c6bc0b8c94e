"""The shop under test: its database, gunicorn and Celery workers (no beat), on one Redis.

Also the handful of ledger queries the scenarios measure with (time to
``completed`` comes from the database: ``orders.created_at`` against the last
``step_runs.finished_at``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from celery import Celery

from bench.loadgen import SKUS, HttpClient
from bench.processes import BIN, Proc, Processes
from tests.support.waiting import free_port, wait_until

PG = "postgresql://postgres@127.0.0.1:5432"
QUEUES = "express,payments,orders,fulfilment"


def gunicorn_command(app: str, port: int, workers: int, threads: int) -> list[str]:
    """gunicorn as the bench runs a web app: gthread on loopback.

    --no-control-socket: gunicorn >= 25.1 otherwise opens ~/.gunicorn/gunicorn.ctl, one path for
    every instance of the user: a second gunicorn takes it over and stopping either deletes it.
    Nothing here uses gunicornc, so no instance opens one.
    """
    return [
        str(BIN / "gunicorn"),
        app,
        "-b",
        f"127.0.0.1:{port}",
        "-w",
        str(workers),
        "-k",
        "gthread",
        "--threads",
        str(threads),
        "--log-level",
        "warning",
        "--no-control-socket",
    ]


def recreate_database(name: str) -> str:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{PG}/{name}"


def drop_database(name: str) -> None:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@dataclass
class WorkerSpec:
    concurrency: int = 8
    processes: int = 2  # worker instances; the concurrency is split between them
    pool: str = "prefork"


@dataclass
class Shop:
    procs: Processes
    workdir: Path
    redis_url: str
    db_name: str = "shop_bench"
    gunicorn_workers: int = 2
    gunicorn_threads: int = 4
    env: dict[str, str] = field(default_factory=dict)
    web: Proc | None = None
    workers: list[Proc] = field(default_factory=list)
    port: int = 0

    def setup(self, **overrides: str) -> Shop:
        dsn = recreate_database(self.db_name)
        self.dsn = dsn
        self.env = {
            "DATABASE_URL": dsn.replace("postgresql://", "postgresql+psycopg://"),
            "REDIS_URL": self.redis_url,
            "SHOP_VAR_DIR": str(self.workdir / "var"),
            "SECRET_KEY": "bench-secret",
            "ADMIN_TOKEN": "bench-admin-token-0123456789abcdef",  # start-up wants 32+
            "SIMULATED_LATENCY_SCALE": "0.01",
            "FAULTS": "",
            "SMTP_URL": "",
            "WAREHOUSE_URL": "",
            "RATE_LIMIT_PER_MINUTE": "0",
            "LOG_LEVEL": "WARNING",
            **overrides,
        }
        self.procs.start("migrate", [str(BIN / "flask"), "--app", "shop", "db", "upgrade"], self.env).popen.wait(120)
        with psycopg.connect(dsn, autocommit=True) as conn:
            for sku in SKUS:
                conn.execute(
                    "INSERT INTO products"
                    " (sku, name, description, price_cents, currency, stock, updated_at)"
                    " VALUES (%s, %s, '', 1000, 'EUR', 1000000000, now())",
                    (sku, f"Bench {sku}"),
                )
        self.control = Celery("bench-control", broker=self.redis_url, set_as_current=False)
        self.http = None
        return self

    # --- processes ---------------------------------------------------------
    def start_web(self) -> None:
        self.port = free_port()
        self.web = self.procs.start(
            "gunicorn",
            gunicorn_command("shop:create_app()", self.port, self.gunicorn_workers, self.gunicorn_threads),
            self.env,
        )
        wait_until(lambda: self.web.log_contains(b"") and http_ok(self.port), 60, what="gunicorn")
        self.http = HttpClient(self.port)

    def start_workers(self, spec: WorkerSpec, tag: str = "w") -> list[Proc]:
        started = []
        for n in range(spec.processes):
            name = f"{tag}{n}-{free_port()}@bench"
            proc = self.procs.start(
                name.split("@")[0],
                [
                    str(BIN / "celery"),
                    "-A",
                    "tasks",
                    "worker",
                    "-n",
                    name,
                    "-Q",
                    QUEUES,
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
            proc.node = name  # type: ignore[attr-defined]
            started.append(proc)
        for proc in started:
            wait_until(
                lambda p=proc: p.alive() and self.control.control.ping([p.node], timeout=0.5),
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

    # --- orders ------------------------------------------------------------
    def place(self, payload: dict[str, Any]) -> str | None:
        assert self.http is not None
        status, body = self.http.post_json("/orders", payload)
        return body.get("order_id") if status == 201 else None

    def reset(self) -> None:
        """End what a scenario left behind: cancel unfinished orders (their queued steps
        become no-op claims) and empty the broker queues (our own Redis)."""
        self.sql("UPDATE orders SET status = 'cancelled' WHERE status IN ('received', 'processing')")
        import redis

        redis.Redis.from_url(self.redis_url).delete(*QUEUES.split(","))

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def completion_times(self, order_ids: list[str]) -> dict[str, tuple[float, float]]:
        """order id → (created, completed) as Unix times, for the completed ones."""
        rows = self.sql(
            "SELECT o.id, extract(epoch from o.created_at)::float8,"
            " extract(epoch from max(s.finished_at))::float8"
            " FROM orders o JOIN step_runs s ON s.order_id = o.id"
            " WHERE o.status = 'completed' AND o.id = ANY(%s) GROUP BY o.id",
            list(order_ids),
        )
        return {r[0]: (r[1], r[2]) for r in rows}

    def count_completed(self, order_ids: list[str]) -> int:
        return int(
            self.sql(
                "SELECT count(*) FROM orders WHERE status = 'completed' AND id = ANY(%s)",
                list(order_ids),
            )[0][0]
        )

    def wait_completed(self, order_ids: list[str], timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while (done := self.count_completed(order_ids)) < len(order_ids) and time.monotonic() < deadline:
            time.sleep(0.25)
        return done


def http_ok(port: int) -> bool:
    import http.client

    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/healthz")
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False
