"""Security headers: a nonce-based Content-Security-Policy on HTML pages, no-store on private pages, HSTS.

The pages carry two inline scripts (live tracking, the queues page's worker
list). Rather than allow every inline script ('unsafe-inline'), each response
gets a fresh random nonce; a template marks its own scripts with
``<script nonce="{{ csp_nonce() }}">`` and the browser runs only those, so a
script injected through some unescaped value does not run. Styles come from
the one stylesheet only (``style-src 'self'``): templates carry no ``style``
attributes, which CSP would block as inline styles.
"""

from __future__ import annotations

import secrets

from flask import Flask, Response, current_app, g, request

from shop.web.transport import tls_configured

# 'self' stands for the stylesheet and the status/worker fetches; nothing is
# framed, embedded or loaded from elsewhere.
CSP = (
    "default-src 'self'; script-src 'nonce-{nonce}'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Order details and invoices, tracking, checkout (a re-rendered form holds the
# address) and the admin show personal data: no browser or proxy keeps a copy.
NO_STORE_PREFIXES = ("/orders/", "/track/", "/checkout", "/admin")
# One year, subdomains included (ASVS 14.4.5); only when the site is served over TLS.
HSTS = "max-age=31536000; includeSubDomains"


def csp_nonce() -> str:
    """This response's script nonce, made on first use."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(18)
    return str(g.csp_nonce)


def register_security_headers(app: Flask) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.after_request(add_security_headers)


def add_security_headers(response: Response) -> Response:
    headers = response.headers
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "same-origin"
    if response.mimetype == "text/html":
        headers["Content-Security-Policy"] = CSP.format(nonce=csp_nonce())
        headers["X-Frame-Options"] = "DENY"  # what frame-ancestors says, for browsers without CSP 2
    if request.path.startswith(NO_STORE_PREFIXES):
        headers["Cache-Control"] = "no-store"
    if tls_configured(current_app.config):
        headers["Strict-Transport-Security"] = HSTS
    return response
