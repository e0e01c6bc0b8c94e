"""The process's collaborators (database, broker publisher, integrations), kept on the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from flask import Flask, current_app
from redis.backoff import NoBackoff
from redis.retry import Retry

from shop.database import Database
from shop.dispatch import CeleryPublisher, Publisher
from shop.integrations.circuit_breaker import BreakerGuardedGateway, CircuitBreaker
from shop.integrations.faults import Simulation
from shop.integrations.invoices import InvoiceFonts, InvoiceSettings
from shop.integrations.mailer import Mailer, make_mailer
from shop.integrations.payment import PaymentGateway, SimulatedGateway
from shop.integrations.rate_limit import RateLimitedWarehouse, TokenBucket
from shop.integrations.warehouse import Warehouse, make_warehouse


@dataclass
class ShopServices:
    db: Database
    publisher: Publisher
    gateway: PaymentGateway
    mailer: Mailer
    warehouse: Warehouse
    simulation: Simulation
    invoice_dir: str
    invoice_fonts: InvoiceFonts
    invoice_settings: InvoiceSettings
    mail_from: str
    # The site's address as shoppers reach it: links in emails are absolute.
    public_base_url: str
    # State every process shares: rate limit, circuit breaker, worker counters, heartbeats.
    redis: redis.Redis

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ShopServices:
        db = Database(config["DATABASE_URL"])
        shared = shared_redis(config["REDIS_URL"])
        return cls(
            db=db,
            publisher=CeleryPublisher.for_broker(config["CELERY_BROKER_URL"]),
            gateway=guarded_gateway(SimulatedGateway(db), shared, config),
            mailer=make_mailer(config["SMTP_URL"], config["MAILDIR"], config["SMTP_CA_FILE"]),
            warehouse=rate_limited_warehouse(
                make_warehouse(config["WAREHOUSE_URL"], config["WAREHOUSE_SECRET"]), shared, config
            ),
            simulation=Simulation.from_config(config["SIMULATED_LATENCY_SCALE"], config["FAULTS"]),
            invoice_dir=config["INVOICE_DIR"],
            invoice_fonts=InvoiceFonts.from_config(config),
            invoice_settings=InvoiceSettings.from_config(config),
            mail_from=config["MAIL_FROM"],
            public_base_url=config["PUBLIC_BASE_URL"],
            redis=shared,
        )


def shared_redis(url: str) -> redis.Redis:
    # Short timeouts and no retries (redis-py would otherwise back off for
    # seconds): the limiter and the breaker fail open, and must do so quickly
    # rather than hold a step while Redis is away.
    return redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5, retry=Retry(NoBackoff(), 0))


def guarded_gateway(gateway: PaymentGateway, shared: redis.Redis, config: dict[str, Any]) -> PaymentGateway:
    threshold, reset = config["PAYMENT_BREAKER_THRESHOLD"], config["PAYMENT_BREAKER_RESET_SECONDS"]
    return BreakerGuardedGateway(gateway, CircuitBreaker(shared, "payment", threshold, reset))


def rate_limited_warehouse(warehouse: Warehouse, shared: redis.Redis, config: dict[str, Any]) -> Warehouse:
    """The warehouse behind the shared bucket; WAREHOUSE_RATE_PER_SECOND=0 turns the limit off.

    Only the HTTP warehouse is limited: the simulated one has no API to protect,
    and pacing it would only distort benchmarks."""
    rate = config["WAREHOUSE_RATE_PER_SECOND"]
    if rate <= 0 or not config["WAREHOUSE_URL"]:
        return warehouse
    burst = config["WAREHOUSE_RATE_BURST"] or rate
    max_wait = config["WAREHOUSE_RATE_MAX_WAIT_SECONDS"]
    return RateLimitedWarehouse(warehouse, TokenBucket(shared, "warehouse", rate, burst, max_wait))


def init_services(app: Flask) -> ShopServices:
    services = ShopServices.from_config(app.config)
    app.extensions["shop"] = services
    return services


def services() -> ShopServices:
    """The current app's services (inside an app context: views, CLI, tasks)."""
    return current_app.extensions["shop"]  # type: ignore[no-any-return]
