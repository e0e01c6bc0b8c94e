"""The shared token bucket, against a real redis-server."""

from __future__ import annotations

import time

import pytest
import redis

from shop.errors import TransientError
from shop.extensions import shared_redis
from shop.integrations.rate_limit import TokenBucket
from tests.support.processes import RedisServer, free_port


@pytest.fixture
def client(redis_server: RedisServer) -> redis.Redis:
    """The session's redis-server; every test uses keys of its own."""
    return redis.Redis.from_url(redis_server.url)


def test_burst_is_granted_at_once_then_callers_are_refused(client: redis.Redis) -> None:
    bucket = TokenBucket(client, "t", rate_per_second=10, burst=3, max_wait=0)
    assert [bucket.reserve() for _ in range(4)] == [0.0, 0.0, 0.0, None]
    with pytest.raises(TransientError):
        bucket.acquire()
    time.sleep(0.12)
    assert bucket.reserve() == 0.0


def test_callers_reserve_future_tokens_spaced_one_interval_apart(client: redis.Redis) -> None:
    # Two buckets over one key: two workers sharing the same limit.
    first = TokenBucket(client, "w", rate_per_second=10, burst=1, max_wait=0.35)
    second = TokenBucket(client, "w", rate_per_second=10, burst=1, max_wait=0.35)
    waits = [first.reserve(), second.reserve(), first.reserve(), second.reserve(), first.reserve()]
    assert waits[0] == 0.0
    assert waits[1] == pytest.approx(0.1, abs=0.02)
    assert waits[2] == pytest.approx(0.2, abs=0.02)
    assert waits[3] == pytest.approx(0.3, abs=0.02)
    assert waits[4] is None  # 0.4 s away: beyond max_wait, the step retries instead


def test_acquire_paces_calls_to_the_rate(client: redis.Redis) -> None:
    bucket = TokenBucket(client, "p", rate_per_second=20, burst=1, max_wait=1)
    started = time.monotonic()
    for _ in range(6):
        bucket.acquire()
    assert time.monotonic() - started >= 5 / 20 * 0.9


def test_bucket_fails_open_when_redis_is_unreachable() -> None:
    unreachable = shared_redis(f"redis://127.0.0.1:{free_port()}/0")
    bucket = TokenBucket(unreachable, "x", rate_per_second=1, burst=1, max_wait=0)
    assert [bucket.reserve() for _ in range(3)] == [0.0, 0.0, 0.0]
