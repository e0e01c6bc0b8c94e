"""The admin's login session: started at login, checked on every admin page, ended at logout.

Flask's session is a signed cookie the server cannot take back: a stolen copy
would stay valid as long as the cookie signature does (31 days). So the cookie
only names the session, by a random id, and the session itself is a Redis key,
``shop:admin:session:<id>``, that every web process sees:

- its value is the login time, which bounds the session's absolute lifetime
  (``ADMIN_SESSION_MAX_AGE_SECONDS``); its TTL is the idle timeout
  (``ADMIN_SESSION_IDLE_SECONDS``), renewed by each admin request;
- logout deletes it, so every copy of the cookie dies with it;
- the cookie also carries an HMAC of ADMIN_TOKEN: changing the token ends every session.

Why one key per session rather than one "sessions valid after" epoch: an
operator who logs out does not log out everybody else. Why Redis rather than the
database: expiry is built in and costs no migration. Redis unreachable means
logged out: a login that cannot be checked is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time

from flask import current_app, g, session
from redis.exceptions import RedisError

from shop.extensions import services

log = logging.getLogger(__name__)

SESSION_KEY = "admin"
REDIS_KEY_PREFIX = "shop:admin:session:"


def token_fingerprint() -> str:
    token = current_app.config["ADMIN_TOKEN"].encode()
    return hmac.new(current_app.config["SECRET_KEY"].encode(), token, hashlib.sha256).hexdigest()


def _idle_ms() -> int:
    return max(1, int(current_app.config["ADMIN_SESSION_IDLE_SECONDS"] * 1000))


def start() -> None:
    """Log in: a brand-new session, so nothing planted in the cookie before the login survives it."""
    session.clear()
    session_id = secrets.token_urlsafe(32)
    services().redis.set(REDIS_KEY_PREFIX + session_id, repr(time.time()), px=_idle_ms())
    session[SESSION_KEY] = {"id": session_id, "token": token_fingerprint()}
    g.admin_session_active = True


def end() -> None:
    """Log out: revoke the session for every copy of the cookie, then clear this one."""
    session_id = _session_id()
    if session_id:
        # Revoke first: if Redis is away the operator sees an error and is still
        # logged in, rather than believing a session is over that is not.
        services().redis.delete(REDIS_KEY_PREFIX + session_id)
    session.clear()
    g.admin_session_active = False


def is_active() -> bool:
    """Whether this request carries a live admin session (checked once per request)."""
    if "admin_session_active" not in g:
        g.admin_session_active = _check()
    return bool(g.admin_session_active)


def _session_id() -> str | None:
    data = session.get(SESSION_KEY)
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        return None
    if not hmac.compare_digest(str(data.get("token", "")), token_fingerprint()):
        return None  # issued under another ADMIN_TOKEN
    return str(data["id"])


def _check() -> bool:
    session_id = _session_id()
    if session_id is None:
        return False
    key = REDIS_KEY_PREFIX + session_id
    try:
        # One round trip: read the login time and push the idle deadline out.
        pipe = services().redis.pipeline(transaction=False)
        pipe.get(key)
        pipe.pexpire(key, _idle_ms())
        started, _ = pipe.execute()
        if started is None:
            return False  # logged out, idle too long, or never issued
        if time.time() - float(started) >= current_app.config["ADMIN_SESSION_MAX_AGE_SECONDS"]:
            services().redis.delete(key)
            return False
    except RedisError:
        log.warning("admin session not checked: Redis is unreachable, treating it as logged out", exc_info=True)
        return False
    return True
