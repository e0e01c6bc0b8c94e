"""Baseline (b): the Celery-docs canvas:
chain(inventory, payment, group(email, invoice, warehouse)).

celery -A bench.baselines.canvas worker -Q canvas
"""

from __future__ import annotations

from typing import Any

from celery import chain, group

from bench.baselines import make_app, record_done, redis_client, simulate

QUEUE = "canvas"
FANOUT_KEY = "bench:fanout"
app = make_app("bench_canvas", QUEUE)


@app.task(name="canvas.inventory")
def inventory(order: dict[str, Any]) -> dict[str, Any]:
    simulate("load")
    simulate("inventory")
    return order


@app.task(name="canvas.payment")
def payment(order: dict[str, Any]) -> dict[str, Any]:
    simulate("payment")
    return order


def _finish(order: dict[str, Any], step: str) -> None:
    simulate(step)
    # The last of the three parallel steps completes the order (no chord: no result backend).
    if redis_client().hincrby(FANOUT_KEY, order["id"], 1) == 3:
        record_done(order["id"], order["created"])


@app.task(name="canvas.email")
def email(order: dict[str, Any]) -> None:
    _finish(order, "email")


@app.task(name="canvas.invoice")
def invoice(order: dict[str, Any]) -> None:
    _finish(order, "invoice")


@app.task(name="canvas.warehouse")
def warehouse(order: dict[str, Any]) -> None:
    _finish(order, "warehouse")


def submit(order: dict[str, Any]) -> None:
    chain(inventory.s(order), payment.s(), group(email.s(), invoice.s(), warehouse.s())).apply_async(queue=QUEUE)
