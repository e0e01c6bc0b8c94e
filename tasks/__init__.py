"""The Celery application: ``celery -A tasks worker|beat|flower``."""

from tasks.app import app, flask_app

__all__ = ["app", "flask_app"]
