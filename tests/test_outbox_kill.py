"""A process SIGKILLed between deciding and sending, or while Slack is posting, loses and duplicates nothing.

The process is a real `python` running our code against the database and the Slack stand-in; it gets no chance
to clean up. Its restart (the same script again, as the scheduler would run it) re-takes the decisions, which
are no-ops, and delivers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlmodel import col, select

from bot.db import Store
from bot.outbox import LEASE
from scorecard.models import Outbox
from tests.conftest import BOT_TOKEN
from tests.slack_stub import SlackStub

REPO = Path(__file__).resolve().parents[1]
KEYS = [f"digest:C0PERF:2024-W0{n}" for n in range(1, 6)]
# argv: "wait" (decide, then block before delivering) or "deliver" [seconds to move `now` on, for a restart]
SCRIPT = """
import sys, time
from datetime import UTC, datetime, timedelta
from bot.config import Settings
from bot.db import Store
from bot.outbox import deliver_due, delivery_client, enqueue
from bot.render import Message

settings = Settings()
store = Store.open(settings.database_url)
with store.session() as session:  # one decision, five messages, one transaction
    for n in range(1, 6):
        enqueue(session, key=f"digest:C0PERF:2024-W0{n}", target="C0PERF", message=Message(text=f"digest {n}"))
print("decided", flush=True)
if sys.argv[1] == "wait":
    time.sleep(60)
later = timedelta(seconds=float(sys.argv[2]) if len(sys.argv) > 2 else 0)
print(deliver_due(store, delivery_client(settings), now=datetime.now(UTC) + later), flush=True)
"""


def run(url: str, slack: SlackStub, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PCP_", "DATABASE_"))}
    env |= {"DATABASE_URL": url, "SLACK_API_URL": slack.api_url, "SLACK_BOT_TOKEN": BOT_TOKEN}
    command = [sys.executable, "-c", SCRIPT, *args]
    return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)  # reaps it and closes its pipes
    assert process.returncode == -signal.SIGKILL


def restart(url: str, slack: SlackStub, *args: str) -> str:
    process = run(url, slack, "deliver", *args)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return out


def rows(url: str) -> dict[str, Outbox]:
    store = Store.open(url)
    try:
        with store.session() as session:
            return {row.key: row for row in session.exec(select(Outbox).where(col(Outbox.key).in_(KEYS)))}
    finally:
        store.close()


def posted(slack: SlackStub, key: str) -> list[dict]:
    return [m for m in slack.messages if (m.get("metadata") or {}).get("event_payload", {}).get("key") == key]


def test_killed_after_deciding_before_sending_then_restarted_sends_each_once(fresh_url: str, slack: SlackStub) -> None:
    Store.open(fresh_url).close()  # tables and plan in place, as after a first start
    process = run(fresh_url, slack, "wait")
    assert process.stdout is not None and process.stdout.readline() == "decided\n"
    kill(process)
    assert slack.calls("chat.postMessage") == [] and {r.status for r in rows(fresh_url).values()} == {"pending"}

    out = restart(fresh_url, slack)
    assert "decided" in out and "DeliveryReport(sent=5, retried=0, failed=0, in_doubt_resolved=0" in out
    assert all(len(posted(slack, key)) == 1 for key in KEYS) and len(slack.messages) == 5
    assert {(r.status, r.attempts) for r in rows(fresh_url).values()} == {("sent", 1)}


def test_killed_while_slack_posts_then_restarted_finds_the_post_and_sends_the_rest(
    fresh_url: str, slack: SlackStub
) -> None:
    Store.open(fresh_url).close()
    slack.fail("chat.postMessage", delay=3)  # Slack takes 3 s over the first post, and posts it all the same
    process = run(fresh_url, slack, "deliver")
    slack.wait_for("chat.postMessage", timeout=30)
    time.sleep(1)
    kill(process)  # 1 s into the post: Slack will accept it, we will never hear of it
    deadline = time.monotonic() + 5
    while not slack.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    in_doubt = rows(fresh_url)[KEYS[0]]
    assert len(posted(slack, KEYS[0])) == 1 and in_doubt.status == "sending" and in_doubt.ts is None

    out = restart(fresh_url, slack, str((LEASE + LEASE).total_seconds()))  # run again once the lease is over
    assert "DeliveryReport(sent=4, retried=0, failed=0, in_doubt_resolved=1" in out
    assert all(len(posted(slack, key)) == 1 for key in KEYS) and len(slack.messages) == 5
    assert len(slack.calls("chat.postMessage")) == 5 and len(slack.calls("conversations.history")) == 1
    assert rows(fresh_url)[KEYS[0]].ts == posted(slack, KEYS[0])[0]["ts"]
