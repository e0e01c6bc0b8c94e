"""Exactly-once effects: a step run again for the same order does not repeat its effect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from shop.services.steps import run_step, warm_up

from shop.states import STEPS, Step
from tests.support.processes import RedisServer
from tests.support.receivers import SmtpSink, WarehouseReceiver
from tests.support.stack import Stack, order_payload


@pytest.fixture(params=["sqlite", "postgresql"])
def pipeline_stack(
    request: pytest.FixtureRequest,
    make_stack: Any,
    redis_server: RedisServer,
    smtp: SmtpSink,
    warehouse: WarehouseReceiver,
) -> Stack:
    return make_stack(redis_server.url, request.param, SMTP_URL=smtp.url, WAREHOUSE_URL=warehouse.url)  # type: ignore[no-any-return]


def _run_all_steps(stack: Stack, order_id: str) -> list[str]:
    return [run_step(stack.services, order_id, step, f"task-{step}").status for step in STEPS]


def _effects(
    stack: Stack, order_id: str, sku: str, email: str, smtp: SmtpSink, warehouse: WarehouseReceiver
) -> dict[str, Any]:
    return {
        "charges": stack.scalar("SELECT count(*) FROM payment_charges WHERE order_id = :o", o=order_id),
        "stock": stack.stock(sku),
        "reservations": stack.scalar("SELECT count(*) FROM stock_reservations WHERE order_id = :o", o=order_id),
        "invoice_files": len(list(Path(stack.services.invoice_dir).glob(f"{order_id}*"))),
        "emails": len(smtp.to(email)),
        "warehouse_keys": len({k for k in warehouse.keys() if order_id in k}),
    }


def _accept(stack: Stack, sku: str, email: str) -> str:
    order_id = stack.place(order_payload((sku, 2), email=email))["order_id"]
    stack.services.publisher = _NoBroker()  # steps are driven by hand below
    return order_id


class _NoBroker:
    def publish(self, message: object) -> None:
        pass


def test_each_step_run_twice_performs_its_side_effect_once(
    pipeline_stack: Stack, smtp: SmtpSink, warehouse: WarehouseReceiver, request: pytest.FixtureRequest
) -> None:
    stack, sku, email = (
        pipeline_stack,
        pipeline_stack.add_product(stock=10),
        f"{request.node.originalname[5:15]}-{request.node.callspec.id}@example.com",
    )
    order_id = _accept(stack, sku, email)

    assert _run_all_steps(stack, order_id) == ["succeeded"] * 5
    assert _run_all_steps(stack, order_id) == ["skipped"] * 5

    assert stack.status(order_id)["status"] == "completed"
    expected = {"charges": 1, "stock": 8, "reservations": 1, "invoice_files": 1, "emails": 1, "warehouse_keys": 1}
    assert _effects(stack, order_id, sku, email, smtp, warehouse) == expected
    assert warehouse.keys().count(f"order:{order_id}:warehouse") == 1


def test_steps_whose_outcome_was_lost_run_again_without_a_second_effect(
    pipeline_stack: Stack, smtp: SmtpSink, warehouse: WarehouseReceiver, request: pytest.FixtureRequest
) -> None:
    """As if every worker died after its side effect, before recording it."""
    stack, sku, email = (
        pipeline_stack,
        pipeline_stack.add_product(stock=10),
        f"{request.node.originalname[5:15]}-{request.node.callspec.id}@example.com",
    )
    order_id = _accept(stack, sku, email)
    _run_all_steps(stack, order_id)
    stack.rows(
        "UPDATE step_runs SET status = 'running', lease_expires_at = '2000-01-01 00:00:00' "
        "WHERE order_id = :o RETURNING id",
        o=order_id,
    )
    stack.rows("UPDATE orders SET status = 'processing', pending_fanout = 3 WHERE id = :o RETURNING id", o=order_id)

    assert _run_all_steps(stack, order_id) == ["succeeded"] * 5

    assert stack.status(order_id)["status"] == "completed"
    expected = {"charges": 1, "stock": 8, "reservations": 1, "invoice_files": 1, "emails": 1, "warehouse_keys": 1}
    assert _effects(stack, order_id, sku, email, smtp, warehouse) == expected


def test_a_later_step_never_runs_before_its_predecessors(pipeline_stack: Stack) -> None:
    sku = pipeline_stack.add_product()
    order_id = _accept(pipeline_stack, sku, "early@example.com")
    assert run_step(pipeline_stack.services, order_id, Step.PAYMENT, "stray").status == "skipped"
    assert pipeline_stack.scalar("SELECT count(*) FROM payment_charges WHERE order_id = :o", o=order_id) == 0


def test_the_warm_up_before_fork_compiles_the_step_statements_and_writes_nothing(pipeline_stack: Stack) -> None:
    order_id = pipeline_stack.place(order_payload((pipeline_stack.add_product(stock=5), 1)))["order_id"]
    before = pipeline_stack.status(order_id)
    engine = pipeline_stack.services.db.engine
    engine.clear_compiled_cache()

    warm_up(pipeline_stack.services)

    assert len(engine._compiled_cache) >= 10  # claim, read, succeed, 5 order updates, dispatches, move
    assert pipeline_stack.status(order_id) == before
    assert _run_all_steps(pipeline_stack, order_id) == ["succeeded"] * len(STEPS)
