"""How the pages show money, times, steps and failures: words for people, not codes.

The tracking page is for shoppers: it never shows an internal state
(``needs_attention``, ``compensated``, ``skipped``) nor an operator's label.
The tables below are the one mapping from the ledger to shopper words; the
page renders with them and hands the same tables to its live-update script,
so a redrawn step reads exactly like a rendered one. The JSON status contract
keeps the internal names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}

# Operators' names of the steps (admin pages).
STEP_LABELS = {
    "inventory": "Reserve stock",
    "payment": "Charge the card",
    "email": "Confirmation email",
    "invoice": "Invoice",
    "warehouse": "Hand over to the warehouse",
}

# What a customer reads when an order stops; keyed by Order.failure_reason.
FAILURE_REASONS = {
    "payment_declined": ("Your card was declined. Nothing was charged, and the items are back in stock."),
    "out_of_stock": "Some items sold out before we could reserve them. Nothing was charged.",
    "unpaid_timeout": "The payment did not go through in time, so the order was released.",
    "step_failed": "Something went wrong on our side while processing the order.",
}
# "Our team has been told" only when an alert about it was delivered (shop.services.alerts.team_told).
NEEDS_ATTENTION = (
    "Your payment went through. One of the last steps hit a problem; the order waits on our team's list to finish it."
)
NEEDS_ATTENTION_TOLD = (
    "Your payment went through. One of the last steps hit a problem; our team has been told and will finish it."
)


# --- the shopper's words (tracking page) ------------------------------------

SHOPPER_STEP_LABELS = {
    "inventory": "Your items",
    "payment": "Payment",
    "email": "Confirmation email",
    "invoice": "Invoice",
    "warehouse": "Packing",
}

# What a step's state means to a shopper: {step status: {step: words, "*": default}}.
STEP_STATE_WORDS: dict[str, dict[str, str]] = {
    "pending": {"*": "Waiting"},
    "running": {"*": "In progress"},
    "retrying": {"*": "Taking a little longer, trying again"},
    "succeeded": {
        "inventory": "Reserved",
        "payment": "Paid",
        "email": "Sent",
        "invoice": "Ready",
        "warehouse": "With our packers",
        "*": "Done",
    },
    "failed": {
        "inventory": "Sold out",
        "payment": "Did not go through",
        "*": "Held up; waiting for our team",
    },
    # A step that had no reason to run: the order stopped before it.
    "skipped": {"*": "Not needed"},
    # Undone after it succeeded: the stock went back, the charge is refunded.
    "compensated": {"inventory": "Put back on the shelf", "payment": "Refunded", "*": "Undone"},
}
# Skipped because the order was cancelled, which the shopper should read as such.
CANCELLED_STEP = "Cancelled"

ORDER_STATUS_WORDS = {
    "received": "Received",
    "processing": "In progress",
    "completed": "Complete",
    "needs_attention": "Delayed",
    "failed": "Not completed",
    "cancelled": "Cancelled",
}
# The page's heading: never "Thank you" over an order that did not go through.
HEADINGS = {
    "received": "Thank you for your order",
    "processing": "Thank you for your order",
    "completed": "Thank you for your order",
    "needs_attention": "Your order is taking a little longer",
    "failed": "We could not complete your order",
    "cancelled": "Your order was cancelled",
}
FAILED_HEADINGS = {
    "payment_declined": "Your card was declined",
    "out_of_stock": "Some items sold out",
}
# What the shopper can do about a declined card: the page's button does it.
PAY_AGAIN_HINT = (
    "You can pay with another card: we put the same items back in your cart and take you to checkout. "
    "Each payment is a separate attempt, so nothing is charged twice."
)


def order_status_words(status: str) -> str:
    return ORDER_STATUS_WORDS.get(status, "In progress")


def heading(status: str, reason: str | None = None) -> str:
    if status == "failed" and reason in FAILED_HEADINGS:
        return FAILED_HEADINGS[reason]
    return HEADINGS.get(status, HEADINGS["processing"])


def shopper_step(step: str) -> str:
    return SHOPPER_STEP_LABELS.get(step, "Another step")


def step_state_words(step: str, status: str, order_status: str = "") -> str:
    if status == "skipped" and order_status == "cancelled":
        return CANCELLED_STEP
    words = STEP_STATE_WORDS.get(status, STEP_STATE_WORDS["running"])
    return words.get(step, words["*"])


def short_date(moment: datetime) -> str:
    """``1 Dec``: the day a shopper reads on a statement."""
    return f"{moment.day} {moment:%b}"


def tracking_wording() -> dict[str, Any]:
    """Every table the tracking page's script needs to redraw in the same words."""
    return {
        "failures": FAILURE_REASONS,
        "needs_attention": NEEDS_ATTENTION,
        "statuses": ORDER_STATUS_WORDS,
        "headings": HEADINGS,
        "failed_headings": FAILED_HEADINGS,
        "step_states": STEP_STATE_WORDS,
        "cancelled_step": CANCELLED_STEP,
    }


def money(cents: int, currency: str = "EUR") -> str:
    symbol = CURRENCY_SYMBOLS.get(currency)
    amount = f"{cents / 100:,.2f}"
    return f"{symbol}{amount}" if symbol else f"{amount} {currency}"


def clock(moment: datetime | None) -> str:
    return moment.strftime("%H:%M:%S") if moment else "—"


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def duration(started: datetime | None, finished: datetime | None) -> str:
    if not started or not finished:
        return ""
    return f"{(finished - started).total_seconds():.2f} s"


def step_label(step: str) -> str:
    return STEP_LABELS.get(step, step)


def failure_text(reason: str | None, status: str = "failed", team_told: bool = False) -> str:
    if status == "needs_attention":
        return NEEDS_ATTENTION_TOLD if team_told else NEEDS_ATTENTION
    if not reason:
        return ""
    return FAILURE_REASONS.get(reason, FAILURE_REASONS["step_failed"])


def availability(stock: int) -> str:
    if stock <= 0:
        return "Sold out"
    return f"Only {stock} left" if stock <= 5 else "In stock"


FILTERS: dict[str, Any] = {
    "money": money,
    "clock": clock,
    "when": when,
    "step_label": step_label,
    "availability": availability,
    "failure_text": failure_text,
    "order_status_words": order_status_words,
    "shopper_step": shopper_step,
    "heading": heading,
    "step_state_words": step_state_words,
}
