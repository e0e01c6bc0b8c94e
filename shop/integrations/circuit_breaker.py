"""A circuit breaker for the payment gateway, shared by every worker through Redis.

closed ──N consecutive transient failures──► open ──reset time passes──► half-open
  ▲                                            ▲                            │
  └───────────── the probe succeeds ───────────┼──── the probe fails ───────┘

While open, payment steps do not call the gateway at all: they raise
``TransientError`` and retry with backoff, so a struggling gateway gets room to
recover instead of a retry storm from every worker. In half-open exactly one
caller (the probe) is let through; a probe that never reports back (its worker
died) frees the slot after ``reset_seconds``. A declined card is an answer, not
a failure: it counts as a success.

State transitions are Lua scripts (atomic, on Redis's clock). If Redis does not
answer, the breaker fails open (calls go through): it protects the gateway, and
without it payments behave exactly as before. Cost: two Redis round trips per
charge (ask, report).
"""

from __future__ import annotations

import logging
from typing import Any, cast

import redis

from shop.errors import PaymentDeclined, TransientError
from shop.integrations.payment import Charge, PaymentGateway

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
# Closed with no failure on record: a success has nothing to reset.
CLEAN = "clean"

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

# ARGV[1]: reset seconds. Returns what the caller sees:
# clean or closed = go, half_open = go (you are the probe), open = stop.
ALLOW = (
    _NOW
    + """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'clean' end
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
if state == 'closed' then return 'closed' end
local until_ = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
if now < until_ then return 'open' end
redis.call('HSET', KEYS[1], 'state', 'half_open', 'until', tostring(now + tonumber(ARGV[1])))
return 'half_open'
"""
)

SUCCEED = """
redis.call('DEL', KEYS[1])
return 'closed'
"""

# ARGV[1]: threshold, ARGV[2]: reset seconds.
FAIL = (
    _NOW
    + """
local state = redis.call('HGET', KEYS[1], 'state') or 'closed'
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
if state == 'half_open' or (state == 'closed' and failures >= tonumber(ARGV[1])) then
  redis.call('HSET', KEYS[1], 'state', 'open', 'until', tostring(now + tonumber(ARGV[2])))
  return 'open'
end
return state
"""
)


class CircuitOpen(TransientError):
    """The breaker refuses the call; the step retries later."""


class CircuitBreaker:
    def __init__(self, client: redis.Redis, name: str, threshold: int, reset_seconds: float) -> None:
        self.key = f"shop:breaker:{name}"
        self.client = client
        self.threshold = threshold
        self.reset_seconds = reset_seconds
        self._allow = client.register_script(ALLOW)
        self._succeed = client.register_script(SUCCEED)
        self._fail = client.register_script(FAIL)

    def _run(self, script: Any, *args: Any) -> str:
        try:
            return str(script(keys=[self.key], args=list(args)), "utf-8")
        except redis.RedisError as exc:
            log.warning("circuit breaker %s unavailable, failing open: %s", self.key, exc)
            return CLOSED

    def before_call(self) -> str:
        """Raise CircuitOpen unless the call may go ahead (closed, or this caller is the probe);
        return the state seen."""
        state = self._run(self._allow, self.reset_seconds)
        if state == OPEN:
            # Retrying before the probe window only burns the step's attempts.
            raise CircuitOpen(f"circuit {self.key} is open: the gateway is failing", retry_after=self.reset_seconds)
        return state

    def record_success(self) -> None:
        self._run(self._succeed)

    def record_failure(self) -> None:
        if self._run(self._fail, self.threshold, self.reset_seconds) == OPEN:
            log.warning("circuit breaker %s is open for %.0fs", self.key, self.reset_seconds)

    def state(self) -> str:
        raw = cast(bytes | None, self.client.hget(self.key, "state"))
        return raw.decode() if raw else CLOSED


# What says "the gateway is unwell": timeouts, 5xx, dropped connections.
GATEWAY_FAILURES = (TransientError, OSError, TimeoutError)


class BreakerGuardedGateway:
    """A payment gateway whose charges go through the breaker; refunds pass straight through
    (rare, operator-driven, and a refund held back by an open circuit would surprise more)."""

    def __init__(self, gateway: PaymentGateway, breaker: CircuitBreaker) -> None:
        self.gateway = gateway
        self.breaker = breaker

    def charge(self, *, idempotency_key: str, order_id: str, amount_cents: int, currency: str, token: str) -> Charge:
        # A healthy gateway costs one round trip to Redis, not two: with no failure
        # on record a success has nothing to reset.
        clean = self.breaker.before_call() == CLEAN
        try:
            charge = self.gateway.charge(
                idempotency_key=idempotency_key,
                order_id=order_id,
                amount_cents=amount_cents,
                currency=currency,
                token=token,
            )
        except PaymentDeclined:
            if not clean:
                self.breaker.record_success()  # the gateway answered: it is healthy
            raise
        except GATEWAY_FAILURES:
            self.breaker.record_failure()
            raise
        if not clean:
            self.breaker.record_success()
        return charge

    def refund(self, *, idempotency_key: str) -> None:
        self.gateway.refund(idempotency_key=idempotency_key)
