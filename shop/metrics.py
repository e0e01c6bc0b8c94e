"""GET /metrics in Prometheus text format."""

from __future__ import annotations

from flask import Flask, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest
from sqlalchemy import func, select

from shop.extensions import services
from shop.models import Order
from shop.states import OrderStatus


def register_metrics(app: Flask) -> None:
    @app.get("/metrics")
    def metrics() -> Response:
        """Prometheus metrics, read from the ledger at scrape time."""
        registry = CollectorRegistry()
        orders = Gauge("shop_orders", "Orders by status", ["status"], registry=registry)
        with services().db.begin() as session:
            counts = dict(session.execute(select(Order.status, func.count()).group_by(Order.status)).all())
        for status in OrderStatus:
            orders.labels(status=status).set(counts.get(status, 0))
        return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
