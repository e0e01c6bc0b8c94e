"""The process's collaborators (database, broker publisher, integrations), kept on the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app

from shop.database import Database
from shop.dispatch import CeleryPublisher, Publisher
from shop.integrations.faults import Simulation
from shop.integrations.mailer import Mailer, make_mailer
from shop.integrations.payment import PaymentGateway, SimulatedGateway
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
    mail_from: str

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ShopServices:
        db = Database(config["DATABASE_URL"])
        return cls(
            db=db,
            publisher=CeleryPublisher.for_broker(config["CELERY_BROKER_URL"]),
            gateway=SimulatedGateway(db),
            mailer=make_mailer(config["SMTP_URL"], config["MAILDIR"]),
            warehouse=make_warehouse(config["WAREHOUSE_URL"], config["WAREHOUSE_SECRET"]),
            simulation=Simulation.from_config(
                config["SIMULATED_LATENCY_SCALE"], config["FAULTS"]
            ),
            invoice_dir=config["INVOICE_DIR"],
            mail_from=config["MAIL_FROM"],
        )


def init_services(app: Flask) -> ShopServices:
    services = ShopServices.from_config(app.config)
    app.extensions["shop"] = services
    return services


def services() -> ShopServices:
    """The current app's services (inside an app context: views, CLI, tasks)."""
    return current_app.extensions["shop"]  # type: ignore[no-any-return]
