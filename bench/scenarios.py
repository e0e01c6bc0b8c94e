"""The scenarios. Each takes a system (the shop, or a baseline) and returns plain figures.

A system has ``place(payload) -> id``, ``completion_times(ids)``,
``wait_completed(ids, timeout)`` and ``worker_pids()``.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from typing import Any

from bench.loadgen import closed_loop, open_loop, order_payload, percentile
from bench.processes import tree_cpu_seconds
from bench.stack import Shop, WorkerSpec

STEP_SECONDS = (0.2 + 0.5 + 1.5 + 0.8 + 1.2 + 0.3) * 0.01  # per order, all steps in sequence


def _ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 2)


def _submitter(system: Any, seed: int) -> Any:
    rng = random.Random(seed)
    return lambda i: system.place(order_payload(rng))


def _e2e(system: Any, ids: list[str]) -> tuple[list[float], list[float]]:
    times = system.completion_times(ids)
    return [done - created for created, done in times.values()], [done for _, done in times.values()]


def warm_up(system: Any, count: int, timeout: float = 5) -> int:
    """Orders placed and completed before any phase, by the shop and the seed app alike:
    each fresh pool process's first order pays ~0.25 s of CPU (its first database
    connection, SQLAlchemy's first compiles, fpdf2), which would otherwise land in the
    first phase measured (checkout at 50/s, or the moderate pipeline). Bounded; returns
    how many completed."""
    ids = closed_loop(_submitter(system, 0), count, 8, timeout)
    done = system.wait_completed(ids, timeout)
    system.reset()
    return done


def checkout(shop: Shop, rate: float, duration: float, grace: float = 5) -> dict[str, Any]:
    """POST /orders latency at a fixed offered load while the workers process the same orders."""
    load = open_loop(_submitter(shop, int(rate)), rate, duration, threads=32, grace=grace)
    ok = load.ok
    latency = [s.done - s.scheduled for s in ok]
    service = [s.done - s.sent for s in ok]
    span = (max(s.done for s in ok) - min(s.scheduled for s in ok)) if ok else 1.0
    shop.reset()
    return {
        "offered_per_s": rate,
        "accepted": len(ok),
        "errors": len(load.samples) - len(ok) + load.dropped,
        "throughput_per_s": round(len(ok) / span, 1),
        "p50_ms": _ms(percentile(latency, 50)),
        "p95_ms": _ms(percentile(latency, 95)),
        "p99_ms": _ms(percentile(latency, 99)),
        "max_ms": _ms(max(latency, default=None)),
        "service_p99_ms": _ms(percentile(service, 99)),
    }


def pipeline(
    system: Any, rate: float, seconds: float, slots: int, drain_timeout: float, grace: float = 5
) -> dict[str, Any]:
    """Offer orders at ``rate``/s for ``seconds``; wait (bounded) for them to complete. Above
    capacity the completions run at the system's sustained rate, below it at the offered rate."""
    system.reset()
    cpu_before = tree_cpu_seconds(system.worker_pids())
    load = open_loop(_submitter(system, int(rate * seconds)), rate, seconds, threads=16, grace=grace)
    ids = [s.order_id for s in load.ok]
    done = system.wait_completed(ids, drain_timeout)
    cpu = tree_cpu_seconds(system.worker_pids()) - cpu_before
    e2e, finished = _e2e(system, ids)
    first = min((s.scheduled for s in load.ok), default=0.0)
    throughput = len(finished) / (max(finished) - first) if finished else 0.0
    system.reset()
    return {
        "offered_per_s": rate,
        "orders": len(ids),
        "completed": done,
        "orders_per_s": round(throughput, 1),
        "e2e_p50_ms": _ms(percentile(e2e, 50)),
        "e2e_p99_ms": _ms(percentile(e2e, 99)),
        "cpu_ms_per_order": round(cpu * 1000 / max(done, 1), 2),
        "slots": slots,
        "ideal_orders_per_s": round(slots / STEP_SECONDS, 1),
        "efficiency": round(throughput / (slots / STEP_SECONDS), 3),
    }


def backlog(
    system: Any,
    count: int,
    spec: WorkerSpec,
    accept_timeout: float,
    drain_timeout: float,
    accept_threads: int = 12,
) -> dict[str, Any]:
    """Accept up to ``count`` orders with the workers stopped (bounded in time), then start
    them: drain rate and time to empty (projected from the drain rate if not reached)."""
    system.stop_workers()
    system.reset()
    t0 = time.time()
    ids = closed_loop(_submitter(system, count + 7), count, accept_threads, timeout=accept_timeout)
    accept_s = time.time() - t0
    system.start_workers(spec, tag="drain")
    started = time.time()  # the drain clock starts when the workers answer a ping (boot excluded)
    done = system.wait_completed(ids, drain_timeout)
    _, finished = _e2e(system, ids)
    drain = len(finished) / (max(finished) - started) if finished else 0.0
    empty = max(finished) - started if done >= len(ids) else (len(ids) / drain if drain else None)
    system.reset()
    return {
        "orders": len(ids),
        "accepted_per_s": round(len(ids) / accept_s, 1),
        "completed": done,
        "drain_per_s": round(drain, 1),
        "time_to_empty_s": None if empty is None else round(empty, 2),
        "time_to_empty_projected": done < len(ids),
    }


HELD = "SELECT id, lease_token FROM orders WHERE lease_token IS NOT NULL AND status IN ('received', 'processing')"


def recovery(shop: Shop, rate: float = 20, timeout: float = 100, attempts: int = 20) -> dict[str, Any]:
    """A worker dies holding a run, mid-load; time until that run is taken again.
    The survivor keeps running; the caller stops it.

    A run lasts ~50 ms, so at 20/s a worker often holds none at a given instant,
    and a kill then measures nothing. So the victim's process group is first
    frozen (SIGSTOP): a second later the survivor's runs have ended, and a
    lease held all along is the victim's. If there is one, the group is SIGKILLed
    and the clock starts at the freeze, when the worker stopped working; if not,
    it is thawed and frozen again a moment later (``attempts`` times at most)."""
    victim, survivors = shop.workers[0], shop.workers[1:]
    assert survivors, "recovery needs a second worker"
    shop.reset()
    rng = random.Random(99)
    stop = threading.Event()

    def offer() -> None:
        while not stop.is_set():  # in slices, so the load ends soon after the kill
            open_loop(lambda i: shop.place(order_payload(rng)), rate, 2, threads=8)

    load = threading.Thread(target=offer)
    load.start()
    time.sleep(1.5)
    abandoned: list[tuple[Any, ...]] = []
    freezes = 0
    try:
        while not abandoned and freezes < attempts:
            os.killpg(victim.pid, signal.SIGSTOP)
            killed, freezes = time.time(), freezes + 1
            time.sleep(0.5)
            candidates = shop.sql(HELD)
            time.sleep(0.5)  # a survivor's cold first run may take a few hundred ms; the frozen hold on
            abandoned = [r for r in candidates if r in shop.sql(HELD)]
            if not abandoned:
                os.killpg(victim.pid, signal.SIGCONT)
                time.sleep(0.2)
        in_flight = [r[0] for r in shop.sql("SELECT id FROM orders WHERE status IN ('received', 'processing')")]
        victim.kill_group()
        shop.workers.remove(victim)
    finally:
        stop.set()
    rerun: dict[str, float] = {}
    limit = time.monotonic() + timeout
    while len(rerun) < len(abandoned) and time.monotonic() < limit:
        for order_id, token in abandoned:
            if order_id in rerun:
                continue
            still = shop.sql(
                "SELECT 1 FROM orders WHERE id = %s AND lease_token = %s AND status IN ('received', 'processing')",
                order_id,
                token,
            )
            if not still:  # taken again (or finished by the run that took it)
                rerun[order_id] = time.time() - killed
        time.sleep(0.2)
    all_rerun = len(rerun) == len(abandoned)
    not_rerun = [
        list(
            map(
                str,
                shop.sql(
                    "SELECT status, extract(epoch from lease_expires_at - now())::int FROM orders WHERE id = %s", o
                )[0],
            )
        )
        for o, _ in abandoned
        if o not in rerun
    ]
    load.join(15)
    # Every order in flight at the kill, also one whose message the victim had
    # taken and not started (sent again by the sweep after STALE_DISPATCH_SECONDS).
    done = shop.wait_completed(in_flight, max(1.0, killed + 40 - time.time()))
    finished = [d for _, d in shop.completion_times(in_flight).values()]
    shop.reset()
    return {
        "freezes": freezes,
        "abandoned_runs": len(abandoned),
        "rerun_runs": len(rerun),
        # Censored at the timeout when some abandoned step had not run again by then.
        "seconds": (round(max(rerun.values()), 2) if all_rerun else timeout) if abandoned else None,
        "all_rerun_within_timeout": all_rerun,
        "not_rerun": not_rerun,
        "in_flight_orders": len(in_flight),
        "in_flight_completed": done,
        "all_in_flight_completed_s": round(max(finished) - killed, 2) if finished and done == len(in_flight) else None,
    }
