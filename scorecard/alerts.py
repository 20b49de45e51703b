"""Alert rules: when a metric has moved far enough the wrong way to tell its leads, and back.

The rules come from scorecard/alert_rules.py (AlertRule rows). `evaluate` judges the home
force's current figures against the enabled rules as of a date and returns findings as plain
data. `record` turns findings into AlertEvent rows, at most one per metric, rule, series and
period (the event key is unique), so re-running, restarting or importing a file again never
alerts twice. Wording and delivery belong to the callers; nothing here reads the clock.

Figures are chosen exactly as the metric card chooses them (the like-for-like latest figure
for the baseline comparison, the monthly series for runs and SPC), so an alert always agrees
with the card a lead opens from it.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from sqlmodel import Session, col, select

from scorecard import queries
from scorecard.cards import spc_view
from scorecard.models import AlertEvent, AlertRule, Metric, Reading, Snooze
from scorecard.periods import dated, pick_figures
from scorecard.spc import MIN_POINTS
from scorecard.status import Direction, Status, compute_change, exact, judge

KINDS = ("baseline_margin", "threshold", "consecutive", "spc")  # also the order findings are listed in
BASELINE = "baseline"  # threshold `value` meaning "this series' plan baseline"

State = Literal["worse", "clear"]
Judgement = Literal["worse", "neither"]


class AlertError(ValueError):
    """A request the alert store cannot serve (an unknown metric, ...)."""


# --- evaluating ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """One rule's verdict on one series, as plain data a message can be written from.

    "worse": the rule fires; `key` (alert:<metric>:<rule>:<series>:<period end>) is what makes
    the alert unique. "clear": an open alert's rule no longer fires; `key` is that alert's key
    and the period and figures are the ones that show the recovery. `judgement` is "neither"
    for monitor metrics: a signal to describe, not good or bad news.
    """

    key: str
    state: State
    metric: str
    metric_name: str
    rule: str
    series: str
    period_label: str
    period_end: date
    direction: str
    unit: str
    judgement: Judgement
    latest: float | None = None
    provisional: bool = False
    baseline: float | None = None
    baseline_label: str | None = None
    threshold: float | None = None
    margin_percent: float | None = None
    change_absolute: float | None = None  # latest - baseline
    change_percent: float | None = None  # relative to the baseline, as the card shows it
    previous: tuple[tuple[str, float], ...] = ()  # (period label, value) before the latest, oldest first
    spc: dict[str, Any] | None = None  # variation, rule, side, length, mean, upl, lpl, points

    def detail(self) -> dict[str, Any]:
        """JSON-safe facts, stored with the AlertEvent so a later reply can quote them."""
        return {name: _plain(value) for name, value in asdict(self).items()}


def _plain(value: Any) -> Any:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def alert_key(metric: str, rule: str, series: str, period_end: date) -> str:
    return f"alert:{metric}:{rule}:{series}:{period_end.isoformat()}"


@dataclass(frozen=True)
class _Series:
    """The figures of one series as the card picks them, as of the evaluation date."""

    metric: Metric
    direction: Direction
    label: str
    baseline: Reading | None
    latest: Reading | None  # newest current figure for a period as long as the baseline's
    months: list[Reading]  # current monthly figures with a value, oldest first


def _series(metric: Metric, label: str, readings: list[Reading], as_of: date) -> _Series:
    """An alert tells a lead something new: the plan document's own figures (which every reader
    of the plan already has) are the baseline to judge by, never the news that raises an alert."""
    figures = pick_figures(readings, as_of=as_of, imported_only=True)
    return _Series(
        metric=metric,
        direction=Direction(metric.direction),
        label=label,
        baseline=figures.baseline,
        latest=figures.latest,
        months=figures.months,
    )


@dataclass(frozen=True)
class _Outcome:
    """A rule judged: whether it fires, on which figure, and the facts behind the verdict."""

    fires: bool
    reading: Reading
    facts: dict[str, Any]


def _worse(direction: Direction, value: float, *, than: float) -> bool:
    """Strictly worse by the plan's direction, with the card's exact arithmetic; never for monitor."""
    return judge(direction, compute_change(than, value)) is Status.WORSENING


def _baseline_facts(series: _Series) -> dict[str, Any]:
    base, latest = series.baseline, series.latest
    if base is None or base.value is None:
        return {}
    facts: dict[str, Any] = {"baseline": base.value, "baseline_label": base.period_label}
    if latest is not None and latest.value is not None:
        change = compute_change(base.value, latest.value)
        facts["change_absolute"] = float(change.absolute)
        facts["change_percent"] = None if change.percent is None else float(change.percent)
    return facts


def _check_baseline_margin(series: _Series, params: dict[str, Any]) -> _Outcome | None:
    base, latest = series.baseline, series.latest
    if base is None or latest is None or base.value is None or latest.value is None:
        return None
    change = compute_change(base.value, latest.value)
    if change.percent is None:  # a zero baseline has no percentage to exceed
        return None
    margin = params["margin_percent"]
    fires = judge(series.direction, change) is Status.WORSENING and abs(change.percent) > exact(margin)
    return _Outcome(fires, latest, {**_baseline_facts(series), "margin_percent": margin})


def _check_threshold(series: _Series, params: dict[str, Any]) -> _Outcome | None:
    latest = series.latest
    if latest is None or latest.value is None:
        return None
    limit = params["value"]
    if limit == BASELINE:
        if series.baseline is None or series.baseline.value is None:
            return None
        limit = series.baseline.value
    fires = _worse(series.direction, latest.value, than=limit)
    return _Outcome(fires, latest, {**_baseline_facts(series), "threshold": limit})


def _check_consecutive(series: _Series, params: dict[str, Any]) -> _Outcome | None:
    count = params["count"]
    if len(series.months) < count + 1:  # `count` worsenings need one month before them
        return None
    run = series.months[-(count + 1) :]
    fires = all(_worse(series.direction, b.value, than=a.value) for a, b in itertools.pairwise(run))
    return _Outcome(fires, run[-1], {"previous": tuple((r.period_label, r.value) for r in run[:-1])})


def _check_spc(series: _Series, params: dict[str, Any]) -> _Outcome | None:
    if len(series.months) < MIN_POINTS:
        return None
    view = spc_view(series.months, series.metric)
    wanted = "neither" if series.direction is Direction.MONITOR else "concern"
    fires = (view.variation or "").startswith(wanted)
    facts = {
        "variation": view.variation,
        "rule": view.rule,
        "side": view.side,
        "length": view.length,
        "mean": view.mean,
        "upl": view.upl,
        "lpl": view.lpl,
        "points": view.points,
    }
    return _Outcome(fires, series.months[-1], {"spc": facts})


CHECKS: dict[str, Callable[[_Series, dict[str, Any]], _Outcome | None]] = {
    "baseline_margin": _check_baseline_margin,
    "threshold": _check_threshold,
    "consecutive": _check_consecutive,
    "spc": _check_spc,
}


def _finding(series: _Series, rule: str, state: State, *, outcome: _Outcome, key: str | None = None) -> Finding:
    reading = outcome.reading
    return Finding(
        key=key or alert_key(series.metric.key, rule, series.label, dated(reading)),
        state=state,
        metric=series.metric.key,
        metric_name=series.metric.short_name,
        rule=rule,
        series=series.label,
        period_label=reading.period_label,
        period_end=dated(reading),
        direction=series.direction.value,
        unit=series.metric.unit,
        judgement="neither" if series.direction is Direction.MONITOR else "worse",
        latest=reading.value,
        provisional=reading.provisional,
        **outcome.facts,
    )


def _event_period_end(event: AlertEvent) -> date:
    return date.fromisoformat(event.key.rsplit(":", 1)[1])


def _cleared(event: AlertEvent, series: _Series, outcome: _Outcome | None) -> Finding:
    """The clear finding for an open event, with the figures that show the recovery when there are any."""
    if outcome is not None:
        return _finding(series, event.rule, "clear", outcome=outcome, key=event.key)
    return Finding(
        key=event.key,
        state="clear",
        metric=series.metric.key,
        metric_name=series.metric.short_name,
        rule=event.rule,
        series=event.series,
        period_label=event.period_label,
        period_end=_event_period_end(event),
        direction=series.direction.value,
        unit=series.metric.unit,
        judgement="neither" if series.direction is Direction.MONITOR else "worse",
    )


def _enabled_rules(*, session: Session) -> dict[int, list[AlertRule]]:
    grouped: dict[int, list[AlertRule]] = {}
    for rule in session.exec(select(AlertRule).where(col(AlertRule.enabled).is_(True))).all():
        if rule.kind in CHECKS:
            grouped.setdefault(rule.metric_id, []).append(rule)
    return {m: sorted(rules, key=lambda r: KINDS.index(r.kind)) for m, rules in grouped.items()}


Judged = dict[tuple[int, str, str], tuple[_Series, _Outcome | None]]


def _clear_findings(judged: Judged, *, session: Session, as_of: date) -> list[Finding]:
    """Open events whose rule was judged and no longer fires for their metric and series.

    An event whose rule is disabled or gone stays open: recovery is only ever claimed from data.
    Events for periods after `as_of` are not judged from earlier data.
    """
    statement = select(AlertEvent).where(col(AlertEvent.recovered_at).is_(None)).order_by(col(AlertEvent.id))
    findings = []
    for event in session.exec(statement).all():
        entry = judged.get((event.metric_id, event.rule, event.series))
        if entry is None or _event_period_end(event) > as_of:
            continue
        series, outcome = entry
        if outcome is None or not outcome.fires:
            findings.append(_cleared(event, series, outcome))
    return findings


def evaluate(*, session: Session, as_of: date) -> list[Finding]:
    """Every enabled rule on every series of the home force's current figures up to `as_of`.

    Returns "worse" findings (metric by plan order, then series, then rule) followed by
    "clear" findings for open alerts that have recovered. Writes nothing.
    """
    metrics = queries.all_metrics(session=session)
    rules = _enabled_rules(session=session)
    ids = [m.id for m in metrics if m.id in rules]
    series_by_metric = queries.series_of(ids, session=session)
    readings = queries.readings_of(ids, session=session)  # home force only
    findings: list[Finding] = []
    judged: Judged = {}
    for metric in metrics:
        for metric_series in series_by_metric.get(metric.id, []):
            label = metric_series.label
            series = _series(metric, label, readings.get((metric.id, label), []), as_of)
            for rule in rules.get(metric.id, []):
                outcome = CHECKS[rule.kind](series, rule.params)
                judged[(metric.id, rule.kind, label)] = (series, outcome)
                if outcome is not None and outcome.fires:
                    findings.append(_finding(series, rule.kind, "worse", outcome=outcome))
    return findings + _clear_findings(judged, session=session, as_of=as_of)


# --- recording -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Transition:
    """An alert that opened or recovered just now: what the caller should tell the leads."""

    kind: Literal["opened", "recovered"]
    event: AlertEvent
    finding: Finding


def _metric_ids(keys: Iterable[str], *, session: Session) -> dict[str, int]:
    statement = select(Metric).where(col(Metric.key).in_(sorted(set(keys))))
    return {m.key: m.id for m in session.exec(statement).all() if m.id is not None}


def record(findings: list[Finding], *, session: Session, now: datetime) -> list[Transition]:
    """Apply findings to the AlertEvent rows in the caller's transaction; only changes are returned.

    A "worse" finding opens an event unless its key exists (open or recovered: never twice);
    a "clear" finding recovers its open event once. Should two instances record the same
    finding at once, the unique key fails the later transaction, so neither alerts twice.
    """
    now = _aware(now, "now")
    metric_ids = _metric_ids((f.metric for f in findings), session=session)
    transitions = []
    for finding in findings:
        event = session.exec(select(AlertEvent).where(AlertEvent.key == finding.key)).first()
        if finding.state == "worse" and event is None:
            event = AlertEvent(
                key=finding.key,
                metric_id=metric_ids[finding.metric],
                rule=finding.rule,
                series=finding.series,
                period_label=finding.period_label,
                opened_at=now,
                detail=finding.detail(),
            )
            session.add(event)
            session.flush()
            transitions.append(Transition(kind="opened", event=event, finding=finding))
        elif finding.state == "clear" and event is not None and event.recovered_at is None:
            event.recovered_at = now
            event.detail = {**event.detail, "recovered": finding.detail()}
            session.add(event)
            session.flush()
            transitions.append(Transition(kind="recovered", event=event, finding=finding))
    return transitions


# --- snoozing --------------------------------------------------------------------------------


def _aware(moment: datetime, name: str) -> datetime:
    """Times are stored with their zone (UTC); a naive one is ambiguous, so it is refused."""
    if moment.utcoffset() is None:
        raise ValueError(f"{name} must carry a time zone, e.g. datetime.now(UTC)")
    return moment.astimezone(UTC)


def snooze(metric_key: str, user_id: str, *, until: datetime, session: Session) -> Snooze:
    """Hold a metric's alerts for one lead until `until` (a later call moves the date, earlier ends it)."""
    metric = queries.metric_by_key(metric_key, session=session)
    if metric is None or metric.id is None:
        raise AlertError(f"“{metric_key}” is not a metric")
    statement = select(Snooze).where(Snooze.metric_id == metric.id, Snooze.user_id == user_id)
    until = _aware(until, "until")
    row = session.exec(statement).first() or Snooze(metric_id=metric.id, user_id=user_id, until=until)
    row.until = until
    session.add(row)
    session.flush()
    return row


def is_snoozed(metric_key: str, user_id: str, *, session: Session, now: datetime) -> bool:
    statement = (
        select(Snooze.until)
        .join(Metric, col(Metric.id) == col(Snooze.metric_id))
        .where(Metric.key == metric_key, Snooze.user_id == user_id)
    )
    until = session.exec(statement).first()
    return until is not None and until > _aware(now, "now")
