"""Flask CLI commands: db upgrade, seed, dead-letters, queues."""

from __future__ import annotations

import getpass
import json
from pathlib import Path

import click
from alembic import command
from alembic.config import Config
from flask import Flask, current_app

from shop.errors import Refused
from shop.extensions import services
from shop.schemas import ProductUpdate
from shop.services import admin
from shop.services.catalog import DEMO_CATALOG
from shop.services.queue_stats import queue_stats

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config(str(MIGRATIONS / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["database_url"] = database_url
    return config


@click.group("db")
def db_group() -> None:
    """Database schema (Alembic)."""


@db_group.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Apply migrations up to REVISION (default: head)."""
    command.upgrade(alembic_config(current_app.config["DATABASE_URL"]), revision)
    click.echo(f"database at {revision}")


@click.command("seed")
@click.option("--reset", is_flag=True, help="Also reset existing demo products (price, stock).")
def seed(reset: bool) -> None:
    """Load the demo catalog: adds the missing products of about 12; --reset restores all."""
    added = admin.seed_products(services(), {sku: ProductUpdate(**d) for sku, d in DEMO_CATALOG.items()}, reset)
    click.echo(f"demo catalog: {added} products added or reset, {len(DEMO_CATALOG) - added} kept")


@click.group("dead-letters")
def dead_letters_group() -> None:
    """Inspect and replay dead-lettered steps."""


@dead_letters_group.command("list")
def dead_letters_list() -> None:
    """List dead-lettered steps as JSON lines."""
    for letter in admin.list_dead_letters(services()):
        click.echo(json.dumps(letter.as_json()))


@dead_letters_group.command("replay")
@click.argument("step_run_id", type=int)
def dead_letters_replay(step_run_id: int) -> None:
    """Dispatch dead-lettered step STEP_RUN_ID again."""
    try:
        replayed = admin.replay_dead_letter(services(), step_run_id, f"cli ({getpass.getuser()})")
    except Refused as exc:
        raise click.ClickException(exc.message) from exc
    click.echo(f"replayed {replayed.step} of order {replayed.order_id}")


@click.command("queues")
def queues() -> None:
    """Waiting, in flight, running, scheduled and dead per queue."""
    stats = queue_stats(services(), current_app.config["CELERY_BROKER_URL"])
    header = ("waiting", 9), ("in flight", 11), ("running", 9), ("scheduled", 11), ("dead", 6)
    click.echo(f"{'queue':<12}" + "".join(f"{name:>{width}}" for name, width in header))
    for name, row in stats["queues"].items():
        waiting, in_flight = ("?" if row[k] is None else row[k] for k in ("waiting", "in_flight"))
        click.echo(f"{name:<12}{waiting:>9}{in_flight:>11}{row['running']:>9}{row['scheduled']:>11}{row['dead']:>6}")
    if not stats["broker_reachable"]:
        click.echo("broker unreachable: waiting counts unknown", err=True)


def register_cli(app: Flask) -> None:
    for cmd in (db_group, seed, dead_letters_group, queues):
        app.cli.add_command(cmd)
