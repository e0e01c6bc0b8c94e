"""Structured JSON logs, one object per line, with the order context on every line.

Every line carries ``order_id``, ``step``, ``task_id`` and ``attempt`` (null
where they do not apply), so ``grep <order id>`` over the logs of the web and
of every worker follows one order across all processes.
"""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from flask import Flask, Response, g, request
from pythonjsonlogger.json import JsonFormatter

# Set by the web request or the running task; copied onto every record. The
# shared default is safe: the dict is only ever replaced (bound()), never changed.
log_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar(
    "log_context",
    default={},  # noqa: B039
)
# Present on every line, so a log query never has to ask whether the key exists.
ORDER_FIELDS = ("order_id", "step", "task_id", "attempt")
STEP_TASK_PREFIX = "steps."

log = logging.getLogger(__name__)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        context = log_context.get()
        for key in ORDER_FIELDS:
            if not hasattr(record, key):
                setattr(record, key, context.get(key))
        for key, value in context.items():
            setattr(record, key, value)
        return True


@contextmanager
def bound(**values: Any) -> Iterator[None]:
    """Attach ``order_id``, ``step``, ``task_id``, ``attempt``… to the logs inside the block."""
    token = log_context.set({**log_context.get(), **values})
    try:
        yield
    finally:
        log_context.reset(token)


def task_context(task_name: str, task_id: str | None, retries: int, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The log context of one task run; step tasks are named ``steps.<step>``."""
    step = task_name[len(STEP_TASK_PREFIX) :] if task_name.startswith(STEP_TASK_PREFIX) else None
    return {
        "task_id": task_id,
        "task": task_name,
        "attempt": retries + 1,
        "step": step,
        "order_id": kwargs.get("order_id"),
    }


def json_handler(stream: IO[str] | None = None) -> logging.Handler:
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(ContextFilter())
    return handler


def configure_logging(level: int | str = "INFO") -> None:
    root = logging.getLogger()
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        root.handlers[:] = [json_handler()]
    # Set every time: the worker calls this again with its ``-l`` level after
    # create_app() set LOG_LEVEL's.
    root.setLevel(level)


def register_request_context(app: Flask) -> None:
    """Bind the order a web request is about to every line it logs."""

    @app.before_request
    def _bind_order() -> None:
        order_id = (request.view_args or {}).get("order_id")
        if order_id:
            g.log_context_token = log_context.set({**log_context.get(), "order_id": order_id})

    @app.after_request
    def _log_accepted_order(response: Response) -> Response:
        # The id of a new order exists only once it is placed: log it here, so
        # grep finds the checkout too, not just the requests that name the order.
        location = response.headers.get("Location", "")
        if request.method == "POST" and response.status_code == 201 and location.startswith("/orders/"):
            with bound(order_id=location.rsplit("/", 1)[-1]):
                log.info("order accepted")
        return response

    @app.teardown_request
    def _unbind_order(_: BaseException | None) -> None:
        token = g.pop("log_context_token", None)
        if token is not None:
            log_context.reset(token)
