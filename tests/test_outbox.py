"""The outbox delivers every decided message exactly once through Slack's failures, on SQLite and PostgreSQL.

Slack is the local stand-in (tests/slack_stub.py) reached over real HTTP by a real WebClient; time is
moved with deliver_due's `now`, never by sleeping through a backoff.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk import WebClient
from sqlmodel import select

from bot.config import Settings
from bot.db import Store, make_engine
from bot.outbox import MAX_ATTEMPTS, DeliveryReport, deliver_due, delivery_client, enqueue
from bot.render import Message
from scorecard.models import Outbox
from tests.conftest import BOT_TOKEN
from tests.slack_stub import SlackStub

SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "*Weekly scorecard*"}}
HOUR = timedelta(hours=1)


@pytest.fixture
def client(slack: SlackStub) -> WebClient:
    return delivery_client(Settings(slack_bot_token=BOT_TOKEN, slack_api_url=slack.api_url), timeout=5)


def decide(store: Store, key: str, target: str, text: str = "", thread_of: str | None = None) -> bool:
    with store.session() as session:
        message = Message(text=text or f"message {key}", blocks=[SECTION])
        return enqueue(session, key=key, target=target, message=message, thread_of=thread_of)


def row(store: Store, key: str) -> Outbox:
    with store.session() as session:
        found = session.exec(select(Outbox).where(Outbox.key == key)).first()
        assert found is not None, key
        return found


def keys(store: Store) -> list[str]:
    with store.session() as session:
        return list(session.exec(select(Outbox.key).order_by(Outbox.id)))


def posted(slack: SlackStub, key: str) -> list[dict]:
    """Messages in Slack carrying this outbox key in their metadata."""
    return [m for m in slack.messages if (m.get("metadata") or {}).get("event_payload", {}).get("key") == key]


def wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_enqueue_is_idempotent_and_commits_only_with_the_decision(fresh_store: Store) -> None:
    with fresh_store.session() as session:
        assert enqueue(session, key="digest:C0PERF:2024-W01", target="C0PERF", message=Message(text="first"))
        assert not enqueue(session, key="digest:C0PERF:2024-W01", target="C0PERF", message=Message(text="again"))
        # the caller's transaction is intact after the no-op (a failed INSERT would abort it on PostgreSQL)
        assert enqueue(session, key="alert:ksi:1", target="U0LEAD", message=Message(text="alert"))
    with pytest.raises(RuntimeError), fresh_store.session() as session:
        enqueue(session, key="digest:C0PERF:2024-W02", target="C0PERF", message=Message(text="rolled back"))
        raise RuntimeError("the decision failed after queueing its message")
    assert keys(fresh_store) == ["digest:C0PERF:2024-W01", "alert:ksi:1"]
    assert row(fresh_store, "digest:C0PERF:2024-W01").text == "first"
    with pytest.raises(ValueError), fresh_store.session() as session:
        enqueue(session, key="x", target="#performance", message=Message(text="x"))


def test_dm_and_channel_targets_are_posted_once_with_ts_recorded(
    fresh_store: Store, slack: SlackStub, client: WebClient
) -> None:
    decide(fresh_store, "alert:ksi:1:U0LEAD", "U0LEAD", "KSIs worsened")
    decide(fresh_store, "digest:C0PERF:2024-W01", "C0PERF", "Weekly scorecard")

    assert deliver_due(fresh_store, client) == DeliveryReport(sent=2)

    assert [c.body["users"] for c in slack.calls("conversations.open")] == ["U0LEAD"]
    dm, digest = slack.messages
    assert (dm["channel"], dm["text"], dm["blocks"]) == ("D0LEAD", "KSIs worsened", [SECTION])
    assert (digest["channel"], digest["text"]) == ("C0PERF", "Weekly scorecard")
    assert dm["metadata"] == {"event_type": "pcp_outbox", "event_payload": {"key": "alert:ksi:1:U0LEAD"}}
    for message, key in ((dm, "alert:ksi:1:U0LEAD"), (digest, "digest:C0PERF:2024-W01")):
        sent = row(fresh_store, key)
        assert (sent.status, sent.channel, sent.ts, sent.attempts) == ("sent", message["channel"], message["ts"], 1)
        assert sent.sent_at is not None and sent.claimed_until is None

    calls = len(slack.requests)
    assert deliver_due(fresh_store, client, now=datetime.now(UTC) + HOUR) == DeliveryReport()
    assert len(slack.requests) == calls and len(slack.messages) == 2


def test_rate_limit_waits_for_retry_after(fresh_store: Store, slack: SlackStub, client: WebClient) -> None:
    decide(fresh_store, "digest:C0PERF:2024-W01", "C0PERF")
    slack.fail("chat.postMessage", status=429, retry_after=3)
    now = datetime.now(UTC)

    assert deliver_due(fresh_store, client, now=now) == DeliveryReport(retried=1)
    waiting = row(fresh_store, "digest:C0PERF:2024-W01")
    assert slack.messages == [] and waiting.status == "pending" and "Retry-After 3" in waiting.last_error
    assert now + timedelta(seconds=3) <= waiting.next_attempt_at <= now + timedelta(seconds=4)
    assert waiting.attempts == 0  # Slack refused to look at it: not an attempt towards MAX_ATTEMPTS

    assert deliver_due(fresh_store, client, now=now + timedelta(seconds=2)) == DeliveryReport()
    assert deliver_due(fresh_store, client, now=now + timedelta(seconds=5)) == DeliveryReport(sent=1)
    assert len(posted(slack, "digest:C0PERF:2024-W01")) == 1
    assert len(slack.calls("chat.postMessage")) == 2 and slack.calls("conversations.history") == []


def test_server_errors_back_off_then_post_exactly_once(fresh_store: Store, slack: SlackStub, client: WebClient) -> None:
    decide(fresh_store, "alert:ksi:1:U0LEAD", "U0LEAD")
    slack.fail("chat.postMessage", status=500, times=2)
    now = datetime.now(UTC)

    assert deliver_due(fresh_store, client, now=now) == DeliveryReport(retried=1)
    first = row(fresh_store, "alert:ksi:1:U0LEAD")
    assert timedelta(seconds=30) <= first.next_attempt_at - now <= timedelta(seconds=37.5)
    assert deliver_due(fresh_store, client, now=now + HOUR) == DeliveryReport(retried=1)
    second = row(fresh_store, "alert:ksi:1:U0LEAD")
    assert timedelta(seconds=60) <= second.next_attempt_at - (now + HOUR) <= timedelta(seconds=75)
    assert deliver_due(fresh_store, client, now=now + 2 * HOUR) == DeliveryReport(sent=1)

    sent = row(fresh_store, "alert:ksi:1:U0LEAD")
    assert (sent.status, sent.attempts, sent.channel) == ("sent", 3, "D0LEAD")
    assert [m["ts"] for m in posted(slack, "alert:ksi:1:U0LEAD")] == [sent.ts]
    # a 5xx may hide a post Slack made, so each retry first looked for one in the DM's history
    assert len(slack.calls("conversations.history")) == 2


def test_a_timed_out_post_is_found_in_history_not_posted_twice(fresh_store: Store, slack: SlackStub) -> None:
    impatient = WebClient(token=BOT_TOKEN, base_url=slack.api_url, timeout=0.3, retry_handlers=[])
    decide(fresh_store, "digest:C0PERF:2024-W01", "C0PERF")
    slack.fail("chat.postMessage", delay=1)  # a slow Slack: it still posts, after we stopped waiting
    now = datetime.now(UTC)

    assert deliver_due(fresh_store, impatient, now=now) == DeliveryReport(retried=1)
    doubtful = row(fresh_store, "digest:C0PERF:2024-W01")
    assert doubtful.status == "sending" and "timed out" in doubtful.last_error
    wait_until(lambda: len(slack.messages) == 1)

    assert deliver_due(fresh_store, impatient, now=now + HOUR) == DeliveryReport(in_doubt_resolved=1)
    (message,) = posted(slack, "digest:C0PERF:2024-W01")
    resolved = row(fresh_store, "digest:C0PERF:2024-W01")
    assert (resolved.status, resolved.channel, resolved.ts) == ("sent", "C0PERF", message["ts"])
    assert len(slack.calls("chat.postMessage")) == 1 and len(slack.messages) == 1
    history = slack.calls("conversations.history")[0].body
    assert history["include_all_metadata"] == "1" and float(history["oldest"]) < float(message["ts"])


def test_a_dropped_connection_is_retried_and_posted_once(
    fresh_store: Store, slack: SlackStub, client: WebClient
) -> None:
    decide(fresh_store, "digest:C0PERF:2024-W01", "C0PERF")
    slack.fail("chat.postMessage", disconnect=True)
    now = datetime.now(UTC)
    assert deliver_due(fresh_store, client, now=now) == DeliveryReport(retried=1)
    assert deliver_due(fresh_store, client, now=now + HOUR) == DeliveryReport(sent=1)
    assert len(posted(slack, "digest:C0PERF:2024-W01")) == 1 and len(slack.calls("conversations.history")) == 1


def test_a_permanent_error_fails_at_once_and_each_admin_is_told(
    fresh_store: Store, slack: SlackStub, client: WebClient
) -> None:
    admins = ("U0ADMIN1", "U0ADMIN2")
    decide(fresh_store, "digest:C0GONE:2024-W01", "C0GONE")
    slack.fail("chat.postMessage", error="channel_not_found")
    now = datetime.now(UTC)

    assert deliver_due(fresh_store, client, now=now, admins=admins) == DeliveryReport(failed=1)
    failed = row(fresh_store, "digest:C0GONE:2024-W01")
    assert (failed.status, failed.attempts, failed.last_error) == ("failed", 1, "channel_not_found")
    reports = [f"delivery-failed:digest:C0GONE:2024-W01:{admin}" for admin in admins]
    assert keys(fresh_store)[1:] == reports

    assert deliver_due(fresh_store, client, now=now + HOUR, admins=admins) == DeliveryReport(sent=2)
    for admin, key in zip(admins, reports, strict=True):
        (dm,) = posted(slack, key)
        assert dm["channel"] == "D" + admin[1:]
        assert (
            "<#C0GONE>" in dm["text"] and "channel_not_found" in dm["text"] and "digest:C0GONE:2024-W01" in dm["text"]
        )
    assert posted(slack, "digest:C0GONE:2024-W01") == []


def test_a_report_that_cannot_be_delivered_is_not_reported_again(
    fresh_store: Store, slack: SlackStub, client: WebClient, caplog: pytest.LogCaptureFixture
) -> None:
    decide(fresh_store, "digest:C0GONE:2024-W01", "C0GONE")
    slack.fail("chat.postMessage", error="channel_not_found")
    slack.fail("conversations.open", error="user_not_found")
    now = datetime.now(UTC)
    caplog.set_level(logging.INFO, logger="bot.outbox")

    assert deliver_due(fresh_store, client, now=now, admins=["U0GONE"]) == DeliveryReport(failed=1)
    assert deliver_due(fresh_store, client, now=now + HOUR, admins=["U0GONE"]) == DeliveryReport(failed=1)
    assert deliver_due(fresh_store, client, now=now + 2 * HOUR, admins=["U0GONE"]) == DeliveryReport()

    assert keys(fresh_store)[1:] == ["delivery-failed:digest:C0GONE:2024-W01:U0GONE"]
    assert row(fresh_store, "delivery-failed:digest:C0GONE:2024-W01:U0GONE").last_error == "user_not_found"
    assert any("not reported again" in r.message and r.levelno == logging.ERROR for r in caplog.records)
    assert BOT_TOKEN not in caplog.text


def test_gives_up_after_max_attempts_and_reports_it(fresh_store: Store, slack: SlackStub, client: WebClient) -> None:
    decide(fresh_store, "digest:C0PERF:2024-W01", "C0PERF")
    slack.fail("chat.postMessage", status=500, times=MAX_ATTEMPTS)
    now = datetime.now(UTC)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        report = deliver_due(fresh_store, client, now=now + attempt * HOUR, admins=["U0ADMIN"])
        last = attempt == MAX_ATTEMPTS  # then the report to the admin is due at once, and sent
        assert report == (DeliveryReport(failed=1, sent=1) if last else DeliveryReport(retried=1))

    failed = row(fresh_store, "digest:C0PERF:2024-W01")
    assert (failed.status, failed.attempts) == ("failed", MAX_ATTEMPTS)
    assert f"HTTP 500 from Slack (gave up after {MAX_ATTEMPTS} attempts" in failed.last_error
    (report,) = posted(slack, "delivery-failed:digest:C0PERF:2024-W01:U0ADMIN")
    assert report["channel"] == "D0ADMIN" and "it may have been posted" in report["text"]
    assert posted(slack, "digest:C0PERF:2024-W01") == []


def test_thread_replies_wait_for_their_parent_and_land_in_its_thread(
    fresh_store: Store, slack: SlackStub, client: WebClient
) -> None:
    decide(fresh_store, "alert:ksi:1:U0LEAD", "U0LEAD", "KSIs worsened")
    decide(fresh_store, "alert:ksi:1:U0LEAD:recovered", "U0LEAD", "KSIs recovered", thread_of="alert:ksi:1:U0LEAD")
    slack.fail("chat.postMessage", status=503)
    now = datetime.now(UTC)

    assert deliver_due(fresh_store, client, now=now) == DeliveryReport(retried=1, waiting=1)
    assert row(fresh_store, "alert:ksi:1:U0LEAD:recovered").attempts == 0  # waiting is not an attempt
    assert deliver_due(fresh_store, client, now=now + HOUR) == DeliveryReport(sent=2)

    parent, reply = row(fresh_store, "alert:ksi:1:U0LEAD"), row(fresh_store, "alert:ksi:1:U0LEAD:recovered")
    (posted_reply,) = posted(slack, "alert:ksi:1:U0LEAD:recovered")
    assert (posted_reply["channel"], posted_reply["thread_ts"]) == (parent.channel, parent.ts) == ("D0LEAD", parent.ts)
    assert (reply.status, reply.channel, reply.ts) == ("sent", "D0LEAD", posted_reply["ts"])


def test_a_reply_to_a_failed_parent_fails_and_is_reported(
    fresh_store: Store, slack: SlackStub, client: WebClient
) -> None:
    decide(fresh_store, "alert:ksi:1:U0LEAD", "U0LEAD")
    decide(fresh_store, "alert:ksi:1:U0LEAD:recovered", "U0LEAD", thread_of="alert:ksi:1:U0LEAD")
    slack.fail("conversations.open", error="user_not_found")
    assert deliver_due(fresh_store, client, admins=["U0ADMIN"]) == DeliveryReport(failed=2)
    reply = row(fresh_store, "alert:ksi:1:U0LEAD:recovered")
    assert reply.status == "failed" and "thread parent alert:ksi:1:U0LEAD failed" in reply.last_error
    assert [k for k in keys(fresh_store) if k.startswith("delivery-failed:")] == [
        "delivery-failed:alert:ksi:1:U0LEAD:U0ADMIN",
        "delivery-failed:alert:ksi:1:U0LEAD:recovered:U0ADMIN",
    ]


def test_an_in_doubt_thread_reply_is_found_among_the_replies(fresh_store: Store, slack: SlackStub) -> None:
    impatient = WebClient(token=BOT_TOKEN, base_url=slack.api_url, timeout=0.3, retry_handlers=[])
    decide(fresh_store, "alert:ksi:1:C0PERF", "C0PERF")
    decide(fresh_store, "alert:ksi:1:C0PERF:recovered", "C0PERF", thread_of="alert:ksi:1:C0PERF")
    slack.fail("chat.postMessage", delay=1, times=2)  # the parent's post waits here first, then the reply's
    now = datetime.now(UTC)
    assert deliver_due(fresh_store, impatient, now=now) == DeliveryReport(retried=1, waiting=1)
    wait_until(lambda: len(slack.messages) == 1)
    assert deliver_due(fresh_store, impatient, now=now + HOUR) == DeliveryReport(in_doubt_resolved=1, retried=1)
    wait_until(lambda: len(slack.messages) == 2)
    assert deliver_due(fresh_store, impatient, now=now + 2 * HOUR) == DeliveryReport(in_doubt_resolved=1)
    assert len(posted(slack, "alert:ksi:1:C0PERF:recovered")) == 1 and len(slack.calls("conversations.replies")) == 1


@pytest.fixture
def second_store(fresh_url: str, fresh_store: Store) -> Iterator[Store]:
    """Another instance's own engine and connection pool on the same database."""
    store = Store(make_engine(fresh_url))
    yield store
    store.close()


def test_two_deliverers_racing_post_each_message_exactly_once(
    fresh_store: Store, second_store: Store, slack: SlackStub
) -> None:
    with fresh_store.session() as session:
        for n in range(30):
            enqueue(session, key=f"alert:m{n}:U0LEAD{n}", target=f"U0LEAD{n}", message=Message(text=f"alert {n}"))
    slack.fail("chat.postMessage", delay=0.02, times=30)  # slow posts, so the two runs overlap throughout
    start, reports = threading.Barrier(2), dict[int, DeliveryReport]()

    def instance(number: int, store: Store) -> None:
        client = WebClient(token=BOT_TOKEN, base_url=slack.api_url, timeout=5, retry_handlers=[])
        start.wait()
        reports[number] = deliver_due(store, client)

    threads = [threading.Thread(target=instance, args=pair) for pair in enumerate((fresh_store, second_store))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(m["channel"] for m in slack.messages) == sorted(f"D0LEAD{n}" for n in range(30))
    assert all(len(posted(slack, f"alert:m{n}:U0LEAD{n}")) == 1 for n in range(30))
    assert reports[0].sent + reports[1].sent == 30 and reports[0].sent > 0 and reports[1].sent > 0
    with fresh_store.session() as session:
        assert {r.status for r in session.exec(select(Outbox))} == {"sent"}
