"""Importing readings: all or nothing, every problem named, revisions kept, repeats harmless.

All figures in these files are SYNTHETIC test data, never real performance figures.
"""

from __future__ import annotations

import io
import json
import os
from datetime import date, datetime
from pathlib import Path

import pytest
from openpyxl import Workbook
from sqlmodel import col, func, select

from bot.db import Store
from handlers.answer import answer
from scorecard import queries
from scorecard.imports import MAX_BYTES, ImportRefused, apply_import, prepare_import
from scorecard.models import AuditLog, ImportBatch, Metric, Reading

HEADER = "metric,series,period,value,source,provisional\n"


def csv_bytes(*rows: str, header: str = HEADER) -> bytes:
    return (header + "\n".join(rows) + "\n").encode()


def snapshot(store: Store) -> tuple:
    """Everything an import could change, to prove a refused one changed nothing."""
    with store.session() as session:
        readings = session.exec(select(Reading).order_by(col(Reading.id))).all()
        return (
            [(r.id, r.value, r.replaced_at) for r in readings],
            session.exec(select(func.count()).select_from(ImportBatch)).one(),
            session.exec(select(func.count()).select_from(AuditLog)).one(),
            queries.data_version(session=session),
        )


def run_import(store: Store, name: str, data: bytes, *, dry_run: bool = False):
    with store.session() as session:
        plan = prepare_import(name, data, session=session)
        batch = None if dry_run else apply_import(plan, session=session, actor="U0ADMIN")
    return plan, batch


def card(store: Store, question: str) -> str:
    with store.session() as session:
        return json.dumps(answer(question, session=session).payload(), ensure_ascii=False)


def refused(store: Store, name: str, data: bytes) -> list[tuple[int, str, str]]:
    before = snapshot(store)
    with pytest.raises(ImportRefused) as caught, store.session() as session:
        prepare_import(name, data, session=session)
    assert snapshot(store) == before
    return [(e.row, e.column, e.message) for e in caught.value.errors]


MONTHS = csv_bytes(
    "knife-crime,,2024-01,190,SYNTHETIC,",
    "knife-crime,,2024-02,205,SYNTHETIC,yes",
    "ksi,Fatal,2024-01,4,SYNTHETIC,no",
)


def test_a_file_is_imported_and_shown_beside_the_plan_figures(fresh_store):
    plan, batch = run_import(fresh_store, "months.csv", MONTHS)
    assert (plan.count("added"), plan.count("revised"), plan.count("unchanged")) == (3, 0, 0)
    assert batch is not None and batch.added == 3
    shown = card(fresh_store, "knife-crime")
    assert "latest *205* in Feb 2024 (provisional)" in shown
    assert "*2,366*" in shown, "a month is never compared with the 12-month baseline: Latest is still the plan's"
    with fresh_store.session() as session:
        (audit,) = session.exec(select(AuditLog)).all()
        assert (audit.actor, audit.action, audit.subject) == ("U0ADMIN", "import readings", "months.csv")


def test_importing_the_same_file_again_changes_nothing(fresh_store):
    run_import(fresh_store, "months.csv", MONTHS)
    before = snapshot(fresh_store)
    plan, batch = run_import(fresh_store, "months.csv", MONTHS)
    assert batch is None and plan.count("unchanged") == 3
    assert snapshot(fresh_store) == before


def test_a_dry_run_writes_nothing(fresh_store):
    before = snapshot(fresh_store)
    plan, _ = run_import(fresh_store, "months.csv", MONTHS, dry_run=True)
    assert plan.count("added") == 3
    assert snapshot(fresh_store) == before


def test_a_new_figure_for_the_same_period_is_a_revision_and_the_old_one_is_kept(fresh_store):
    run_import(fresh_store, "months.csv", MONTHS)
    revised = MONTHS.replace(b"2024-02,205,SYNTHETIC,yes", b"2024-02,212,SYNTHETIC,no")
    plan, batch = run_import(fresh_store, "months-v2.csv", revised)
    assert (plan.count("revised"), plan.count("unchanged"), batch.revised) == (1, 2, 1)
    with fresh_store.session() as session:
        knife = session.exec(select(Metric).where(Metric.key == "knife-crime")).one()
        february = session.exec(
            select(Reading).where(Reading.metric_id == knife.id, Reading.period_start == date(2024, 2, 1))
        ).all()
        assert sorted((r.value, r.replaced_at is None) for r in february) == [(205.0, False), (212.0, True)]
    assert "revised from 205 to 212" in card(fresh_store, "knife-crime")


def test_a_rolling_twelve_month_figure_becomes_the_latest_like_for_like(fresh_store):
    rolling = csv_bytes(
        "knife-crime,2023-11-01,2024-10-31,2410,SYNTHETIC",
        header="metric,period_start,period_end,value,source\n",
    )
    run_import(fresh_store, "rolling.csv", rolling)
    shown = card(fresh_store, "knife-crime")
    assert "*2,410*" in shown and "12 months to Oct 2024" in shown
    assert "-189 (-7.3%)" in shown, "compared with the 2,599 baseline"


def test_every_problem_is_named_by_row_and_column_and_nothing_is_written(fresh_store):
    errors = refused(
        fresh_store,
        "bad.csv",
        csv_bytes(
            "knif crime,,2024-01,190,,",
            "ksi,,2024-01,4,,",
            "ksi,Deadly,2024-13,x,,",
            "calls-answered,,2024-01,104,,",
            "knife-crime,,2024-01,-3,,",
            "asb,,2024-01,100,,",
            "asb,,2024-01,101,,",
            "homicides,Adults,2024-01,2,,",
            "homicides,,2024-1,2,,",
            "homicides,,2024-02,2,,maybe",
            "knife-crime,2024-03,2024-03,5,,",
        ).replace(b"knife-crime,2024-03,2024-03,5", b"knife-crime,,2024-03,5"),
    )
    assert errors == [
        (2, "metric", "“knif crime” is not a metric. Did you mean knife-crime?"),
        (3, "series", "this metric has several series: say which (“Fatal”, “Serious”)"),
        (4, "series", "“Deadly” is not a series of this metric (“Fatal”, “Serious”)"),
        (4, "period", "“2024-13” is not a month: write it as YYYY-MM"),
        (4, "value", "“x” is not a number"),
        (5, "value", "104 is outside 0–100; this metric is a percentage"),
        (6, "value", "-3 is negative; this metric counts things"),
        (8, "period", "asb, Jan 2024 is already given on row 7"),
        (9, "series", "“Adults”: this metric has a single series; leave series blank"),
        (10, "period", "“2024-1” is not a month: write it as YYYY-MM"),
        (11, "provisional", "“maybe” is not yes or no"),
    ]


def test_period_ranges_are_checked(fresh_store):
    header = "metric,period,period_start,period_end,value\n"
    errors = refused(
        fresh_store,
        "ranges.csv",
        csv_bytes(
            "knife-crime,,2024-05-01,2024-04-30,5",
            "knife-crime,,2024-02-30,2024-03-31,5",
            "knife-crime,2024-01,2024-01-01,2024-01-31,5",
            "knife-crime,,,,5",
            header=header,
        ),
    )
    assert [(row, column) for row, column, _ in errors] == [
        (2, "period_end"),
        (3, "period_start"),
        (4, "period"),
        (5, "period"),
    ]


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("empty.csv", b"", "the file is empty"),
        ("blank.csv", b"\n\n  \n", "the file is empty"),
        ("header.csv", HEADER.encode(), "the file has a header but no readings"),
        (
            "latin1.csv",
            "metric,period,value\nknife-crime,2024-01,19\nasb,2024-01,Café\n".encode("latin-1"),
            "line 3 is not UTF-8 text",
        ),
        ("cols.csv", b"name,month,figure\nknife-crime,2024-01,5\n", "the header has no metric, value, period"),
        ("extra.csv", b"metric,period,value,colour\nknife-crime,2024-01,5,red\n", "unknown column(s) colour"),
        ("binary.csv", b"metric,period,value\n\x00\x01\x02", "not a CSV text file"),
        ("fake.xlsx", b"PK\x03\x04 this is not really a workbook", "not a readable XLSX workbook"),
    ],
)
def test_bad_files_are_refused_whole(fresh_store, name, data, says):
    ((row, column, message),) = refused(fresh_store, name, data)
    assert row == 0 and column == ""
    assert says in message


def test_a_hundred_megabytes_of_garbage_is_refused_quickly(fresh_store, tmp_path: Path):
    garbage = tmp_path / "garbage.csv"
    with garbage.open("wb") as handle:
        for _ in range(100):
            handle.write(os.urandom(2**20))
    ((row, _, message),) = refused(fresh_store, garbage.name, garbage.read_bytes())
    assert row == 0 and "100 MB" in message and f"at most {MAX_BYTES // 2**20} MB" in message


def test_ten_megabytes_of_garbage_under_the_size_limit_is_refused_too(fresh_store):
    ((_, _, message),) = refused(fresh_store, "garbage.csv", os.urandom(10 * 2**20))
    assert "not UTF-8 text" in message or "not a CSV text file" in message


def test_xlsx_with_dates_and_numbers_imports_like_csv(fresh_store):
    book = Workbook()
    sheet = book.active
    sheet.append(["Metric", "Series", "Period", "Value", "Source"])
    sheet.append(["Knife Crime", None, datetime(2024, 1, 1), 190, "SYNTHETIC"])
    sheet.append(["ksi", "serious", "2024-01", 91.0, "SYNTHETIC"])
    buffer = io.BytesIO()
    book.save(buffer)
    plan, _ = run_import(fresh_store, "months.xlsx", buffer.getvalue())
    assert sorted((c.incoming.metric_key, c.incoming.series, c.incoming.period_label) for c in plan.changes) == [
        ("knife-crime", "", "Jan 2024"),
        ("ksi", "Serious", "Jan 2024"),
    ]


def test_thousands_separators_and_percent_signs_are_understood(fresh_store):
    plan, _ = run_import(
        fresh_store, "formatted.csv", csv_bytes('asb,,2024-01,"2,431",,', "calls-answered,,2024-01,88.5%,,")
    )
    assert sorted(c.incoming.value for c in plan.changes) == [88.5, 2431.0]


def months_file(values: list[int], *, metric: str = "knife-crime", start_year: int = 2023) -> bytes:
    rows = [f"{metric},,{start_year + i // 12}-{i % 12 + 1:02d},{v},SYNTHETIC," for i, v in enumerate(values)]
    return csv_bytes(*rows)


NOISE = [200, 204, 198, 203, 199, 202, 197, 201, 200, 203, 198, 202]  # SYNTHETIC: common cause only


def test_a_metric_with_fewer_than_13_months_is_too_early_to_call(fresh_store):
    run_import(fresh_store, "months.csv", months_file(NOISE[:5]))
    assert "Too early to tell signal from noise: 5 monthly figures so far; an SPC chart needs 13." in card(
        fresh_store, "knife-crime"
    )


def test_six_months_above_the_average_of_a_reduce_metric_is_a_concern(fresh_store):
    run_import(fresh_store, "months.csv", months_file([*NOISE, 212, 214, 213, 215, 212, 214]))
    shown = card(fresh_store, "knife-crime")
    assert ":large_orange_circle: *Special cause – concerning*: 6 months in a row above the average." in shown
    assert "SPC over 18 months" in shown


def test_the_same_run_on_an_increase_metric_is_an_improvement(fresh_store):
    run_import(fresh_store, "months.csv", months_file([*NOISE, 212, 214, 213, 215, 212, 214], metric="dvpo"))
    assert ":large_blue_circle: *Special cause – improving*: 6 months in a row above the average." in card(
        fresh_store, "dvpo"
    )


def test_common_cause_says_there_is_no_signal(fresh_store):
    run_import(fresh_store, "months.csv", months_file([*NOISE, 201, 199]))
    assert "*Common cause variation: no signal, only month-to-month noise*." in card(fresh_store, "knife-crime")


def test_a_recalculation_month_in_the_plan_data_starts_new_limits(fresh_store):
    step = [*NOISE, 240, 244, 238, 243, 239, 242, 237, 241]  # SYNTHETIC: a step up in month 13
    run_import(fresh_store, "months.csv", months_file(step))
    assert "*Special cause – concerning*: the latest month is above the upper process limit" in card(
        fresh_store, "knife-crime"
    )
    with fresh_store.session() as session:  # as if data/plan said: spc: {recalculate_at: ["2024-01"]}
        knife = session.exec(select(Metric).where(Metric.key == "knife-crime")).one()
        knife.spc_recalculate_at = ["2024-01"]
        session.add(knife)
        queries.bump_data_version(session=session)
    assert "*Common cause variation: no signal, only month-to-month noise*." in card(fresh_store, "knife-crime")


def test_the_readme_example_file_is_valid_and_holds_only_the_plans_own_figures(fresh_store):
    from tests.conftest import REPO

    example = REPO / "data" / "examples" / "readings.csv"
    plan, batch = run_import(fresh_store, example.name, example.read_bytes())
    assert plan.count("unchanged") == 5 and batch is None, "every figure is already in the plan"
