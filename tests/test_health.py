"""GET /healthz: the database, the scheduler and its jobs, delivery freshness and the outbox backlog.

In-process tests run our WSGI app on a real waitress server with a real APScheduler on each database
kind; process tests run `pcp serve` itself with small delivery intervals, so nothing waits long.
"""

from __future__ import annotations

import json
import shutil
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from slack_sdk import WebClient
from sqlalchemy import create_engine, make_url, text, update
from sqlmodel import col

from bot.config import Settings
from bot.db import Store, normalise_url
from bot.outbox import enqueue
from bot.render import Message
from bot.scheduler import JobMonitor, delivery_stale_after, start_scheduler
from bot.server import make_server, run_until_closed, wsgi_app
from bot.slack_app import create_app
from scorecard.models import Outbox
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, Reply, get, postgres_database
from tests.slack_stub import SlackStub
from tests.test_serve import start_serve

JOBS = {"alerts", "digest", "delivery"}


class Clock:
    """The monitor's clock, moved by the test: staleness without waiting."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def settings_for(slack: SlackStub, url: str, **extra: Any) -> Settings:
    return Settings(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        database_url=url,
        pcp_delivery_seconds=3600,  # no delivery run unless a test asks for one
        **extra,
    )


@contextmanager
def http(settings: Settings, store: Store, scheduler: Any) -> Iterator[str]:
    """Our WSGI app, told about `scheduler`, on a real waitress server; yields the /healthz URL."""
    server = make_server(
        wsgi_app(create_app(settings, store=store), store=store, scheduler=scheduler),
        host="127.0.0.1",
        port=0,
        threads=4,
    )
    thread = threading.Thread(target=run_until_closed, args=(server,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.effective_port}/healthz"
    finally:
        server.close()
        thread.join(timeout=5)


@contextmanager
def scheduled(
    settings: Settings, store: Store, slack: SlackStub, clock: Clock
) -> Iterator[tuple[BackgroundScheduler, JobMonitor]]:
    """The jobs running as in `pcp serve`, watched by a monitor on the test's clock."""
    client = WebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[])
    monitor = JobMonitor(stale_after=delivery_stale_after(settings), clock=clock)
    scheduler = start_scheduler(settings, store, client, monitor=monitor)
    try:
        yield scheduler, monitor
    finally:
        if scheduler.running:
            scheduler.shutdown(wait=True)


def health(url: str) -> tuple[int, dict]:
    reply: Reply = get(url)
    assert reply.headers["Content-Type"] == "application/json"
    return reply.status, json.loads(reply.body)


def wait_until(check, *, timeout: float = 10, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)
    return result


@pytest.fixture
def running(fresh_url: str, slack: SlackStub) -> Iterator[tuple[str, Clock, BackgroundScheduler, Store]]:
    """A seeded store of each kind, its scheduler (watched, with a test clock) and the app serving /healthz."""
    settings = settings_for(slack, fresh_url)
    store = Store.open(fresh_url)
    clock = Clock()
    try:
        with scheduled(settings, store, slack, clock) as (scheduler, monitor), http(settings, store, monitor) as url:
            yield url, clock, scheduler, store
    finally:
        store.close()


def test_healthy_reports_database_scheduler_jobs_delivery_and_outbox(running):
    url, _, _, _ = running
    status, body = health(url)
    assert status == 200
    assert (body["status"], body["database"], body["scheduler"], body["problems"]) == ("ok", "ok", "running", [])
    assert body["outbox"] == {"pending": 0, "failed": 0, "oldest_due_seconds": None}
    assert body["delivery"] == {"stale": False, "seconds_since_success": 0.0, "stale_after_seconds": 3 * 3600}
    assert set(body["jobs"]) == JOBS
    for job in body["jobs"].values():
        assert datetime.fromisoformat(job["next_run"]) > datetime.now(UTC)
        assert (job["running_since"], job["last_success"], job["last_failure"], job["missed"]) == (None, None, None, 0)


def test_delivery_not_run_for_three_intervals_is_stale_until_a_run_succeeds(running):
    url, clock, scheduler, _ = running
    clock.advance(3 * 3600)
    assert health(url)[0] == 200, "exactly the limit is still fresh"
    clock.advance(1)
    status, body = health(url)
    assert status == 503 and body["status"] == "error"
    assert body["delivery"] == {"stale": True, "seconds_since_success": 3 * 3600 + 1, "stale_after_seconds": 3 * 3600}
    assert body["problems"] == ["delivery stale: no successful run for 10801 s (limit 10800 s)"]
    assert (body["database"], body["scheduler"]) == ("ok", "running")

    scheduler.modify_job("delivery", next_run_time=datetime.now(UTC))  # a delivery run now, which succeeds
    success = wait_until(lambda: health(url)[1]["jobs"]["delivery"]["last_success"], what="the run is recorded")
    assert datetime.fromisoformat(success) == clock.now.replace(microsecond=0)
    status, body = health(url)
    assert status == 200 and body["delivery"]["stale"] is False and body["problems"] == []
    next_run = datetime.fromisoformat(body["jobs"]["delivery"]["next_run"])
    assert timedelta(minutes=59) < next_run - datetime.now(UTC) <= timedelta(hours=1), "the next run is an interval on"


def test_a_stopped_scheduler_is_unhealthy(running):
    url, _, scheduler, _ = running
    scheduler.shutdown(wait=True)
    status, body = health(url)
    assert status == 503
    assert (body["database"], body["scheduler"], body["problems"]) == ("ok", "stopped", ["scheduler stopped"])


def test_the_outbox_backlog_is_reported(running):
    url, _, _, store = running
    now = datetime.now(UTC)
    with store.session() as session:
        for key in ("due-long-ago", "due-recently", "retry-later", "gave-up", "in-doubt"):
            enqueue(session, key=key, target="C0PERF", message=Message(text=key))
    changes = {
        "due-long-ago": {"next_attempt_at": now - timedelta(minutes=10)},
        "due-recently": {"next_attempt_at": now - timedelta(seconds=5)},
        "retry-later": {"next_attempt_at": now + timedelta(minutes=5)},
        "gave-up": {"status": "failed", "next_attempt_at": now - timedelta(hours=2)},
        "in-doubt": {"status": "sending", "claimed_until": now + timedelta(minutes=1)},  # being sent: not due
    }
    with store.session() as session:
        for key, values in changes.items():
            session.exec(update(Outbox).where(col(Outbox.key) == key).values(**values))
    status, body = health(url)
    assert status == 200, "a backlog is reported, not judged: delivery itself is fresh"
    outbox = body["outbox"]
    assert (outbox["pending"], outbox["failed"]) == (4, 1)
    assert 600 <= outbox["oldest_due_seconds"] < 660


def drop_database(url: str) -> None:
    server = make_url(normalise_url(url))
    admin = create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE "{server.database}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_database_gone_is_unhealthy_and_says_no_more(slack, tmp_path: Path, kind: str):
    with postgres_database() if kind == "postgresql" else _nothing() as pg_url:
        url = pg_url or f"sqlite:///{tmp_path / 'store' / 'pcp.db'}"
        settings = settings_for(slack, url)
        store = Store.open(url)
        with scheduled(settings, store, slack, Clock()) as (_, monitor), http(settings, store, monitor) as at:
            assert health(at)[0] == 200
            store.engine.dispose()
            if kind == "sqlite":
                shutil.rmtree(tmp_path / "store")
            else:
                drop_database(url)
            reply = get(at)
        store.close()
    body = json.loads(reply.body)
    assert reply.status == 503
    assert (body["status"], body["database"], body["outbox"]) == ("error", "unavailable", None)
    assert body["problems"] == ["database unavailable"]
    for leak in ("Error", "sqlite", "psycopg", "postgres", "Traceback", str(tmp_path)):
        assert leak not in reply.body


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def test_without_a_scheduler_in_this_process_only_the_database_and_outbox_count(fresh_store, slack):
    settings = settings_for(slack, "sqlite://")
    with http(settings, fresh_store, "disabled") as url:
        status, body = health(url)
    assert status == 200
    assert (body["scheduler"], body["problems"], "jobs" in body) == ("disabled", [], False)
    assert body["outbox"]["pending"] == 0


# `pcp serve` itself


def test_pcp_serve_records_delivery_runs_and_stays_healthy(tmp_path):
    with SlackStub() as slack, start_serve(tmp_path, slack, PCP_DELIVERY_SECONDS="0.5") as (bot, process):
        url = f"{bot.base_url}/healthz"
        wait_until(lambda: health(url)[1]["jobs"]["delivery"]["last_success"], what="a delivery run is recorded")
        time.sleep(2)  # over 3 intervals: fresh only because runs keep succeeding
        status, body = health(url)
        assert status == 200 and body["delivery"]["stale"] is False
        assert body["delivery"]["stale_after_seconds"] == 1.5 and body["delivery"]["seconds_since_success"] < 1.5
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0


def test_pcp_serve_turns_unhealthy_when_delivery_goes_stale(tmp_path):
    settings = {"PCP_DELIVERY_STALE_SECONDS": "1"}  # the delivery job runs every 30 s: stale after a second
    with SlackStub() as slack, start_serve(tmp_path, slack, healthy=False, **settings) as (bot, process):
        url = f"{bot.base_url}/healthz"
        body = wait_until(lambda: (b := health(url)[1])["delivery"]["stale"] and b, what="delivery goes stale")
        assert get(url).status == 503
        assert body["scheduler"] == "running" and body["problems"][0].startswith("delivery stale")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0


def test_pcp_serve_with_the_scheduler_off_reports_it_disabled(tmp_path):
    with SlackStub() as slack, start_serve(tmp_path, slack, PCP_SCHEDULER="false") as (bot, process):
        status, body = health(f"{bot.base_url}/healthz")
        assert status == 200
        assert (body["database"], body["scheduler"], body["problems"]) == ("ok", "disabled", [])
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
