"""Structured JSON logs, one object per line, with the order context on every line."""

from __future__ import annotations

import contextvars
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pythonjsonlogger.json import JsonFormatter

# Set by the web request or the running task; copied onto every record.
log_context: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar("log_context", default={})


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in log_context.get().items():
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


def json_handler() -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        )
    )
    handler.addFilter(ContextFilter())
    return handler


def configure_logging(level: str = "INFO") -> None:
    root = logging.getLogger()
    if any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        return
    root.handlers[:] = [json_handler()]
    root.setLevel(level)
