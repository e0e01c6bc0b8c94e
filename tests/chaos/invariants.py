"""What must hold after any fault, read from the database, the gateway's records,
the invoice directory and the real SMTP/HTTP peers — never from logs."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.support.receivers import SmtpSink, WarehouseReceiver
from tests.support.stack import Stack

FINAL = {"completed", "failed", "cancelled", "needs_attention"}


def assert_exactly_once_effects(
    stack: Stack,
    order_ids: list[str],
    initial_stock: dict[str, int],
    smtp: SmtpSink | None = None,
    warehouse: WarehouseReceiver | None = None,
) -> Counter[str]:
    statuses = dict(stack.rows("SELECT id, status FROM orders"))
    mine = {oid: statuses[oid] for oid in order_ids}
    assert set(mine.values()) <= FINAL, Counter(mine.values())
    completed = [oid for oid, s in mine.items() if s == "completed"]

    charges = Counter(
        dict(stack.rows("SELECT order_id, count(*) FROM payment_charges WHERE status = 'succeeded' GROUP BY order_id"))
    )
    assert all(charges[oid] == 1 for oid in completed), "a completed order was not charged exactly once"
    assert all(n <= 1 for n in charges.values()), "an order was charged twice"

    reservations = Counter(dict(stack.rows("SELECT order_id, count(*) FROM stock_reservations GROUP BY order_id")))
    lines = Counter(dict(stack.rows("SELECT order_id, count(*) FROM order_lines GROUP BY order_id")))
    assert all(reservations[oid] == lines[oid] for oid in completed), "stock was not taken exactly once per line"

    sold = Counter()
    for sku, quantity in stack.rows("SELECT sku, quantity FROM stock_reservations WHERE released_at IS NULL"):
        sold[sku] += quantity
    for sku, before in initial_stock.items():
        assert stack.stock(sku) == before - sold[sku], f"stock of {sku} moved other than by reservations"
        assert stack.stock(sku) >= 0

    invoices = Counter(
        dict(stack.rows("SELECT order_id, count(*) FROM side_effects WHERE kind = 'invoice' GROUP BY order_id"))
    )
    assert all(invoices[oid] == 1 for oid in completed), "a completed order has no single invoice record"
    invoice_dir = Path(stack.services.invoice_dir)
    for oid in completed:
        assert len(list(invoice_dir.glob(f"{oid}*"))) == 1, f"invoice files for {oid}"

    # One invoice number per paid order, in sequence, no gap and no duplicate,
    # whatever was killed when (the numbers of every order in the database).
    numbers = dict(stack.rows("SELECT id, invoice_number FROM orders WHERE invoice_number IS NOT NULL"))
    assert all(numbers.get(oid) for oid in completed), "a completed order has no invoice number"
    issued = sorted(numbers.values())
    assert issued == list(range(1, len(issued) + 1)), f"invoice numbers with a gap or a duplicate: {issued}"

    if warehouse is not None:
        # The receiver lives for the whole session: look at this test's orders only.
        keys = Counter(k.split(":")[1] for k in warehouse.keys() if k.split(":")[1] in mine)
        assert all(keys[oid] >= 1 for oid in completed), "a completed order never reached the warehouse"
        # Redelivery may repeat the POST, always under the same Idempotency-Key,
        # so the warehouse records one shipment per order.
        assert all(mine[oid] == "completed" for oid in keys), "a shipment for an order that did not complete"
    if smtp is not None:
        # At least once, never silently lost: every completed order had its
        # confirmation handed to the mail server, every copy under one Message-ID.
        confirmations: dict[str, set[str]] = {oid: set() for oid in order_ids}
        for message in smtp.messages:
            subject = str(message["Subject"])
            for oid in (o for o in order_ids if o in subject and "confirmed" in subject):
                confirmations[oid].add(str(message["Message-ID"]))
        assert all(confirmations[oid] for oid in completed), "a completed order's confirmation was never delivered"
        assert all(ids == {f"<{oid}.confirmation@shop>"} for oid, ids in confirmations.items() if ids), (
            "a confirmation went out under more than one Message-ID"
        )
    return Counter(mine.values())
