"""One benchmark run: start everything, run every scenario on the shop and the baselines,
repeat, aggregate, write the results and the report, and stop everything — also on error.

Baselines: (a) ``single_task`` and (b) ``canvas`` (Celery only, orders straight to the
broker), (c) ``seed_app`` (the worked example's Flask app as written: its own gunicorn,
database and worker; pipeline figures only — no backlog, not in the sweep, for time).

``python -m bench.run --only seed_app [--quick] [--repetitions N]`` runs only the named
baselines (any of single_task, canvas, seed_app; repeatable or comma-separated), without
the shop, and prints their figures; it writes nothing under bench/results/.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from bench import scenarios
from bench.baseline_system import Baseline
from bench.baselines import seed_system
from bench.processes import ROOT, Processes
from bench.profiling import Profiler
from bench.stack import Shop, WorkerSpec, drop_database
from tests.support.waiting import free_port, wait_until

RESULTS = ROOT / "bench" / "results"


@dataclass
class Config:
    quick: bool
    repetitions: int
    checkout_rates: list[float]
    checkout_seconds: float
    moderate_rate: float
    moderate_seconds: float
    saturation_rate: float
    saturation_seconds: float
    drain_timeout: float  # bound on waiting for a pipeline run's orders to complete
    backlog_orders: int
    backlog_accept_timeout: float
    backlog_drain_timeout: float
    worker: WorkerSpec
    gunicorn_workers: int = 2
    gunicorn_threads: int = 4
    sweep: list[int] = field(default_factory=list)
    sweep_seconds: float = 3
    recovery_timeout: float = 40
    # The pipeline's moderate load: the figure is then the lease and the sweep,
    # not a queue that grew past what one surviving worker drains.
    recovery_rate: float = 20
    checkout_grace: float = 5
    baseline_backlog: bool = True  # --quick skips it to stay under 2 minutes
    profile: bool = False

    @classmethod
    def make(cls, quick: bool, **overrides: Any) -> Config:
        # Every phase is bounded in time: on a loaded machine the shop may drain far slower
        # than the baselines, and the run must still end (quick < 2 min, full < 10 min).
        common = dict(
            checkout_rates=[50, 100, 200],
            moderate_rate=20,
            saturation_rate=200,
            worker=WorkerSpec(12, 2),
        )
        if quick:
            base = cls(
                quick=True,
                repetitions=1,
                checkout_seconds=1.5,
                moderate_seconds=2.5,
                saturation_seconds=2,
                drain_timeout=3,
                backlog_orders=1000,
                backlog_accept_timeout=3,
                backlog_drain_timeout=4,
                recovery_timeout=32,
                checkout_grace=1,
                baseline_backlog=False,
                **common,
            )
        else:
            base = cls(
                quick=False,
                repetitions=3,
                checkout_seconds=2,
                moderate_seconds=3,
                saturation_seconds=2,
                drain_timeout=5,
                # 5 000 orders are accepted (~30 s through the web); the drain is
                # watched for a bounded time and the time to empty projected from it.
                backlog_orders=5000,
                backlog_accept_timeout=35,
                backlog_drain_timeout=6,
                recovery_timeout=35,
                checkout_grace=1.5,
                sweep=[4, 16],
                sweep_seconds=2,
                **common,
            )
        for key, value in overrides.items():
            if value is not None:
                setattr(base, key, value)
        return base


def machine() -> dict[str, Any]:
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "load_average_at_start": os.getloadavg(),
        "mem_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
    }


def versions() -> dict[str, str]:
    out = {name: version(name) for name in ("celery", "kombu", "redis", "flask", "sqlalchemy", "psycopg", "gunicorn")}
    out["redis-server"] = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()[
        2
    ]
    return out


def start_redis(procs: Processes) -> int:
    import redis

    port = free_port()
    procs.start(
        "redis",
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(procs.workdir),
        ],
        {},
    )
    wait_until(lambda: _ping(redis.Redis(port=port, socket_connect_timeout=0.2)), 10, what="redis-server")
    return port


@contextmanager
def private_shop(db_name: str) -> Iterator[Shop]:
    """The shop's database (created afresh) on a private redis-server, for the
    probes (``bench.profile_steps``, ``bench.drain_probe``); everything they
    start is stopped, and the database dropped, on the way out."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{db_name}-"))
    procs = Processes(workdir)
    try:
        port = start_redis(procs)
        yield Shop(procs, workdir, f"redis://127.0.0.1:{port}/0", db_name=db_name).setup()
    finally:
        procs.stop_all()
        drop_database(db_name)
        shutil.rmtree(workdir, ignore_errors=True)


def _ping(client: Any) -> bool:
    try:
        return bool(client.ping())
    except Exception:
        return False


def _moderate(system: Any, cfg: Config, slots: int) -> dict[str, Any]:
    return scenarios.pipeline(
        system,
        cfg.moderate_rate,
        cfg.moderate_seconds,
        slots,
        cfg.drain_timeout,
        cfg.checkout_grace,
    )


def _saturation(system: Any, cfg: Config, slots: int, seconds: float | None = None) -> dict[str, Any]:
    return scenarios.pipeline(
        system,
        cfg.saturation_rate,
        seconds or cfg.saturation_seconds,
        slots,
        cfg.drain_timeout,
        cfg.checkout_grace,
    )


def _backlog(system: Any, cfg: Config, **kwargs: Any) -> dict[str, Any]:
    return scenarios.backlog(
        system,
        cfg.backlog_orders,
        cfg.worker,
        cfg.backlog_accept_timeout,
        cfg.backlog_drain_timeout,
        **kwargs,
    )


def _baseline_round(b: Baseline, cfg: Config, log: Any) -> dict[str, Any]:
    if isinstance(b, seed_system.SeedApp):
        return _seed_app_round(b, cfg, log)
    b.reset()
    b.start_workers(cfg.worker)
    slots = cfg.worker.concurrency
    out = {
        "pipeline_moderate": _moderate(b, cfg, slots),
        "pipeline_saturation": _saturation(b, cfg, slots),
    }
    if cfg.baseline_backlog:
        out["backlog"] = _backlog(b, cfg, accept_threads=4)
    b.stop_workers()
    log(f"  {b.name}: {json.dumps(out)}")
    return out


def _seed_app_round(seed: seed_system.SeedApp, cfg: Config, log: Any) -> dict[str, Any]:
    """Baseline (c) through its own web, served only during its round: the pipeline at the
    moderate and the saturation rate (no backlog: ~30 s of accepting through the web)."""
    seed.start_web()
    try:
        seed.reset()
        seed.start_workers(cfg.worker)
        slots = cfg.worker.concurrency
        warmed = scenarios.warm_up(seed, 4 * slots)
        out = {
            "pipeline_moderate": _moderate(seed, cfg, slots),
            "pipeline_saturation": _saturation(seed, cfg, slots),
        }
    finally:
        seed.stop_workers()
        seed.stop_web()
    log(f"  {seed.name} (after {warmed} warm-up orders): {json.dumps(out)}")
    return out


BASELINE_REDIS_DB = {"single_task": 1, "canvas": 2, seed_system.NAME: 3}


def make_baselines(
    procs: Processes, workdir: Path, redis_port: int, cfg: Config, names: tuple[str, ...] = tuple(BASELINE_REDIS_DB)
) -> list[Baseline]:
    """Each on its own Redis DB number (and the seed app on its own database)."""
    out = []
    for name in names:
        url = f"redis://127.0.0.1:{redis_port}/{BASELINE_REDIS_DB[name]}"
        if name == seed_system.NAME:
            out.append(seed_system.make(procs, workdir, url, cfg.gunicorn_workers, cfg.gunicorn_threads))
        else:
            out.append(Baseline(name, procs, url))
    return out


def one_repetition(
    shop: Shop, baselines: list[Baseline], cfg: Config, log: Any, profiler: Profiler | None
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    slots = cfg.worker.concurrency
    shop.start_workers(cfg.worker)
    warmed = scenarios.warm_up(shop, 4 * slots)
    log(f"  shop: {warmed} warm-up orders")
    out["checkout"] = [
        scenarios.checkout(shop, rate, cfg.checkout_seconds, cfg.checkout_grace) for rate in cfg.checkout_rates
    ]
    log(f"  checkout: {json.dumps(out['checkout'])}")
    out["pipeline_moderate"] = _moderate(shop, cfg, slots)
    if profiler:
        profiler.start(shop)
    out["pipeline_saturation"] = _saturation(shop, cfg, slots)
    if profiler:
        profiler.stop()
    log(f"  pipeline: {json.dumps([out['pipeline_moderate'], out['pipeline_saturation']])}")
    out["backlog"] = _backlog(shop, cfg)
    log(f"  backlog: {json.dumps(out['backlog'])}")
    out["recovery"] = scenarios.recovery(shop, cfg.recovery_rate, cfg.recovery_timeout)
    log(f"  recovery: {json.dumps(out['recovery'])}")
    shop.stop_workers()
    out["baselines"] = {b.name: _baseline_round(b, cfg, log) for b in baselines}
    return out


def concurrency_sweep(shop: Shop, baselines: list[Baseline], cfg: Config, log: Any) -> dict[str, Any]:
    """Sustained orders/s against worker concurrency (prefork, split over two worker processes)."""
    baselines = [b for b in baselines if not isinstance(b, seed_system.SeedApp)]  # time budget
    sweep: dict[str, Any] = {"ours": {}, **{b.name: {} for b in baselines}}
    for c in cfg.sweep:
        spec = WorkerSpec(c, 2 if c >= 4 else 1)
        shop.start_workers(spec)
        sweep["ours"][c] = _saturation(shop, cfg, c, cfg.sweep_seconds)
        shop.stop_workers()
        for b in baselines:
            b.start_workers(spec)
            sweep[b.name][c] = _saturation(b, cfg, c, cfg.sweep_seconds)
            b.stop_workers()
        log(f"  sweep c={c}: " + ", ".join(f"{k} {v[c]['orders_per_s']}/s" for k, v in sweep.items()))
    return sweep


def spread(values: list[Any]) -> dict[str, Any] | None:
    nums = [v for v in values if isinstance(v, (int, float))]
    if not nums:
        return None
    return {
        "min": min(nums),
        "median": round(statistics.median(nums), 3),
        "max": max(nums),
        "n": len(nums),
    }


def aggregate(reps: list[dict[str, Any]]) -> Any:
    """Same shape as one repetition, each number replaced by {min, median, max, n}."""
    first = reps[0]
    if isinstance(first, dict):
        return {k: aggregate([r[k] for r in reps if k in r]) for k in first}
    if isinstance(first, list):
        return [aggregate([r[i] for r in reps]) for i in range(len(first))]
    if isinstance(first, (int, float)) or first is None:
        return spread(reps)
    return first


def run(cfg: Config) -> dict[str, Any]:
    started = time.time()
    workdir = Path(tempfile.mkdtemp(prefix="shop-bench-"))
    procs = Processes(workdir)
    log_lines: list[str] = []

    def log(line: str) -> None:
        stamp = f"[{time.time() - started:6.1f}s] {line}"
        print(stamp, flush=True)
        log_lines.append(stamp)

    def on_term(*_: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    result: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(),
        "machine": machine(),
        "versions": versions(),
        "config": asdict(cfg),
    }
    log(f"load average at start: {result['machine']['load_average_at_start']}; workdir {workdir}")
    shop = None
    try:
        port = start_redis(procs)
        shop = Shop(
            procs,
            workdir,
            f"redis://127.0.0.1:{port}/0",
            gunicorn_workers=cfg.gunicorn_workers,
            gunicorn_threads=cfg.gunicorn_threads,
        ).setup()
        shop.start_web()
        baselines = make_baselines(procs, workdir, port, cfg)
        profiler = Profiler(workdir, RESULTS) if cfg.profile else None
        reps = []
        for rep in range(cfg.repetitions):
            log(f"repetition {rep + 1}/{cfg.repetitions}")
            reps.append(one_repetition(shop, baselines, cfg, log, profiler if rep == 0 else None))
        result["repetitions"] = reps
        result["figures"] = aggregate(reps)
        if cfg.sweep:
            log("concurrency sweep")
            result["sweep"] = concurrency_sweep(shop, baselines, cfg, log)
        if profiler:
            result["profile"] = profiler.summary()
        result["load_average_at_end"] = os.getloadavg()
        result["seconds"] = round(time.time() - started, 1)
        log(f"done in {result['seconds']}s; load average {result['load_average_at_end']}")
        return result
    finally:
        signal.signal(signal.SIGTERM, previous)
        procs.stop_all()
        if shop is not None:
            drop_database(shop.db_name)
        seed_system.cleanup()
        Path(tempfile.gettempdir(), "shop-bench-last.log").write_text("\n".join(log_lines) + "\n")
        shutil.rmtree(workdir, ignore_errors=True)


# --- baselines alone (python -m bench.run --only seed_app) --------------------


def run_only(cfg: Config, names: list[str]) -> dict[str, Any]:
    """The named baselines' rounds without the shop; bounded and cleaned up like ``run``."""
    started = time.time()
    workdir = Path(tempfile.mkdtemp(prefix="shop-bench-"))
    procs = Processes(workdir)

    def log(line: str) -> None:
        print(f"[{time.time() - started:6.1f}s] {line}", flush=True)

    def on_term(*_: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_term)
    result: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(), "machine": machine(), "only": names}
    try:
        port = start_redis(procs)
        baselines = make_baselines(procs, workdir, port, cfg, tuple(names))
        reps = []
        for rep in range(cfg.repetitions):
            log(f"repetition {rep + 1}/{cfg.repetitions}")
            reps.append({b.name: _baseline_round(b, cfg, log) for b in baselines})
        result["figures"] = aggregate(reps)
        result["seconds"] = round(time.time() - started, 1)
        log(f"done in {result['seconds']}s")
        return result
    finally:
        signal.signal(signal.SIGTERM, previous)
        procs.stop_all()
        seed_system.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> None:
    import argparse

    known = tuple(BASELINE_REDIS_DB)
    parser = argparse.ArgumentParser(prog="python -m bench.run", description="Run baselines alone, without the shop.")
    parser.add_argument("--only", action="append", required=True, help=f"baseline(s): {', '.join(known)}")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repetitions", type=int)
    args = parser.parse_args()
    names = [n.strip() for arg in args.only for n in arg.split(",") if n.strip()]
    if unknown := set(names) - set(known):
        parser.error(f"unknown baseline(s): {', '.join(sorted(unknown))}")
    cfg = Config.make(args.quick, repetitions=args.repetitions)
    print(json.dumps(run_only(cfg, names)["figures"], indent=2))


if __name__ == "__main__":
    main()
