"""One request rate for the warehouse API, shared by every worker: a token bucket in Redis.

Celery's ``rate_limit`` is per worker process, so four workers would send four
times the agreed rate. Here every caller takes its token from one Lua script
that runs atomically in Redis, using Redis's own clock (no skew between
machines). A caller that finds the bucket empty *reserves* the next token and
waits for it when that is at most ``max_wait`` away, which paces a burst into
an even stream instead of burning retry attempts; beyond that it raises
``TransientError`` and the step retries with backoff.

If Redis does not answer, the bucket fails open: the call goes ahead and a
warning is logged. The warehouse's own 429 is still a transient error, so the
worst case is a few refused requests, whereas failing closed would stop every
shipment for as long as the outage lasts. (When Redis is the broker too, no
step runs then anyway.) Cost: one Redis round trip per warehouse call.
"""

from __future__ import annotations

import logging
from typing import Any

import redis

from shop.errors import TransientError
from shop.integrations.warehouse import Warehouse
from shop.pipeline import budget

log = logging.getLogger(__name__)

# KEYS[1]: the bucket hash. ARGV: rate per second, burst, longest wait in seconds.
# Returns {granted 0|1, seconds to wait (string: Lua numbers become integers)}.
# A negative balance is the queue of callers that reserved a future token.
TAKE_TOKEN = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local rate, burst, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens < 1 then wait = (1 - tokens) / rate end
if wait > max_wait then return {0, tostring(wait)} end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - 1), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil((burst / rate + max_wait + 1) * 1000))
return {1, tostring(wait)}
"""


class TokenBucket:
    """``rate_per_second`` tokens a second, at most ``burst`` saved up, shared through Redis."""

    def __init__(self, client: redis.Redis, name: str, rate_per_second: float, burst: float, max_wait: float) -> None:
        self.key = f"shop:rate:{name}"
        self.rate = rate_per_second
        self.burst = max(burst, 1.0)
        self.max_wait = max_wait
        self._take = client.register_script(TAKE_TOKEN)

    def reserve(self) -> float | None:
        """Seconds until this caller's token is due, or None when that is beyond ``max_wait``."""
        try:
            granted, wait = self._take(keys=[self.key], args=[self.rate, self.burst, self.max_wait])
        except redis.RedisError as exc:
            log.warning("rate limit %s unavailable, failing open: %s", self.key, exc)
            return 0.0
        return float(wait) if int(granted) else None

    def acquire(self) -> None:
        """Wait for a token, or raise TransientError when the queue for them is too long."""
        wait = self.reserve()
        if wait is None:
            raise TransientError(f"rate limit {self.key}: more than {self.max_wait:.1f}s of calls queued")
        if wait > 0:
            budget.sleep(wait)  # inside a step's inline budget: past it, the slow path


class RateLimitedWarehouse:
    """A warehouse whose ``notify`` calls, across all workers, keep to the bucket's rate."""

    def __init__(self, warehouse: Warehouse, bucket: TokenBucket) -> None:
        self.warehouse = warehouse
        self.bucket = bucket

    def notify(self, *, idempotency_key: str, shipment: dict[str, Any]) -> None:
        self.bucket.acquire()
        self.warehouse.notify(idempotency_key=idempotency_key, shipment=shipment)
