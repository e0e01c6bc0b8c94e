"""Engine and session factory: one per process, built from DATABASE_URL.

Session lifecycle stays outside the functions that touch data: callers open
short ``with db.begin() as session:`` blocks (SQLAlchemy 2.0 style).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Connection, CursorResult, Engine, Table, create_engine, event
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker


def make_engine(url: str) -> Engine:
    """The engine for ``url``. ``hide_parameters``: a failing statement's message (logged,
    kept as a step's last_error, shown to operators) never carries the values bound to it
    — emails, addresses, tokens — only the SQL text."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        # Workers and web write concurrently: WAL plus a generous busy timeout
        # turns SQLite's "database is locked" into a short wait.
        engine = create_engine(url, connect_args={"timeout": 30}, hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            dbapi_connection.isolation_level = None  # let SQLAlchemy emit BEGIN
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin_immediate(conn):  # type: ignore[no-untyped-def]
            # BEGIN IMMEDIATE takes the write lock up front, so two writers
            # never deadlock upgrading shared locks (SQLite's SQLITE_BUSY trap).
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    # No pool_pre_ping: it costs a round trip per transaction (several per step).
    # A connection broken by a database restart fails its statement instead,
    # the pool drops it, and the step retries like after any transient error.
    return create_engine(url, pool_size=10, max_overflow=20, pool_recycle=1800, hide_parameters=True)


class Database:
    """The process's engine and session factory."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def begin(self) -> Session:
        """A session inside a transaction: ``with db.begin() as session: ...``."""
        return self.sessions.begin()  # type: ignore[return-value]

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def dispose(self) -> None:
        self.engine.dispose()


# What the ledger's hot writes run on: a Session, or the Connection of the
# Session's current transaction (``session.connection()``). The order's run
# passes the Connection: through the Session every statement paid its
# bookkeeping (bind lookup, ORM execute events), 8 % of the pool's CPU
# (py-spy, 2 000 orders drained).
Executor = Session | Connection


def insert_ignoring_duplicates(session: Executor, model: type[DeclarativeBase], rows: list[dict[str, Any]]) -> None:
    """INSERT … ON CONFLICT DO NOTHING of all ``rows``, as one executemany (one
    statement with insertmanyvalues). The statement is built once per table and
    dialect: a multi-VALUES insert built per call cost a tenth of the pool's CPU
    (py-spy, 1 000 orders)."""
    dialect = session.dialect if isinstance(session, Connection) else session.get_bind().dialect
    session.execute(_insert_ignoring(dialect.name, model.__table__), rows)  # type: ignore[arg-type]


@cache
def _insert_ignoring(dialect: str, table: Table) -> Any:
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return insert(table).on_conflict_do_nothing()


def rowcount(result: Any) -> int:
    """Rows an INSERT, UPDATE or DELETE matched (typed once, for every caller)."""
    return int(cast(CursorResult[Any], result).rowcount)
