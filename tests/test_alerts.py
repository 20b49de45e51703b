"""Alert rules: judged by the plan's direction, recorded once, recovered once, snoozable.

Every imported figure and every threshold in these tests is SYNTHETIC test data, never a
real performance figure or a plan target; only the plan-figure test uses the plan's own table.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlmodel import col, select

from bot.db import Store
from scorecard import queries
from scorecard.alert_rules import RULES_FILE, AlertRulesError, load_rules
from scorecard.alerts import (
    AlertError,
    Finding,
    Transition,
    alert_key,
    evaluate,
    is_snoozed,
    record,
    snooze,
)
from scorecard.imports import apply_import, prepare_import
from scorecard.models import AlertEvent, AlertRule, Metric, Reading
from scorecard.status import compute_change

AS_OF = date(2026, 1, 1)
NOW = datetime(2026, 1, 2, 8, 0, tzinfo=UTC)
HEADER = "metric,series,period,value,source,force\n"
RANGE_HEADER = "metric,series,period_start,period_end,value,source\n"
# Twelve months of ordinary variation, then four rising months ending in a spike far above
# the process limits: an SPC single-point signal on the high side and three rises in a row.
SPIKE = [100, 102, 98, 101, 99, 100, 103, 97, 100, 99, 100, 101, 140]
SYNTHETIC_THRESHOLDS = {"knife-crime": 2700, "dvpo": 420}  # SYNTHETIC: the plan states none


# --- helpers -----------------------------------------------------------------------------------


def monthly(metric: str, values: list[float], *, series: str = "", force: str = "", start: int = 2024) -> list[str]:
    """One SYNTHETIC row per month from January of `start`."""
    rows = []
    for i, value in enumerate(values):
        year, month = start + i // 12, i % 12 + 1
        rows.append(f"{metric},{series},{year}-{month:02d},{value},SYNTHETIC,{force}")
    return rows


def months_file(*rows: str) -> bytes:
    return (HEADER + "\n".join(rows) + "\n").encode()


def twelve_months_file(*figures: tuple[str, str, str, float]) -> bytes:
    """SYNTHETIC 12-month figures: (metric, first day, last day, value)."""
    rows = [f"{metric},,{start},{end},{value},SYNTHETIC" for metric, start, end, value in figures]
    return (RANGE_HEADER + "\n".join(rows) + "\n").encode()


def load(store: Store, name: str, data: bytes) -> bool:
    """Import a file as a user would; False when it changed nothing."""
    with store.session() as session:
        return apply_import(prepare_import(name, data, session=session), session=session, actor="U0TEST") is not None


def cycle(store: Store, *, as_of: date = AS_OF, now: datetime = NOW) -> tuple[list[Finding], list[Transition]]:
    """One evaluation run as the scheduler does it: evaluate, record, commit."""
    with store.session() as session:
        findings = evaluate(session=session, as_of=as_of)
        return findings, record(findings, session=session, now=now)


def worse(findings: list[Finding], metric: str) -> dict[str, Finding]:
    """A metric's firing rules, by kind."""
    return {f.rule: f for f in findings if f.metric == metric and f.state == "worse"}


def rules_file(tmp_path: Path, change) -> Path:
    """A copy of the shipped rules, changed by `change(doc)`."""
    doc = yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    change(doc)
    path = tmp_path / "alert_rules.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def with_synthetic_thresholds(doc: dict) -> None:
    for metric, value in SYNTHETIC_THRESHOLDS.items():
        direction = "reduce" if metric == "knife-crime" else "increase"
        doc["metrics"][metric] = [*doc["defaults"][direction], {"kind": "threshold", "value": value}]


def stored_rules(store: Store) -> list[tuple]:
    with store.session() as session:
        rows = session.exec(select(AlertRule, Metric).join(Metric).order_by(col(AlertRule.id))).all()
        return [(metric.key, rule.kind, rule.params, rule.enabled) for rule, metric in rows]


@pytest.fixture
def alerts(fresh_store: Store, tmp_path: Path) -> Store:
    """A fresh store with the shipped rules plus SYNTHETIC thresholds for knife crime and DVPOs."""
    with fresh_store.session() as session:
        load_rules(session=session, path=rules_file(tmp_path, with_synthetic_thresholds))
    return fresh_store


# --- each rule, both directions ----------------------------------------------------------------


def test_reduce_and_increase_metrics_alert_on_every_rule_when_worse(alerts):
    load(alerts, "worse.csv", months_file(*monthly("knife-crime", SPIKE), *monthly("dvpo", [200 - v for v in SPIKE])))
    load(
        alerts,
        "worse-12m.csv",
        twelve_months_file(
            ("knife-crime", "2024-02-01", "2025-01-31", 2800), ("dvpo", "2024-02-01", "2025-01-31", 400)
        ),
    )
    findings, _ = cycle(alerts)

    knife, dvpo = worse(findings, "knife-crime"), worse(findings, "dvpo")
    assert set(knife) == set(dvpo) == {"baseline_margin", "threshold", "consecutive", "spc"}
    margin = knife["baseline_margin"]
    assert (margin.latest, margin.baseline, margin.period_label) == (2800, 2599, "12 months to Jan 2025")
    assert margin.change_percent == float(compute_change(2599, 2800).percent) > 5
    assert margin.key == alert_key("knife-crime", "baseline_margin", "", date(2025, 1, 31))
    assert dvpo["baseline_margin"].change_percent == float(compute_change(441, 400).percent) < -5
    assert (knife["threshold"].threshold, dvpo["threshold"].threshold) == (2700, 420)
    assert knife["consecutive"].previous == (("Oct 2024", 99), ("Nov 2024", 100), ("Dec 2024", 101))
    assert (knife["consecutive"].latest, knife["consecutive"].period_label) == (140, "Jan 2025")
    assert knife["spc"].spc["variation"] == "concern_high" and knife["spc"].spc["rule"] == "single_point"
    assert dvpo["spc"].spc["variation"] == "concern_low"
    assert {f.judgement for f in [*knife.values(), *dvpo.values()]} == {"worse"}
    assert (knife["spc"].direction, knife["spc"].unit) == ("reduce", "count")


def test_reduce_and_increase_metrics_do_not_alert_when_better(alerts):
    load(alerts, "better.csv", months_file(*monthly("knife-crime", [200 - v for v in SPIKE]), *monthly("dvpo", SPIKE)))
    load(
        alerts,
        "better-12m.csv",
        twelve_months_file(
            ("knife-crime", "2024-02-01", "2025-01-31", 2400), ("dvpo", "2024-02-01", "2025-01-31", 500)
        ),
    )
    findings, _ = cycle(alerts)
    assert worse(findings, "knife-crime") == worse(findings, "dvpo") == {}


def test_a_figure_on_the_threshold_or_within_the_margin_does_not_alert(alerts):
    load(alerts, "edge.csv", twelve_months_file(("knife-crime", "2024-01-01", "2024-12-31", 2700)))
    findings, _ = cycle(alerts)
    assert compute_change(2599, 2700).percent <= 5
    assert worse(findings, "knife-crime") == {}


def test_keep_below_metrics_alert_when_the_baseline_is_crossed(alerts):
    load(alerts, "below.csv", twelve_months_file(("neighbourhood-crime", "2023-01-01", "2023-12-31", 45000)))
    assert worse(cycle(alerts)[0], "neighbourhood-crime") == {}

    load(alerts, "above.csv", twelve_months_file(("neighbourhood-crime", "2024-01-01", "2024-12-31", 46500)))
    found = worse(cycle(alerts)[0], "neighbourhood-crime")
    assert set(found) == {"threshold"}, "the baseline is the plan's own threshold; no separate margin rule"
    assert found["threshold"].threshold == found["threshold"].baseline == 46162
    assert (found["threshold"].latest, found["threshold"].period_label) == (46500, "12 months to Dec 2024")


def test_monitor_metrics_alert_only_on_spc_signals_described_as_neither(alerts):
    rising_and_far_above_baseline = twelve_months_file(("exploitation-flags", "2024-02-01", "2025-01-31", 2000))
    load(alerts, "flags-12m.csv", rising_and_far_above_baseline)
    load(alerts, "flags-12.csv", months_file(*monthly("exploitation-flags", SPIKE[:12])))
    assert worse(cycle(alerts)[0], "exploitation-flags") == {}, "no SPC yet, and no other rule for monitor"

    load(alerts, "flags-13.csv", months_file(*monthly("exploitation-flags", SPIKE)))
    found = worse(cycle(alerts)[0], "exploitation-flags")
    assert set(found) == {"spc"}
    assert found["spc"].judgement == "neither" and found["spc"].direction == "monitor"
    assert found["spc"].spc["variation"] == "neither_high"


def test_spc_needs_thirteen_months(alerts):
    load(alerts, "twelve.csv", months_file(*monthly("knife-crime", SPIKE[1:])))
    found = worse(cycle(alerts)[0], "knife-crime")
    assert "spc" not in found and "consecutive" in found, "the same spike with 12 months is not an SPC signal"


def test_other_forces_never_alert(alerts):
    load(alerts, "elsewhere.csv", months_file(*monthly("knife-crime", SPIKE, force="North Yorkshire Police")))
    assert worse(cycle(alerts)[0], "knife-crime") == {}


# --- once only, and recovery ---------------------------------------------------------------------


RISING = months_file(*monthly("knife-crime", [190, 200, 210, 220]))


def test_re_running_restarting_and_re_importing_never_alert_twice(alerts, fresh_url):
    load(alerts, "rising.csv", RISING)
    _, first = cycle(alerts)
    opened = [t.event.key for t in first if t.finding.metric == "knife-crime"]
    assert [t.kind for t in first] == ["opened"] * len(first)
    assert opened == [alert_key("knife-crime", "consecutive", "", date(2024, 4, 30))]

    assert cycle(alerts)[1] == []
    assert load(alerts, "rising.csv", RISING) is False
    assert cycle(alerts, now=NOW + timedelta(days=1))[1] == []
    restarted = Store.open(fresh_url)
    try:
        assert cycle(restarted, now=NOW + timedelta(days=2))[1] == []
    finally:
        restarted.close()
    with alerts.session() as session:
        assert len(session.exec(select(AlertEvent).where(AlertEvent.key == opened[0])).all()) == 1


def test_a_later_month_that_ends_the_run_recovers_the_alert_once(alerts):
    load(alerts, "rising.csv", RISING)
    cycle(alerts)
    load(alerts, "may.csv", months_file("knife-crime,,2024-05,180,SYNTHETIC,"))
    later = NOW + timedelta(days=30)
    findings, transitions = cycle(alerts, now=later)

    key = alert_key("knife-crime", "consecutive", "", date(2024, 4, 30))
    (clear,) = [f for f in findings if f.state == "clear" and f.metric == "knife-crime"]
    assert (clear.key, clear.rule, clear.period_label, clear.latest) == (key, "consecutive", "May 2024", 180)
    recovered = [t for t in transitions if t.finding.metric == "knife-crime"]
    assert [(t.kind, t.event.key) for t in recovered] == [("recovered", key)]
    assert cycle(alerts, now=later + timedelta(days=1))[1] == []
    with alerts.session() as session:
        event = session.exec(select(AlertEvent).where(AlertEvent.key == key)).one()
        assert event.recovered_at == later
        assert event.detail["recovered"]["latest"] == 180 and event.detail["previous"][-1] == ["Mar 2024", 210]


def test_a_revised_reading_that_removes_the_condition_clears_it(alerts):
    load(alerts, "rising.csv", RISING)
    cycle(alerts)
    load(alerts, "rising-v2.csv", months_file(*monthly("knife-crime", [190, 200, 210, 205])))
    findings, transitions = cycle(alerts)
    assert worse(findings, "knife-crime") == {}
    assert [(t.kind, t.finding.rule) for t in transitions if t.finding.metric == "knife-crime"] == [
        ("recovered", "consecutive")
    ]
    with alerts.session() as session:
        knife = queries.metric_by_key("knife-crime", session=session)
        april = session.exec(
            select(Reading).where(Reading.metric_id == knife.id, Reading.period_start == date(2024, 4, 1))
        ).all()
        assert sorted((r.value, r.replaced_at is None) for r in april) == [(205, True), (220, False)]


def test_a_disabled_rule_neither_fires_nor_claims_recovery(alerts, tmp_path):
    load(alerts, "rising.csv", RISING)
    cycle(alerts)

    def disable_consecutive(doc: dict) -> None:
        doc["defaults"]["reduce"] = [
            dict(r, enabled=False) if r["kind"] == "consecutive" else r for r in doc["defaults"]["reduce"]
        ]

    with alerts.session() as session:
        load_rules(session=session, path=rules_file(tmp_path, disable_consecutive))
    load(alerts, "may.csv", months_file("knife-crime,,2024-05,180,SYNTHETIC,"))
    findings, transitions = cycle(alerts)
    assert [f for f in findings if f.metric == "knife-crime"] == [] and transitions == []


# --- the plan's own figures ----------------------------------------------------------------------


def test_the_plans_own_figures_never_raise_an_alert(fresh_store):
    """Every reader of the plan knows its December 2023 figures already: they are no news to DM."""
    with fresh_store.session() as session:
        load_rules(session=session)
        assert evaluate(session=session, as_of=AS_OF) == []


def test_an_imported_figure_worse_than_the_plan_baseline_by_more_than_the_margin_alerts(fresh_store):
    with fresh_store.session() as session:
        load_rules(session=session)
    year = b"metric,series,period_start,period_end,value,source\nksi,Fatal,2023-01-01,2023-12-31,60,SYNTHETIC\n"
    with fresh_store.session() as session:
        apply_import(prepare_import("ksi-2023.csv", year, session=session), session=session, actor="test")
    with fresh_store.session() as session:
        rules = {r.kind: r.params for r, m in session.exec(select(AlertRule, Metric).join(Metric)) if m.key == "ksi"}
        findings = [f for f in evaluate(session=session, as_of=AS_OF) if f.metric == "ksi"]
    change = compute_change(42, 60)
    assert change.percent > rules["baseline_margin"]["margin_percent"]
    ((fatal),) = findings
    assert (fatal.rule, fatal.series, fatal.period_label) == ("baseline_margin", "Fatal", "12 months to Dec 2023")
    assert fatal.change_percent == float(change.percent) and fatal.baseline_label == "2021"


# --- snoozing -----------------------------------------------------------------------------------


def test_a_lead_can_snooze_a_metric_for_a_period(fresh_store):
    week = NOW + timedelta(days=7)
    with fresh_store.session() as session:
        snooze("knife-crime", "U0LEAD", until=week, session=session)
    with fresh_store.session() as session:
        assert is_snoozed("knife-crime", "U0LEAD", session=session, now=NOW)
        assert not is_snoozed("knife-crime", "U0LEAD", session=session, now=week)
        assert not is_snoozed("knife-crime", "U0OTHER", session=session, now=NOW)
        assert not is_snoozed("dvpo", "U0LEAD", session=session, now=NOW)
        snooze("knife-crime", "U0LEAD", until=NOW - timedelta(minutes=1), session=session)
    with fresh_store.session() as session:
        assert not is_snoozed("knife-crime", "U0LEAD", session=session, now=NOW), "a later snooze replaces it"
        with pytest.raises(AlertError, match="not a metric"):
            snooze("no-such-metric", "U0LEAD", until=week, session=session)


# --- loading the rules ----------------------------------------------------------------------------


def test_loading_the_rules_twice_changes_nothing(fresh_store):
    with fresh_store.session() as session:
        first = load_rules(session=session)
    before = stored_rules(fresh_store)
    with fresh_store.session() as session:
        again = load_rules(session=session)
    assert len(before) > 0 and (first.added, first.updated, first.removed) == (0, 0, 0), "loaded at start-up"
    assert (again.added, again.updated, again.removed) == (0, 0, 0)
    assert stored_rules(fresh_store) == before

    kinds: dict[str, set[str]] = {}
    for metric, kind, _, _ in before:
        kinds.setdefault(metric, set()).add(kind)
    assert "cyber-dashboard" not in kinds and "cyber-attacks-business" not in kinds, "text-only rows get no rules"
    assert kinds["exploitation-flags"] == kinds["vru-attendees"] == {"spc"}
    assert kinds["neighbourhood-crime"] == {"threshold", "consecutive", "spc"}
    assert "baseline_margin" not in kinds["asb"]
    assert ("neighbourhood-crime", "threshold", {"value": "baseline"}, True) in before


def test_a_changed_file_updates_and_removes_rules(fresh_store, tmp_path):
    with fresh_store.session() as session:
        load_rules(session=session)

    def change(doc: dict) -> None:
        doc["defaults"]["reduce"][0]["margin_percent"] = 10
        doc["metrics"]["knife-crime"] = [{"kind": "spc"}]

    with fresh_store.session() as session:
        changed = load_rules(session=session, path=rules_file(tmp_path, change))
    rules = stored_rules(fresh_store)
    assert [(k, p) for m, k, p, _ in rules if m == "knife-crime"] == [("spc", {})]
    assert changed.removed == 2 and changed.updated > 0
    assert ("homicides", "baseline_margin", {"margin_percent": 10}, True) in rules


@pytest.mark.parametrize(
    ("metrics", "message"),
    [
        (
            {"knife-crime": [{"kind": "sometimes"}]},
            "alert_rules.yaml, metrics.knife-crime[0]: unknown kind 'sometimes'",
        ),
        ({"knife-crime": [{"kind": "consecutive", "count": 1}]}, "metrics.knife-crime[0]: consecutive count must be"),
        ({"knife-crime": [{"kind": "threshold"}]}, "metrics.knife-crime[0]: threshold needs value"),
        ({"knife-crime": [{"kind": "spc", "margin": 3}]}, "metrics.knife-crime[0]: spc has no parameter margin"),
        ({"vru-attendees": [{"kind": "baseline_margin", "margin_percent": 5}]}, "cannot apply to a monitor metric"),
        ({"no-such-metric": []}, "alert_rules.yaml, metrics.no-such-metric: not a metric"),
    ],
)
def test_a_bad_rules_file_is_refused_whole_naming_the_file_and_metric(fresh_store, tmp_path, metrics, message):
    with fresh_store.session() as session:
        load_rules(session=session)
    before = stored_rules(fresh_store)
    path = rules_file(tmp_path, lambda doc: doc["metrics"].update(metrics))
    with (
        pytest.raises(AlertRulesError, match=re.escape(message)),
        fresh_store.session() as session,
    ):
        load_rules(session=session, path=path)
    assert stored_rules(fresh_store) == before
