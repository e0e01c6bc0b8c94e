"""Chaos settings: short leases and sweeps so recovery fits in a test's time."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.processes import RedisServer
from tests.support.receivers import SmtpSink, WarehouseReceiver
from tests.support.stack import Stack

CHAOS_ENV = {
    "SIMULATED_LATENCY_SCALE": "0.02",
    "STEP_TIME_LIMIT_SCALE": "0.3",  # leases of 4.5-6 s instead of 15-20 s
    "WAREHOUSE_RATE_PER_SECOND": "0",  # the shared limiter has its own tests
    "SWEEP_INTERVAL": "1",
    "RELAY_INTERVAL": "0.5",
    "STALE_DISPATCH_SECONDS": "5",
    "CONSUMPTION_CHECK_INTERVAL": "2",
}


@pytest.fixture
def chaos_stack(make_stack: Any, own_redis: RedisServer, smtp: SmtpSink, warehouse: WarehouseReceiver) -> Stack:
    stack: Stack = make_stack(own_redis.url, "postgresql", SMTP_URL=smtp.url, WAREHOUSE_URL=warehouse.url, **CHAOS_ENV)
    return stack
