"""Alembic environment: migrate the database named by the app's DATABASE_URL."""

from __future__ import annotations

from alembic import context

from shop.config import from_environment
from shop.database import make_engine
from shop.models import Base

config = context.config
url = config.attributes.get("database_url") or from_environment()["DATABASE_URL"]


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        # render_as_batch: SQLite can only change tables by copying them.
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
