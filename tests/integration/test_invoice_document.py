"""The invoice is a real invoice: seller, gapless number, bill-to and ship-to, tax, any alphabet.

Each order goes through the shop's HTTP API (the Flask test client), runs in
this process as a worker would (``run_order``, real database and Redis), and
its PDF is downloaded from ``GET /orders/<id>/invoice.pdf`` and read back
with pypdf.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from shop.integrations.faults import Simulation
from shop.integrations.invoices import InvoiceSettings, tax_included
from shop.pipeline.run import run_order
from shop.states import Step
from tests.conftest import BACKENDS, Databases
from tests.support.inline_worker import RecordingPublisher, drain, record_messages
from tests.support.processes import RedisServer
from tests.support.stack import Stack, order_payload

SELLER = {
    "SELLER_NAME": "Acme Trading GmbH",
    # One line per newline, literal \n or |: env files and compose hold one line.
    "SELLER_ADDRESS": "Hauptstraße 1\\n10115 Berlin|Germany",
    "SELLER_VAT_ID": "DE123456789",
    "TAX_RATE_PERCENT": "20",
    "INVOICE_PREFIX": "ACME-",
}


@dataclass
class Shop:
    stack: Stack
    recorder: RecordingPublisher

    def order(self, price_cents: int = 1999, quantity: int = 1, **payload: Any) -> str:
        """Place an order over HTTP and run it to its end, as the worker would."""
        sku = self.stack.add_product(price_cents=price_cents)
        body = order_payload((sku, quantity), token=payload.pop("token", "tok_visa"))
        body.update(payload)
        order_id: str = self.stack.place(body)["order_id"]
        self.recorder.take()
        run_order(self.stack.services, order_id, order_id)
        drain(self.stack.services, self.recorder)
        return order_id

    def number(self, order_id: str) -> int | None:
        return self.stack.scalar("SELECT invoice_number FROM orders WHERE id = :o", o=order_id)  # type: ignore[no-any-return]

    def next_number(self) -> int:
        return self.stack.scalar("SELECT next_number FROM invoice_counters")  # type: ignore[no-any-return]

    def invoice(self, order_id: str) -> str:
        response = self.stack.client.get(f"/orders/{order_id}/invoice.pdf")
        assert response.status_code == 200 and response.mimetype == "application/pdf"
        return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.data)).pages)

    def columns(self, order_id: str) -> tuple[list[str], list[str]]:
        """The texts printed in the left and in the right half of the first page."""
        left: list[str] = []
        right: list[str] = []

        def visit(text: str, cm: Any, tm: Any, *_: Any) -> None:
            if text.strip():
                (left if tm[4] < 297.0 else right).append(text.strip())  # A4 is 595 points wide

        data = self.stack.client.get(f"/orders/{order_id}/invoice.pdf").data
        PdfReader(io.BytesIO(data)).pages[0].extract_text(visitor_text=visit)
        return left, right


def _shop(
    databases: Databases, redis_server: RedisServer, workdir: Path, backend: str, **settings: str
) -> Iterator[Shop]:
    with Stack(databases.new(backend), redis_server.url, workdir, **{**SELLER, **settings}) as stack:
        yield Shop(stack, record_messages(stack.services))


@pytest.fixture(params=BACKENDS)
def shop(
    request: pytest.FixtureRequest, databases: Databases, redis_server: RedisServer, tmp_path: Path
) -> Iterator[Shop]:
    """A fresh database per test: its invoice numbers start at 1."""
    yield from _shop(databases, redis_server, tmp_path, request.param)


# --- the seller --------------------------------------------------------------


def test_the_invoice_names_the_seller_with_its_address_and_vat_id(shop: Shop) -> None:
    left, _ = shop.columns(shop.order())
    assert left[:5] == ["Acme Trading GmbH", "Hauptstraße 1", "10115 Berlin", "Germany", "VAT ID DE123456789"]


# --- bill-to and ship-to -----------------------------------------------------

ADDRESS = {"line1": "22 Rue du Pont", "line2": "Bâtiment B", "city": "Lyon", "postal_code": "69002", "country": "FR"}


def test_the_invoice_bills_the_customer_and_ships_to_the_shipping_address(shop: Shop) -> None:
    customer = {"name": "Émilie Durand", "email": "emilie@example.com"}
    left, right = shop.columns(shop.order(customer=customer, shipping_address=ADDRESS))
    postal = ["22 Rue du Pont", "Bâtiment B", "69002 Lyon", "France"]
    bill_to = left[left.index("Bill to") :]
    assert bill_to[:7] == ["Bill to", "Émilie Durand", "emilie@example.com", *postal]
    ship_to = right[right.index("Ship to") :]
    assert ship_to[:6] == ["Ship to", "Émilie Durand", *postal]


# --- numbers: in sequence, without gaps, one per order -----------------------


def test_paid_orders_get_sequential_numbers_and_declined_ones_take_none(shop: Shop) -> None:
    first = shop.order()
    declined = shop.order(token="tok_chargeDeclined")
    second = shop.order()

    assert [shop.number(first), shop.number(declined), shop.number(second)] == [1, None, 2]
    assert "Invoice number: ACME-000001" in shop.invoice(first)
    assert "Invoice number: ACME-000002" in shop.invoice(second)
    assert shop.stack.client.get(f"/orders/{declined}/invoice.pdf").status_code == 404


class PaymentsMeet(Simulation):
    """Every run waits after its charge until all have charged: their checkpoints,
    which take the invoice numbers, then race each other."""

    def __init__(self, runs: int) -> None:
        super().__init__(latency_scale=0)
        self.barrier = threading.Barrier(runs, timeout=30)

    def after_effect(self, step: Step) -> None:
        if step == Step.PAYMENT:
            self.barrier.wait()


def test_concurrent_runs_take_numbers_one_to_n_without_gaps_or_duplicates(shop: Shop) -> None:
    runs = 12
    sku = shop.stack.add_product(stock=runs)
    order_ids = [shop.stack.place(order_payload((sku, 1)))["order_id"] for _ in range(runs)]
    shop.stack.services.simulation = PaymentsMeet(runs)

    outcomes: dict[str, str] = {}
    threads = [
        threading.Thread(target=lambda o=o: outcomes.update({o: run_order(shop.stack.services, o, o)}))
        for o in order_ids
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert set(outcomes.values()) == {"completed"}
    numbers = {order_id: shop.number(order_id) for order_id in order_ids}
    assert sorted(numbers.values()) == list(range(1, runs + 1))  # type: ignore[type-var]
    assert shop.next_number() == runs + 1
    some = order_ids[5]
    assert f"Invoice number: ACME-{numbers[some]:06d}" in shop.invoice(some)


class WorkerDies(BaseException):
    """The process ends here (SIGKILL, OOM): nothing after this line runs, no checkpoint commits."""


class DiesAfter(Simulation):
    def __init__(self, step: Step) -> None:
        super().__init__(latency_scale=0)
        self.step = step

    def after_effect(self, step: Step) -> None:
        if step == self.step:
            raise WorkerDies(step)


def _die_then_recover(shop: Shop, step: Step) -> str:
    """An order whose worker dies right after ``step``'s side effect; then its run is redelivered."""
    sku = shop.stack.add_product()
    order_id: str = shop.stack.place(order_payload((sku, 1)))["order_id"]
    shop.stack.services.simulation = DiesAfter(step)
    with pytest.raises(WorkerDies):
        run_order(shop.stack.services, order_id, "first-delivery")
    shop.stack.services.simulation = Simulation(latency_scale=0)
    shop.stack.rows("UPDATE orders SET lease_expires_at = '2000-01-01 00:00:00' WHERE id = :o RETURNING id", o=order_id)
    return order_id


def test_a_run_redelivered_after_writing_the_invoice_keeps_its_number(shop: Shop) -> None:
    order_id = _die_then_recover(shop, Step.INVOICE)
    assert shop.number(order_id) == 1  # committed with the payment's checkpoint, before the PDF

    shop.recorder.take()
    assert run_order(shop.stack.services, order_id, "redelivered") == "handed_over"
    drain(shop.stack.services, shop.recorder)

    assert shop.stack.status(order_id)["status"] == "completed"
    assert shop.number(order_id) == 1 and shop.next_number() == 2
    assert "Invoice number: ACME-000001" in shop.invoice(order_id)
    assert shop.number(shop.order()) == 2  # the next order follows without a gap


def test_a_worker_that_dies_before_the_payment_checkpoint_takes_no_number(shop: Shop) -> None:
    order_id = _die_then_recover(shop, Step.PAYMENT)
    assert shop.number(order_id) is None and shop.next_number() == 1

    shop.recorder.take()
    run_order(shop.stack.services, order_id, "redelivered")
    drain(shop.stack.services, shop.recorder)

    assert shop.stack.status(order_id)["status"] == "completed"
    assert shop.number(order_id) == 1 and shop.next_number() == 2


# --- tax ------------------------------------------------------------------------


def _totals(text: str) -> tuple[str, str, str]:
    found = re.search(r"Net\s*([\d,.]+ EUR).*Tax (\S+) %\s*([\d,.]+ EUR)", text, re.S)
    assert found, text
    return found.group(1), found.group(2), found.group(3)


def test_tax_is_the_share_of_the_tax_inclusive_total_at_the_configured_rate(shop: Shop) -> None:
    text = shop.invoice(shop.order(price_cents=1999, quantity=3))  # 59.97 gross at 20 %
    assert _totals(text) == ("49.97 EUR", "20", "10.00 EUR")  # 59.97 × 20 / 120 = 9.995 → 10.00
    assert re.search(r"Total \(tax included\)\s*59.97 EUR", text)


@pytest.fixture(params=BACKENDS)
def untaxed_shop(
    request: pytest.FixtureRequest, databases: Databases, redis_server: RedisServer, tmp_path: Path
) -> Iterator[Shop]:
    yield from _shop(databases, redis_server, tmp_path, request.param, TAX_RATE_PERCENT="0")


def test_a_zero_tax_rate_shows_no_tax_and_net_equal_to_gross(untaxed_shop: Shop) -> None:
    text = untaxed_shop.invoice(untaxed_shop.order(price_cents=1999, quantity=3))
    assert _totals(text) == ("59.97 EUR", "0", "0.00 EUR")
    assert re.search(r"Total \(tax included\)\s*59.97 EUR", text)


@pytest.mark.parametrize(
    ("gross", "rate", "net", "tax"),
    [(5997, "20", 4997, 1000), (3, "20", 2, 1), (10770, "7.7", 10000, 770), (1999, "0", 1999, 0), (0, "20", 0, 0)],
)
def test_net_plus_tax_is_exactly_the_gross_rounded_half_up(gross: int, rate: str, net: int, tax: int) -> None:
    totals = tax_included(gross, Decimal(rate))
    assert (totals.net_cents, totals.tax_cents, totals.gross_cents) == (net, tax, gross)


@pytest.mark.parametrize("rate", ["-1", "100", "twenty", "nan", "inf"])
def test_a_tax_rate_outside_zero_to_a_hundred_stops_the_start(rate: str) -> None:
    with pytest.raises(ValueError, match="TAX_RATE_PERCENT"):
        InvoiceSettings.from_config({"TAX_RATE_PERCENT": rate})


# --- every alphabet -----------------------------------------------------------


ANY_ALPHABET_ADDRESS = {
    "line1": "ул. Тверская, 7",
    "line2": "東京都千代田区",
    "city": "القاهرة",
    "postal_code": "125009",
    "country": "RU",
}


@pytest.fixture(params=BACKENDS)
def greek_shop(
    request: pytest.FixtureRequest, databases: Databases, redis_server: RedisServer, tmp_path: Path
) -> Iterator[Shop]:
    yield from _shop(databases, redis_server, tmp_path, request.param, SELLER_NAME="Ελληνικά Είδη Α.Ε.")


def test_addresses_and_seller_in_any_alphabet_are_printed_in_fonts_that_have_them(greek_shop: Shop) -> None:
    order_id = greek_shop.order(shipping_address=ANY_ALPHABET_ADDRESS)
    assert greek_shop.stack.status(order_id)["status"] == "completed"
    text = greek_shop.invoice(order_id)
    for printed in ("Ελληνικά Είδη Α.Ε.", "ул. Тверская, 7", "東京都千代田区", "Russia"):
        assert printed in text
    assert "القاهرة" in text or "القاهرة"[::-1] in text  # right to left: extraction may keep visual order
