"""Acknowledging an alert: a signed click opens a modal, a signed view_submission records the
comment and posts it under every copy of the alert, exactly once, even through a Slack outage.

Figures here are SYNTHETIC test data.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk import WebClient
from slack_sdk.models.blocks import Block
from sqlmodel import col, select

from bot.db import Store
from handlers.jobs import decide_alerts, deliver
from scorecard.leads import add_lead, subject_for
from scorecard.models import AlertAcknowledgement, Outbox
from tests.conftest import BOT_TOKEN, Bot, running_bot
from tests.slack_stub import SlackStub
from tests.test_imports import run_import
from tests.test_jobs import AS_OF, RISING

ADMIN, KNIFE_LEAD, PRIORITY_LEAD = "U0ADMIN", "U0KNIFE", "U0HEAD"


@pytest.fixture
def admin_bot(slack: SlackStub, fresh_store: Store) -> Iterator[Bot]:
    with running_bot(slack, fresh_store, admins=(ADMIN,)) as bot:
        yield bot


@pytest.fixture
def alerts(fresh_store: Store, slack: SlackStub) -> dict[str, dict]:
    """Knife crime worsens; each of its two leads has the alert as a DM. Returns user -> that message."""
    with fresh_store.session() as session:
        add_lead(subject_for("knife-crime", session=session), KNIFE_LEAD, session=session, actor="test")
        add_lead(subject_for("priority 3", session=session), PRIORITY_LEAD, session=session, actor="test")
    run_import(fresh_store, "rising.csv", RISING)
    decide_alerts(store=fresh_store, as_of=AS_OF, now=datetime.now(UTC))
    deliver(store=fresh_store, client=WebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[]), admins=[])
    return {
        user: next(m for m in slack.messages if m["channel"] == "D" + user[1:]) for user in (KNIFE_LEAD, PRIORITY_LEAD)
    }


def ack_button(message: dict) -> dict:
    buttons = [e for block in message["blocks"] if block["type"] == "actions" for e in block["elements"]]
    return next(b for b in buttons if b["action_id"] == "pcp_ack")


def open_modal(bot: Bot, slack: SlackStub, message: dict, user: str) -> dict:
    assert bot.click("pcp_ack", ack_button(message)["value"], user=user, message=message).status == 200
    slack.wait_for("views.open")
    return slack.modals[-1]


def acknowledgements(store: Store) -> list[AlertAcknowledgement]:
    with store.session() as session:
        return list(session.exec(select(AlertAcknowledgement)))


def queued_statuses(store: Store) -> list[str]:
    with store.session() as session:
        return [row.status for row in session.exec(select(Outbox).where(col(Outbox.key).contains(":ack:")))]


def thread_replies(slack: SlackStub, parent: dict) -> list[dict]:
    return [m for m in slack.messages if m["thread_ts"] == parent["ts"] and m["channel"] == parent["channel"]]


def test_the_alert_button_opens_a_valid_modal_for_that_alert(admin_bot, slack, alerts):
    message = alerts[KNIFE_LEAD]
    modal = open_modal(admin_bot, slack, message, KNIFE_LEAD)
    assert modal["callback_id"] == "pcp_ack"
    assert modal["private_metadata"] == ack_button(message)["value"] == "alert:knife-crime:consecutive::2024-04-30"
    assert (modal["title"]["text"], modal["submit"]["text"]) == ("Acknowledge alert", "Acknowledge")
    assert all(Block.parse(b) is not None for b in modal["blocks"])
    (box,) = [b for b in modal["blocks"] if b["type"] == "input"]
    assert (box["block_id"], box["element"]["action_id"], box["element"]["max_length"]) == ("ack", "comment", 500)
    assert "Knife crime" in modal["blocks"][0]["text"]["text"]


@pytest.mark.parametrize("comment", ["", "   ", "x" * 501])
def test_an_empty_or_overlong_comment_is_shown_under_the_box_and_nothing_is_kept(
    admin_bot, slack, fresh_store, alerts, comment
):
    modal = open_modal(admin_bot, slack, alerts[KNIFE_LEAD], KNIFE_LEAD)
    reply = admin_bot.submit(modal, {"ack": {"comment": comment}}, user=KNIFE_LEAD)
    answer = json.loads(reply.body)
    assert reply.status == 200 and answer["response_action"] == "errors"
    assert list(answer["errors"]) == ["ack"] and answer["errors"]["ack"]
    assert acknowledgements(fresh_store) == []
    assert len(slack.messages) == 2, "nothing posted beyond the two alerts"


def test_a_comment_is_recorded_and_posted_under_every_copy_of_the_alert(admin_bot, slack, fresh_store, alerts):
    modal = open_modal(admin_bot, slack, alerts[KNIFE_LEAD], KNIFE_LEAD)
    comment = "Extra patrols in Bradford from Monday <!channel>\nReview at Thursday's meeting"
    reply = admin_bot.submit(modal, {"ack": {"comment": comment}}, user=KNIFE_LEAD)
    assert (reply.status, reply.body) == (200, ""), "the modal closes"

    slack.wait_for("chat.postMessage", count=4)
    for user, parent in alerts.items():
        (posted,) = thread_replies(slack, parent)
        text = posted["blocks"][0]["text"]["text"]
        assert text.startswith(":white_check_mark: <@U0KNIFE> acknowledged this alert"), user
        assert "&gt; Extra patrols in Bradford from Monday &lt;!channel&gt;\n&gt; Review at Thursday's meeting" in text
        assert "<!channel>" not in json.dumps(posted)
    (kept,) = acknowledgements(fresh_store)
    assert (kept.user_id, kept.comment) == (KNIFE_LEAD, comment)

    admin_bot.command("audit", user=ADMIN)
    audit = json.dumps(admin_bot.replies(1)[0]["blocks"], ensure_ascii=False)
    assert "<@U0KNIFE> · acknowledge alert · `alert:knife-crime:consecutive::2024-04-30`" in audit
    assert "&lt;!channel&gt;" in audit and "<!channel>" not in audit, audit


def test_an_acknowledgement_survives_a_slack_outage_and_is_posted_once(admin_bot, slack, fresh_store, alerts):
    modal = open_modal(admin_bot, slack, alerts[PRIORITY_LEAD], PRIORITY_LEAD)
    for _ in range(2):
        slack.fail("chat.postMessage", status=429, retry_after=1)
    assert admin_bot.submit(modal, {"ack": {"comment": "Looking into it"}}, user=PRIORITY_LEAD).status == 200
    slack.wait_for("chat.postMessage", count=4)  # the two alerts, then two refused attempts
    assert all(thread_replies(slack, parent) == [] for parent in alerts.values())
    deadline = time.monotonic() + 5
    while (statuses := queued_statuses(fresh_store)) != ["pending", "pending"] and time.monotonic() < deadline:
        time.sleep(0.05)  # the refused attempts are being recorded
    assert statuses == ["pending", "pending"], "kept for a later attempt, not dropped"

    client = WebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[])
    for minutes in (5, 10):  # later deliveries, after the backoff; the second finds nothing left to send
        deliver(store=fresh_store, client=client, admins=[], now=datetime.now(UTC) + timedelta(minutes=minutes))
    for parent in alerts.values():
        (posted,) = thread_replies(slack, parent)
        assert posted["text"] == "<@U0HEAD> acknowledged this alert: Looking into it"
