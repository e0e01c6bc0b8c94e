"""shop: the Flask application factory."""

from __future__ import annotations

from typing import Any

from flask import Flask

from shop import config


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Create the web app; ``test_config`` overrides settings read from the environment."""
    app = Flask(__name__)
    app.config.from_mapping(config.from_environment())
    if test_config:
        app.config.update(test_config)
    config.check_secrets(app.config)
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config["REDIS_URL"])
    app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", {"socket_connect_timeout": 1, "socket_timeout": 1})

    from shop.api import register_api
    from shop.cli import register_cli
    from shop.extensions import init_services
    from shop.logs import configure_logging, register_request_context
    from shop.metrics import register_metrics
    from shop.web import register_web
    from shop.web.transport import configure_transport

    configure_transport(app)
    configure_logging(app.config["LOG_LEVEL"])
    register_request_context(app)
    init_services(app)
    register_api(app)
    register_web(app)
    register_metrics(app)
    register_cli(app)
    return app
