"""The JSON API: public order endpoints, health, OpenAPI, and the admin API."""

from __future__ import annotations

from flask import Flask


def register_api(app: Flask) -> None:
    from shop.api import admin, catalog, errors, health, openapi, orders

    errors.register_error_handlers(app)
    orders.limiter.init_app(app)
    for module in (orders, catalog, health, openapi, admin):
        app.register_blueprint(module.bp)
