"""Alert rules from Slack: anyone sees them, admins change them with before/after in the audit log,
a change decides what alerts, and it outlasts a restart (which reloads the rules file).

Figures here are SYNTHETIC test data.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from bot.db import Store
from handlers.jobs import decide_alerts
from scorecard.alert_rules import rules_of
from scorecard.models import AlertRule, AlertRuleOverride, AuditLog
from tests.conftest import Bot, running_bot
from tests.slack_stub import SlackStub
from tests.test_imports import run_import
from tests.test_jobs import AS_OF, RISING

ADMIN = "U0ADMIN"


@pytest.fixture
def admin_bot(slack: SlackStub, fresh_store: Store) -> Iterator[Bot]:
    with running_bot(slack, fresh_store, admins=(ADMIN,)) as bot:
        yield bot


def ask(bot: Bot, text: str, *, user: str = ADMIN) -> dict:
    """One command and its reply (sent one at a time: replies of parallel commands may cross)."""
    before = len(bot.slack.calls("webhook"))
    assert bot.command(text, user=user).status == 200
    return bot.replies(before + 1)[-1]


def settings(store: Store, metric: str = "knife-crime") -> dict[str, tuple[dict, bool]]:
    with store.session() as session:
        return {r.kind: (r.params, r.enabled) for r in rules_of(metric, session=session)}


def snapshot(store: Store) -> tuple:
    with store.session() as session:
        rules = sorted((r.metric_id, r.kind, str(r.params), r.enabled) for r in session.exec(select(AlertRule)))
        overrides = len(session.exec(select(AlertRuleOverride)).all())
        audit = len(session.exec(select(AuditLog)).all())
    return rules, overrides, audit


def test_anyone_can_see_when_a_metric_alerts(admin_bot, fresh_store):
    reply = ask(admin_bot, "rules knife crime", user="U0ANALYST")
    text = reply["blocks"][0]["text"]["text"]
    assert "• more than 5% worse than the plan baseline\n• worse 3 months in a row\n• an SPC concern signal" in text
    assert ask(admin_bot, "rules nonsense-metric", user="U0ANALYST")["text"].startswith("pcp has no metric")


def test_an_admin_changes_a_margin_and_the_audit_log_has_before_and_after(admin_bot, fresh_store):
    reply = ask(admin_bot, "rule knife-crime margin 7")
    assert reply["text"] == "Alert rules for knife-crime changed."
    assert (
        "• more than 5% worse than the plan baseline → *more than 7% worse than the plan baseline*"
        in (reply["blocks"][0]["text"]["text"])
    )
    assert settings(fresh_store)["baseline_margin"] == ({"margin_percent": 7}, True)
    assert settings(fresh_store, "homicides")["baseline_margin"] == ({"margin_percent": 5}, True), "only that metric"
    with fresh_store.session() as session:
        (entry,) = session.exec(select(AuditLog).where(AuditLog.action == "change alert rule")).all()
    assert (entry.actor, entry.subject) == (ADMIN, "metric:knife-crime")
    assert entry.detail == {"rule": "baseline_margin", "before": "margin_percent 5", "after": "margin_percent 7"}

    again = ask(admin_bot, "rule knife-crime margin 7")
    assert again["text"] == "That is already how knife-crime alerts. Nothing was changed."
    audit = ask(admin_bot, "audit")["blocks"][1]["text"]["text"]
    assert audit.count("change alert rule") == 1
    assert "· `metric:knife-crime` · rule=baseline_margin: margin_percent 5 → margin_percent 7" in audit


def test_a_change_outlasts_a_restart_until_an_admin_resets_it(admin_bot, fresh_store, fresh_url):
    ask(admin_bot, "rule knife-crime spc off")
    ask(admin_bot, "rule knife-crime threshold baseline")
    restarted = Store.open(fresh_url)  # what `pcp serve` does at start: the rules file is loaded again
    try:
        assert settings(restarted)["spc"] == ({}, False)
        assert settings(restarted)["threshold"] == ({"value": "baseline"}, True)
    finally:
        restarted.engine.dispose()

    reply = ask(admin_bot, "rule knife-crime reset")
    assert "• past the plan baseline → *no such rule*" in reply["blocks"][0]["text"]["text"]
    assert settings(fresh_store) == {
        "baseline_margin": ({"margin_percent": 5}, True),
        "consecutive": ({"count": 3}, True),
        "spc": ({}, True),
    }


def test_a_changed_run_length_decides_whether_leads_are_alerted(admin_bot, fresh_store):
    run_import(fresh_store, "rising.csv", RISING)  # knife crime worse three months running
    ask(admin_bot, "rule knife-crime run 4")
    assert decide_alerts(store=fresh_store, as_of=AS_OF, now=datetime.now(UTC)).opened == 0
    ask(admin_bot, "rule knife-crime run 3")
    assert decide_alerts(store=fresh_store, as_of=AS_OF, now=datetime.now(UTC)).opened == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rule knife-crime run 1", "knife-crime: consecutive count must be a whole number, 2 or more, not 1."),
        ("rule knife-crime margin -3", "knife-crime: baseline_margin margin_percent must be a number of per cent"),
        ("rule knife-crime margin lots", "“lots” is not a number, `on` or `off`. Nothing was changed."),
        ("rule knif crime margin 3", "“knif crime” is not a metric (did you mean"),
        ("rule knife-crime spc 3", "The SPC rule has no value: write `on` or `off`. Nothing was changed."),
        ("rule cyber-dashboard run off", "cyber-dashboard has no consecutive rule to switch on or off"),
        ("rule knife-crime frob 3", "pcp did not understand “knife-crime frob 3”."),
    ],
)
def test_a_change_that_cannot_be_made_says_why_and_changes_nothing(admin_bot, fresh_store, text, expected):
    before = snapshot(fresh_store)
    reply = ask(admin_bot, text)
    assert expected in reply["text"]
    assert snapshot(fresh_store) == before


def test_only_admins_change_rules(admin_bot, fresh_store):
    before = snapshot(fresh_store)
    reply = ask(admin_bot, "rule knife-crime margin 50", user="U0ANALYST")
    assert reply["text"].startswith("Only pcp admins can change alert rules. Nothing was changed.")
    assert snapshot(fresh_store) == before
