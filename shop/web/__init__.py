"""The web UI: server-rendered shop and admin pages (Jinja, one stylesheet, no build step)."""

from __future__ import annotations

import time

from flask import Flask, Response, g, request
from flask_wtf.csrf import generate_csrf

from shop.web import formatting

WEB_BLUEPRINTS = frozenset({"shop", "admin"})


def register_web(app: Flask) -> None:
    from shop.web import admin_pages, shop_pages
    from shop.web.security_headers import register_security_headers

    # The session carries the cart and the admin login: no cross-site POSTs with it.
    if app.config.get("SESSION_COOKIE_SAMESITE") is None:
        app.config["SESSION_COOKIE_SAMESITE"] = "Lax"
    app.register_blueprint(shop_pages.bp)
    app.register_blueprint(admin_pages.bp)
    # Row forms (add to cart, replay, ...) render the token without a form object.
    app.jinja_env.globals["csrf_token"] = generate_csrf
    app.jinja_env.filters.update(formatting.FILTERS)
    app.before_request(_start_clock)
    app.after_request(_server_timing)
    register_security_headers(app)


def _start_clock() -> None:
    g.page_started = time.perf_counter()


def _server_timing(response: Response) -> Response:
    # Server-Timing shows the render time in the browser's devtools and lets the
    # e2e suite measure it without a profiler.
    if request.blueprint in WEB_BLUEPRINTS and "page_started" in g:
        elapsed_ms = (time.perf_counter() - g.page_started) * 1000
        response.headers["Server-Timing"] = f"app;dur={elapsed_ms:.1f}"
    return response
