"""The bench's baseline (c), the worked example's app, still runs the shop's email and
invoice code: a change of their signatures must fail here, not in `make bench`."""

from __future__ import annotations

import importlib
import mailbox
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from tests.support.processes import RedisServer


def test_the_seed_apps_order_completes_with_the_shops_email_and_invoice(
    redis_server: RedisServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'seed.db'}"
    monkeypatch.setenv("BENCH_SEED_DATABASE_URL", url)
    monkeypatch.setenv("BENCH_SEED_VAR_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("BENCH_BROKER_URL", redis_server.url)
    monkeypatch.setenv("SIMULATED_LATENCY_SCALE", "0")
    seed = importlib.import_module("bench.baselines.seed_app")
    seed.Base.metadata.create_all(create_engine(url))
    with Session(create_engine(url)) as session, session.begin():
        session.add(seed.Product(sku="MUG-001", name="Enamel mug", price_cents=1200, stock=5))

    answer = (
        seed.create_app()
        .test_client()
        .post(
            "/orders",
            json={
                "customer": {"email": "ada@example.com", "name": "Ada Lovelace"},
                "items": [{"sku": "MUG-001", "quantity": 2}],
                "shipping_address": {"line1": "1 Main St", "city": "London", "postal_code": "N1 9GU", "country": "GB"},
                "payment_token": "tok_visa",
            },
        )
    )
    assert answer.status_code == 201, answer.get_data(as_text=True)
    order_id = answer.get_json()["order_id"]
    seed.process_order(order_id)  # in process: the task's body, as a worker would run it

    with Session(create_engine(url)) as session:
        assert session.get(seed.Order, order_id).status == "completed"
    assert (tmp_path / "var" / "invoices" / f"{order_id}.pdf").read_bytes().startswith(b"%PDF")
    assert len(mailbox.Maildir(str(tmp_path / "var" / "maildir"), create=False)) == 1
