"""POST /orders: every bad request gets its status and JSON error and writes nothing;
Idempotency-Key makes retries safe, also under concurrency."""

from __future__ import annotations

import copy
import gzip
import json
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
import requests

from tests.support.processes import ServerThread
from tests.support.stack import Stack, order_payload

BACKENDS = pytest.mark.parametrize("db_stack", ["sqlite", "postgresql"], indirect=True)


def _valid() -> dict[str, Any]:
    return order_payload(("MUG-001", 2))


def _with(path: str, value: Any) -> dict[str, Any]:
    body = _valid()
    *parents, last = path.split(".")
    node: Any = body
    for key in parents:
        node = node[int(key)] if key.isdigit() else node[key]
    if value is _DELETE:
        del node[last]
    else:
        node[int(last) if last.isdigit() else last] = value
    return body


_DELETE = object()

BAD_REQUESTS = [
    # (case, raw body or dict, content type, status, error code)
    ("malformed json", b'{"customer": ', "application/json", 400, "malformed_json"),
    ("empty body", b"", "application/json", 400, "malformed_json"),
    ("form encoded", b"sku=MUG-001", "application/x-www-form-urlencoded", 415, "unsupported_media_type"),
    ("text/plain", json.dumps(order_payload(("MUG-001", 1))).encode(), "text/plain", 415, "unsupported_media_type"),
    ("json array", b"[]", "application/json", 422, "validation_error"),
    ("missing customer", _with("customer", _DELETE), None, 422, "validation_error"),
    ("bad email", _with("customer.email", "not-an-email"), None, 422, "validation_error"),
    ("name wrong type", _with("customer.name", 42), None, 422, "validation_error"),
    ("missing address", _with("shipping_address", _DELETE), None, 422, "validation_error"),
    ("empty city", _with("shipping_address.city", ""), None, 422, "validation_error"),
    ("bad country", _with("shipping_address.country", "Britain"), None, 422, "validation_error"),
    ("no items", _with("items", []), None, 422, "validation_error"),
    ("items not a list", _with("items", {"sku": "MUG-001"}), None, 422, "validation_error"),
    ("unknown sku", _with("items.0.sku", "NOPE-404"), None, 422, "unknown_sku"),
    ("quantity zero", _with("items.0.quantity", 0), None, 422, "validation_error"),
    ("quantity negative", _with("items.0.quantity", -3), None, 422, "validation_error"),
    ("quantity huge", _with("items.0.quantity", 10**9), None, 422, "validation_error"),
    ("quantity as string", _with("items.0.quantity", "2"), None, 422, "validation_error"),
    ("quantity as float", _with("items.0.quantity", 2.5), None, 422, "validation_error"),
    ("too many lines", _with("items", [{"sku": "MUG-001", "quantity": 1}] * 51), None, 422, "validation_error"),
    ("same sku over 100", _with("items", [{"sku": "MUG-001", "quantity": 60}] * 2), None, 422, "invalid_quantity"),
    ("unknown token", _with("payment_token", "tok_stolen"), None, 422, "validation_error"),
    ("unknown priority", _with("priority", "overnight"), None, 422, "validation_error"),
    ("unexpected field", _with("discount", 100), None, 422, "validation_error"),
    ("oversized body", _with("customer.name", "x" * 70_000), None, 413, "payload_too_large"),
    # Control characters in any text field (NUL made PostgreSQL answer 500), even at the ends.
    ("NUL in name", _with("customer.name", "Ada\u0000Lovelace"), None, 422, "validation_error"),
    ("newline after name", _with("customer.name", "Ada Lovelace\n"), None, 422, "validation_error"),
    ("bidi override in name", _with("customer.name", "\u202eecalevoL adA"), None, 422, "validation_error"),
    ("NUL in email", _with("customer.email", "ada\u0000@example.com"), None, 422, "validation_error"),
    ("NUL in street", _with("shipping_address.line1", "1 Main\u0000St"), None, 422, "validation_error"),
    ("DEL in line2", _with("shipping_address.line2", "Flat 2\u007f"), None, 422, "validation_error"),
    ("escape in city", _with("shipping_address.city", "London\u001b[2J"), None, 422, "validation_error"),
    ("C1 control in postal code", _with("shipping_address.postal_code", "N1\u00859GU"), None, 422, "validation_error"),
    ("line separator in street", _with("shipping_address.line1", "1 Main\u2028St"), None, 422, "validation_error"),
    ("NUL in country", _with("shipping_address.country", "G\u0000"), None, 422, "validation_error"),
    # Text nobody can see is no name and no address.
    ("zero-width name", _with("customer.name", "\u200b\u200b\u200b"), None, 422, "validation_error"),
    ("Hangul filler name", _with("customer.name", "\u3164"), None, 422, "validation_error"),
    ("combining mark name", _with("customer.name", "\u0301"), None, 422, "validation_error"),
    ("spaces and joiners city", _with("shipping_address.city", "\u00a0\u200d\u2060"), None, 422, "validation_error"),
    ("zero-width line2", _with("shipping_address.line2", "\ufeff"), None, 422, "validation_error"),
    ("blank postal code", _with("shipping_address.postal_code", "\u3000"), None, 422, "validation_error"),
    # A content coding is never decoded: a gzip body was "malformed", a plain one labelled gzip was taken.
    ("gzip body", gzip.compress(json.dumps(_valid()).encode()), None, 415, "unsupported_content_encoding"),
    ("plain body labelled gzip", _valid(), None, 415, "unsupported_content_encoding"),
    ("plain body labelled br", _valid(), None, 415, "unsupported_content_encoding"),
    # gunicorn passes on what arrived when the client gives up: a whole JSON document, but short of its length.
    ("body short of its length", _valid(), None, 400, "incomplete_body"),
    ("body short, server-checked", _valid(), None, 400, "incomplete_body"),
]
_LONGER = str(len(json.dumps(_valid())) + 10)  # a Content-Length the body falls short of
# What some cases send besides their body: headers, or what the WSGI server says about its input.
EXTRAS: dict[str, dict[str, Any]] = {
    "gzip body": {"headers": {"Content-Encoding": "gzip"}},
    "plain body labelled gzip": {"headers": {"Content-Encoding": "gzip"}},
    "plain body labelled br": {"headers": {"Content-Encoding": "br"}},
    # As gunicorn does: it terminates the input itself, so werkzeug reads whatever it hands over.
    "body short of its length": {"environ_overrides": {"CONTENT_LENGTH": _LONGER, "wsgi.input_terminated": True}},
    # As werkzeug's own server does: werkzeug's stream notices the early end itself.
    "body short, server-checked": {"environ_overrides": {"CONTENT_LENGTH": _LONGER}},
}


def _counts(stack: Stack) -> tuple[int, ...]:
    return tuple(
        stack.scalar(f"SELECT count(*) FROM {table}")
        for table in ("orders", "order_lines", "step_runs", "outbox_messages")
    )


@BACKENDS
def test_every_bad_request_gets_its_status_and_json_error_and_writes_nothing(db_stack: Stack) -> None:
    db_stack.add_product(sku="MUG-001")
    before = _counts(db_stack)
    seen = []
    for case, body, content_type, _status, _code in BAD_REQUESTS:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = db_stack.client.post(
            "/orders", data=raw, content_type=content_type or "application/json", **EXTRAS.get(case, {})
        )
        error = (response.get_json(silent=True) or {}).get("error", {})
        seen.append((case, response.status_code, error.get("code")))
        assert isinstance(error.get("message"), str) and isinstance(error.get("details"), list), case
    assert seen == [(case, status, code) for case, _, _, status, code in BAD_REQUESTS]
    assert _counts(db_stack) == before


@BACKENDS
def test_validation_errors_name_the_offending_field(db_stack: Stack) -> None:
    response = db_stack.client.post("/orders", json=_with("items.0.quantity", 0))
    details = response.get_json()["error"]["details"]
    assert response.status_code == 422
    assert details[0]["loc"] == ["items", 0, "quantity"]


@BACKENDS
def test_unknown_order_is_a_json_404(db_stack: Stack) -> None:
    for path in ("/orders/doesnotexist/status", "/orders/doesnotexist", "/admin/api/orders/x"):
        response = db_stack.client.get(path)
        assert response.status_code == 404 and response.get_json()["error"]["code"] == "not_found"


@BACKENDS
def test_same_idempotency_key_and_body_replays_the_same_order(db_stack: Stack) -> None:
    sku = db_stack.add_product()
    body = order_payload((sku, 1))
    first = db_stack.client.post("/orders", json=body, headers={"Idempotency-Key": "retry-1"})
    again = db_stack.client.post("/orders", json=copy.deepcopy(body), headers={"Idempotency-Key": "retry-1"})
    assert first.status_code == again.status_code == 201
    assert again.get_json()["order_id"] == first.get_json()["order_id"]
    assert again.get_json()["task_id"] == first.get_json()["task_id"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert db_stack.scalar("SELECT count(*) FROM orders") == 1


@BACKENDS
def test_same_idempotency_key_with_another_body_is_refused(db_stack: Stack) -> None:
    sku = db_stack.add_product()
    db_stack.client.post("/orders", json=order_payload((sku, 1)), headers={"Idempotency-Key": "k-2"})
    reused = db_stack.client.post("/orders", json=order_payload((sku, 2)), headers={"Idempotency-Key": "k-2"})
    assert reused.status_code == 422
    assert reused.get_json()["error"]["code"] == "idempotency_key_reused"
    assert db_stack.scalar("SELECT count(*) FROM orders") == 1


@BACKENDS
def test_sixteen_concurrent_requests_with_one_key_make_exactly_one_order(db_stack: Stack) -> None:
    sku = db_stack.add_product()
    body = order_payload((sku, 1))
    with ServerThread(db_stack.app) as server, ThreadPoolExecutor(16) as pool:
        responses = list(
            pool.map(
                lambda _: requests.post(
                    f"{server.url}/orders", json=body, headers={"Idempotency-Key": "burst"}, timeout=30
                ),
                range(16),
            )
        )
    assert [r.status_code for r in responses] == [201] * 16
    assert len({r.json()["order_id"] for r in responses}) == 1
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 15
    assert db_stack.scalar("SELECT count(*) FROM orders") == 1
    assert db_stack.scalar("SELECT count(*) FROM outbox_messages") == 0  # the order row records the dispatch


@BACKENDS
def test_bad_idempotency_key_is_refused(db_stack: Stack) -> None:
    db_stack.add_product(sku="MUG-001")
    response = db_stack.client.post("/orders", json=_valid(), headers={"Idempotency-Key": "x" * 300})
    assert response.status_code == 422 and response.get_json()["error"]["code"] == "invalid_idempotency_key"
    assert db_stack.scalar("SELECT count(*) FROM orders") == 0


@BACKENDS
def test_order_ids_are_opaque_and_unguessable(db_stack: Stack) -> None:
    sku = db_stack.add_product()
    ids = [db_stack.place(order_payload((sku, 1)))["order_id"] for _ in range(3)]
    assert len(set(ids)) == 3
    assert all(len(i) >= 21 and all(c.isalnum() or c in "-_" for c in i) for i in ids)  # >= 126 bits


def test_rate_limit_answers_429_with_a_json_error(db_stack: Stack) -> None:
    redis.Redis.from_url(db_stack.env["REDIS_URL"]).flushdb()  # a fresh window
    db_stack.app.config["RATE_LIMIT_PER_MINUTE"] = 3
    sku = db_stack.add_product()
    statuses = [db_stack.client.post("/orders", json=order_payload((sku, 1))).status_code for _ in range(5)]
    assert statuses == [201, 201, 201, 429, 429]
    limited = db_stack.client.post("/orders", json=order_payload((sku, 1)))
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60  # the rest of this minute's window
    assert db_stack.scalar("SELECT count(*) FROM orders") == 3


def test_a_refused_content_encoding_says_which_one_is_accepted(db_stack: Stack) -> None:
    db_stack.add_product(sku="MUG-001")
    body = gzip.compress(json.dumps(_valid()).encode())
    response = db_stack.client.post(
        "/orders", data=body, content_type="application/json", headers={"Content-Encoding": "gzip"}
    )
    assert response.status_code == 415 and response.headers["Accept-Encoding"] == "identity"  # RFC 9110 15.5.16
    plain = db_stack.client.post("/orders", json=_valid(), headers={"Content-Encoding": "identity"})
    assert plain.status_code == 201
    assert db_stack.scalar("SELECT count(*) FROM orders") == 1


def test_a_wrong_method_answers_405_with_the_allowed_methods(db_stack: Stack) -> None:
    cases = [("GET", "/orders", {"POST"}), ("DELETE", "/orders/x/status", {"GET"}), ("POST", "/products", {"GET"})]
    for method, path, allowed in cases:
        response = db_stack.client.open(path, method=method)
        assert response.status_code == 405, path
        assert response.get_json()["error"]["code"] == "method_not_allowed"
        assert allowed <= {m.strip() for m in response.headers["Allow"].split(",")}, path  # RFC 9110 15.5.6
    page = db_stack.client.delete("/cart")
    assert page.status_code == 405 and page.mimetype == "text/html" and "GET" in page.headers["Allow"]
    assert db_stack.scalar("SELECT count(*) FROM orders") == 0
