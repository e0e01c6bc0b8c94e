"""Admin hardening (ASVS L2): no unlimited guessing of ADMIN_TOKEN, no open redirect after
login, and admin sessions that start fresh, expire and can be revoked.

Through the Flask test client on a real Redis and PostgreSQL, and through gunicorn
processes where what matters is that several processes agree.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from tests.conftest import Databases
from tests.support.processes import RedisServer, gunicorn
from tests.support.stack import ADMIN_TOKEN, Stack

WRONG_TOKEN = "wrong-token-but-nearly-right-0123456789"
CSRF = re.compile(r'name="csrf_token"[^>]*?value="([^"]+)"')


@pytest.fixture(scope="module")
def admin_stack(databases: Databases, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A shop without workers on a Redis of its own: the tests flush it between them."""
    workdir = tmp_path_factory.mktemp("security-admin")
    redis_server = RedisServer(workdir / "redis").start()
    with Stack(databases.new("postgresql"), redis_server.url, workdir) as stack:
        yield stack
    redis_server.kill()


@pytest.fixture
def stack(admin_stack: Stack) -> Stack:
    admin_stack.services.redis.flushall()  # failure counts and sessions start from zero
    return admin_stack


def client_at(stack: Stack, address: str = "198.51.100.7") -> FlaskClient:
    """A test client whose requests come from ``address``: its own failure budget."""
    client = stack.app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def log_in(client: FlaskClient, token: str = ADMIN_TOKEN, next_path: str | None = None) -> int:
    page = client.get("/admin/login")
    match = CSRF.search(page.get_data(as_text=True))
    assert match, "the login form has no CSRF token"
    url = "/admin/login" if next_path is None else f"/admin/login?next={next_path}"
    return client.post(url, data={"token": token, "csrf_token": match.group(1)}).status_code


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def is_logged_in(client: FlaskClient) -> bool:
    response = client.get("/admin/")
    assert response.status_code in (200, 303)
    return response.status_code == 200


# --- no unlimited guessing -------------------------------------------------------


def test_five_failed_logins_a_minute_then_every_attempt_gets_429(stack: Stack) -> None:
    client = client_at(stack)
    assert [log_in(client, WRONG_TOKEN) for _ in range(5)] == [401] * 5

    assert log_in(client, ADMIN_TOKEN) == 429  # the right token too: a lockout must not confirm a guess
    assert client.get("/admin/api/queues", headers=bearer(ADMIN_TOKEN)).status_code == 429
    assert log_in(client_at(stack, "198.51.100.8"), ADMIN_TOKEN) == 303  # another client is not locked out


def test_bearer_failures_share_the_login_forms_budget(stack: Stack) -> None:
    client = client_at(stack)
    for _ in range(3):
        assert client.get("/admin/api/queues", headers=bearer(WRONG_TOKEN)).status_code == 401
    assert client.get("/admin/api/dead-letters").status_code == 401  # no header at all is a failure too
    assert log_in(client, WRONG_TOKEN) == 401

    refused = client.get("/admin/api/queues", headers=bearer(ADMIN_TOKEN))
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "rate_limited"
    assert log_in(client, ADMIN_TOKEN) == 429


def test_successful_admin_requests_do_not_spend_the_failure_budget(stack: Stack) -> None:
    client = client_at(stack)
    for _ in range(8):
        assert client.get("/admin/api/queues", headers=bearer(ADMIN_TOKEN)).status_code == 200
    assert log_in(client, ADMIN_TOKEN) == 303


def test_failed_logins_are_logged_with_the_client_address_and_never_the_token(
    stack: Stack, caplog: pytest.LogCaptureFixture
) -> None:
    client = client_at(stack, "203.0.113.9")
    with caplog.at_level(logging.WARNING, logger="shop.api.admin_auth"):
        log_in(client, WRONG_TOKEN)
        client.get("/admin/api/queues", headers=bearer(WRONG_TOKEN))

    failures = [r for r in caplog.records if r.getMessage() == "admin authentication failed"]
    assert [(r.client_address, r.via) for r in failures] == [  # type: ignore[attr-defined]
        ("203.0.113.9", "login form"),
        ("203.0.113.9", "bearer"),
    ]
    everything_logged = " ".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert WRONG_TOKEN not in everything_logged and ADMIN_TOKEN not in everything_logged


def web_process(stack: Stack, name: str) -> Any:
    """``gunicorn 'shop:create_app()'``, one process, on the stack's Redis and database."""
    return gunicorn(stack.env, stack.workdir / f"{name}.log")


def test_the_lockout_is_shared_by_every_web_process(stack: Stack) -> None:
    with web_process(stack, "web-a") as a, web_process(stack, "web-b") as b:
        for url in (a, b):
            assert requests.get(f"{url}/admin/api/queues", headers=bearer(ADMIN_TOKEN), timeout=10).status_code == 200
        for url in (a, a, a, b, b):
            assert requests.get(f"{url}/admin/api/queues", headers=bearer(WRONG_TOKEN), timeout=10).status_code == 401

        for url in (a, b):
            assert requests.get(f"{url}/admin/api/queues", headers=bearer(ADMIN_TOKEN), timeout=10).status_code == 429


# --- no open redirect ------------------------------------------------------------


@pytest.mark.parametrize(
    ("next_path", "lands_on"),
    [
        ("/%09/evil.example", "/admin/"),
        ("//evil.example", "/admin/"),
        ("/%5Cevil.example", "/admin/"),
        ("/%0a/evil.example", "/admin/"),
        ("https://evil.example/", "/admin/"),
        ("/admin/queues", "/admin/queues"),
    ],
)
def test_login_redirects_only_to_a_local_path(stack: Stack, next_path: str, lands_on: str) -> None:
    client = client_at(stack)
    page = client.get("/admin/login")
    csrf = CSRF.search(page.get_data(as_text=True)).group(1)  # type: ignore[union-attr]

    response = client.post(f"/admin/login?next={next_path}", data={"token": ADMIN_TOKEN, "csrf_token": csrf})

    assert response.status_code == 303
    assert response.headers["Location"] == lands_on


# --- session lifetime ------------------------------------------------------------


def test_login_starts_a_new_session_so_none_can_be_fixed_in_advance(stack: Stack) -> None:
    client = client_at(stack)
    with client.session_transaction() as planted:
        planted["planted_by_attacker"] = "yes"
    csrf_before = CSRF.search(client.get("/admin/login").get_data(as_text=True)).group(1)  # type: ignore[union-attr]

    assert client.post("/admin/login", data={"token": ADMIN_TOKEN, "csrf_token": csrf_before}).status_code == 303

    with client.session_transaction() as session:
        assert "planted_by_attacker" not in session
        assert "csrf_token" not in session  # the pre-login CSRF secret is gone too
    assert is_logged_in(client)


def test_logout_clears_the_session(stack: Stack) -> None:
    client = client_at(stack)
    log_in(client)
    with client.session_transaction() as session:
        session["cart"] = {"SKU-1": 1}
    csrf = CSRF.search(client.get("/admin/").get_data(as_text=True)).group(1)  # type: ignore[union-attr]

    assert client.post("/admin/logout", data={"csrf_token": csrf}).status_code == 303

    with client.session_transaction() as session:
        assert dict(session) == {}


def test_logout_revokes_a_stolen_copy_of_the_session_cookie(stack: Stack) -> None:
    operator, thief = client_at(stack), client_at(stack, "192.0.2.66")
    log_in(operator)
    cookie = operator.get_cookie("session")
    assert cookie is not None
    thief.set_cookie("session", cookie.value)
    assert is_logged_in(thief)

    csrf = CSRF.search(operator.get("/admin/").get_data(as_text=True)).group(1)  # type: ignore[union-attr]
    operator.post("/admin/logout", data={"csrf_token": csrf})

    assert not is_logged_in(thief)
    assert not is_logged_in(operator)


def test_changing_the_admin_token_ends_sessions_already_issued(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    client = client_at(stack)
    log_in(client)
    assert is_logged_in(client)

    monkeypatch.setitem(stack.app.config, "ADMIN_TOKEN", "a-brand-new-admin-token-0123456789abcdef")

    assert not is_logged_in(client)


def test_an_idle_admin_session_expires(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(stack.app.config, "ADMIN_SESSION_IDLE_SECONDS", 1)
    client = client_at(stack)
    log_in(client)
    for _ in range(3):  # each request pushes the idle deadline out
        time.sleep(0.6)
        assert is_logged_in(client)

    time.sleep(1.3)

    assert not is_logged_in(client)


def test_an_admin_session_expires_after_its_maximum_age_however_active(
    stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(stack.app.config, "ADMIN_SESSION_MAX_AGE_SECONDS", 2)
    client = client_at(stack)
    log_in(client)
    started = time.monotonic()
    while time.monotonic() - started < 1.6:
        assert is_logged_in(client)
        time.sleep(0.3)

    time.sleep(0.6)

    assert not is_logged_in(client)
    assert log_in(client) == 303 and is_logged_in(client)  # a new login gets a new session


def test_admin_sessions_are_refused_while_redis_is_unreachable(databases: Databases, tmp_path: Path) -> None:
    # Last in the module: a new app rebinds the process-wide rate limiter to its own Redis.
    own = RedisServer(tmp_path / "redis").start()
    with Stack(databases.new("postgresql"), own.url, tmp_path / "stack") as stack:
        client = client_at(stack)
        log_in(client)
        assert is_logged_in(client)
        own.kill()

        assert not is_logged_in(client)  # a session that cannot be checked is not trusted
