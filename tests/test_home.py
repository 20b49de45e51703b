"""The Home tab: the scorecard, published when opened and refreshed after imports."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from slack_sdk.models.views import View
from sqlmodel import select

from bot.db import Store
from scorecard.leads import add_lead, subject_for
from scorecard.models import Metric
from tests.conftest import Bot, running_bot
from tests.slack_stub import SlackStub
from tests.test_slack_import import GOOD, share

ADMIN = "U0ADMIN"


@pytest.fixture
def admin_bot(slack: SlackStub, fresh_store: Store) -> Iterator[Bot]:
    with running_bot(slack, fresh_store, admins=(ADMIN,)) as bot:
        yield bot


def open_home(bot: Bot, user: str, tab: str = "home") -> None:
    event = {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": tab, "event_ts": "1700000300.1"}
    assert bot.event(event).status == 200


def published(slack: SlackStub, count: int) -> list[dict]:
    return [call.body for call in slack.wait_for("views.publish", count=count, timeout=10)]


def test_opening_home_publishes_the_scorecard(admin_bot, fresh_store):
    with fresh_store.session() as session:
        add_lead(subject_for("ksi", session=session), "U0ROADS", session=session, actor="test")
    open_home(admin_bot, "U0ROADS")
    (body,) = published(admin_bot.slack, 1)
    assert body["user_id"] == "U0ROADS"
    view = body["view"] if isinstance(body["view"], dict) else json.loads(body["view"])
    View(**view).to_dict()  # a valid Home view: at most 100 blocks, every block valid
    raw = json.dumps(view, ensure_ascii=False)
    assert view["blocks"][0]["text"]["text"] == "Police and Crime Plan scorecard"
    assert "no newer figures imported yet" in raw and "*You lead:* ksi" in raw
    with fresh_store.session() as session:
        for metric in session.exec(select(Metric)).all():
            assert metric.short_name in raw


def test_the_messages_tab_publishes_nothing(admin_bot):
    open_home(admin_bot, "U0ANY", tab="messages")
    assert admin_bot.event({"type": "app_home_opened", "user": "U0ANY", "tab": "messages"}).status == 200
    with pytest.raises(AssertionError):
        admin_bot.slack.wait_for("views.publish", timeout=1)


def test_an_import_refreshes_the_home_of_everyone_who_opened_it(admin_bot):
    open_home(admin_bot, "U0ANALYST")
    published(admin_bot.slack, 1)
    share(admin_bot, "months.csv", GOOD)
    _, refreshed = published(admin_bot.slack, 2)
    assert refreshed["user_id"] == "U0ANALYST"
    assert "Figures last imported" in json.dumps(refreshed["view"])
