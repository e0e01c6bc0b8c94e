"""The Celery application: ``celery -A tasks worker|beat|flower``."""

from tasks import watchdog  # noqa: E402,F401  (registers the worker bootstep and canary task)
from tasks.app import app, flask_app

__all__ = ["app", "flask_app"]
