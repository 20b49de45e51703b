"""Alerts and digests end to end: decided once, queued with the decision, delivered exactly once.

Figures here are SYNTHETIC test data.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from slack_sdk import WebClient

from handlers.jobs import decide_alerts, decide_digest, deliver, preview_alerts
from scorecard.alerts import snooze
from scorecard.leads import add_lead, subject_for
from tests.conftest import BOT_TOKEN
from tests.test_imports import csv_bytes, run_import


def later(**delta: float) -> datetime:
    """The real clock (outbox rows are stamped with it), moved on when a test needs time to pass."""
    return datetime.now(UTC) + timedelta(**delta)


NOW = later()  # decisions; figures are judged as of AS_OF
AS_OF = date(2024, 6, 3)
RISING = csv_bytes(*[f"knife-crime,,2024-0{m},{180 + 10 * m},SYNTHETIC," for m in range(1, 5)])  # 3 rises in a row


@pytest.fixture
def client(slack) -> WebClient:
    return WebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[])


@pytest.fixture
def leads(fresh_store):
    with fresh_store.session() as session:
        add_lead(subject_for("knife-crime", session=session), "U0KNIFE", session=session, actor="test")
        add_lead(subject_for("priority 3", session=session), "U0HEAD", session=session, actor="test")
    return ["U0KNIFE", "U0HEAD"]


def dms(slack, user: str) -> list[dict]:
    return [m for m in slack.messages if m["channel"] == "D" + user[1:]]


def test_a_worsening_metric_sends_each_lead_one_direct_message(fresh_store, slack, client, leads):
    run_import(fresh_store, "rising.csv", RISING)
    decided = decide_alerts(store=fresh_store, as_of=AS_OF, now=NOW)
    assert (decided.opened, decided.messages) == (1, 2), "one alert (worse 3 months running), one DM per lead"
    deliver(store=fresh_store, client=client, admins=[], now=later())
    for user in leads:
        texts = [m["text"] for m in dms(slack, user)]
        assert "Worse: Knife crime, Apr 2024 – worse month after month." in texts
        assert len(texts) == decided.opened
    assert {c.body["users"] for c in slack.calls("conversations.open")} == set(leads)

    again = decide_alerts(store=fresh_store, as_of=AS_OF, now=NOW + timedelta(hours=1))
    deliver(store=fresh_store, client=client, admins=[], now=later(hours=1))
    assert again.messages == 0 and len(dms(slack, "U0KNIFE")) == decided.opened, "never the same alert twice"


def test_a_snoozed_lead_hears_nothing(fresh_store, slack, client, leads):
    with fresh_store.session() as session:
        snooze("knife-crime", "U0KNIFE", until=NOW + timedelta(weeks=4), session=session)
    run_import(fresh_store, "rising.csv", RISING)
    decide_alerts(store=fresh_store, as_of=AS_OF, now=NOW)
    deliver(store=fresh_store, client=client, admins=[], now=later())
    assert dms(slack, "U0KNIFE") == [] and dms(slack, "U0HEAD")


def test_recovery_is_a_reply_in_the_alerts_thread_once(fresh_store, slack, client, leads):
    run_import(fresh_store, "rising.csv", RISING)
    decide_alerts(store=fresh_store, as_of=AS_OF, now=NOW)
    deliver(store=fresh_store, client=client, admins=[], now=later())
    (alert,) = [m for m in dms(slack, "U0KNIFE") if "month after month" in m["text"]]
    run_import(fresh_store, "may.csv", csv_bytes("knife-crime,,2024-05,150,SYNTHETIC,"))
    for hour in (1, 2):
        decide_alerts(store=fresh_store, as_of=AS_OF, now=NOW + timedelta(hours=hour))
        deliver(store=fresh_store, client=client, admins=[], now=later(hours=hour))
    replies = [m for m in dms(slack, "U0KNIFE") if m.get("thread_ts") == alert["ts"]]
    assert [m["text"] for m in replies] == [
        "Recovered: Knife crime is no longer worse month after month – 150 for May 2024."
    ]


def test_rate_limits_and_server_errors_delay_alerts_but_never_drop_or_double_them(fresh_store, slack, client, leads):
    run_import(fresh_store, "rising.csv", RISING)
    decided = decide_alerts(store=fresh_store, as_of=AS_OF, now=NOW)
    slack.fail("chat.postMessage", status=429, retry_after=5)
    slack.fail("chat.postMessage", status=500, times=2)
    for minute in range(0, 120, 5):
        deliver(store=fresh_store, client=client, admins=[], now=later(minutes=minute))
    for user in leads:
        keys = [m["metadata"]["event_payload"]["key"] for m in dms(slack, user)]
        assert len(keys) == len(set(keys)) == decided.opened


def test_the_digest_goes_to_each_channel_once_a_week(fresh_store, slack, client):
    assert decide_digest(store=fresh_store, channels=["C0PERF", "C0BOARD"], now=NOW) == 2
    assert decide_digest(store=fresh_store, channels=["C0PERF", "C0BOARD"], now=NOW + timedelta(hours=3)) == 0
    deliver(store=fresh_store, client=client, admins=[], now=later(hours=3))
    assert sorted(m["channel"] for m in slack.messages) == ["C0BOARD", "C0PERF"]
    assert decide_digest(store=fresh_store, channels=["C0PERF"], now=NOW + timedelta(weeks=1)) == 1


def test_preview_lists_findings_and_who_would_hear(fresh_store, leads):
    run_import(fresh_store, "rising.csv", RISING)
    findings = preview_alerts(store=fresh_store, as_of=AS_OF)
    assert ("knife-crime", "consecutive", leads) in [(f.metric, f.rule, who) for f, who in findings]


def test_an_import_that_makes_a_metric_worse_queues_its_alerts_at_once(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PCP_"))}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'pcp.db'}"
    file = tmp_path / "rising.csv"
    file.write_bytes(RISING)

    def pcp(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, capture_output=True, text=True)

    assert pcp("owner", "add", "knife-crime", "U0KNIFE").returncode == 0
    first = pcp("import", str(file))
    assert "alert(s) opened: 1 message(s) queued for the leads." in first.stdout, first.stdout + first.stderr
    again = pcp("import", str(file))
    assert "alert(s) opened" not in again.stdout, "the same figures never alert twice"


def test_cli_posting_sends_each_digest_and_alert_once(tmp_path, slack):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PCP_"))}
    env |= {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'pcp.db'}",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_API_URL": slack.api_url,
        "PCP_DIGEST_CHANNELS": "C0PERF,C0BOARD",
    }
    file = tmp_path / "rising.csv"
    file.write_bytes(RISING)

    def pcp(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "bot.cli", *args], env=env, capture_output=True, text=True)

    assert pcp("owner", "add", "knife-crime", "U0KNIFE").returncode == 0
    assert pcp("import", str(file)).returncode == 0
    posted = pcp("alerts", "--post")
    assert posted.stdout.strip() == "0 alerts opened, 0 recovered; 1 messages sent.", posted.stderr
    assert [m["text"] for m in dms(slack, "U0KNIFE")] == ["Worse: Knife crime, Apr 2024 – worse month after month."]

    first, second = pcp("digest", "--post"), pcp("digest", "--post")
    assert first.stdout.strip().startswith("Digest queued for 2 of 2 channels"), first.stderr
    assert second.stdout.strip().startswith("Digest queued for 0 of 2 channels")
    digests = [m for m in slack.messages if m["channel"].startswith("C") and not m["thread_ts"]]
    assert sorted(m["channel"] for m in digests) == ["C0BOARD", "C0PERF"]
    charts = [(m["channel"], m["thread_ts"], m["files"][0]["name"]) for m in slack.messages if m.get("files")]
    assert sorted((c, t) for c, t, _ in charts) == sorted((d["channel"], d["ts"]) for d in digests), "one per digest"
    assert all(name.startswith("knife-crime-chart-") for _, _, name in charts)
    assert BOT_TOKEN not in first.stderr + second.stderr + posted.stderr
