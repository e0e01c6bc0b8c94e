"""Warehouse notification: simulated in-process, or a signed JSON POST to WAREHOUSE_URL."""

from __future__ import annotations

import hashlib
import hmac
import json
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


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class HttpWarehouse:
    """POSTs the shipment as JSON with ``Idempotency-Key`` and an HMAC signature.

    The receiver dedupes on the key, so a redelivered step is harmless.
    """

    def __init__(self, url: str, secret: str, timeout: float = 5.0) -> None:
        self.url = url
        self.secret = secret
        self.timeout = timeout

    def notify(self, *, idempotency_key: str, shipment: dict[str, Any]) -> None:
        body = json.dumps(shipment, sort_keys=True).encode()
        request = urllib.request.Request(
            self.url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Idempotency-Key": idempotency_key,
                "X-Shop-Signature": sign(self.secret, body),
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
    return HttpWarehouse(url, secret) if url else SimulatedWarehouse()
