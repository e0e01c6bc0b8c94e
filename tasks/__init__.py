"""The Celery application: ``celery -A tasks worker|beat|flower``."""

from tasks import maintenance, watchdog  # noqa: E402,F401  (register the worker bootsteps, the canary task)
from tasks.app import app, flask_app

__all__ = ["app", "flask_app"]
