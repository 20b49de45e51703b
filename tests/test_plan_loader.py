"""A broken data file is refused, named, and leaves the store exactly as it was."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from sqlmodel import SQLModel, col, select

from bot.db import Store, make_engine
from handlers.answer import answer
from scorecard import queries
from scorecard.models import Area, Metric, Reading
from scorecard.plan_loader import PLAN_DIR, PlanDataError, load_plan


@pytest.fixture
def plan_copy(tmp_path: Path) -> Path:
    return Path(shutil.copytree(PLAN_DIR, tmp_path / "plan"))


@pytest.fixture
def empty_store(tmp_path: Path) -> Store:
    store = Store(make_engine(f"sqlite:///{tmp_path / 'pcp.db'}"))
    SQLModel.metadata.create_all(store.engine)
    return store


@pytest.mark.parametrize(
    ("file", "old", "new", "message"),
    [
        (
            "metrics.yaml",
            "priority: p3\n    direction: reduce",
            "priority: p9\n    direction: reduce",
            "unknown priority",
        ),
        ("metrics.yaml", "headlines: [p3-h3]", "headlines: [p3-h99]", "headlines ['p3-h99'] do not exist"),
        (
            "metrics.yaml",
            "period: national-2019}, current: {value: 2366",
            "period: nope}, current: {value: 2366",
            "unknown period 'nope'",
        ),
        ("metrics.yaml", "unit: count", "unit: furlongs", "unknown unit"),
        ("funding.yaml", 'awarded_mark: "**"', 'awarded_mark: "***"', "unknown marker"),
        ("priorities.yaml", '"safer places", "thriving', '"victims", "thriving', "alias 'victims' is also p1's"),
    ],
)
def test_broken_data_is_refused_whole(plan_copy, empty_store, file, old, new, message):
    path = plan_copy / file
    text = path.read_text()
    assert old in text, "the test's edit must apply to the shipped data"
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(PlanDataError, match=re.escape(message)), empty_store.session() as session:
        load_plan(session=session, plan_dir=plan_copy)
    with empty_store.session() as session:
        assert session.exec(select(Area)).all() == []
        assert session.exec(select(Metric)).all() == []


def test_the_shipped_plan_loads_every_figure(store):
    with store.session() as session:
        assert len(session.exec(select(Metric)).all()) == 33
        readings = session.exec(select(Reading)).all()
        assert len(readings) == 2 * 38  # a baseline and a current figure for each of 38 series
        assert all(r.source for r in readings)
        assert {a.kind for a in session.exec(select(Area)).all()} == {"priority", "theme", "work"}


def test_answers_follow_the_data_when_it_changes(tmp_path):
    store = Store.open(f"sqlite:///{tmp_path / 'pcp.db'}")
    with store.session() as session:
        assert "2,366" in json.dumps(answer("knife-crime", session=session).payload())
    with store.session() as session:  # what an import does: change a figure and bump the version together
        metric = session.exec(select(Metric).where(Metric.key == "knife-crime")).one()
        latest = session.exec(
            select(Reading).where(Reading.metric_id == metric.id, col(Reading.is_baseline).is_(False))
        ).one()
        latest.value = 2400
        session.add(latest)
        queries.bump_data_version(session=session)
    with store.session() as session:
        raw = json.dumps(answer("knife-crime", session=session).payload())
        assert "2,400" in raw and "2,366" not in raw
    store.close()
