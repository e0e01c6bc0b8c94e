"""Baseline (c), the worked example's Flask app, driven like the shop: its own database,
gunicorn and Celery workers; orders go in through ``POST /orders``, completion times come
from its ``orders`` table (``created_at`` → ``completed_at``, written by the task)."""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from bench.baseline_system import Baseline
from bench.loadgen import SKUS, HttpClient
from bench.processes import Proc
from bench.stack import drop_database, gunicorn_command, http_ok, recreate_database
from tests.support.waiting import free_port, wait_until

NAME = "seed_app"
DB_NAME = "shop_bench_seed"
_created: set[str] = set()  # databases this process created, dropped by cleanup()


@dataclass
class SeedApp(Baseline):
    workdir: Path = field(default_factory=Path)
    gunicorn_workers: int = 2
    gunicorn_threads: int = 4
    db_name: str = DB_NAME
    web: Proc | None = None
    http: HttpClient | None = None

    def setup(self) -> SeedApp:
        """Create its database, tables and the bench's products (stock enough for any run)."""
        from sqlalchemy import create_engine

        self.dsn = recreate_database(self.db_name)
        _created.add(self.db_name)
        url = self.dsn.replace("postgresql://", "postgresql+psycopg://")
        engine = create_engine(url)
        try:
            self.module.Base.metadata.create_all(engine)
        finally:
            engine.dispose()
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO products (sku, name, price_cents, stock) VALUES (%s, %s, 1000, 1000000000)",
                    [(sku, f"Bench {sku}") for sku in SKUS],
                )
        self.env.update(
            BENCH_SEED_DATABASE_URL=url,
            BENCH_SEED_VAR_DIR=str(self.workdir / "seed-var"),
        )
        return self

    # --- web: gunicorn as the bench serves the shop (gthread, same workers and threads)
    def start_web(self) -> None:
        port = free_port()
        self.web = self.procs.start(
            f"{NAME}-gunicorn",
            gunicorn_command(
                "bench.baselines.seed_app:create_app()", port, self.gunicorn_workers, self.gunicorn_threads
            ),
            self.env,
        )
        wait_until(
            lambda: self.web is not None and self.web.log_contains(b"") and http_ok(port), 60, what="seed gunicorn"
        )
        self.http = HttpClient(port)

    def stop_web(self) -> None:
        if self.web is not None:
            self.procs.stop(self.web)
        self.web, self.http = None, None

    # --- orders ------------------------------------------------------------
    def reset(self) -> None:
        """Empty its queue (its own Redis DB): nothing left over runs in the next phase."""
        self.redis.delete(self.module.QUEUE)

    def place(self, payload: dict[str, Any]) -> str:
        assert self.http is not None, "start_web() first"
        status, body = self.http.post_json("/orders", payload)
        return body.get("order_id") if status == 201 else None  # type: ignore[return-value]

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            cursor = conn.execute(query, params)
            return cursor.fetchall() if cursor.description else []

    def completion_times(self, order_ids: list[str]) -> dict[str, tuple[float, float]]:
        rows = self.sql(
            "SELECT id, extract(epoch from created_at)::float8, extract(epoch from completed_at)::float8"
            " FROM orders WHERE status = 'completed' AND id = ANY(%s)",
            list(order_ids),
        )
        return {r[0]: (r[1], r[2]) for r in rows}

    def count_completed(self, order_ids: list[str]) -> int:
        return int(
            self.sql("SELECT count(*) FROM orders WHERE status = 'completed' AND id = ANY(%s)", list(order_ids))[0][0]
        )

    def wait_completed(self, order_ids: list[str], timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while (done := self.count_completed(order_ids)) < len(order_ids) and time.monotonic() < deadline:
            time.sleep(0.25)
        return done


def make(procs: Any, workdir: Path, broker_url: str, gunicorn_workers: int, gunicorn_threads: int) -> SeedApp:
    return SeedApp(
        NAME,
        procs,
        broker_url,
        workdir=workdir,
        gunicorn_workers=gunicorn_workers,
        gunicorn_threads=gunicorn_threads,
    ).setup()


def cleanup() -> None:
    """Drop the databases this process created (from the run's ``finally``; never raises)."""
    for name in list(_created):
        with contextlib.suppress(psycopg.Error):
            drop_database(name)
        _created.discard(name)
