"""Open-loop load: requests leave on a fixed schedule, whether or not earlier ones came back.

Latency is measured from the *scheduled* send time, so a stalled server shows
up as latency instead of silently lowering the offered load (coordinated
omission). Bounded in count and in time.
"""

from __future__ import annotations

import http.client
import json
import queue
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SKUS = [f"BENCH-{i:03d}" for i in range(100)]


def order_payload(rng: random.Random) -> dict[str, Any]:
    # Spread over 100 products: one hot stock row would serialise every
    # inventory step on its row lock and measure that instead of the pipeline.
    return {
        "customer": {"email": "ada@example.com", "name": "Ada Lovelace"},
        "items": [{"sku": rng.choice(SKUS), "quantity": 1}],
        "shipping_address": {
            "line1": "1 Main St",
            "city": "London",
            "postal_code": "N1 9GU",
            "country": "GB",
        },
        "payment_token": "tok_visa",
        "priority": "standard",
    }


@dataclass
class Sample:
    scheduled: float  # time.time() the request was due
    sent: float
    done: float
    ok: bool
    order_id: str = ""


@dataclass
class LoadResult:
    rate: float
    duration: float
    samples: list[Sample] = field(default_factory=list)
    dropped: int = 0  # due but never sent before the deadline

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.ok]


class HttpClient:
    """One keep-alive connection per thread."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.local = threading.local()

    def post_json(self, path: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        for attempt in (0, 1):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                conn = self.local.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            try:
                conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
                response = conn.getresponse()
                data = response.read()
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    self.local.conn = None
                return response.status, (json.loads(data) if data else {})
            except (OSError, http.client.HTTPException):
                conn.close()
                self.local.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")


def open_loop(
    call: Callable[[int], str | None],
    rate: float,
    duration: float,
    threads: int = 32,
    grace: float = 10.0,
) -> LoadResult:
    """Call ``call(i)`` at ``rate`` per second for ``duration`` seconds; ``call``
    returns an id (or None on failure)."""
    result = LoadResult(rate, duration)
    total = int(rate * duration)
    due: queue.Queue[tuple[int, float] | None] = queue.Queue()
    lock = threading.Lock()
    start = time.time() + 0.2
    deadline = start + duration + grace

    def worker() -> None:
        while (item := due.get()) is not None:
            i, scheduled = item
            if time.time() > deadline:
                with lock:
                    result.dropped += 1
                continue
            sent = time.time()
            try:
                ident, ok = call(i), True
            except Exception:
                ident, ok = None, False
            sample = Sample(scheduled, sent, time.time(), ok and ident is not None, ident or "")
            with lock:
                result.samples.append(sample)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for i in range(total):
        scheduled = start + i / rate
        delay = scheduled - time.time()
        if delay > 0:
            time.sleep(delay)
        due.put((i, scheduled))
    for _ in pool:
        due.put(None)
    for t in pool:  # one shared deadline: requests still out after it are abandoned
        t.join(max(0.0, deadline + 1 - time.time()))
    with lock:
        result.samples = list(result.samples)
    return result


def closed_loop(call: Callable[[int], str | None], count: int, threads: int, timeout: float) -> list[str]:
    """As fast as ``threads`` concurrent callers go: ``count`` calls, bounded by ``timeout``."""
    ids: list[str] = []
    counter = iter(range(count))
    lock = threading.Lock()
    deadline = time.time() + timeout

    def worker() -> None:
        while time.time() < deadline:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            try:
                ident = call(i)
            except Exception:
                ident = None
            if ident:
                with lock:
                    ids.append(ident)

    pool = [threading.Thread(target=worker, daemon=True) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(max(0.0, deadline + 1 - time.time()))
    with lock:
        return list(ids)


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]
