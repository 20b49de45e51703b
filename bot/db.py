"""The database engine and the unit-of-work session; the store is created and seeded here.

SQLite is the embedded default (a file under data/); any SQLAlchemy URL works, so
PostgreSQL is a `DATABASE_URL` away. The first start creates the tables and loads the
plan from data/plan in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, event
from sqlmodel import Session, SQLModel, create_engine

from scorecard import models  # noqa: F401  (registers the tables)
from scorecard.alert_rules import load_rules
from scorecard.leads import seed_leads
from scorecard.plan_loader import load_plan, plan_is_loaded


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
    return create_engine(url, pool_pre_ping=True)


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

    def prepare(self) -> None:
        """Create missing tables and seed the plan on first start."""
        SQLModel.metadata.create_all(self.engine)
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
