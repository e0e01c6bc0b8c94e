"""Worker-side observability: log context around Celery's own lines, heartbeats.

Signal handlers rather than code in the tasks: Celery logs a task's outcome
("succeeded in 0.01s", "retry: …") after the task body returned, so only
prerun/postrun span those lines. Step counters are written by the run itself,
once per run (``shop.pipeline.run``): its steps run inside one task.
"""

from __future__ import annotations

import ast
import contextvars
import logging
from typing import Any

from celery import Task
from celery.signals import heartbeat_sent, task_postrun, task_prerun

from shop.logs import log_context, task_context
from shop.metrics import record_worker_heartbeat
from tasks.app import flask_app


class ReceivedTaskContext(logging.Filter):
    """Celery's "Task … received" line comes before any task code runs, in the main
    process; its ``data`` extra names the task, so the line gets the context too.
    The attempt is not in it (the retry count travels in the message headers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        data = getattr(record, "data", None)
        if isinstance(data, dict) and "name" in data:
            try:
                kwargs = ast.literal_eval(data.get("kwargs") or "{}")
            except (ValueError, SyntaxError):
                kwargs = {}
            context = task_context(data["name"], data.get("id"), 0, kwargs if isinstance(kwargs, dict) else {})
            for key, value in {**context, "attempt": None}.items():
                setattr(record, key, value)
        return True


logging.getLogger("celery.worker.strategy").addFilter(ReceivedTaskContext())

# task id -> log context token, for the task running in this process.
_running: dict[str, contextvars.Token[dict[str, Any]]] = {}


@task_prerun.connect
def _bind_task(task_id: str, task: Task, kwargs: dict[str, Any] | None = None, **_: Any) -> None:
    context = task_context(task.name, task_id, task.request.retries, kwargs or {})
    _running[task_id] = log_context.set({**log_context.get(), **context})


@task_postrun.connect
def _unbind_task(task_id: str, **_: Any) -> None:
    token = _running.pop(task_id, None)
    if token is not None:
        log_context.reset(token)


@heartbeat_sent.connect
def _heartbeat(sender: Any, **_: Any) -> None:
    # Every ~2 s in the worker's main process, while it is connected and alive.
    record_worker_heartbeat(flask_app.extensions["shop"].redis, sender.eventer.hostname)
