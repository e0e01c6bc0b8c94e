"""The payment circuit breaker's state machine, against a real redis-server."""

from __future__ import annotations

import os
import time

import pytest
import redis

from shop.errors import PaymentDeclined, TransientError
from shop.extensions import shared_redis
from shop.integrations.circuit_breaker import (
    BreakerGuardedGateway,
    CircuitBreaker,
    CircuitOpen,
)
from shop.integrations.payment import Charge
from tests.support.processes import RedisServer, free_port


class ScriptedGateway:
    """Answers each charge with the next scripted outcome: 'ok', 'declined' or 'down'."""

    def __init__(self, *outcomes: str) -> None:
        self.outcomes = list(outcomes)
        self.calls = 0

    def charge(self, **_: object) -> Charge:
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if outcome == "declined":
            raise PaymentDeclined("card declined")
        if outcome == "down":
            raise TransientError("gateway answered 503")
        return Charge("ch_1", 100, "succeeded")

    def refund(self, *, idempotency_key: str) -> None:
        pass


@pytest.fixture
def client(redis_server: RedisServer) -> redis.Redis:
    """The session's redis-server; every test uses keys of its own."""
    return redis.Redis.from_url(redis_server.url)


def breaker(client: redis.Redis, reset: float = 0.3) -> CircuitBreaker:
    # One circuit per test: the name is the calling test's.
    return CircuitBreaker(client, os.environ["PYTEST_CURRENT_TEST"], threshold=3, reset_seconds=reset)


def charge(gateway: BreakerGuardedGateway) -> None:
    gateway.charge(idempotency_key="k", order_id="o", amount_cents=100, currency="EUR", token="t")


def test_breaker_opens_after_threshold_consecutive_failures(client: redis.Redis) -> None:
    b = breaker(client)
    b.record_failure()
    b.record_failure()
    b.record_success()  # not consecutive any more
    b.record_failure()
    b.record_failure()
    assert b.state() == "closed"

    b.record_failure()

    assert b.state() == "open"
    with pytest.raises(CircuitOpen):
        b.before_call()


def test_half_open_lets_exactly_one_probe_through_and_its_success_closes(
    client: redis.Redis,
) -> None:
    b, other_worker = breaker(client), breaker(client)
    for _ in range(3):
        b.record_failure()
    time.sleep(0.35)

    b.before_call()  # the probe
    assert b.state() == "half_open"
    with pytest.raises(CircuitOpen):
        other_worker.before_call()
    b.record_success()

    assert b.state() == "closed"
    other_worker.before_call()


def test_a_failed_probe_opens_the_circuit_again(client: redis.Redis) -> None:
    b = breaker(client)
    for _ in range(3):
        b.record_failure()
    time.sleep(0.35)
    b.before_call()

    b.record_failure()

    assert b.state() == "open"
    with pytest.raises(CircuitOpen):
        b.before_call()


def test_a_probe_that_never_reports_frees_the_slot_after_the_reset_time(
    client: redis.Redis,
) -> None:
    b = breaker(client, reset=0.2)
    for _ in range(3):
        b.record_failure()
    time.sleep(0.25)
    b.before_call()  # this probe's worker dies: no report
    with pytest.raises(CircuitOpen):
        b.before_call()
    time.sleep(0.25)
    b.before_call()  # a new probe


def test_declined_cards_never_open_the_circuit(client: redis.Redis) -> None:
    scripted = ScriptedGateway("down", "down", "declined", "down", "down")
    gateway = BreakerGuardedGateway(scripted, breaker(client))
    for _ in range(5):
        with pytest.raises((TransientError, PaymentDeclined)):
            charge(gateway)
    assert gateway.breaker.state() == "closed"


def test_open_circuit_stops_calls_to_the_gateway_until_a_probe_succeeds(
    client: redis.Redis,
) -> None:
    scripted = ScriptedGateway("down", "down", "down", "ok", "ok")
    gateway = BreakerGuardedGateway(scripted, breaker(client))
    for _ in range(3):
        with pytest.raises(TransientError):
            charge(gateway)

    with pytest.raises(CircuitOpen):
        charge(gateway)
    assert scripted.calls == 3
    time.sleep(0.35)
    charge(gateway)
    charge(gateway)
    assert scripted.calls == 5 and gateway.breaker.state() == "closed"


def test_breaker_fails_open_when_redis_is_unreachable() -> None:
    unreachable = shared_redis(f"redis://127.0.0.1:{free_port()}/0")
    scripted = ScriptedGateway("ok")
    BreakerGuardedGateway(scripted, breaker(unreachable)).charge(
        idempotency_key="k", order_id="o", amount_cents=1, currency="EUR", token="t"
    )
    assert scripted.calls == 1
