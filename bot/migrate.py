"""Schema changes through Alembic: `pcp db upgrade`, and every start of pcp, bring the store to head.

Why here and not `create_all`: create_all never alters a table, so a new column would silently be
missing from an existing store. The migrations in bot/migrations/versions run on SQLite and
PostgreSQL alike (batch mode). A store created before migrations existed has exactly the baseline
schema (0001) and is stamped with it, keeping its data, before the later revisions run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, inspect

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
BASELINE = "0001"  # the schema create_all made before migrations
BASELINE_TABLE = "metric"  # present in every store pcp ever created


@dataclass(frozen=True)
class Upgraded:
    before: str | None  # None: an empty database
    after: str
    stamped: bool  # a store from before migrations, adopted at the baseline


def _config(connection: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def head() -> str:
    revision = ScriptDirectory(str(MIGRATIONS)).get_current_head()
    if revision is None:
        raise RuntimeError(f"no migrations in {MIGRATIONS}")
    return revision


def current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, *, to: str = "head") -> Upgraded:
    """Run the missing migrations in one transaction (on PostgreSQL, DDL is transactional too).

    Callers running several instances serialise this with `Store.exclusive()`.
    """
    with engine.begin() as connection:
        before = MigrationContext.configure(connection).get_current_revision()
        config = _config(connection)
        stamped = before is None and inspect(connection).has_table(BASELINE_TABLE)
        if stamped:
            command.stamp(config, BASELINE)
        command.upgrade(config, to)
        after = MigrationContext.configure(connection).get_current_revision()
    return Upgraded(before=before, after=after or "", stamped=stamped)


def downgrade(engine: Engine, *, to: str) -> None:
    """For tests and emergencies: step the schema back (data in dropped tables is lost)."""
    with engine.begin() as connection:
        command.downgrade(_config(connection), to)


def new_revision(engine: Engine, message: str) -> str:
    """Write the next numbered migration from what the models add to an up-to-date store (read it!)."""
    with engine.begin() as connection:
        config = _config(connection)
        number = f"{int(head()) + 1:04d}"
        command.revision(config, message=message, autogenerate=True, rev_id=number)
    return number


if __name__ == "__main__":  # python -m bot.migrate "what changed"  (uses DATABASE_URL, upgraded first)
    import sys

    from bot.config import Settings
    from bot.db import make_engine

    engine = make_engine(Settings().database_url)
    upgrade(engine)
    print(
        f"wrote revision {new_revision(engine, ' '.join(sys.argv[1:]) or 'schema change')} in {MIGRATIONS / 'versions'}"
    )
