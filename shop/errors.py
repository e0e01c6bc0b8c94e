"""Domain errors. Steps sort failures into transient (retry) and permanent (never retry)."""

from __future__ import annotations

from typing import Any


class ShopError(Exception):
    """Base of every error the domain raises on purpose."""


class TransientError(ShopError):
    """Worth retrying: a timeout, a 5xx, a dropped connection.

    ``retry_after`` is the earliest moment a retry can help (an open circuit
    says when it will let a probe through); the retry waits at least that long.
    """

    def __init__(self, message: str = "", retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(ShopError):
    """Retrying cannot help: a declined card, a 4xx answer, no stock."""

    reason = "step_failed"


class OutOfStock(PermanentError):
    reason = "out_of_stock"

    def __init__(self, sku: str) -> None:
        super().__init__(f"not enough stock for {sku}")
        self.sku = sku


class PaymentDeclined(PermanentError):
    reason = "payment_declined"


class Refused(ShopError):
    """A request the domain refuses on purpose; ``shop.api.errors`` maps each kind to HTTP."""

    def __init__(self, code: str, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or []


class InvalidOrder(Refused):
    """The order cannot be placed as asked (unknown SKU, too many units, mixed currencies)."""


class IdempotencyKeyReused(Refused):
    def __init__(self) -> None:
        super().__init__("idempotency_key_reused", "this Idempotency-Key was used with a different body")


class NotFound(Refused):
    def __init__(self, what: str) -> None:
        super().__init__("not_found", f"{what} not found")


class Conflict(Refused):
    """The thing exists, but its state does not allow the action (already shipped, not dead-lettered)."""


class RequestRejected(Refused):
    """A request the HTTP layer refuses before any service runs; carries its status."""

    def __init__(self, status: int, code: str, message: str, details: list[Any] | None = None) -> None:
        super().__init__(code, message, details)
        self.status = status
