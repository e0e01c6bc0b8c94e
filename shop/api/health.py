"""Liveness and readiness."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from shop.extensions import services
from shop.integrations import broker

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """The process is alive."""
    return jsonify({"status": "ok", "checks": {}})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """Database and broker reachable: 200, otherwise 503."""
    checks = {"database": "ok", "broker": "ok"}
    try:
        with services().db.begin() as session:
            session.execute(text("SELECT 1"))
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    if not broker.ping(current_app.config["CELERY_BROKER_URL"]):
        checks["broker"] = "unreachable"
    ready = all(v == "ok" for v in checks.values())
    return jsonify({"status": "ok" if ready else "unavailable", "checks": checks}), 200 if ready else 503
