"""Scheduled work kept in the database: the follow-up email and cancelling unpaid orders."""

from __future__ import annotations

from collections.abc import Callable

import redis

from shop.pipeline.run import run_order
from shop.services.scheduling import hand_over_due_jobs, run_scheduled_job
from tasks.scheduling import RUNNERS
from tests.support.processes import RedisServer, wait_until
from tests.support.receivers import SmtpSink
from tests.support.stack import Stack, order_payload


def follow_ups(smtp: SmtpSink, email: str) -> list[object]:
    return [m for m in smtp.to(email) if m["Subject"].startswith("How was your order")]


def test_follow_up_email_is_sent_once_after_the_delay_across_a_worker_restart(
    make_stack: Callable[..., Stack], own_redis: RedisServer, smtp: SmtpSink
) -> None:
    stack = make_stack(own_redis.url, SMTP_URL=smtp.url, FOLLOW_UP_DELAY_SECONDS="4", SCHEDULER_INTERVAL="0.5")
    email = "follow-up@example.com"
    first = stack.start_worker(name="before")
    order_id = stack.place(order_payload((stack.add_product(), 1), email=email))["order_id"]
    stack.wait_for(order_id, "completed")
    first.stop()  # the worker goes away with the job still days (here: seconds) ahead

    due = stack.scalar("SELECT due_at FROM scheduled_jobs WHERE order_id = :o", o=order_id)
    assert due is not None and follow_ups(smtp, email) == []
    stack.start_worker(name="after")

    wait_until(lambda: follow_ups(smtp, email), 30, 0.2, "the follow-up email")
    wait_until(
        lambda: stack.scalar("SELECT done_at FROM scheduled_jobs WHERE order_id = :o", o=order_id),
        10,
        0.2,
        "the job to be marked done",
    )
    assert len(follow_ups(smtp, email)) == 1
    assert stack.scalar("SELECT count(*) FROM scheduled_jobs WHERE order_id = :o", o=order_id) == 1


def test_a_lost_hand_over_is_handed_over_again_and_runs_once(
    make_stack: Callable[..., Stack], own_redis: RedisServer, smtp: SmtpSink
) -> None:
    # No worker: the test is the worker. Redis losing the message stands in for
    # a worker that died holding it.
    stack = make_stack(
        own_redis.url,
        SMTP_URL=smtp.url,
        FOLLOW_UP_DELAY_SECONDS="0",
        SCHEDULED_JOB_CLAIM_SECONDS="1",
    )
    email = "lost-hand-over@example.com"
    order_id = stack.place(order_payload((stack.add_product(), 1), email=email))["order_id"]
    with stack.app.app_context():
        assert run_order(stack.services, order_id, "by-hand") == "completed"
    job_id = stack.scalar("SELECT id FROM scheduled_jobs WHERE order_id = :o", o=order_id)

    assert hand_over_due_jobs(stack.services) == 1
    assert hand_over_due_jobs(stack.services) == 0  # claimed: not handed over twice
    redis.Redis.from_url(own_redis.url).flushall()  # the message is lost
    wait_until(lambda: hand_over_due_jobs(stack.services) == 1, 5, 0.2, "the stale claim to be handed over")

    assert run_scheduled_job(stack.services, job_id, RUNNERS) == "sent"
    assert run_scheduled_job(stack.services, job_id, RUNNERS) == "skipped"  # a duplicate delivery
    assert len(follow_ups(smtp, email)) == 1
    assert stack.scalar("SELECT attempts FROM scheduled_jobs WHERE id = :j", j=job_id) == 2


def test_orders_unpaid_past_the_deadline_are_cancelled_and_their_stock_released(
    make_stack: Callable[..., Stack], own_redis: RedisServer
) -> None:
    # The gateway path always fails: the payment step dead-letters, the order stays unpaid.
    stack = make_stack(
        own_redis.url,
        FAULTS="payment:transient=1",
        UNPAID_ORDER_DEADLINE_SECONDS="2",
        SCHEDULER_INTERVAL="0.5",
    )
    stack.start_worker()
    sku = stack.add_product(stock=5)
    order_id = stack.place(order_payload((sku, 2)))["order_id"]

    status = stack.wait_for(order_id, "cancelled", timeout=60)

    assert stack.stock(sku) == 5
    assert next(s for s in status["steps"] if s["name"] == "inventory")["status"] == "compensated"
    assert stack.scalar("SELECT count(*) FROM payment_charges WHERE order_id = :o", o=order_id) == 0
    assert stack.rows("SELECT kind, done_at IS NOT NULL FROM scheduled_jobs WHERE order_id = :o", o=order_id) == [
        ("cancel_unpaid", True)
    ]
