"""`/pcp rules …` and `/pcp rule …`: a metric's alert rules; admins change them from Slack.

/pcp rules knife-crime                  anyone: when knife crime alerts its leads
/pcp rule knife-crime margin 7          admins: alert when more than 7% worse than the baseline
/pcp rule knife-crime threshold 2400    admins: alert past 2,400 (or `threshold baseline`)
/pcp rule knife-crime run 4             admins: alert after 4 worse months in a row
/pcp rule knife-crime spc off           admins: any rule off (or on again)
/pcp rule knife-crime reset             admins: back to data/alert_rules.yaml
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from bot.db import Store
from bot.render import Message, render
from scorecard.alert_rules import AlertRulesError, Rule, RuleChange, change_rule, reset_rules, rules_of
from scorecard.lookup import Kind, resolve

# the word an admin types -> (rule kind, its parameter; None: only on/off)
RULE_WORDS: dict[str, tuple[str, str | None]] = {
    "margin": ("baseline_margin", "margin_percent"),
    "threshold": ("threshold", "value"),
    "run": ("consecutive", "count"),
    "consecutive": ("consecutive", "count"),
    "spc": ("spc", None),
}
SWITCHES = {"on": True, "off": False}


def is_rules_command(text: str) -> bool:
    return text.split(maxsplit=1)[0].lower() in ("rule", "rules") if text.split() else False


class _Refused(Exception):
    """A change pcp will not make; `context` names the problem for templates/rules.j2."""

    def __init__(self, problem: str, **context: str) -> None:
        super().__init__(problem)
        self.context = {"problem": problem, **context}


def rules_command(text: str, *, user_id: str, admins: list[str], store: Store) -> Message:
    word, _, rest = text.strip().partition(" ")
    words = rest.split()
    if word.lower() == "rules" or not words:
        return _show(" ".join(words), store=store)
    if user_id not in admins:
        return render("not_admin", action="change alert rules")
    try:
        if words[-1].lower() == "reset":
            return _reset(" ".join(words[:-1]), user_id=user_id, store=store)
        if len(words) >= 3 and words[-2].lower() in RULE_WORDS:
            return _change(" ".join(words[:-2]), words[-2].lower(), words[-1].lower(), user_id=user_id, store=store)
        raise _Refused("usage")
    except AlertRulesError as error:  # the rule itself is invalid: the domain says why
        refusal = _Refused("invalid", reason=str(error))
    except _Refused as refused:
        refusal = refused
    return render("rules", **{"metric": None, "rules": [], "changes": [], "query": rest, **refusal.context})


def _show(query: str, *, store: Store) -> Message:
    with store.session() as session:
        resolution = resolve(query, session=session)
        if resolution.kind is not Kind.METRIC:
            return render("rules", metric=None, rules=[], changes=[], problem="unknown", query=query)
        key = resolution.key or ""
        return render("rules", metric=key, rules=rules_of(key, session=session), changes=[], problem=None, query=query)


def _exact_metric(query: str, *, store: Store) -> str:
    """A change names its metric exactly (key, name or alias): a typo must not change another metric."""
    with store.session() as session:
        resolution = resolve(query, session=session)
    if resolution.kind is not Kind.METRIC or resolution.corrected_from is not None:
        hint = ", ".join(s.command for s in resolution.suggestions) or resolution.command or ""
        raise _Refused("not_exact", typed=query, hint=hint)
    return resolution.key or ""


def _value(text: str, param: str | None) -> tuple[dict[str, Any] | None, bool]:
    """(params, enabled) from what the admin typed: a number, `baseline`, `on` or `off`."""
    if text in SWITCHES:
        return None, SWITCHES[text]
    if param is None:
        raise _Refused("spc_no_value")
    if param == "value" and text == "baseline":
        return {param: "baseline"}, True
    try:
        number = float(text.rstrip("%").replace(",", ""))
    except ValueError:
        raise _Refused("not_a_number", value=text) from None
    return {param: int(number) if number.is_integer() else number}, True


def _change(query: str, word: str, value: str, *, user_id: str, store: Store) -> Message:
    kind, param = RULE_WORDS[word]
    key = _exact_metric(query, store=store)
    params, enabled = _value(value, param)
    with store.session() as session:
        change = change_rule(key, kind, params=params, enabled=enabled, session=session, actor=user_id, now=_now())
        rules = rules_of(key, session=session)
    return _changed(key, [change], rules)


def _reset(query: str, *, user_id: str, store: Store) -> Message:
    key = _exact_metric(query, store=store)
    with store.session() as session:
        changes = reset_rules(key, session=session, actor=user_id, now=_now())
        rules = rules_of(key, session=session)
    return _changed(key, changes, rules)


def _changed(key: str, changes: list[RuleChange], rules: list[Rule]) -> Message:
    changed = [c for c in changes if c.changed]
    return render("rules", metric=key, rules=rules, changes=changed, problem=None, query="", asked=True)


def _now() -> datetime:
    return datetime.now(UTC)
