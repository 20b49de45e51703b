"""Alembic's environment for pcp: the models' metadata, run on the connection `bot.migrate` hands in.

Batch mode lets the same migration alter tables on SQLite (which rebuilds them) and PostgreSQL.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from scorecard import models  # noqa: F401  (registers the tables)

OTHERS_TABLES = {"scheduler_jobs"}  # APScheduler's job store creates and owns its table
TYPES_PREFIX = "sqlmodel.sql.sqltypes."  # SQLModel's AutoString / UTCDateTime, as generated migrations name them


def ours(name: str | None, type_: str, _parent_names: object) -> bool:
    """Leave other owners' tables out of comparisons (autogenerate would otherwise drop them)."""
    return not (type_ == "table" and name in OTHERS_TABLES)


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("run migrations with `pcp db upgrade` (bot.migrate), which provides the connection")
    context.configure(
        connection=connection,
        target_metadata=SQLModel.metadata,
        render_as_batch=True,
        user_module_prefix=TYPES_PREFIX,
        compare_type=True,
        include_name=ours,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
