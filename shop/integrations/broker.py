"""What the broker holds: reachability and queue depths, read straight from Redis."""

from __future__ import annotations

import json
from collections import Counter
from typing import cast

import redis

from shop.step_policy import QUEUES

# kombu's Redis transport keeps unacknowledged (in-flight and ETA-held) messages here.
UNACKED_HASH = "unacked"
# kombu stores priorities 1..9 in sibling lists named "<queue>\x06\x16<n>".
PRIORITY_SEPARATOR = "\x06\x16"


def client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=2)


def ping(url: str) -> bool:
    try:
        return bool(client(url).ping())
    except redis.RedisError:
        return False


def queue_depths(url: str) -> dict[str, int]:
    """Messages waiting per queue (all priority levels), and in flight overall."""
    r = client(url)
    pipe = r.pipeline()
    for queue in QUEUES:
        pipe.llen(queue)
        for level in (3, 6, 9):
            pipe.llen(f"{queue}{PRIORITY_SEPARATOR}{level}")
    pipe.hlen(UNACKED_HASH)
    counts = pipe.execute()
    depths = {queue: sum(counts[i * 4 : i * 4 + 4]) for i, queue in enumerate(QUEUES)}
    depths["in_flight"] = counts[-1]
    return depths


def in_flight_by_queue(url: str) -> dict[str, int]:
    """Delivered but unacknowledged messages (running, or held for a retry countdown) per queue.

    kombu stores each as JSON ``[message, exchange, routing_key]``; our queues are
    routed by their own name. Reads the whole hash: it holds at most prefetch ×
    worker processes, plus retries waiting out their countdown."""
    counts: Counter[str] = Counter()
    for raw in cast(list[bytes], client(url).hvals(UNACKED_HASH)):
        try:
            message, _exchange, routing_key = json.loads(raw)
            counts[routing_key or message["properties"]["delivery_info"]["routing_key"]] += 1
        except (ValueError, KeyError, TypeError):
            counts["unknown"] += 1
    return dict(counts)
