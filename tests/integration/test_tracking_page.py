"""GET /track/<id> in the shopper's words: a refund with its amount and date, never a ledger state."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html.parser import HTMLParser

from sqlalchemy import update

from shop.integrations.faults import parse_faults
from shop.models import PaymentCharge
from shop.pipeline.run import run_order
from tests.support.inline_worker import drain, record_messages
from tests.support.stack import Stack, order_payload

INTERNAL_WORDS = re.compile(r"needs_attention|compensated|skipped|Charge the card|Hand over to the warehouse")


class _VisibleText(HTMLParser):
    """The text a reader sees: no tags, attributes or script."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_script = self._in_script or tag == "script"

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if not self._in_script and data.strip():
            self.parts.append(" ".join(data.split()))


def _page_text(stack: Stack, order_id: str) -> str:
    answer = stack.client.get(f"/track/{order_id}")
    assert answer.status_code == 200
    parser = _VisibleText()
    parser.feed(answer.get_data(as_text=True))
    return " | ".join(parser.parts)


def _paid_not_shipped(stack: Stack, sku: str) -> str:
    order_id = stack.place(order_payload((sku, 2)))["order_id"]
    stack.services.simulation.faults = parse_faults("warehouse:transient=1")
    record_messages(stack.services)  # the warehouse's retry stays unsent: the order stays unshipped
    run_order(stack.services, order_id, "the-run")
    stack.services.simulation.faults = {}
    return order_id


def test_a_refunded_order_shows_the_refund_with_its_amount_and_date(db_stack: Stack) -> None:
    order_id = _paid_not_shipped(db_stack, db_stack.add_product(stock=10, price_cents=3950))
    recorder = record_messages(db_stack.services)
    assert db_stack.client.post(f"/orders/{order_id}/cancel").get_json()["refund"] is True

    assert "Refund of €79.00 on its way" in _page_text(db_stack, order_id)
    assert drain(db_stack.services, recorder) == ["refunded"]
    with db_stack.services.db.begin() as session:  # the gateway's refund date, made known
        session.execute(
            update(PaymentCharge)
            .where(PaymentCharge.order_id == order_id)
            .values(refunded_at=datetime(2026, 12, 1, 9, 30, tzinfo=UTC))
        )

    text = _page_text(db_stack, order_id)
    assert "Refunded €79.00 on 1 Dec" in text
    assert "Your order was cancelled" in text and "Thank you" not in text
    assert not INTERNAL_WORDS.search(text), INTERNAL_WORDS.findall(text)


def test_an_order_cancelled_before_payment_says_nothing_was_refunded(db_stack: Stack) -> None:
    order_id = db_stack.place(order_payload((db_stack.add_product(), 1)))["order_id"]
    assert db_stack.client.post(f"/orders/{order_id}/cancel").get_json()["refund"] is False

    text = _page_text(db_stack, order_id)

    assert "Cancelled" in text and "Refund" not in text
    assert not INTERNAL_WORDS.search(text), INTERNAL_WORDS.findall(text)


def test_a_declined_order_offers_another_card_and_never_says_thank_you(db_stack: Stack) -> None:
    payload = order_payload((db_stack.add_product(), 1), token="tok_chargeDeclined")
    order_id = db_stack.place(payload)["order_id"]
    run_order(db_stack.services, order_id, "the-run")

    text = _page_text(db_stack, order_id)

    assert "Your card was declined" in text and "Thank you" not in text
    assert "Pay with another card" in text
    assert not INTERNAL_WORDS.search(text), INTERNAL_WORDS.findall(text)
