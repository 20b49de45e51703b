"""The weekly digest: what changed since the last one, within Slack's limits whatever the volume.

Figures here are SYNTHETIC test data.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlmodel import select

from bot.render import render
from scorecard.digest import build_digest
from scorecard.models import AlertEvent, Metric
from tests.test_imports import csv_bytes, run_import
from tests.test_messages import assert_valid_slack_message

WEEK_AGO = datetime.now(UTC) - timedelta(days=7)


def digest(store, since=WEEK_AGO):
    with store.session() as session:
        return render("digest", digest=build_digest(session=session, since=since, until=datetime.now(UTC)))


def section(message, title: str) -> str:
    return next(b["text"]["text"] for b in message.blocks if b.get("text", {}).get("text", "").startswith(title))


def test_new_and_revised_figures_are_listed_one_per_line(fresh_store):
    run_import(fresh_store, "a.csv", csv_bytes("knife-crime,,2024-01,190,SYNTHETIC,", "ksi,Fatal,2024-01,4,SYNTHETIC,"))
    run_import(fresh_store, "b.csv", csv_bytes("knife-crime,,2024-01,193,SYNTHETIC,yes"))
    message = digest(fresh_store)
    assert_valid_slack_message(message)
    assert section(message, "*New and revised figures*").splitlines()[1:] == [
        "• *Knife crime*, Jan 2024: 193 (provisional), revised from 190",
        "• *Killed or seriously injured on the roads* (Fatal), Jan 2024: 4",
    ]
    assert "2 new or revised figures" in message.text


def test_the_plans_own_figures_and_older_imports_are_not_news(fresh_store):
    run_import(fresh_store, "a.csv", csv_bytes("knife-crime,,2024-01,190,SYNTHETIC,"))
    message = digest(fresh_store, since=datetime.now(UTC))
    assert "0 new or revised figures" in message.text
    assert not any("New and revised" in json.dumps(b) for b in message.blocks)


def test_alerts_opened_and_recovered_in_the_week_are_listed(fresh_store):
    with fresh_store.session() as session:
        knife = session.exec(select(Metric).where(Metric.key == "knife-crime")).one()
        ksi = session.exec(select(Metric).where(Metric.key == "ksi")).one()
        session.add(AlertEvent(key="alert:knife-crime:consecutive::2024-03-31", metric_id=knife.id, rule="consecutive",
                               period_label="Mar 2024"))  # fmt: skip
        session.add(AlertEvent(key="alert:ksi:spc:Fatal:2024-02-29", metric_id=ksi.id, rule="spc", series="Fatal",
                               period_label="Feb 2024", opened_at=WEEK_AGO - timedelta(days=30),
                               recovered_at=datetime.now(UTC) - timedelta(days=1)))  # fmt: skip
    message = digest(fresh_store)
    assert section(message, "*Worsened*").splitlines()[1] == (
        "• *Knife crime*, Mar 2024: worse month after month · `/pcp knife-crime`"
    )
    assert section(message, "*Recovered*").splitlines()[1] == (
        "• *Killed or seriously injured on the roads* (Fatal), Feb 2024: no longer an SPC signal"
    )


def test_a_flood_of_changes_still_fits_slacks_limits(fresh_store):
    rows = [
        f"knife-crime,Force {f},{2000 + m // 12}-{m % 12 + 1:02d},{m},SYNTHETIC," for f in range(3) for m in range(5)
    ]
    home = [f"asb,,{2000 + m // 12}-{m % 12 + 1:02d},{100 + m % 7},SYNTHETIC," for m in range(300)]
    run_import(fresh_store, "flood.csv", csv_bytes(*home, header="metric,series,period,value,source,provisional\n"))
    run_import(fresh_store, "other.csv", csv_bytes(*rows, header="metric,force,period,value,source,provisional\n"))
    message = digest(fresh_store)
    assert_valid_slack_message(message)
    figures = section(message, "*New and revised figures*")
    assert figures.endswith("…and 288 more.") and len(figures) < 3000
    assert "300 new or revised figures" in message.text, "other forces' figures are not the plan's news"


def test_every_metric_appears_in_the_scorecard_part(fresh_store):
    message = digest(fresh_store)
    raw = json.dumps(message.blocks, ensure_ascii=False)
    with fresh_store.session() as session:
        for metric in session.exec(select(Metric)).all():
            assert metric.short_name in raw
