"""Alert rules: when a metric has moved far enough the wrong way to tell its leads, and back.

`load_rules` copies data/alert_rules.yaml into AlertRule rows. `evaluate` judges the home
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
from pathlib import Path
from typing import Any, Literal

import yaml
from sqlmodel import Session, col, select

from scorecard import queries
from scorecard.cards import spc_view
from scorecard.models import AlertEvent, AlertRule, Metric, Reading, Snooze
from scorecard.periods import dated, pick_figures
from scorecard.spc import MIN_POINTS
from scorecard.status import Direction, Status, compute_change, exact, judge

RULES_FILE = Path(__file__).resolve().parent.parent / "data" / "alert_rules.yaml"
KINDS = ("baseline_margin", "threshold", "consecutive", "spc")  # also the order findings are listed in
BASELINE = "baseline"  # threshold `value` meaning "this series' plan baseline"

State = Literal["worse", "clear"]
Judgement = Literal["worse", "neither"]


class AlertRulesError(ValueError):
    """The rules file is wrong; the message names the file, the entry and the problem."""


class AlertError(ValueError):
    """A request the alert store cannot serve (an unknown metric, ...)."""


# --- loading the rules -----------------------------------------------------------------------


@dataclass(frozen=True)
class RulesLoaded:
    """What `load_rules` changed; all zero when the store already matched the file."""

    added: int
    updated: int
    removed: int


@dataclass(frozen=True)
class _RuleSpec:
    kind: str
    params: dict[str, Any]
    enabled: bool


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _margin(value: Any) -> str | None:
    return None if _is_number(value) and value >= 0 else "must be a number of per cent, 0 or more"


def _threshold_value(value: Any) -> str | None:
    return None if _is_number(value) or value == BASELINE else f"must be a number or “{BASELINE}”"


def _count(value: Any) -> str | None:
    # one worse month is exactly the single-month noise alerts must not react to
    return (
        None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 2
        else "must be a whole number, 2 or more"
    )


PARAMS: dict[str, dict[str, Callable[[Any], str | None]]] = {
    "baseline_margin": {"margin_percent": _margin},
    "threshold": {"value": _threshold_value},
    "consecutive": {"count": _count},
    "spc": {},
}


def _rule_spec(entry: Any, where: str, direction: Direction) -> _RuleSpec:
    """One rule entry, checked: a known kind, exactly its parameters, allowed for the direction."""
    if not isinstance(entry, dict) or "kind" not in entry:
        raise AlertRulesError(f"{where}: each rule is a mapping with a kind, like {{kind: spc}}")
    kind = entry["kind"]
    if kind not in PARAMS:
        raise AlertRulesError(f"{where}: unknown kind {kind!r} (expected one of {', '.join(KINDS)})")
    if direction is Direction.MONITOR and kind != "spc":
        raise AlertRulesError(f"{where}: {kind} cannot apply to a monitor metric (no good direction); only spc")
    enabled = entry.get("enabled", True)
    if not isinstance(enabled, bool):
        raise AlertRulesError(f"{where}: enabled must be true or false, not {enabled!r}")
    params = {name: value for name, value in entry.items() if name not in ("kind", "enabled")}
    expected = PARAMS[kind]
    unknown = sorted(set(params) - set(expected))
    if unknown:
        allowed = ", ".join(expected) or "none"
        raise AlertRulesError(f"{where}: {kind} has no parameter {', '.join(unknown)} (parameters: {allowed})")
    for name, check in expected.items():
        if name not in params:
            raise AlertRulesError(f"{where}: {kind} needs {name}")
        problem = check(params[name])
        if problem:
            raise AlertRulesError(f"{where}: {kind} {name} {problem}, not {params[name]!r}")
    return _RuleSpec(kind=kind, params=params, enabled=enabled)


def _rule_list(entries: Any, where: str, direction: Direction) -> list[_RuleSpec]:
    if not isinstance(entries, list):
        raise AlertRulesError(f"{where}: expected a list of rules (or [] for none)")
    specs = [_rule_spec(entry, f"{where}[{i}]", direction) for i, entry in enumerate(entries)]
    kinds = [s.kind for s in specs]
    repeated = sorted({k for k in kinds if kinds.count(k) > 1})
    if repeated:
        raise AlertRulesError(f"{where}: {', '.join(repeated)} is given more than once (one rule per kind)")
    return specs


def _read_rules(path: Path, metrics: list[Metric]) -> dict[int, list[_RuleSpec]]:
    """Every metric's rules from the file, all checked before anything is written."""
    name = path.name
    with path.open(encoding="utf-8") as handle:
        doc = yaml.safe_load(handle)
    if not isinstance(doc, dict) or set(doc) - {"defaults", "metrics"}:
        raise AlertRulesError(f"{name}: expected a mapping with `defaults` and `metrics` only")
    defaults, overrides = doc.get("defaults") or {}, doc.get("metrics") or {}
    if not isinstance(defaults, dict) or not isinstance(overrides, dict):
        raise AlertRulesError(f"{name}: `defaults` and `metrics` map names to lists of rules")
    directions = {d.value: d for d in Direction}
    for key in defaults:
        if key not in directions:
            raise AlertRulesError(f"{name}, defaults.{key}: not a direction ({', '.join(directions)})")
    missing = [d for d in directions if d not in defaults]
    if missing:
        raise AlertRulesError(f"{name}, defaults: no rules for {', '.join(missing)} (write [] for none)")
    by_key = {m.key: m for m in metrics}
    for key in overrides:
        if key not in by_key:
            raise AlertRulesError(f"{name}, metrics.{key}: not a metric of the plan")
    by_direction = {d: _rule_list(defaults[d.value], f"{name}, defaults.{d.value}", d) for d in Direction}
    rules = {}
    for metric in metrics:
        direction = Direction(metric.direction)
        if metric.key in overrides:
            rules[metric.id] = _rule_list(overrides[metric.key], f"{name}, metrics.{metric.key}", direction)
        else:
            rules[metric.id] = by_direction[direction]
    return rules


def load_rules(*, session: Session, path: Path = RULES_FILE) -> RulesLoaded:
    """Make the store's AlertRule rows match the file, in the caller's transaction.

    The file is checked whole first (AlertRulesError, nothing written); rows are then added,
    updated or removed only where they differ, so loading twice changes nothing.
    """
    metrics = queries.all_metrics(session=session)
    wanted = _read_rules(path, metrics)
    stored: dict[tuple[int, str], AlertRule] = {
        (rule.metric_id, rule.kind): rule for rule in session.exec(select(AlertRule)).all()
    }
    added = updated = 0
    for metric_id, specs in wanted.items():
        for spec in specs:
            row = stored.pop((metric_id, spec.kind), None)
            if row is None:
                session.add(AlertRule(metric_id=metric_id, kind=spec.kind, params=spec.params, enabled=spec.enabled))
                added += 1
            elif row.params != spec.params or row.enabled != spec.enabled:
                row.params, row.enabled = dict(spec.params), spec.enabled
                session.add(row)
                updated += 1
    for row in stored.values():
        session.delete(row)
    session.flush()
    return RulesLoaded(added=added, updated=updated, removed=len(stored))


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
