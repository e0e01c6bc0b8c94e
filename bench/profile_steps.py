"""``python -m bench.profile_steps``: CPU profile of checkout and of each step, in process.

Runs ``place_order`` and the order's durable run (``run_order``) for N orders against a fresh PostgreSQL database and
a private Redis (latency scale 0: only the code's own cost is left), under cProfile with a
CPU-time clock, and writes pyinstrument's wall-clock tree next to it. Output under
bench/results/profiles/.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import random
import sys
import time

from bench.loadgen import order_payload
from bench.processes import ROOT
from bench.run import private_shop

OUT = ROOT / "bench" / "results" / "profiles"


def main(orders: int = 40) -> None:
    from pyinstrument import Profiler

    OUT.mkdir(parents=True, exist_ok=True)
    with private_shop("shop_profile") as shop:
        os.environ.update({**shop.env, "SIMULATED_LATENCY_SCALE": "0"})
        from shop.pipeline.run import run_order
        from shop.schemas import OrderRequest
        from shop.services.checkout import place_order
        from tasks import flask_app

        svc, rng = flask_app.extensions["shop"], random.Random(1)

        def one_pass(label: str) -> list[str]:
            lines, start = [], time.process_time()
            ids = [place_order(svc, OrderRequest(**order_payload(rng)), None).order_id for _ in range(orders)]
            lines.append(f"{label} place_order: {1000 * (time.process_time() - start) / orders:.1f} ms")
            start = time.process_time()
            for order_id in ids:
                run_order(svc, order_id, "profile")
            lines.append(f"{label} run_order: {1000 * (time.process_time() - start) / orders:.1f} ms")
            return lines

        # Two passes: the two profilers cannot hook the interpreter at the same time.
        with flask_app.app_context():
            one_pass("warm-up")
            lines = one_pass("CPU per order (no profiler)")
            wall = Profiler()
            wall.start()
            lines += one_pass("CPU per order (pyinstrument sampling)")
            wall.stop()
            cpu = cProfile.Profile(time.process_time)
            cpu.enable()
            lines += one_pass("CPU per order (under cProfile, inflated)")
            cpu.disable()
        text = io.StringIO()
        stats = pstats.Stats(cpu, stream=text)
        stats.sort_stats("tottime").print_stats(30)
        stats.sort_stats("cumulative").print_stats("shop/|celery/app/base|kombu/messaging", 30)
        report = "\n".join(lines) + "\n(under cProfile: absolute figures inflated ~2x)\n" + text.getvalue()
        (OUT / "steps-cprofile.txt").write_text(report)
        (OUT / "steps-pyinstrument.txt").write_text(wall.output_text(unicode=False, show_all=False))
        print("\n".join(lines))
        print(f"wrote {OUT}/steps-cprofile.txt and steps-pyinstrument.txt")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 40)
