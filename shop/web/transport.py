"""How the app sits behind TLS and reverse proxies: real client addresses, secure cookies.

TLS ends at a proxy in front (nginx, Caddy): the app itself speaks plain HTTP.
``PREFERRED_URL_SCHEME=https`` says the public site is https; then the session
cookie is sent over TLS only and responses carry HSTS (security_headers).

``TRUSTED_PROXIES`` is how many proxies stand in front. Werkzeug's ``ProxyFix``
then takes the client address from the last that many ``X-Forwarded-For``
entries (each proxy appends the address it saw), so the rate limiter counts
real clients instead of one proxy. With 0 the header is ignored: anyone could
send it, and trusting it would let each request pick its own rate-limit bucket.
``X-Forwarded-Host`` is not trusted even then: a proxy that does not set it
passes the client's through, and the host is not needed (links come from
configured URLs).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def tls_configured(config: Mapping[str, Any]) -> bool:
    return config.get("PREFERRED_URL_SCHEME") == "https"


def configure_transport(app: Flask) -> None:
    """Trust ``TRUSTED_PROXIES`` proxies for the client address and scheme; secure cookies under TLS."""
    proxies = app.config.get("TRUSTED_PROXIES", 0)
    if proxies > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)  # type: ignore[method-assign]
    if tls_configured(app.config):
        app.config["SESSION_COOKIE_SECURE"] = True
