"""POST /orders/<id>/cancel: before payment, after payment, after shipment."""

from __future__ import annotations

import pytest
from shop.services.steps import run_step

from shop.models import utcnow
from shop.services import ledger, steps
from shop.states import Step
from tests.support.processes import wait_until
from tests.support.stack import Stack, order_payload


def test_cancel_before_payment_stops_the_pipeline_and_releases_stock(db_stack: Stack) -> None:
    sku = db_stack.add_product(stock=10)
    order_id = db_stack.place(order_payload((sku, 3)))["order_id"]
    assert run_step(db_stack.services, order_id, Step.INVENTORY, "t1").status == "succeeded"
    assert db_stack.stock(sku) == 7

    answer = db_stack.client.post(f"/orders/{order_id}/cancel")

    assert answer.status_code == 200 and answer.get_json() == {
        "order_id": order_id,
        "status": "cancelled",
        "refund": False,
    }
    assert db_stack.stock(sku) == 10
    # A payment message still in the broker finds the order cancelled: no charge.
    assert run_step(db_stack.services, order_id, Step.PAYMENT, "t2").status == "skipped"
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
    for step in (Step.INVENTORY, Step.PAYMENT):
        run_step(db_stack.services, order_id, step, f"t-{step}")

    # Cancelled before any worker runs: a worker started first could take the
    # warehouse step the payment dispatched, and the order would be shipped (409).
    answer = db_stack.client.post(f"/orders/{order_id}/cancel")

    assert answer.status_code == 200 and answer.get_json()["refund"] is True
    assert db_stack.stock(sku) == 10
    db_stack.start_worker()  # runs the refund task the cancel published
    wait_until(
        lambda: (
            db_stack.scalar(
                "SELECT count(*) FROM payment_charges WHERE order_id = :o AND refunded_at IS NOT NULL", o=order_id
            )
            == 1
        ),
        30,
        what="the refund",
    )
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
    for step in Step:
        run_step(db_stack.services, order_id, step, f"t-{step}")
    assert db_stack.status(order_id)["status"] == "completed"

    answer = db_stack.client.post(f"/orders/{order_id}/cancel")

    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "not_cancellable"
    assert db_stack.stock(sku) == 9


def test_cancel_while_the_warehouse_is_being_notified_is_refused(db_stack: Stack) -> None:
    order_id = db_stack.place(order_payload((db_stack.add_product(), 1)))["order_id"]
    for step in (Step.INVENTORY, Step.PAYMENT):
        run_step(db_stack.services, order_id, step, f"t-{step}")
    db_stack.rows(
        "UPDATE step_runs SET status = 'running' WHERE order_id = :o AND step = 'warehouse' RETURNING id", o=order_id
    )

    answer = db_stack.client.post(f"/orders/{order_id}/cancel")

    assert answer.status_code == 409 and answer.get_json()["error"]["code"] == "already_shipped"
    assert db_stack.status(order_id)["status"] == "processing"


def test_cancel_unknown_order_is_404(db_stack: Stack) -> None:
    answer = db_stack.client.post("/orders/nope/cancel")
    assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "not_found"


def _claim_payment(stack: Stack, order_id: str) -> ledger.Claim:
    with stack.services.db.begin() as session:
        claim = ledger.claim_step(session, order_id, Step.PAYMENT, "worker-task", utcnow())
    assert claim is not None
    return claim


def test_a_charge_made_after_the_cancel_is_refunded_by_the_payment_step(db_stack: Stack) -> None:
    sku = db_stack.add_product(stock=10)
    order_id = db_stack.place(order_payload((sku, 1)))["order_id"]
    run_step(db_stack.services, order_id, Step.INVENTORY, "t1")
    claim = _claim_payment(db_stack, order_id)  # a worker has taken the payment…
    order = steps.load_order(db_stack.services, order_id)

    assert db_stack.client.post(f"/orders/{order_id}/cancel").status_code == 200  # …the customer cancels…
    with pytest.raises(ledger.LeaseLost):
        steps.charge_payment(db_stack.services, claim, order)  # …and the charge goes through after it
    steps.settle_lost_lease(db_stack.services, claim)

    assert db_stack.rows(
        "SELECT status, refunded_at IS NOT NULL FROM payment_charges WHERE order_id = :o", o=order_id
    ) == [("succeeded", True)]
    assert db_stack.status(order_id)["steps"][1]["status"] == "skipped"
    assert db_stack.stock(sku) == 10


def test_a_step_whose_worker_died_does_not_run_again_once_the_order_is_cancelled(db_stack: Stack) -> None:
    order_id = db_stack.place(order_payload((db_stack.add_product(), 1)))["order_id"]
    run_step(db_stack.services, order_id, Step.INVENTORY, "t1")
    _claim_payment(db_stack, order_id)
    db_stack.rows(
        "UPDATE step_runs SET lease_expires_at = '2000-01-01 00:00:00' WHERE order_id = :o AND step = 'payment' "
        "RETURNING id",
        o=order_id,
    )  # its worker died: the lease has run out
    db_stack.client.post(f"/orders/{order_id}/cancel")

    assert run_step(db_stack.services, order_id, Step.PAYMENT, "redelivered").status == "skipped"
    assert db_stack.scalar("SELECT count(*) FROM payment_charges WHERE order_id = :o", o=order_id) == 0
