"""Baseline (a): the worked example's own approach — one task per order, steps in sequence.

celery -A bench.baselines.single_task worker -Q single
"""

from __future__ import annotations

from typing import Any

from bench.baselines import make_app, record_done, simulate

QUEUE = "single"
app = make_app("bench_single_task", QUEUE)


@app.task(name="single.process_order")
def process_order(order: dict[str, Any]) -> None:
    for step in ("load", "inventory", "payment", "email", "invoice", "warehouse"):
        simulate(step)
    record_done(order["id"], order["created"])


def submit(order: dict[str, Any]) -> None:
    process_order.apply_async((order,), queue=QUEUE)
