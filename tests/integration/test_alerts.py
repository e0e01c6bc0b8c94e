"""Alerts that are true: one notice per incident, by email (aiosmtpd) and signed webhook (an HTTP
receiver), sent by the workers' maintenance loop; and "our team has been told" only once it was.

Real workers, Redis, PostgreSQL, SMTP server and HTTP receiver on loopback.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from markupsafe import escape
from sqlalchemy import update

from shop.models import Order, OutboxMessage, StepRun, utcnow
from shop.services.alerts import ATTENTION, OUTBOX_BACKLOG, QUEUE_BACKLOG, AlertSettings, Incident, check_alerts
from shop.web.formatting import NEEDS_ATTENTION, NEEDS_ATTENTION_TOLD
from tests.support.processes import RedisServer, wait_until
from tests.support.receivers import SmtpSink, WarehouseReceiver
from tests.support.stack import Stack, order_payload

MakeStack = Callable[..., Stack]
# The receiver checks signatures with this secret (tests/support/receivers.py), as README.md tells receivers to.
WEBHOOK_SECRET = "test-warehouse-secret"


@pytest.fixture
def ops_webhook() -> Iterator[WarehouseReceiver]:
    """An HTTP receiver of this test's own: it records every POST."""
    with WarehouseReceiver() as receiver:
        yield receiver


@pytest.fixture
def settings(smtp: SmtpSink, ops_webhook: WarehouseReceiver) -> AlertSettings:
    return AlertSettings(
        email=f"ops-{secrets.token_hex(4)}@example.com",
        webhook_url=ops_webhook.url,
        webhook_secret=WEBHOOK_SECRET,
        outbox_threshold=100,
        queue_threshold=1000,
        renotify_seconds=3600,
    )


@pytest.fixture
def quiet_stack(db_stack: Stack, smtp: SmtpSink) -> Stack:
    """A stack without workers that mails through the SMTP sink, with no alert state in Redis."""
    db_stack.app.config["SMTP_URL"] = smtp.url
    from shop.integrations.mailer import SmtpMailer

    db_stack.services.mailer = SmtpMailer(smtp.url)
    stale = list(db_stack.services.redis.scan_iter("shop:alerts:*"))
    if stale:
        db_stack.services.redis.delete(*stale)
    return db_stack


def check(stack: Stack, settings: AlertSettings) -> list[Incident]:
    with stack.app.app_context():
        return check_alerts(stack.services, stack.app.config["CELERY_BROKER_URL"], settings)


def resolve(stack: Stack, order_id: str) -> None:
    with stack.services.db.begin() as session:
        session.execute(update(Order).where(Order.id == order_id).values(status="completed"))
        session.execute(update(StepRun).where(StepRun.order_id == order_id).values(dead_lettered_at=None))


def place_orders(stack: Stack, count: int) -> list[str]:
    sku = stack.add_product()
    return [stack.place(order_payload((sku, 1)))["order_id"] for _ in range(count)]


def assert_signed(request: dict[str, object]) -> None:
    headers = request["headers"]
    assert isinstance(headers, dict)
    signed = f"{headers['X-Shop-Timestamp']}\n{headers['Idempotency-Key']}\n".encode() + request["raw"]  # type: ignore[operator]
    expected = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), signed, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(headers["X-Shop-Signature"], expected)


def test_five_dead_lettered_orders_make_one_email_and_one_webhook_from_the_workers(
    make_stack: MakeStack, own_redis: RedisServer, smtp: SmtpSink, ops_webhook: WarehouseReceiver
) -> None:
    ops = f"ops-{secrets.token_hex(4)}@example.com"
    stack = make_stack(
        own_redis.url,
        SMTP_URL=smtp.url,
        OPS_EMAIL=ops,
        OPS_WEBHOOK_URL=ops_webhook.url,
        OPS_WEBHOOK_SECRET=WEBHOOK_SECRET,
        ALERT_INTERVAL="0.3",
    )
    stack.start_worker(env={"FAULTS": "warehouse:permanent=1"})
    order_ids = place_orders(stack, 5)
    assert set(stack.wait_all_final(order_ids).values()) == {"needs_attention"}

    wait_until(lambda: smtp.to(ops) and ops_webhook.requests, 20, 0.1, "the ops email and webhook")
    time.sleep(2.0)  # several more looks of the loop while the five stay dead-lettered

    assert len(smtp.to(ops)) == 1, [m["Subject"] for m in smtp.to(ops)]
    assert len(ops_webhook.requests) == 1
    email, hook = smtp.to(ops)[0], ops_webhook.requests[0]
    assert "need attention" in email["Subject"] and "dead-lettered step(s)" in email["Subject"]
    [incident] = hook["json"]["incidents"]
    assert incident["kind"] == ATTENTION and incident["details"]["dead_letters"] >= 1
    assert set(incident["details"]["order_ids"]) <= set(order_ids)
    for order_id in incident["details"]["order_ids"]:
        assert f"/admin/orders/{order_id}" in email.get_payload(decode=True).decode()
    assert_signed(hook)
    page = stack.client.get(f"/track/{order_ids[-1]}").get_data(as_text=True)
    assert escape(NEEDS_ATTENTION_TOLD) in page


def test_an_incident_that_clears_and_comes_back_is_told_again(
    quiet_stack: Stack, settings: AlertSettings, smtp: SmtpSink, ops_webhook: WarehouseReceiver
) -> None:
    first, second = place_orders(quiet_stack, 2)
    quiet_stack.dead_letter_by_hand(first)
    assert [i.kind for i in check(quiet_stack, settings)] == [ATTENTION]
    assert check(quiet_stack, settings) == [], "still the same incident: no second notice"

    resolve(quiet_stack, first)
    assert check(quiet_stack, settings) == []
    quiet_stack.dead_letter_by_hand(second)
    assert [i.kind for i in check(quiet_stack, settings)] == [ATTENTION]

    assert len(smtp.to(settings.email)) == 2 and len(ops_webhook.requests) == 2


def test_an_open_incident_is_told_again_after_the_renotify_interval(
    quiet_stack: Stack, settings: AlertSettings, smtp: SmtpSink
) -> None:
    quiet_stack.dead_letter_by_hand(place_orders(quiet_stack, 1)[0])
    settings = replace(settings, renotify_seconds=1)

    assert check(quiet_stack, settings) and not check(quiet_stack, settings)
    time.sleep(1.1)
    assert [i.kind for i in check(quiet_stack, settings)] == [ATTENTION]
    assert len(smtp.to(settings.email)) == 2


def test_a_failed_webhook_is_retried_on_the_next_look_without_a_second_email(
    quiet_stack: Stack, settings: AlertSettings, smtp: SmtpSink, ops_webhook: WarehouseReceiver
) -> None:
    quiet_stack.dead_letter_by_hand(place_orders(quiet_stack, 1)[0])
    ops_webhook.fail_next = 1

    check(quiet_stack, settings)
    assert (len(smtp.to(settings.email)), len(ops_webhook.requests)) == (1, 0)
    check(quiet_stack, settings)
    assert (len(smtp.to(settings.email)), len(ops_webhook.requests)) == (1, 1)


def test_outbox_and_queue_backlogs_past_their_thresholds_are_incidents(
    quiet_stack: Stack, settings: AlertSettings, ops_webhook: WarehouseReceiver
) -> None:
    place_orders(quiet_stack, 3)  # no worker: three runs wait in the orders queue
    with quiet_stack.services.db.begin() as session:
        session.add_all(
            OutboxMessage(task_name="orders.run", queue="orders", args={}, created_at=utcnow() - timedelta(minutes=5))
            for _ in range(3)
        )
    settings = replace(settings, outbox_threshold=2, queue_threshold=2)

    told = check(quiet_stack, settings)

    assert {i.kind for i in told} == {OUTBOX_BACKLOG, QUEUE_BACKLOG}
    [hook] = ops_webhook.requests
    kinds = {i["kind"]: i for i in hook["json"]["incidents"]}
    assert kinds[OUTBOX_BACKLOG]["details"]["unpublished"] == 3
    assert kinds[QUEUE_BACKLOG]["details"]["waiting"]["orders"] >= 3


def test_track_page_says_our_team_was_told_only_after_the_notice_went_out(
    quiet_stack: Stack, settings: AlertSettings
) -> None:
    order_id = place_orders(quiet_stack, 1)[0]
    quiet_stack.dead_letter_by_hand(order_id)

    before = quiet_stack.client.get(f"/track/{order_id}").get_data(as_text=True)
    check(quiet_stack, replace(settings, email="", webhook_url=""))  # nobody to tell
    unconfigured = quiet_stack.client.get(f"/track/{order_id}").get_data(as_text=True)
    check(quiet_stack, settings)
    after = quiet_stack.client.get(f"/track/{order_id}").get_data(as_text=True)

    for page in (before, unconfigured):
        assert "been told" not in page and escape(NEEDS_ATTENTION) in page
    assert escape(NEEDS_ATTENTION_TOLD) in after
