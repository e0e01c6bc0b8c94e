"""POST /orders/<id>/cancel: before payment, after payment, after shipment, racing the run."""

from __future__ import annotations

from typing import Any

from shop.integrations.faults import parse_faults
from shop.pipeline.run import run_order
from tests.support.inline_worker import drain, execute, record_messages
from tests.support.stack import Stack, order_payload


def _run_until(stack: Stack, order_id: str, failing: str) -> list[Any]:
    """Run the order in this process until ``failing`` (a step) must retry; return
    the slow-path message it was handed to, not yet run."""
    stack.services.simulation.faults = parse_faults(f"{failing}:transient=1")
    recorder = record_messages(stack.services)
    run_order(stack.services, order_id, "the-run")
    stack.services.simulation.faults = {}
    return recorder.take()


def test_cancel_before_payment_stops_the_pipeline_and_releases_stock(db_stack: Stack) -> None:
    sku = db_stack.add_product(stock=10)
    order_id = db_stack.place(order_payload((sku, 3)))["order_id"]
    payment_retry = _run_until(db_stack, order_id, "payment")
    assert db_stack.stock(sku) == 7

    answer = db_stack.client.post(f"/orders/{order_id}/cancel")

    assert answer.status_code == 200 and answer.get_json() == {
        "order_id": order_id,
        "status": "cancelled",
        "refund": False,
    }
    assert db_stack.stock(sku) == 10
    # The payment's retry still in the broker finds the order cancelled: no charge.
    assert [execute(db_stack.services, m) for m in payment_retry] == ["skipped"]
    assert db_stack.scalar("SELECT count(*) FROM payment_charges") == 0
    steps = {s["name"]: s["status"] for s in db_stack.status(order_id)["steps"]}
    assert steps == {
        "inventory": "compensated",
        "payment": "skipped",
        "email": "skipped",
        "invoice": "skipped",
        "warehouse": "skipped",
    }


def test_cancel_after_payment_refunds_through_the_gateway_and_releases_stock(db_stack: Stack) -> None:
    sku = db_stack.add_product(stock=10)
    order_id = db_stack.place(order_payload((sku, 2)))["order_id"]
    _run_until(db_stack, order_id, "warehouse")  # paid, not yet shipped
    recorder = record_messages(db_stack.services)

    answer = db_stack.client.post(f"/orders/{order_id}/cancel")

    assert answer.status_code == 200 and answer.get_json()["refund"] is True
    assert db_stack.stock(sku) == 10
    assert drain(db_stack.services, recorder) == ["refunded"]  # the refund the cancel published
    assert db_stack.rows(
        "SELECT status, refunded_at IS NOT NULL FROM payment_charges WHERE order_id = :o", o=order_id
    ) == [("succeeded", True)]
    assert db_stack.status(order_id)["status"] == "cancelled"


def test_cancel_is_idempotent(db_stack: Stack) -> None:
    order_id = db_stack.place(order_payload((db_stack.add_product(), 1)))["order_id"]
    first = db_stack.client.post(f"/orders/{order_id}/cancel")
    second = db_stack.client.post(f"/orders/{order_id}/cancel")
    assert first.status_code == second.status_code == 200
    assert second.get_json()["status"] == "cancelled"


def test_cancel_after_shipment_is_refused_with_409(db_stack: Stack) -> None:
    sku = db_stack.add_product(stock=10)
    order_id = db_stack.place(order_payload((sku, 1)))["order_id"]
    assert run_order(db_stack.services, order_id, "the-run") == "completed"

    answer = db_stack.client.post(f"/orders/{order_id}/cancel")

    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "not_cancellable"
    assert db_stack.stock(sku) == 9


def test_cancel_while_the_warehouse_is_being_notified_is_refused(db_stack: Stack) -> None:
    order_id = db_stack.place(order_payload((db_stack.add_product(), 1)))["order_id"]
    _run_until(db_stack, order_id, "warehouse")
    db_stack.rows(
        "UPDATE step_runs SET status = 'running' WHERE order_id = :o AND step = 'warehouse' RETURNING id", o=order_id
    )

    answer = db_stack.client.post(f"/orders/{order_id}/cancel")

    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "already_shipped"
    assert db_stack.status(order_id)["status"] == "processing"


def test_cancel_unknown_order_is_404(db_stack: Stack) -> None:
    answer = db_stack.client.post("/orders/nope/cancel")
    assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "not_found"


class CancelledWhileCharging:
    """The gateway, with the customer cancelling just before the charge goes through."""

    def __init__(self, stack: Stack) -> None:
        self.stack, self.inner = stack, stack.services.gateway

    def charge(self, **kwargs: Any) -> Any:
        assert self.stack.client.post(f"/orders/{kwargs['order_id']}/cancel").status_code == 200
        return self.inner.charge(**kwargs)

    def refund(self, **kwargs: Any) -> None:
        self.inner.refund(**kwargs)


def test_a_charge_made_after_the_cancel_is_refunded_by_the_run(db_stack: Stack) -> None:
    sku = db_stack.add_product(stock=10)
    order_id = db_stack.place(order_payload((sku, 1)))["order_id"]
    db_stack.services.gateway = CancelledWhileCharging(db_stack)

    assert run_order(db_stack.services, order_id, "the-run") == "lost"  # its checkpoint rolled back

    assert db_stack.rows(
        "SELECT status, refunded_at IS NOT NULL FROM payment_charges WHERE order_id = :o", o=order_id
    ) == [("succeeded", True)]
    assert db_stack.status(order_id)["steps"][1]["status"] == "skipped"
    assert db_stack.stock(sku) == 10


def test_a_run_whose_worker_died_does_not_run_again_once_the_order_is_cancelled(db_stack: Stack) -> None:
    order_id = db_stack.place(order_payload((db_stack.add_product(), 1)))["order_id"]
    # Its worker took the lease, started the payment and died.
    db_stack.rows(
        "UPDATE orders SET status = 'processing', lease_token = 'dead', lease_expires_at = '2000-01-01 00:00:00' "
        "WHERE id = :o RETURNING id",
        o=order_id,
    )
    db_stack.rows(
        "UPDATE step_runs SET status = 'running', attempts = 1 WHERE order_id = :o AND step = 'inventory' RETURNING id",
        o=order_id,
    )
    assert db_stack.client.post(f"/orders/{order_id}/cancel").status_code == 200

    assert run_order(db_stack.services, order_id, "redelivered") == "skipped"
    assert db_stack.scalar("SELECT count(*) FROM payment_charges WHERE order_id = :o", o=order_id) == 0
