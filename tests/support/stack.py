"""A whole shop for a test: database, Redis, var dir, the Flask app, and worker processes."""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from shop import create_app
from shop.extensions import ShopServices
from shop.models import Order, Product, StepRun, utcnow
from tests.support.processes import CeleryWorker, wait_until
from tests.support.receivers import WAREHOUSE_SECRET

# start-up refuses an ADMIN_TOKEN under 32 characters, and needs a SECRET_KEY shared by every process.
ADMIN_TOKEN = "test-admin-token-0123456789abcdef"
METRICS_TOKEN = "test-metrics-token"
SECRET_KEY = "test-secret-key-shared-by-every-process"
_counter = itertools.count()


def order_payload(
    *items: tuple[str, int], token: str = "tok_visa", email: str = "ada@example.com", priority: str = "standard"
) -> dict[str, Any]:
    return {
        "customer": {"email": email, "name": "Ada Lovelace"},
        "items": [{"sku": sku, "quantity": q} for sku, q in items],
        "shipping_address": {"line1": "1 Main St", "city": "London", "postal_code": "N1 9GU", "country": "GB"},
        "payment_token": token,
        "priority": priority,
    }


class Stack:
    def __init__(self, database_url: str, redis_url: str, workdir: Path, **overrides: str) -> None:
        self.workdir = workdir
        self.env: dict[str, str] = {
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "SHOP_VAR_DIR": str(workdir / "var"),
            "SECRET_KEY": SECRET_KEY,
            "ADMIN_TOKEN": ADMIN_TOKEN,
            "METRICS_TOKEN": METRICS_TOKEN,
            "SIMULATED_LATENCY_SCALE": "0",
            "FAULTS": "",
            "SMTP_URL": "",
            "WAREHOUSE_URL": "",
            "WAREHOUSE_SECRET": WAREHOUSE_SECRET,  # what the tests' WarehouseReceiver checks
            "RATE_LIMIT_PER_MINUTE": "0",
            "RETRY_BACKOFF_SCALE": "0.02",
            "RELAY_INTERVAL": "0.5",
            "SWEEP_INTERVAL": "1",
            "STALE_DISPATCH_SECONDS": "10",
            "LOG_LEVEL": "INFO",
            **overrides,
        }
        self.workers: list[CeleryWorker] = []
        self._saved_env: dict[str, str | None] = {}
        self.app: Flask = None  # type: ignore[assignment]

    # --- lifecycle -------------------------------------------------------
    def __enter__(self) -> Stack:
        self.workdir.mkdir(parents=True, exist_ok=True)
        for key, value in self.env.items():
            self._saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        self.app = create_app({"TESTING": True})
        return self

    def __exit__(self, *exc: object) -> None:
        for worker in self.workers:
            worker.stop(timeout=20)
        self.services.db.dispose()
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    @property
    def services(self) -> ShopServices:
        return self.app.extensions["shop"]  # type: ignore[no-any-return]

    @property
    def client(self) -> FlaskClient:
        return self.app.test_client()

    def admin_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    def metrics_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {METRICS_TOKEN}"}

    def start_worker(self, wait: bool = True, **kwargs: Any) -> CeleryWorker:
        env_overrides = kwargs.pop("env", {})
        name = kwargs.pop("name", f"w{len(self.workers) + 1}")
        worker = CeleryWorker({**self.env, **env_overrides}, self.workdir / f"{name}.log", name=name, **kwargs)
        self.workers.append(worker)
        return worker.start(wait=wait)

    # --- data helpers ----------------------------------------------------
    def add_product(self, stock: int = 100, price_cents: int = 1000, sku: str | None = None) -> str:
        sku = sku or f"T{next(_counter)}-{secrets.token_hex(3)}".upper()
        with self.services.db.begin() as session:
            session.add(Product(sku=sku, name=f"Test product {sku}", price_cents=price_cents, stock=stock))
        return sku

    def stock(self, sku: str) -> int:
        with self.services.db.begin() as session:
            return int(session.scalar(sa.select(Product.stock).where(Product.sku == sku)))

    def scalar(self, sql: str, **params: Any) -> Any:
        with self.services.db.begin() as session:
            return session.execute(sa.text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.services.db.begin() as session:
            return list(session.execute(sa.text(sql), params).all())

    def place(self, payload: dict[str, Any], **headers: str) -> dict[str, Any]:
        response = self.client.post("/orders", json=payload, headers=headers)
        assert response.status_code == 201, response.get_json()
        return response.get_json()  # type: ignore[no-any-return]

    def status(self, order_id: str) -> dict[str, Any]:
        return self.client.get(f"/orders/{order_id}/status").get_json()  # type: ignore[no-any-return]

    def wait_for(self, order_id: str, *statuses: str, timeout: float = 60) -> dict[str, Any]:
        wanted = statuses or ("completed",)
        return wait_until(  # type: ignore[no-any-return]
            lambda: (s := self.status(order_id))["status"] in wanted and s,
            timeout,
            0.1,
            f"order {order_id} to reach {wanted}",
        )

    def wait_all_final(self, order_ids: list[str], timeout: float = 120) -> dict[str, str]:
        final = ("completed", "failed", "cancelled", "needs_attention")

        def done() -> dict[str, str] | None:
            rows = dict(self.rows("SELECT id, status FROM orders"))
            picked = {oid: rows[oid] for oid in order_ids}
            return picked if all(s in final for s in picked.values()) else None

        try:
            return wait_until(done, timeout, 0.25, "all orders to reach a final state")  # type: ignore[no-any-return]
        except AssertionError as exc:
            raise AssertionError(f"{exc}; stuck steps: {self.stuck_steps()}") from None

    def dead_letter_by_hand(self, order_id: str, step: str = "warehouse") -> None:
        """Put the order in the state a step that ran out of retries leaves it in."""
        now = utcnow()
        with self.services.db.begin() as session:
            attention = {"status": "needs_attention", "updated_at": now}
            session.execute(sa.update(Order).where(Order.id == order_id).values(**attention))
            session.execute(
                sa.update(StepRun)
                .where(StepRun.order_id == order_id, StepRun.step == step)
                .values(status="failed", attempts=3, started_at=now, finished_at=now, dead_lettered_at=now)
            )

    def stuck_steps(self) -> list[Any]:
        """Step states of orders that are not final: what a timeout needs explained."""
        return self.rows(
            "SELECT s.step, s.status, s.attempts, s.last_error, s.due_at, o.status, o.lease_token, o.lease_expires_at "
            "FROM step_runs s JOIN orders o ON o.id = s.order_id "
            "WHERE o.status IN ('received', 'processing') AND s.status NOT IN ('succeeded', 'skipped') "
            "ORDER BY o.created_at LIMIT 8"
        )


@contextmanager
def stack_for(database_url: str, redis_url: str, workdir: Path, **overrides: str) -> Iterator[Stack]:
    with Stack(database_url, redis_url, workdir, **overrides) as stack:
        yield stack
