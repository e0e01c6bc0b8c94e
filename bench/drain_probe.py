"""``python -m bench.drain_probe [N ...]``: where a drained order's CPU goes, per process.

For each N: accept N orders through the web with the workers stopped, stop the
web, start the workers (the bench's set-up: two prefork workers, 6 slots each,
no beat) and let them drain. Prints orders/s and the CPU per order of the
workers' main processes, their pools, PostgreSQL (every ``postgres`` process)
and Redis. A probe, not a benchmark: it writes nothing under bench/results/.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.loadgen import closed_loop, order_payload
from bench.processes import BIN, CLK_TCK, ROOT, _stat, tree_cpu_seconds
from bench.run import private_shop
from bench.stack import Shop, WorkerSpec


def _own_cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        if fields := _stat(pid):
            total += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return total


def _named(name: str) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if Path(f"/proc/{entry}/comm").read_text().strip() == name:
                    out.append(int(entry))
            except OSError:
                pass
    return out


def _spy(pid: int, count: int) -> subprocess.Popen[bytes]:
    """py-spy over one worker's whole tree; collapsed stacks under bench/results/profiles/."""
    out = ROOT / "bench" / "results" / "profiles" / f"drain-{count}.collapsed"
    out.parent.mkdir(parents=True, exist_ok=True)
    argv = [str(BIN / "py-spy"), "record", "-p", str(pid), "--subprocesses", "--nonblocking", "--gil"]
    argv += ["-r", "250", "-f", "raw", "-o", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def probe(shop: Shop, redis_pid: int, count: int, spec: WorkerSpec) -> dict[str, float]:
    shop.start_web()
    rng = random.Random(count)
    ids = closed_loop(lambda i: shop.place(order_payload(rng)), count, 12, timeout=300)
    shop.procs.stop(shop.web)
    shop.web = None
    pg_before = _own_cpu(_named("postgres"))
    redis_before = _own_cpu([redis_pid])
    workers = shop.start_workers(spec, tag="probe")
    mains = [w.pid for w in workers]
    spy = _spy(mains[0], count) if os.environ.get("PROBE_SPY") else None
    main_before, tree_before = _own_cpu(mains), tree_cpu_seconds(mains)
    started = time.time()
    done = shop.wait_completed(ids, 600)
    elapsed = time.time() - started
    main, tree = _own_cpu(mains) - main_before, tree_cpu_seconds(mains) - tree_before
    pg, red = _own_cpu(_named("postgres")) - pg_before, _own_cpu([redis_pid]) - redis_before
    if spy:
        spy.send_signal(signal.SIGINT)
        spy.wait(60)
    shop.stop_workers()
    shop.reset()
    per = lambda s: round(1000 * s / max(done, 1), 2)  # noqa: E731
    return {
        "orders": done,
        "orders_per_s": round(done / elapsed, 1),
        "worker_main_ms": per(main),
        "worker_pool_ms": per(tree - main),
        "postgres_ms": per(pg),
        "redis_ms": per(red),
    }


def main(counts: list[int]) -> None:
    with private_shop("shop_probe") as shop:
        redis_pid = shop.procs.procs[0].pid  # the first process it started
        for count in counts:
            print(count, probe(shop, redis_pid, count, WorkerSpec(12, 2)), flush=True)


def timeline(count: int = 60, rate: float = 10) -> None:
    """Median offsets from ``orders.created_at`` of each step's start and finish at a moderate rate."""
    import statistics

    from bench.loadgen import open_loop

    with private_shop("shop_probe") as shop:
        shop.start_web()
        shop.start_workers(WorkerSpec(12, 2))
        rng = random.Random(1)
        ids = [s.order_id for s in open_loop(lambda i: shop.place(order_payload(rng)), rate, count / rate).ok]
        shop.wait_completed(ids, 30)
        rows = shop.sql(
            "SELECT s.step, 1000 * extract(epoch from s.started_at - o.created_at)::float8,"
            " 1000 * extract(epoch from s.finished_at - o.created_at)::float8"
            " FROM step_runs s JOIN orders o ON o.id = s.order_id WHERE o.id = ANY(%s)",
            ids,
        )
        steps: dict[str, list[tuple[float, float]]] = {}
        for step, start, end in rows:
            steps.setdefault(step, []).append((start, end))
        for step, spans in steps.items():
            print(
                f"{step:10} start {statistics.median(s for s, _ in spans):7.1f} ms"
                f"  finish {statistics.median(e for _, e in spans):7.1f} ms"
            )


if __name__ == "__main__":
    if sys.argv[1:2] == ["timeline"]:
        timeline()
    else:
        main([int(a) for a in sys.argv[1:]] or [300, 1000, 3000])
