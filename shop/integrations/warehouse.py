"""Warehouse notification: simulated in-process, or a signed JSON POST to WAREHOUSE_URL.

``X-Shop-Signature: sha256=<hex>`` is an HMAC-SHA256 under WAREHOUSE_SECRET of
``<X-Shop-Timestamp>\\n<Idempotency-Key>\\n<body>``. Covering the timestamp lets
the receiver refuse a captured request replayed later (it rejects more than
five minutes of skew); covering the key stops a signed body being replayed
under a fresh key, which the receiver's dedupe would take as a new shipment.
How a receiver verifies it: README, "Verifying the warehouse signature".
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from typing import Any, Protocol

from shop.errors import PermanentError, TransientError
from shop.pipeline import budget


class Warehouse(Protocol):
    def notify(self, *, idempotency_key: str, shipment: dict[str, Any]) -> None: ...


class SimulatedWarehouse:
    """Accepts every shipment; the step's side-effect record is its only trace."""

    def notify(self, *, idempotency_key: str, shipment: dict[str, Any]) -> None:
        return None


def signed_bytes(timestamp: str, idempotency_key: str, body: bytes) -> bytes:
    # Newlines separate the parts: no header value can hold one, so two different
    # (timestamp, key, body) triples never sign the same bytes.
    return f"{timestamp}\n{idempotency_key}\n".encode() + body


def sign(secret: str, timestamp: str, idempotency_key: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), signed_bytes(timestamp, idempotency_key, body), hashlib.sha256)
    return "sha256=" + digest.hexdigest()


class HttpWarehouse:
    """POSTs the shipment as JSON with ``Idempotency-Key`` and a timestamped HMAC signature.

    The receiver dedupes on the key, so a redelivered step is harmless; each
    attempt is signed afresh, so a retry hours later is still within the skew.
    """

    def __init__(self, url: str, secret: str, timeout: float = 5.0) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout

    def notify(self, *, idempotency_key: str, shipment: dict[str, Any]) -> None:
        # ASCII with \u escapes: a name in any alphabet (even a lone surrogate) always encodes.
        body = json.dumps(shipment, sort_keys=True).encode()
        timestamp = str(int(time.time()))
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": idempotency_key,
                "X-Shop-Timestamp": timestamp,
                "X-Shop-Signature": sign(self.secret, timestamp, idempotency_key, body),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=budget.timeout(self.timeout)) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code in (408, 429):
                raise TransientError(f"warehouse answered {exc.code}") from exc
            raise PermanentError(f"warehouse refused the shipment: {exc.code}") from exc
        except (urllib.error.URLError, OSError) as exc:
            raise TransientError(f"warehouse unreachable: {exc}") from exc


def make_warehouse(url: str, secret: str) -> Warehouse:
    if url and not secret:
        # A signature under an empty key is one anybody can forge: the receiver could
        # no longer tell our shipments from anyone's. Refuse to start instead.
        raise RuntimeError(
            "WAREHOUSE_URL is set but WAREHOUSE_SECRET is empty: set the HMAC secret the receiver checks"
        )
    return HttpWarehouse(url, secret) if url else SimulatedWarehouse()
