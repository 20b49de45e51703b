"""Schema changes through Alembic, on SQLite and PostgreSQL: migrations build exactly the schema the
models describe, adopt a store made before migrations without losing its data, step back and forward,
and let several instances start at once on an empty database.
"""

from __future__ import annotations

import os
import subprocess
import sys

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel, func, select

from bot.db import Store, make_engine
from bot.migrate import BASELINE, current, downgrade, head, upgrade
from scorecard.models import Area, Metric
from tests.conftest import REPO


def differences(store: Store) -> list:
    """What autogenerate would still change: nothing, when the migrations match the models."""
    with store.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": lambda name, kind, _: name != "scheduler_jobs"}
        )
        return compare_metadata(context, SQLModel.metadata)


def test_migrations_build_exactly_the_schema_the_models_describe(fresh_url):
    store = Store(make_engine(fresh_url))
    try:
        upgraded = upgrade(store.engine)
        assert (upgraded.before, upgraded.after, upgraded.stamped) == (None, head(), False)
        assert differences(store) == []
        assert upgrade(store.engine).before == head(), "a second upgrade has nothing to do"
    finally:
        store.close()


def test_a_store_from_before_migrations_is_adopted_at_the_baseline_and_keeps_its_data(fresh_url):
    old = Store(make_engine(fresh_url))
    upgrade(old.engine, to=BASELINE)  # the schema create_all made before migrations, then ...
    with old.engine.begin() as connection:
        connection.execute(text("DROP TABLE alembic_version"))  # ... with no migration history at all
        connection.execute(
            text(
                "INSERT INTO outbox (key, target, text, blocks, status, attempts, next_attempt_at, last_error, "
                "created_at) VALUES ('digest:C0PERF:2026-W40', 'C0PERF', 'an old digest', '[]', 'sent', 1, "
                "'2026-10-01 09:00:00', '', '2026-10-01 09:00:00')"
            )
        )
    old.close()

    store = Store.open(fresh_url)  # what the next start of pcp does
    try:
        assert current(store.engine) == head()
        assert differences(store) == []
        with store.engine.connect() as connection:
            row = connection.execute(text("SELECT text, chart FROM outbox")).one()
        assert tuple(row) == ("an old digest", None), "kept, with the new column empty"
        with store.session() as session:
            assert session.exec(select(func.count()).select_from(Metric)).one() == 33, "the plan loaded once"
    finally:
        store.close()


def test_the_latest_migration_steps_back_and_forward(fresh_store):
    downgrade(fresh_store.engine, to=BASELINE)
    names = set(inspect(fresh_store.engine).get_table_names())
    assert {"alertacknowledgement", "alertruleoverride"}.isdisjoint(names) and "metric" in names
    assert "chart" not in {c["name"] for c in inspect(fresh_store.engine).get_columns("outbox")}
    assert upgrade(fresh_store.engine).after == head()
    assert differences(fresh_store) == []


def pcp(*args: str, url: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PCP_"))} | {"DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, capture_output=True, text=True, cwd=REPO)


def test_pcp_db_current_and_upgrade(fresh_url):
    empty = pcp("db", "current", url=fresh_url)
    assert empty.returncode == 1 and "no pcp schema yet" in empty.stdout
    created = pcp("db", "upgrade", url=fresh_url)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == f"Created the database schema (revision {head()}) and loaded the plan."
    again = pcp("db", "upgrade", url=fresh_url)
    assert again.stdout.strip() == f"The database schema was already up to date (revision {head()})."
    assert pcp("db", "current", url=fresh_url).returncode == 0


STARTER = "import sys; from bot.db import Store; Store.open(sys.argv[1]).close()"


def test_instances_starting_at_once_on_an_empty_database_all_start_and_load_the_plan_once(fresh_url):
    starts = [
        subprocess.Popen([sys.executable, "-c", STARTER, fresh_url], cwd=REPO, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    results = [(p.wait(timeout=120), p.stderr.read() if p.stderr else "") for p in starts]
    assert [code for code, _ in results] == [0, 0, 0, 0], results
    store = Store(make_engine(fresh_url))
    try:
        assert current(store.engine) == head()
        with store.session() as session:
            assert session.exec(select(func.count()).select_from(Metric)).one() == 33
            assert session.exec(select(func.count()).select_from(Area)).one() == len(
                set(session.exec(select(Area.key)).all())
            )
    finally:
        store.close()
