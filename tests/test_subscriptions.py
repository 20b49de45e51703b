"""/pcp snooze and /pcp digest from Slack: what a lead hears, and where the digest goes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlmodel import select

from bot.db import Store
from handlers.jobs import digest_channels
from scorecard.alerts import is_snoozed
from scorecard.models import AuditLog
from tests.conftest import Bot, running_bot
from tests.slack_stub import SlackStub

ADMIN = "U0ADMIN"


@pytest.fixture
def admin_bot(slack: SlackStub, fresh_store: Store) -> Iterator[Bot]:
    with running_bot(slack, fresh_store, admins=(ADMIN,)) as bot:
        yield bot


def snoozed(store: Store, user: str) -> bool:
    with store.session() as session:
        return is_snoozed("knife-crime", user, session=session, now=datetime.now(UTC))


def test_a_lead_snoozes_and_unsnoozes_their_own_alerts(admin_bot, fresh_store):
    admin_bot.command("snooze knife crime 12", user="U0KNIFE")
    (reply,) = admin_bot.replies(1)
    assert reply["text"].startswith("No alerts about knife-crime will reach you until")
    assert snoozed(fresh_store, "U0KNIFE") and not snoozed(fresh_store, "U0HEAD")
    admin_bot.command("unsnooze knife-crime", user="U0KNIFE")
    assert admin_bot.replies(2)[1]["text"] == "Alerts about knife-crime will reach you again."
    assert not snoozed(fresh_store, "U0KNIFE")


@pytest.mark.parametrize("text", ["snooze xyzzy", "snooze knife-crime 99"])
def test_a_snooze_that_cannot_be_understood_changes_nothing(admin_bot, fresh_store, text):
    admin_bot.command(text, user="U0KNIFE")
    (reply,) = admin_bot.replies(1)
    assert reply["text"].startswith("Nothing changed")
    assert not snoozed(fresh_store, "U0KNIFE")


def test_an_admin_chooses_the_digest_channel_and_it_is_recorded(admin_bot, fresh_store):
    admin_bot.command("digest here", user=ADMIN)
    (reply,) = admin_bot.replies(1)
    assert "<#C0PERF> will get the weekly digest" in json.dumps(reply["blocks"])
    assert digest_channels(store=fresh_store, configured=["C0BOARD"]) == ["C0BOARD", "C0PERF"]
    admin_bot.command("digest stop", user=ADMIN)
    admin_bot.replies(2)
    assert digest_channels(store=fresh_store, configured=[]) == []
    with fresh_store.session() as session:
        actions = [(a.actor, a.action, a.subject) for a in session.exec(select(AuditLog).order_by(AuditLog.id))]
    assert actions == [(ADMIN, "add digest channel", "C0PERF"), (ADMIN, "remove digest channel", "C0PERF")]


def test_only_admins_choose_the_digest_channel_but_anyone_may_preview(admin_bot, fresh_store):
    admin_bot.command("digest here", user="U0ANALYST")
    (refusal,) = admin_bot.replies(1)
    assert refusal["text"].startswith("Only pcp admins can choose where the weekly digest is posted.")
    assert digest_channels(store=fresh_store, configured=[]) == []
    admin_bot.command("digest", user="U0ANALYST")
    preview = admin_bot.replies(2)[1]
    assert preview["response_type"] == "ephemeral"
    assert preview["blocks"][0]["text"]["text"] == "Police and Crime Plan – weekly digest"


def test_anyone_can_follow_a_metric_and_then_gets_its_alerts(admin_bot, fresh_store, slack):
    from slack_sdk import WebClient

    from handlers.jobs import decide_alerts, deliver
    from tests.conftest import BOT_TOKEN
    from tests.test_imports import run_import
    from tests.test_jobs import AS_OF, RISING

    admin_bot.command("follow knife crime", user="U0FAN")
    (followed,) = admin_bot.replies(1)
    admin_bot.command("following", user="U0FAN")
    listing = admin_bot.replies(2)[1]
    assert followed["text"] == "You will get alerts about knife-crime as direct messages."
    assert listing["text"] == "You follow: knife-crime."

    run_import(fresh_store, "rising.csv", RISING)
    decide_alerts(store=fresh_store, as_of=AS_OF, now=datetime.now(UTC))
    deliver(store=fresh_store, client=WebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[]), admins=[])
    assert [m["text"] for m in slack.messages if m["channel"] == "D0FAN"] == [
        "Worse: Knife crime, Apr 2024 – worse month after month."
    ]
    admin_bot.command("unfollow knife-crime", user="U0FAN")
    assert admin_bot.replies(3)[2]["text"] == "You will no longer get alerts about knife-crime."


def test_the_audit_log_shows_admins_who_changed_what(admin_bot, fresh_store):
    admin_bot.command("owner knife-crime <@U0LEAD|lead>", user=ADMIN)
    admin_bot.replies(1)
    admin_bot.command("audit", user=ADMIN)
    audit = admin_bot.replies(2)[1]
    raw = json.dumps(audit["blocks"], ensure_ascii=False)
    assert "<@U0ADMIN> · add lead · `metric:knife-crime` · user=U0LEAD" in raw
    admin_bot.command("audit", user="U0ANALYST")
    assert admin_bot.replies(3)[2]["text"].startswith("Only pcp admins can see the audit log.")


@pytest.mark.parametrize("weeks", [1, 4, 12])
def test_the_snooze_buttons_on_an_alert_snooze_the_clicker(admin_bot, fresh_store, weeks):
    assert admin_bot.click(f"pcp_snooze_{weeks}", "knife-crime", user="U0KNIFE").status == 200
    (reply,) = admin_bot.replies(1)
    assert reply["replace_original"] is False, "the alert itself stays"
    assert reply["text"].startswith("No alerts about knife-crime will reach you until")
    assert snoozed(fresh_store, "U0KNIFE") and not snoozed(fresh_store, "U0OTHER")


def test_the_follow_button_on_a_card_follows_and_its_reply_can_unfollow(admin_bot, fresh_store):
    from scorecard.leads import followed_by

    admin_bot.command("knife crime", user="U0FAN")
    (card,) = admin_bot.replies(1)
    buttons = [e for b in card["blocks"] if b["type"] == "actions" for e in b["elements"]]
    (follow,) = [b for b in buttons if b["action_id"] == "pcp_follow"]
    assert (follow["text"]["text"], follow["value"]) == ("Follow alerts", "knife-crime")

    assert admin_bot.click("pcp_follow", follow["value"], user="U0FAN").status == 200
    followed = admin_bot.replies(2)[1]
    assert followed["text"] == "You will get alerts about knife-crime as direct messages."
    assert followed["replace_original"] is False, "the card stays"
    with fresh_store.session() as session:
        assert followed_by("U0FAN", session=session) == ["knife-crime"]
        assert followed_by("U0ANALYST", session=session) == []
    (unfollow,) = [e for b in followed["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert (unfollow["action_id"], unfollow["value"]) == ("pcp_unfollow", "knife-crime")

    admin_bot.click("pcp_unfollow", unfollow["value"], user="U0FAN")
    assert admin_bot.replies(3)[2]["text"] == "You will no longer get alerts about knife-crime."
    with fresh_store.session() as session:
        assert followed_by("U0FAN", session=session) == []
