"""The Celery app, wired to the Flask app as in Flask's ``examples/celery``.

Every task runs inside the Flask app context, so services see the same
configuration, database and integrations as the web.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task
from celery.signals import setup_logging, worker_init, worker_process_init
from flask import Flask

from shop import create_app
from shop.dispatch import CeleryPublisher
from shop.extensions import ShopServices
from shop.logs import configure_logging
from shop.pipeline.run import warm_up
from tasks.config import celery_config


def celery_init_app(flask_app: Flask) -> Celery:
    class FlaskTask(Task):  # type: ignore[misc]
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            # The log context (order_id, step, task_id, attempt) is bound by the
            # task_prerun signal in tasks.monitoring, which also spans Celery's own lines.
            with flask_app.app_context():
                return self.run(*args, **kwargs)

    celery = Celery(
        flask_app.name,
        task_cls=FlaskTask,
        include=[
            "tasks.pipeline",
            "tasks.notifications",
            "tasks.compensation",
            "tasks.maintenance",
            "tasks.scheduling",
            "tasks.monitoring",
        ],
    )
    celery.config_from_object(celery_config(flask_app.config))
    celery.set_default()
    flask_app.extensions["celery"] = celery
    services: ShopServices = flask_app.extensions["shop"]
    # Inside workers, publish through the worker's own app (its producer pool),
    # retrying briefly: the sweep covers what still fails.
    services.publisher = CeleryPublisher(celery, retry=True)
    return celery


flask_app = create_app()
app = celery_init_app(flask_app)


@setup_logging.connect
def _json_logs(loglevel: int | str | None = None, **_: Any) -> None:
    # The worker logs at its ``-l`` level, as Celery's docs say (Celery's
    # default is WARNING); LOG_LEVEL is the level of the web and the CLI.
    configure_logging(loglevel or flask_app.config["LOG_LEVEL"])


@worker_init.connect
def _warm_up_before_fork(**_: Any) -> None:
    try:
        warm_up(flask_app.extensions["shop"])
    except Exception:  # a database still starting: the children warm up on their own
        logging.getLogger(__name__).warning("warm-up before fork failed", exc_info=True)


@worker_process_init.connect
def _fresh_connections(**_: Any) -> None:
    # Pool connections inherited across fork would be shared by two processes.
    flask_app.extensions["shop"].db.engine.dispose(close=False)
