"""How the pages show money, times, steps and failures: words for people, not codes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

CURRENCY_SYMBOLS = {"EUR": "€", "USD": "$", "GBP": "£"}

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
NEEDS_ATTENTION = (
    "Your payment went through. One of the last steps hit a problem; our team has been told and will finish it."
)


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


def failure_text(reason: str | None, status: str = "failed") -> str:
    if status == "needs_attention":
        return NEEDS_ATTENTION
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
}
