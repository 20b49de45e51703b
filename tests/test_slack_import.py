"""Admins import figures by sharing a CSV or XLSX with pcp; the answer comes in the thread.

Figures in these files are SYNTHETIC test data.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from sqlmodel import func, select

from bot.db import Store
from scorecard.models import AuditLog, Reading
from tests.conftest import Bot, running_bot
from tests.slack_stub import SlackStub

ADMIN, ANALYST = "U0ADMIN", "U0ANALYST"
GOOD = b"metric,period,value,source\nknife-crime,2024-01,190,SYNTHETIC\nknife-crime,2024-02,205,SYNTHETIC\n"
BAD = b"metric,period,value\nknif crime,2024-01,190\nknife-crime,2024-13,5\n"


@pytest.fixture
def admin_bot(slack: SlackStub, fresh_store: Store) -> Iterator[Bot]:
    with running_bot(slack, fresh_store, admins=(ADMIN,)) as bot:
        yield bot


def share(bot: Bot, name: str, content: bytes, *, user: str = ADMIN, text: str = "") -> dict:
    """The message event Slack sends when someone shares a file in a DM with the bot."""
    file = bot.slack.host_file(name, content, user=user)
    event = {
        "type": "message",
        "subtype": "file_share",
        "channel": "D0PCP",
        "channel_type": "im",
        "user": user,
        "text": text,
        "ts": "1700000100.000100",
        "files": [{"id": file["id"], "name": name}],
    }
    assert bot.event(event).status == 200
    return event


def readings(store: Store) -> int:
    with store.session() as session:
        return session.exec(select(func.count()).select_from(Reading)).one()


def test_an_admins_file_is_imported_and_answered_in_its_thread(admin_bot, fresh_store):
    before = readings(fresh_store)
    share(admin_bot, "months.csv", GOOD)
    (post,) = admin_bot.slack.wait_for("chat.postMessage", timeout=10)
    assert (post.body["channel"], post.body["thread_ts"]) == ("D0PCP", "1700000100.000100")
    assert post.body["text"] == "months.csv imported: 2 new, 0 revised, 0 unchanged."
    assert readings(fresh_store) == before + 2
    download = admin_bot.slack.calls("download")[0]
    assert download.headers["authorization"].startswith("Bearer xoxb-"), "private files need the bot token"
    with fresh_store.session() as session:
        (audit,) = session.exec(select(AuditLog)).all()
        assert (audit.actor, audit.subject) == (ADMIN, "months.csv")


def test_a_dry_run_from_slack_writes_nothing(admin_bot, fresh_store):
    before = readings(fresh_store)
    share(admin_bot, "months.csv", GOOD, text="dry run please")
    (post,) = admin_bot.slack.wait_for("chat.postMessage", timeout=10)
    assert "dry run" in post.body["text"] and "Nothing was written" in post.body["text"]
    assert readings(fresh_store) == before


def test_a_bad_file_is_refused_with_rows_and_columns_in_the_thread(admin_bot, fresh_store):
    before = readings(fresh_store)
    share(admin_bot, "bad.csv", BAD)
    (post,) = admin_bot.slack.wait_for("chat.postMessage", timeout=10)
    raw = json.dumps(post.body["blocks"], ensure_ascii=False)
    assert post.body["text"].startswith("bad.csv was refused: nothing was imported (2 problems)")
    assert "Row 2, column `metric`: “knif crime” is not a metric. Did you mean knife-crime?" in raw
    assert "Row 3, column `period`: “2024-13” is not a month" in raw
    assert readings(fresh_store) == before


def test_someone_who_is_not_an_admin_is_politely_refused(admin_bot, fresh_store):
    before = readings(fresh_store)
    share(admin_bot, "months.csv", GOOD, user=ANALYST)
    (post,) = admin_bot.slack.wait_for("chat.postMessage", timeout=10)
    assert post.body["text"].startswith("Only pcp admins can import figures. Nothing was changed.")
    assert readings(fresh_store) == before
    assert admin_bot.slack.calls("download") == [], "the file is not even fetched"


def test_a_file_that_is_not_csv_or_xlsx_is_refused(admin_bot, fresh_store):
    share(admin_bot, "notes.pdf", b"%PDF-1.4")
    (post,) = admin_bot.slack.wait_for("chat.postMessage", timeout=10)
    assert "only CSV and XLSX files can be imported" in json.dumps(post.body["blocks"])


def test_ordinary_direct_messages_are_acknowledged_and_ignored(admin_bot):
    event = {"type": "message", "channel": "D0PCP", "user": ANALYST, "text": "hello", "ts": "1700000200.000100"}
    assert admin_bot.event(event).status == 200
    assert admin_bot.slack.calls("chat.postMessage") == []
