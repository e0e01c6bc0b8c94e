"""Security headers through the real app: a nonce CSP on every HTML page, no-store on private
pages, and secure cookies with HSTS once TLS is configured."""

from __future__ import annotations

import re
from collections.abc import Callable

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from tests.support.processes import RedisServer
from tests.support.stack import ADMIN_TOKEN, Stack, order_payload

MakeStack = Callable[..., Stack]
SCRIPT_TAG = re.compile(r"<script\b[^>]*>", re.IGNORECASE)
CSRF_FIELD = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"')


def csp_directives(response: TestResponse) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {name: value for name, _, value in (d.strip().partition(" ") for d in policy.split(";"))}


def csrf_token(page: TestResponse) -> str:
    match = CSRF_FIELD.search(page.get_data(as_text=True))
    assert match, "the page has no CSRF field"
    return match.group(1)


def log_in_to_admin(client: FlaskClient) -> None:
    token = csrf_token(client.get("/admin/login"))
    answer = client.post("/admin/login", data={"csrf_token": token, "token": ADMIN_TOKEN})
    assert answer.status_code == 303, answer.get_data(as_text=True)


def html_pages(stack: Stack) -> dict[str, TestResponse]:
    """The pages with scripts or per-product markup, and an HTML error page."""
    sku = stack.add_product()
    order_id = stack.place(order_payload((sku, 1)))["order_id"]
    client = stack.client
    pages = {path: client.get(path) for path in ("/", f"/catalog/{sku}", f"/track/{order_id}", "/no-such-page")}
    log_in_to_admin(client)
    pages["/admin/queues"] = client.get("/admin/queues")
    return pages


def test_every_html_page_runs_only_scripts_that_carry_its_fresh_nonce(db_stack: Stack) -> None:
    pages = html_pages(db_stack)

    nonces = set()
    for path, page in pages.items():
        assert page.mimetype == "text/html", path
        policy = csp_directives(page)
        nonce = re.fullmatch(r"'nonce-([A-Za-z0-9_-]{22,})'", policy["script-src"])
        assert nonce, f"{path}: script-src must be a nonce alone (no 'unsafe-inline'): {policy['script-src']}"
        assert policy["style-src"] == "'self'" and policy["object-src"] == "'none'", path
        html = page.get_data(as_text=True)
        for tag in SCRIPT_TAG.findall(html):
            assert f'nonce="{nonce.group(1)}"' in tag, f"{path}: a script without the page's nonce: {tag}"
        assert not re.search(r"\sstyle=", html), f"{path}: an inline style attribute, which the CSP blocks"
        nonces.add(nonce.group(1))
    assert len(nonces) == len(pages), "every response has a nonce of its own"
    # The two pages whose inline scripts the browser must still run.
    assert all(SCRIPT_TAG.search(pages[p].get_data(as_text=True)) for p in pages if p.startswith(("/track", "/admin")))


def test_html_pages_refuse_framing_and_sniffing_and_keep_the_referrer_on_the_site(db_stack: Stack) -> None:
    for path, page in html_pages(db_stack).items():
        assert csp_directives(page)["frame-ancestors"] == "'none'", path
        assert page.headers["X-Frame-Options"] == "DENY", path
        assert page.headers["X-Content-Type-Options"] == "nosniff", path
        assert page.headers["Referrer-Policy"] == "same-origin", path


def test_order_tracking_checkout_and_admin_pages_are_never_stored(db_stack: Stack) -> None:
    sku = db_stack.add_product()
    order_id = db_stack.place(order_payload((sku, 1)))["order_id"]
    client = db_stack.client
    client.post("/cart/add", data={"csrf_token": csrf_token(client.get("/")), "sku": sku, "quantity": 1})
    log_in_to_admin(client)

    private = ["/checkout", f"/track/{order_id}", f"/orders/{order_id}", f"/orders/{order_id}/status"]
    private += ["/admin/login", "/admin/", f"/admin/orders/{order_id}", "/admin/queues", "/admin/dead-letters"]
    for path in private:
        answer = client.get(path)
        assert answer.status_code in (200, 303), (path, answer.status_code)
        assert answer.headers.get("Cache-Control") == "no-store", path
    # The catalog holds nothing personal: caches may keep it.
    assert "no-store" not in client.get("/").headers.get("Cache-Control", "")


def test_without_tls_the_session_cookie_is_not_secure_only_and_there_is_no_hsts(db_stack: Stack) -> None:
    client = db_stack.client
    page = client.get("/admin/login")

    assert "Strict-Transport-Security" not in page.headers
    assert "Secure" not in page.headers["Set-Cookie"]


def test_with_tls_in_front_the_session_cookie_is_secure_and_every_answer_has_hsts(
    make_stack: MakeStack, redis_server: RedisServer
) -> None:
    stack = make_stack(redis_server.url, PREFERRED_URL_SCHEME="https")
    client = stack.client

    page = client.get("/admin/login", base_url="https://shop.example")
    api = client.get("/products", base_url="https://shop.example")

    cookie = page.headers["Set-Cookie"]
    assert "; Secure" in cookie and "HttpOnly" in cookie
    for answer in (page, api):
        assert answer.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"


def test_an_https_public_base_url_means_tls_is_configured(make_stack: MakeStack, redis_server: RedisServer) -> None:
    stack = make_stack(redis_server.url, PUBLIC_BASE_URL="https://shop.example", PREFERRED_URL_SCHEME="")

    page = stack.client.get("/admin/login", base_url="https://shop.example")

    assert "; Secure" in page.headers["Set-Cookie"] and "Strict-Transport-Security" in page.headers
