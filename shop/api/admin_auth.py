"""No unlimited guessing of ADMIN_TOKEN: failed attempts are counted per client and logged.

One budget (``ADMIN_AUTH_FAILURES_PER_MINUTE``, 5) covers the login form and the
bearer header alike, so a client cannot double its guesses by switching. It is
the checkout's flask-limiter, so the count lives in Redis and every web process
sees the same lockout. Only failures (401) are counted; once the budget is spent
every attempt gets 429 until the window ends, the right token included: otherwise
the lockout would still tell a guesser when a guess was right.
"""

from __future__ import annotations

import logging

from flask import Response, current_app, request

from shop.api.orders import limiter

log = logging.getLogger(__name__)


def _failures_per_minute() -> str:
    return f"{current_app.config['ADMIN_AUTH_FAILURES_PER_MINUTE']}/minute"


def _is_failure(response: Response) -> bool:
    return response.status_code == 401


failed_admin_auth_limit = limiter.shared_limit(
    _failures_per_minute,
    scope="admin-auth",
    deduct_when=_is_failure,
    error_message="too many failed admin logins from this address: try again in a minute",
)


def record_failure(via: str) -> None:
    """Log a failed attempt with the client's address; never the token, a near miss shows most of the real one."""
    log.warning("admin authentication failed", extra={"client_address": request.remote_addr, "via": via})
