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


class RequestRejected(ShopError):
    """A request the API refuses; carries the HTTP status and JSON error code."""

    def __init__(self, status: int, code: str, message: str, details: list[Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []


class NotFound(RequestRejected):
    def __init__(self, what: str) -> None:
        super().__init__(404, "not_found", f"{what} not found")


class Conflict(RequestRejected):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(409, code, message)
