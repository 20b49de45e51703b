"""Leads: who owns a metric or priority. Anyone may look; only admins may change; all recorded."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import select

from bot.db import Store
from scorecard.leads import LeadError, add_lead, leads, leads_of_metric, remove_lead, seed_leads, subject_for
from scorecard.models import AuditLog, Lead
from tests.conftest import Bot, running_bot
from tests.slack_stub import SlackStub

ADMIN = "U0ADMIN"


def test_adding_and_removing_leads_is_idempotent_and_audited(fresh_store):
    with fresh_store.session() as session:
        knife = subject_for("knife crime", session=session)
        assert add_lead(knife, "U0LEAD", session=session, actor=ADMIN) is True
        assert add_lead(knife, "U0LEAD", session=session, actor=ADMIN) is False
    with fresh_store.session() as session:
        assert [(lead.subject, lead.user_id) for lead in leads(session=session)] == [("metric:knife-crime", "U0LEAD")]
        assert remove_lead(knife, "U0LEAD", session=session, actor=ADMIN) is True
        assert remove_lead(knife, "U0LEAD", session=session, actor=ADMIN) is False
    with fresh_store.session() as session:
        audit = session.exec(select(AuditLog).order_by(AuditLog.id)).all()
        assert [(a.actor, a.action, a.subject, a.detail) for a in audit] == [
            (ADMIN, "add lead", "metric:knife-crime", {"user": "U0LEAD"}),
            (ADMIN, "remove lead", "metric:knife-crime", {"user": "U0LEAD"}),
        ]


def test_a_metric_is_heard_by_its_leads_and_its_prioritys_leads_once_each(fresh_store):
    with fresh_store.session() as session:
        add_lead(subject_for("knife-crime", session=session), "U0KNIFE", session=session, actor=ADMIN)
        add_lead(subject_for("priority 3", session=session), "U0HEAD", session=session, actor=ADMIN)
        add_lead(subject_for("priority 3", session=session), "U0KNIFE", session=session, actor=ADMIN)
    with fresh_store.session() as session:
        assert leads_of_metric("knife-crime", session=session) == ["U0KNIFE", "U0HEAD"]
        assert leads_of_metric("homicides", session=session) == ["U0HEAD", "U0KNIFE"]
        assert leads_of_metric("ksi", session=session) == ["U0HEAD", "U0KNIFE"]
        assert leads_of_metric("dvpo", session=session) == []


@pytest.mark.parametrize(
    ("subject", "user", "says"), [("knif", "U0A", "did you mean knife-crime"), ("ksi", "bob", "not a Slack user id")]
)
def test_what_cannot_be_understood_is_refused(fresh_store, subject, user, says):
    with pytest.raises(LeadError, match=says), fresh_store.session() as session:
        add_lead(subject_for(subject, session=session), user, session=session, actor=ADMIN)


def test_leads_are_seeded_from_the_optional_file_without_removing_anyone(fresh_store, tmp_path):
    file = tmp_path / "leads.yaml"
    file.write_text("leads:\n  knife-crime: [U0ONE, U0TWO]\n  priority 1: [U0THREE]\n")
    with fresh_store.session() as session:
        assert seed_leads(session=session, path=file) == 3
    with fresh_store.session() as session:
        assert seed_leads(session=session, path=file) == 0
        assert len(session.exec(select(Lead)).all()) == 3


@pytest.fixture
def admin_bot(slack: SlackStub, fresh_store: Store) -> Iterator[Bot]:
    with running_bot(slack, fresh_store, admins=(ADMIN,)) as bot:
        yield bot


def test_an_admin_adds_a_lead_by_mentioning_them(admin_bot, fresh_store):
    admin_bot.command("owner knife-crime <@U0LEAD|lead.person>", user=ADMIN)
    (reply,) = admin_bot.replies(1)
    assert reply["response_type"] == "ephemeral"
    assert "Added <@U0LEAD> as a lead of *Knife crime*." in json.dumps(reply["blocks"])
    with fresh_store.session() as session:
        assert leads_of_metric("knife-crime", session=session) == ["U0LEAD"]


def test_anyone_may_list_but_not_change(admin_bot, fresh_store):
    admin_bot.command("owner knife-crime <@U0SNEAKY|me>", user="U0ANALYST")
    (refusal,) = admin_bot.replies(1)
    assert refusal["text"].startswith("Only pcp admins can change who leads a metric. Nothing was changed.")
    admin_bot.command("owner list", user="U0ANALYST")
    listing = admin_bot.replies(2)[1]
    assert listing["text"] == "No leads are set yet."
    with fresh_store.session() as session:
        assert leads(session=session) == []


def test_slack_escaped_text_is_read_once_and_never_echoed_live(admin_bot):
    admin_bot.command("&lt;!channel&gt; knife &amp; crime")  # how Slack sends it with should_escape
    (reply,) = admin_bot.replies(1)
    raw = json.dumps(reply)
    assert "<!channel>" not in raw and "&amp;lt;" not in raw


def test_cli_owner_commands(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PCP_"))}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'pcp.db'}"

    def pcp(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", "owner", *args], env=env, capture_output=True, text=True
        )

    assert (
        pcp("add", "ksi", "U0ROADS").stdout.strip()
        == "U0ROADS added as a lead of Killed or seriously injured on the roads."
    )
    assert pcp("list").stdout.strip() == "metric:ksi: U0ROADS"
    bad = pcp("add", "ksi", "roads-team")
    assert bad.returncode == 1 and "not a Slack user id" in bad.stderr
    assert pcp("remove", "ksi", "U0ROADS").returncode == 0
    assert pcp("list", "ksi").stdout.strip() == "Nobody leads Killed or seriously injured on the roads yet."
