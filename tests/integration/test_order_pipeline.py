"""The pipeline end to end: HTTP → outbox → Redis → a real worker → ledger, on both backends."""

from __future__ import annotations

import io

from pypdf import PdfReader

from tests.support.processes import wait_until
from tests.support.receivers import SmtpSink, WarehouseReceiver
from tests.support.stack import Stack, order_payload


def test_accepted_order_completes_every_step(stack: Stack, smtp: SmtpSink, warehouse: WarehouseReceiver) -> None:
    sku = stack.add_product(stock=10, price_cents=1250)
    email = f"happy-{stack.backend}@example.com"  # type: ignore[attr-defined]

    accepted = stack.place(order_payload((sku, 2), email=email))

    assert accepted["success"] is True and accepted["status"] == "received"
    assert accepted["status_url"] == f"/orders/{accepted['order_id']}/status"
    status = stack.wait_for(accepted["order_id"], "completed")
    assert [(s["name"], s["status"], s["attempts"]) for s in status["steps"]] == [
        ("inventory", "succeeded", 1),
        ("payment", "succeeded", 1),
        ("email", "succeeded", 1),
        ("invoice", "succeeded", 1),
        ("warehouse", "succeeded", 1),
    ]
    assert status["processing_status"] == "SUCCESS"
    assert stack.stock(sku) == 8
    order_id = accepted["order_id"]
    assert (
        stack.scalar("SELECT count(*) FROM payment_charges WHERE order_id = :o AND amount_cents = 2500", o=order_id)
        == 1
    )

    invoice = stack.client.get(f"/orders/{order_id}/invoice.pdf")
    assert invoice.status_code == 200 and invoice.mimetype == "application/pdf"
    text = PdfReader(io.BytesIO(invoice.data)).pages[0].extract_text()
    assert order_id in text and "25.00 EUR" in text

    mails = wait_until(lambda: smtp.to(email), 10, what="the confirmation email")
    assert len(mails) == 1 and order_id in mails[0]["Subject"]

    shipments = [r for r in warehouse.requests if r["json"]["order_id"] == order_id]
    assert len(shipments) == 1
    assert shipments[0]["json"]["lines"] == [{"sku": sku, "quantity": 2}]
    assert shipments[0]["headers"]["Idempotency-Key"] == f"order:{order_id}:warehouse"
    assert shipments[0]["headers"]["X-Shop-Signature"].startswith("sha256=")


def test_declined_card_fails_the_order_and_releases_reserved_stock(stack: Stack, smtp: SmtpSink) -> None:
    sku = stack.add_product(stock=5)
    email = f"declined-{stack.backend}@example.com"  # type: ignore[attr-defined]

    order_id = stack.place(order_payload((sku, 3), token="tok_chargeDeclined", email=email))["order_id"]

    status = stack.wait_for(order_id, "failed")
    assert status["failure_reason"] == "payment_declined"
    steps = {s["name"]: s for s in status["steps"]}
    assert steps["inventory"]["status"] == "compensated"
    assert steps["payment"]["status"] == "failed" and steps["payment"]["attempts"] == 1  # never retried
    assert {steps[n]["status"] for n in ("email", "invoice", "warehouse")} == {"skipped"}
    assert stack.stock(sku) == 5
    failed_mail = wait_until(lambda: smtp.to(email), 10, what="the payment-failed email")
    assert "failed" in failed_mail[0]["Subject"]
    assert (
        stack.scalar("SELECT count(*) FROM payment_charges WHERE order_id = :o AND status = 'succeeded'", o=order_id)
        == 0
    )


def test_out_of_stock_fails_the_order_without_charging(stack: Stack) -> None:
    sku = stack.add_product(stock=1)

    order_id = stack.place(order_payload((sku, 2)))["order_id"]

    status = stack.wait_for(order_id, "failed")
    assert status["failure_reason"] == "out_of_stock"
    assert status["steps"][0]["attempts"] == 1
    assert stack.stock(sku) == 1
    assert stack.scalar("SELECT count(*) FROM payment_charges WHERE order_id = :o", o=order_id) == 0


def test_second_line_out_of_stock_releases_the_first_lines_reservation(stack: Stack) -> None:
    plenty, scarce = stack.add_product(stock=10, sku=None), stack.add_product(stock=1)
    # Lines are reserved in SKU order; make sure the plentiful one is taken first.
    first, second = sorted([plenty, scarce])
    stock_before = {first: stack.stock(first), second: stack.stock(second)}
    order_id = stack.place(order_payload((first, 1 if first == scarce else 3), (second, 5 if second == scarce else 3)))[
        "order_id"
    ]

    assert stack.wait_for(order_id, "failed")["failure_reason"] == "out_of_stock"
    assert {first: stack.stock(first), second: stack.stock(second)} == stock_before
    assert stack.scalar("SELECT count(*) FROM stock_reservations WHERE order_id = :o", o=order_id) == 0


def test_order_detail_masks_the_email_and_status_has_no_personal_data(stack: Stack) -> None:
    sku = stack.add_product()
    order_id = stack.place(order_payload((sku, 1), email="grace.hopper@example.com"))["order_id"]
    stack.wait_for(order_id, "completed")

    detail = stack.client.get(f"/orders/{order_id}").get_json()
    assert detail["customer"]["email"] == "g***@example.com"
    assert detail["lines"][0]["total_cents"] == 1000 and detail["total_cents"] == 1000
    assert detail["invoice_url"] == f"/orders/{order_id}/invoice.pdf"
    status_text = stack.client.get(f"/orders/{order_id}/status").get_data(as_text=True)
    assert "grace" not in status_text and "Main St" not in status_text


def test_express_orders_run_on_the_express_queue(stack: Stack) -> None:
    sku = stack.add_product()
    order_id = stack.place(order_payload((sku, 1), priority="express"))["order_id"]
    stack.wait_for(order_id, "completed")
    assert {q for (q,) in stack.rows("SELECT queue FROM step_runs WHERE order_id = :o", o=order_id)} == {"express"}
