"""Customer emails link to the site absolutely, from PUBLIC_BASE_URL: a mail client cannot resolve a path."""

from __future__ import annotations

import re
from email.message import Message
from typing import Any

import pytest

from shop import config
from shop.pipeline.run import run_order
from tests.support.inline_worker import drain, record_messages
from tests.support.processes import RedisServer
from tests.support.receivers import SmtpSink
from tests.support.stack import Stack, order_payload

BASE_URL = "https://shop.example.test"
# A link-like token: a URL with a scheme, or a path on its own ("/track/…").
LINK = re.compile(r"(?:https?://|(?<![\w/])/)[^\s\"'<>]+")


@pytest.fixture
def mail_stack(make_stack: Any, redis_server: RedisServer, smtp: SmtpSink) -> Stack:
    # The trailing slash is how operators often write it; links must not get "//".
    return make_stack(redis_server.url, "sqlite", SMTP_URL=smtp.url, PUBLIC_BASE_URL=BASE_URL + "/")  # type: ignore[no-any-return]


def _email(smtp: SmtpSink, order_id: str, kind: str) -> str:
    found: list[Message] = [m for m in smtp.messages if m["Message-ID"] == f"<{order_id}.{kind}@shop>"]
    assert found, f"no {kind} email for {order_id}"
    payload = found[0].get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode("utf-8")


def _links(body: str) -> list[str]:
    return LINK.findall(body)


def test_the_confirmation_email_links_to_the_tracking_page_with_an_absolute_url(
    mail_stack: Stack, smtp: SmtpSink
) -> None:
    order_id = mail_stack.place(order_payload((mail_stack.add_product(), 1), email="links-confirm@example.com"))[
        "order_id"
    ]
    assert run_order(mail_stack.services, order_id, "the-run") == "completed"

    body = _email(smtp, order_id, "confirmation")

    assert _links(body) == [f"{BASE_URL}/track/{order_id}"]
    assert mail_stack.client.get(f"/track/{order_id}").status_code == 200  # the path exists on the site


def test_the_payment_failed_email_links_to_the_page_that_offers_another_card(mail_stack: Stack, smtp: SmtpSink) -> None:
    recorder = record_messages(mail_stack.services)
    payload = order_payload(
        (mail_stack.add_product(), 1), token="tok_chargeDeclined", email="links-declined@example.com"
    )
    order_id = mail_stack.place(payload)["order_id"]
    drain(mail_stack.services, recorder)  # the run, then the "payment failed" email it asks for

    body = _email(smtp, order_id, "payment-failed")

    assert _links(body) == [f"{BASE_URL}/track/{order_id}"]
    assert "Pay with another card" in body
    assert "Pay with another card" in mail_stack.client.get(f"/track/{order_id}").get_data(as_text=True)


def test_a_public_base_url_without_a_scheme_stops_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PUBLIC_BASE_URL", "shop.example.test")
    with pytest.raises(RuntimeError, match="PUBLIC_BASE_URL"):
        config.from_environment()
