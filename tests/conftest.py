"""Fixtures that build real infrastructure: Redis, PostgreSQL or SQLite, workers, peers."""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from alembic import command

from shop.cli import alembic_config
from tests.support.processes import RedisServer
from tests.support.receivers import SmtpSink, WarehouseReceiver
from tests.support.stack import SECRET_KEY, Stack

# Importing ``tasks`` (some tests do, for its constants) creates the app, which
# refuses to start without SECRET_KEY: the test process gets the fixed test key.
os.environ.setdefault("SECRET_KEY", SECRET_KEY)

# The server that hosts the per-test databases (CI creates it; trust auth locally).
POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


class Databases:
    """Fresh databases cloned from a migrated template (fast: no migration per test)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.tag = secrets.token_hex(4)
        self.admin = sa.create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        self.created: list[str] = []
        self._sqlite_template = root / "template.db"
        self._pg_template = f"shop_tmpl_{self.tag}"

    def _pg_url(self, name: str) -> str:
        return self.admin.url.set(database=name).render_as_string(hide_password=False)

    def prepare(self) -> None:
        command.upgrade(alembic_config(f"sqlite:///{self._sqlite_template}"), "head")
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{self._pg_template}"'))
        self.created.append(self._pg_template)
        command.upgrade(alembic_config(self._pg_url(self._pg_template)), "head")

    def new(self, backend: str) -> str:
        name = f"shop_{self.tag}_{len(self.created)}"
        if backend == "sqlite":
            path = self.root / f"{name}.db"
            shutil.copy(self._sqlite_template, path)
            return f"sqlite:///{path}"
        with self.admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{self._pg_template}"'))
        self.created.append(name)
        return self._pg_url(name)

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in reversed(self.created):
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Databases]:
    dbs = Databases(tmp_path_factory.mktemp("db"))
    dbs.prepare()
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpSink]:
    with SmtpSink() as sink:
        yield sink


@pytest.fixture(scope="session")
def warehouse() -> Iterator[WarehouseReceiver]:
    with WarehouseReceiver() as receiver:
        yield receiver


def _flush(url: str) -> None:
    redis.Redis.from_url(url).flushall()


@pytest.fixture(params=BACKENDS, scope="module")
def stack(
    request: pytest.FixtureRequest,
    databases: Databases,
    redis_server: RedisServer,
    smtp: SmtpSink,
    warehouse: WarehouseReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """A full shop on each backend, with one running worker, shared by a test module."""
    _flush(redis_server.url)
    workdir = tmp_path_factory.mktemp(f"stack-{request.param}")
    with Stack(
        databases.new(request.param), redis_server.url, workdir, SMTP_URL=smtp.url, WAREHOUSE_URL=warehouse.url
    ) as s:
        s.backend = request.param  # type: ignore[attr-defined]
        s.start_worker()
        yield s


@pytest.fixture
def make_stack(databases: Databases, tmp_path: Path) -> Iterator[object]:
    """Build a stack with its own settings and (optionally) its own Redis: for fault tests."""
    stacks: list[Stack] = []

    def build(redis_url: str, backend: str = "postgresql", **overrides: str) -> Stack:
        s = Stack(databases.new(backend), redis_url, tmp_path / f"stack{len(stacks)}", **overrides)
        stacks.append(s)
        return s.__enter__()

    yield build
    for s in reversed(stacks):
        s.__exit__(None, None, None)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server only this test uses: it may stop, kill or restart it."""
    server = RedisServer(tmp_path / "own-redis").start()
    yield server
    server.kill()


@pytest.fixture
def db_stack(
    databases: Databases, redis_server: RedisServer, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Stack]:
    """A stack without workers on PostgreSQL (or the backend named by the test's param)."""
    backend = getattr(request, "param", "postgresql")
    with Stack(databases.new(backend), redis_server.url, tmp_path) as s:
        yield s
