"""The warehouse signature, checked by the verifier README.md gives receivers."""

from __future__ import annotations

import time

import pytest

from shop.integrations.warehouse import make_warehouse, sign
from tests.support.receivers import readme_signature_verifier

SECRET = "s3cret"
KEY = "order:abc:warehouse"
BODY = b'{"order_id": "abc"}'
verify = readme_signature_verifier()


def signed_headers(timestamp: int | None = None, key: str = KEY, body: bytes = BODY) -> dict[str, str]:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    return {"X-Shop-Timestamp": stamp, "Idempotency-Key": key, "X-Shop-Signature": sign(SECRET, stamp, key, body)}


def test_a_signed_shipment_verifies() -> None:
    assert verify(SECRET.encode(), signed_headers(), BODY)


def test_a_changed_body_fails() -> None:
    assert not verify(SECRET.encode(), signed_headers(), BODY.replace(b"abc", b"abd"))


def test_the_body_cannot_be_moved_under_another_idempotency_key() -> None:
    headers = signed_headers()
    headers["Idempotency-Key"] = "order:other:warehouse"
    assert not verify(SECRET.encode(), headers, BODY)


def test_the_timestamp_is_signed() -> None:
    headers = signed_headers()
    headers["X-Shop-Timestamp"] = str(int(headers["X-Shop-Timestamp"]) + 1)
    assert not verify(SECRET.encode(), headers, BODY)


def test_another_secret_fails() -> None:
    assert not verify(b"not-the-secret", signed_headers(), BODY)


@pytest.mark.parametrize("skew", [-301, 301, -3600])
def test_more_than_five_minutes_of_clock_skew_is_rejected(skew: int) -> None:
    assert not verify(SECRET.encode(), signed_headers(int(time.time()) + skew), BODY)


@pytest.mark.parametrize("skew", [-290, 290])
def test_skew_within_five_minutes_is_accepted(skew: int) -> None:
    assert verify(SECRET.encode(), signed_headers(int(time.time()) + skew), BODY)


@pytest.mark.parametrize("stamp", ["", "soon", "-5", "١٧٠٠٠٠٠٠٠٠"])
def test_a_missing_or_malformed_timestamp_is_rejected(stamp: str) -> None:
    headers = {"X-Shop-Timestamp": stamp, "Idempotency-Key": KEY, "X-Shop-Signature": sign(SECRET, stamp, KEY, BODY)}
    assert not verify(SECRET.encode(), headers, BODY)


def test_a_warehouse_url_without_a_secret_is_refused() -> None:
    with pytest.raises(RuntimeError, match="WAREHOUSE_SECRET"):
        make_warehouse("http://127.0.0.1:9/shipments", "")


def test_no_warehouse_url_needs_no_secret() -> None:
    make_warehouse("", "")
