"""Exactly-once effects: an order's run repeated, or resumed after lost checkpoints,
does not repeat a side effect."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shop.dispatch import RUN_TASK
from shop.pipeline.run import run_order, run_slow_step, warm_up
from shop.states import Step
from tests.support.inline_worker import RecordingPublisher, drain, record_messages
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


def _effects(
    stack: Stack, order_id: str, sku: str, email: str, smtp: SmtpSink, warehouse: WarehouseReceiver
) -> dict[str, Any]:
    return {
        "charges": stack.scalar("SELECT count(*) FROM payment_charges WHERE order_id = :o", o=order_id),
        "stock": stack.stock(sku),
        "reservations": stack.scalar("SELECT count(*) FROM stock_reservations WHERE order_id = :o", o=order_id),
        "invoice_files": len(list(Path(stack.services.invoice_dir).glob(f"{order_id}*"))),
        "confirmations": len({m["Message-ID"] for m in smtp.to(email)}),
        "warehouse_keys": len({k for k in warehouse.keys() if order_id in k}),
    }


def _accept(stack: Stack, sku: str, email: str) -> tuple[str, RecordingPublisher]:
    recorder = record_messages(stack.services)
    order_id = stack.place(order_payload((sku, 2), email=email))["order_id"]
    return order_id, recorder


def _email(request: pytest.FixtureRequest) -> str:
    return f"{request.node.originalname[5:15]}-{request.node.callspec.id}@example.com"


EXPECTED = {"charges": 1, "stock": 8, "reservations": 1, "invoice_files": 1, "confirmations": 1, "warehouse_keys": 1}


def test_an_order_run_twice_performs_each_side_effect_once(
    pipeline_stack: Stack, smtp: SmtpSink, warehouse: WarehouseReceiver, request: pytest.FixtureRequest
) -> None:
    stack, sku, email = pipeline_stack, pipeline_stack.add_product(stock=10), _email(request)
    order_id, recorder = _accept(stack, sku, email)
    assert [m.task_name for m in recorder.take()] == [RUN_TASK]  # one message per order

    assert run_order(stack.services, order_id, "first") == "completed"
    assert run_order(stack.services, order_id, "redelivered") == "skipped"
    assert [run_slow_step(stack.services, order_id, step, "stray").outcome for step in Step] == ["skipped"] * 5

    assert stack.status(order_id)["status"] == "completed"
    assert _effects(stack, order_id, sku, email, smtp, warehouse) == EXPECTED
    assert recorder.messages == []


def test_a_run_whose_checkpoints_were_lost_resumes_without_a_second_effect(
    pipeline_stack: Stack, smtp: SmtpSink, warehouse: WarehouseReceiver, request: pytest.FixtureRequest
) -> None:
    """As if the worker died after every side effect after inventory, before recording it."""
    stack, sku, email = pipeline_stack, pipeline_stack.add_product(stock=10), _email(request)
    order_id, recorder = _accept(stack, sku, email)
    run_order(stack.services, order_id, "first")
    stack.rows(
        "UPDATE step_runs SET status = 'running' WHERE order_id = :o AND step != 'inventory' RETURNING id", o=order_id
    )
    stack.rows(
        "UPDATE orders SET status = 'processing', lease_token = 'dead', lease_expires_at = '2000-01-01 00:00:00' "
        "WHERE id = :o RETURNING id",
        o=order_id,
    )

    assert run_order(stack.services, order_id, "recovered") == "handed_over"  # the killed step retries on its own
    drain(stack.services, recorder)

    status = stack.status(order_id)
    assert status["status"] == "completed"
    assert [s["attempts"] for s in status["steps"]] == [1, 2, 2, 2, 2]
    effects = _effects(stack, order_id, sku, email, smtp, warehouse)
    assert effects == EXPECTED  # the email went out twice, under one Message-ID
    assert len(smtp.to(email)) == 2


def test_a_later_step_never_runs_before_its_predecessors(pipeline_stack: Stack) -> None:
    order_id, recorder = _accept(pipeline_stack, pipeline_stack.add_product(), "early@example.com")
    recorder.take()
    assert run_slow_step(pipeline_stack.services, order_id, Step.PAYMENT, "stray").outcome == "skipped"
    assert pipeline_stack.scalar("SELECT count(*) FROM payment_charges WHERE order_id = :o", o=order_id) == 0
    assert recorder.messages == []  # a stray copy sends nothing either


def test_a_stale_copy_of_a_slow_path_message_runs_nothing(pipeline_stack: Stack) -> None:
    from shop.integrations.faults import parse_faults

    order_id, recorder = _accept(pipeline_stack, pipeline_stack.add_product(), "stale@example.com")
    recorder.take()
    pipeline_stack.services.simulation.faults = parse_faults("payment:transient=1")
    run_order(pipeline_stack.services, order_id, "the-run")
    pipeline_stack.services.simulation.faults = {}
    [retry] = recorder.take()

    # Another copy (a redelivery of an older message) finds the retry carried by another task id.
    assert run_slow_step(pipeline_stack.services, order_id, Step.PAYMENT, "an-older-copy").outcome == "skipped"
    assert pipeline_stack.status(order_id)["steps"][1]["attempts"] == 1
    assert run_slow_step(pipeline_stack.services, order_id, Step.PAYMENT, retry.task_id).outcome == "handed_over"
    assert pipeline_stack.status(order_id)["steps"][1]["attempts"] == 2


def test_the_warm_up_before_fork_writes_nothing(pipeline_stack: Stack) -> None:
    order_id = pipeline_stack.place(order_payload((pipeline_stack.add_product(stock=5), 1)))["order_id"]
    before = pipeline_stack.status(order_id)
    warm_up(pipeline_stack.services)
    assert pipeline_stack.status(order_id) == before


def test_a_transient_failure_of_one_fanout_step_does_not_redo_the_other_two(
    pipeline_stack: Stack, smtp: SmtpSink, warehouse: WarehouseReceiver, request: pytest.FixtureRequest
) -> None:
    from shop.integrations.faults import parse_faults

    stack, sku, email = pipeline_stack, pipeline_stack.add_product(stock=10), _email(request)
    order_id, recorder = _accept(stack, sku, email)
    recorder.take()
    stack.services.simulation.faults = parse_faults("invoice:transient=1")

    assert run_order(stack.services, order_id, "the-run") == "handed_over"
    steps = {s["name"]: (s["status"], s["attempts"]) for s in stack.status(order_id)["steps"]}
    assert steps["email"] == steps["warehouse"] == ("succeeded", 1) and steps["invoice"] == ("retrying", 1)
    assert [m.task_name for m in recorder.messages] == ["steps.invoice"]  # its own slow-path task

    stack.services.simulation.faults = {}
    drain(stack.services, recorder)

    steps = {s["name"]: (s["status"], s["attempts"]) for s in stack.status(order_id)["steps"]}
    assert stack.status(order_id)["status"] == "completed"
    assert steps["email"] == steps["warehouse"] == ("succeeded", 1) and steps["invoice"] == ("succeeded", 2)
    assert _effects(stack, order_id, sku, email, smtp, warehouse) == EXPECTED
    assert len(smtp.to(email)) == 1 and warehouse.keys().count(f"order:{order_id}:warehouse") == 1


def test_a_stale_copy_that_finds_killed_steps_hands_them_back_to_the_run(pipeline_stack: Stack) -> None:
    order_id, recorder = _accept(pipeline_stack, pipeline_stack.add_product(), "killed@example.com")
    recorder.take()
    assert run_order(pipeline_stack.services, order_id, "the-run") == "completed"
    # As if the run died in the fan-out: its three steps started, none recorded.
    pipeline_stack.rows(
        "UPDATE step_runs SET status = 'running' WHERE order_id = :o AND step IN ('email', 'invoice', 'warehouse') "
        "RETURNING id",
        o=order_id,
    )
    pipeline_stack.rows(
        "UPDATE orders SET status = 'processing', lease_token = 'dead', lease_expires_at = '2000-01-01 00:00:00' "
        "WHERE id = :o RETURNING id",
        o=order_id,
    )

    # A redelivered copy of the payment's slow-path message takes the expired lease first.
    assert run_slow_step(pipeline_stack.services, order_id, Step.PAYMENT, "old-payment-copy").outcome == "skipped"

    assert [m.task_name for m in recorder.messages] == [RUN_TASK]  # the work goes back to the run
    assert pipeline_stack.scalar("SELECT lease_expires_at FROM orders WHERE id = :o", o=order_id) is not None
    drain(pipeline_stack.services, recorder)
    assert pipeline_stack.status(order_id)["status"] == "completed"
