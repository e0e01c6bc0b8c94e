"""Periodic work run by beat: the outbox relay and the sweeper."""

from __future__ import annotations

import os

from shop.dispatch import RELAY_TASK, SWEEP_TASK
from shop.extensions import services
from shop.services.outbox import relay_outbox
from shop.services.sweeper import sweep
from tasks.app import app

STALE_DISPATCH_SECONDS = float(os.environ.get("STALE_DISPATCH_SECONDS", "60"))


@app.task(name=RELAY_TASK, ignore_result=True, soft_time_limit=20, time_limit=30)
def relay() -> int:
    """Publish outbox rows that their request could not publish."""
    return relay_outbox(services().db, services().publisher)


@app.task(name=SWEEP_TASK, ignore_result=True, soft_time_limit=20, time_limit=30)
def sweep_stuck_steps() -> int:
    """Redispatch steps whose lease expired or whose message was lost."""
    return sweep(services(), app.conf.broker_url, stale_dispatch_seconds=STALE_DISPATCH_SECONDS)
