"""What the public side may say about a failed step: a small set of codes and plain messages.

A step's ``last_error`` is for operators: it can quote an SMTP reply, a host
name, a file path or a SQL statement. The public status (``GET /orders/<id>/status``)
and the tracking page show only the code and message chosen here, from the
ledger's state and the order's failure reason, never from that text. The raw
text stays on the admin order page, the dead-letter list and ``/admin/api``.
"""

from __future__ import annotations

from enum import StrEnum

from shop.states import FailureReason, Step, StepStatus


class PublicErrorCode(StrEnum):
    PAYMENT_DECLINED = "payment_declined"
    OUT_OF_STOCK = "out_of_stock"
    TEMPORARY_FAILURE = "temporary_failure"
    INTERNAL_ERROR = "internal_error"


PUBLIC_MESSAGES: dict[PublicErrorCode, str] = {
    PublicErrorCode.PAYMENT_DECLINED: "The card was declined. Nothing was charged.",
    PublicErrorCode.OUT_OF_STOCK: "Some items sold out before they could be reserved.",
    PublicErrorCode.TEMPORARY_FAILURE: "A temporary problem; this step is being tried again.",
    PublicErrorCode.INTERNAL_ERROR: "Something went wrong on our side; the step waits for our team.",
}

# The business failures a customer can act on: (step, order failure reason) -> code.
_BUSINESS_FAILURES: dict[tuple[str, str], PublicErrorCode] = {
    (Step.PAYMENT, FailureReason.PAYMENT_DECLINED): PublicErrorCode.PAYMENT_DECLINED,
    (Step.INVENTORY, FailureReason.OUT_OF_STOCK): PublicErrorCode.OUT_OF_STOCK,
}
# An attempt failed but the step is not over: it will be (or is being) tried again.
_STILL_TRYING = frozenset({StepStatus.PENDING, StepStatus.RUNNING, StepStatus.RETRYING})


def public_step_error(
    step: str, status: str, last_error: str | None, failure_reason: str | None
) -> PublicErrorCode | None:
    """The public code for a step that recorded an error (None when it has none)."""
    if last_error is None:
        return None
    # StrEnum members hash as their values: plain strings from the ledger match.
    business = _BUSINESS_FAILURES.get((step, failure_reason or ""))
    if status == StepStatus.FAILED and business is not None:
        return business
    if status in _STILL_TRYING:
        return PublicErrorCode.TEMPORARY_FAILURE
    return PublicErrorCode.INTERNAL_ERROR
