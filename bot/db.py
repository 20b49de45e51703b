"""The database engine and the unit-of-work session; the store is created and seeded here.

SQLite is the embedded default (a file under data/); any SQLAlchemy URL works, so
PostgreSQL is a `DATABASE_URL` away. Every start runs the schema migrations (bot/migrate.py)
and, on the first, loads the plan from data/plan in one transaction.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, event, text
from sqlmodel import Session, create_engine

from bot.migrate import Upgraded, upgrade
from scorecard import models  # noqa: F401  (registers the tables)
from scorecard.alert_rules import load_rules
from scorecard.leads import seed_leads
from scorecard.plan_loader import load_plan, plan_is_loaded

PREPARE_LOCK = 0x70637001  # "pcp" + 1: the advisory lock key every instance takes to start up


def normalise_url(url: str) -> str:
    """`postgresql://` and `postgres://` (as hosting platforms write them) mean psycopg 3 here."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    # room for every listener thread's short session (PCP_LISTENER_THREADS) without waiting on the pool
    # connect_timeout: an unreachable server fails a connection (and /healthz) in seconds, not minutes
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=30, connect_args={"connect_timeout": 5})


def _sqlite_pragmas(connection, _record) -> None:
    """WAL lets readers answer while an import writes; foreign keys are off by default in SQLite."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


class Store:
    """Owns the engine; hands out one session per unit of work."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> Store:
        store = cls(make_engine(url))
        store.prepare()
        return store

    def prepare(self) -> Upgraded:
        """Bring the schema to the latest migration and seed the plan on first start.

        Several instances may start at once on one PostgreSQL: `exclusive()` makes them take
        turns, so exactly one creates the schema and loads the plan; the others find it done.
        """
        with self.exclusive():
            upgraded = upgrade(self.engine)
            self._seed()
        return upgraded

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """A lock across processes for the whole of start-up: a PostgreSQL advisory lock, held on a
        connection of its own; for a SQLite file, an exclusive lock on `<file>.lock` beside it."""
        if self.engine.dialect.name != "postgresql":
            database = self.engine.url.database
            if not database or database == ":memory:":
                yield
                return
            with open(f"{database}.lock", "a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
                yield
            return
        with self.engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": PREPARE_LOCK})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": PREPARE_LOCK})
                connection.commit()

    def _seed(self) -> None:
        with self.session() as session:
            if not plan_is_loaded(session=session):
                load_plan(session=session)
        with self.session() as session:
            seed_leads(session=session)
        with self.session() as session:
            load_rules(session=session)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """Commit on success, roll back on any error: a unit of work is all or nothing."""
        with Session(self.engine, expire_on_commit=False) as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def close(self) -> None:
        self.engine.dispose()
