"""Alert rules: which rules each metric has, from data/alert_rules.yaml and admins' changes.

The file gives every metric its rules (by direction, or listed for the metric). An admin can
change one metric's rule from Slack (`/pcp rule knife-crime margin 7`): that change is kept as
an override, which the file does not undo when it is loaded again at start, until an admin
resets it. `load_rules` writes the result, file plus overrides, into the AlertRule rows that
evaluation reads. Every change from Slack is audited with its before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import Session, select

from scorecard import queries
from scorecard.alerts import BASELINE, KINDS
from scorecard.models import AlertRule, AlertRuleOverride, AuditLog, Metric
from scorecard.status import Direction

RULES_FILE = Path(__file__).resolve().parent.parent / "data" / "alert_rules.yaml"


class AlertRulesError(ValueError):
    """The rules file (or a change to a rule) is wrong; the message names where and the problem."""


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
    whole = _is_number(value) and isinstance(value, int)
    return None if whole and value >= 2 else "must be a whole number, 2 or more"


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
    """Make the store's AlertRule rows match the file and admins' overrides, in the caller's transaction.

    The file is checked whole first (AlertRulesError, nothing written); rows are then added,
    updated or removed only where they differ, so loading twice changes nothing.
    """
    metrics = queries.all_metrics(session=session)
    wanted = _read_rules(path, metrics)
    for override in session.exec(select(AlertRuleOverride)).all():
        others = [spec for spec in wanted.get(override.metric_id, []) if spec.kind != override.kind]
        wanted[override.metric_id] = [*others, _RuleSpec(override.kind, dict(override.params), override.enabled)]
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


# --- changing a rule from Slack --------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One of a metric's rules as evaluation uses it, and who changed it from Slack, if anyone."""

    kind: str
    params: dict[str, Any]
    enabled: bool
    set_by: str | None = None
    set_at: datetime | None = None


@dataclass(frozen=True)
class RuleChange:
    """Before and after of one rule (None: the metric had, or has, no rule of that kind)."""

    metric: str
    kind: str
    before: Rule | None
    after: Rule | None

    @property
    def changed(self) -> bool:
        return _setting(self.before) != _setting(self.after)


def _setting(rule: Rule | None) -> tuple[dict[str, Any], bool] | None:
    return None if rule is None else (rule.params, rule.enabled)


def rules_of(metric_key: str, *, session: Session) -> list[Rule]:
    """The metric's rules in evaluation order, each with its override's author if changed from Slack."""
    metric = _metric(metric_key, session=session)
    rows = session.exec(select(AlertRule).where(AlertRule.metric_id == metric.id)).all()
    overrides = {
        o.kind: o for o in session.exec(select(AlertRuleOverride).where(AlertRuleOverride.metric_id == metric.id))
    }
    rules = []
    for row in sorted(rows, key=lambda r: KINDS.index(r.kind)):
        override = overrides.get(row.kind)
        by, at = (override.set_by, override.set_at) if override else (None, None)
        rules.append(Rule(row.kind, dict(row.params), row.enabled, set_by=by, set_at=at))
    return rules


def change_rule(
    metric_key: str,
    kind: str,
    *,
    params: dict[str, Any] | None,
    enabled: bool,
    session: Session,
    actor: str,
    now: datetime,
    path: Path = RULES_FILE,
) -> RuleChange:
    """Set one rule of one metric (params None: keep its values, e.g. to switch it off or on).

    Checked exactly as the file is (AlertRulesError, nothing written); kept as an override,
    applied to the AlertRule rows at once and audited with before and after. Setting what is
    already in force changes and records nothing.
    """
    metric = _metric(metric_key, session=session)
    before = next((r for r in rules_of(metric.key, session=session) if r.kind == kind), None)
    if params is None:
        if before is None:
            raise AlertRulesError(f"{metric.key} has no {kind} rule to switch on or off; give it a value")
        params = before.params
    spec = _rule_spec({"kind": kind, **params, "enabled": enabled}, metric.key, Direction(metric.direction))
    if before is not None and (before.params, before.enabled) == (spec.params, spec.enabled):
        return RuleChange(metric.key, kind, before, before)
    statement = select(AlertRuleOverride).where(
        AlertRuleOverride.metric_id == metric.id, AlertRuleOverride.kind == kind
    )
    override = session.exec(statement).first() or AlertRuleOverride(metric_id=metric.id or 0, kind=kind, set_by=actor)
    override.params, override.enabled, override.set_by, override.set_at = dict(spec.params), spec.enabled, actor, now
    session.add(override)
    session.flush()
    load_rules(session=session, path=path)
    after = Rule(kind, dict(spec.params), spec.enabled, set_by=actor, set_at=now)
    change = RuleChange(metric.key, kind, before, after)
    _audit([change], session=session, actor=actor, now=now)
    return change


def reset_rules(
    metric_key: str, *, session: Session, actor: str, now: datetime, path: Path = RULES_FILE
) -> list[RuleChange]:
    """Drop the metric's overrides: its rules are the file's again. Returns what that changed."""
    metric = _metric(metric_key, session=session)
    before = {r.kind: r for r in rules_of(metric.key, session=session)}
    for override in session.exec(select(AlertRuleOverride).where(AlertRuleOverride.metric_id == metric.id)).all():
        session.delete(override)
    session.flush()
    load_rules(session=session, path=path)
    after = {r.kind: r for r in rules_of(metric.key, session=session)}
    changes = [RuleChange(metric.key, k, before.get(k), after.get(k)) for k in KINDS if k in before or k in after]
    changes = [c for c in changes if c.changed]
    _audit(changes, session=session, actor=actor, now=now)
    return changes


def _metric(metric_key: str, *, session: Session) -> Metric:
    metric = queries.metric_by_key(metric_key, session=session)
    if metric is None or metric.id is None:
        raise AlertRulesError(f"“{metric_key}” is not a metric of the plan")
    return metric


def _audit(changes: list[RuleChange], *, session: Session, actor: str, now: datetime) -> None:
    for change in changes:
        detail = {"rule": change.kind, "before": _described(change.before), "after": _described(change.after)}
        session.add(
            AuditLog(at=now, actor=actor, action="change alert rule", subject=f"metric:{change.metric}", detail=detail)
        )


def _described(rule: Rule | None) -> str:
    if rule is None:
        return "none"
    values = ", ".join(f"{name} {value}" for name, value in rule.params.items())
    if rule.enabled:
        return values or "on"
    return f"off ({values})" if values else "off"
