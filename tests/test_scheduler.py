"""The scheduler inside pcp serve: jobs stored in the database, missed runs run once, never twice."""

from __future__ import annotations

import pickle
import time
from datetime import UTC, datetime, timedelta

import pytest
from slack_sdk import WebClient
from sqlalchemy import text

from bot.config import Settings
from bot.db import Store
from bot.scheduler import JOBS_TABLE, MISFIRE_GRACE_SECONDS, add_jobs, build_scheduler, start_scheduler, upcoming
from tests.conftest import BOT_TOKEN


@pytest.fixture
def settings(slack) -> Settings:
    return Settings(
        slack_bot_token=BOT_TOKEN,
        slack_api_url=slack.api_url,
        pcp_digest_channels="C0PERF",
        pcp_digest_cron="0 9 * * mon",
        pcp_alert_cron="0 8 * * *",
    )


def stored_job_due(settings: Settings, store: Store, job_id: str, due: datetime) -> None:
    """As if pcp had been down when the job fell due: its stored next run time is in the past.

    Written into the job store's row directly: a live scheduler makes one last pass over due jobs
    as it shuts down (APScheduler 3), which would consume the very run this test is about.
    """
    scheduler = build_scheduler(settings, store)
    scheduler.start(paused=True)
    add_jobs(scheduler, settings)
    scheduler.shutdown(wait=True)
    with store.engine.begin() as connection:
        (state,) = connection.execute(text(f"SELECT job_state FROM {JOBS_TABLE} WHERE id = :id"), {"id": job_id}).one()
        job = pickle.loads(state)
        job["next_run_time"] = due
        connection.execute(
            text(f"UPDATE {JOBS_TABLE} SET next_run_time = :at, job_state = :state WHERE id = :id"),
            {"at": due.timestamp(), "state": pickle.dumps(job, pickle.HIGHEST_PROTOCOL), "id": job_id},
        )


def run_for(settings: Settings, store: Store, client: WebClient, seconds: float) -> None:
    scheduler = start_scheduler(settings, store, client)
    time.sleep(seconds)
    scheduler.shutdown(wait=True)


def digests(slack) -> list[dict]:
    return [m for m in slack.messages if m["channel"] == "C0PERF"]


def test_jobs_are_stored_with_their_next_run_times(settings, fresh_store, slack):
    client = WebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[])
    run_for(settings, fresh_store, client, 0.5)
    jobs = {job_id: (next_run, stored) for job_id, _, next_run, stored in upcoming(settings, fresh_store)}
    assert set(jobs) == {"alerts", "digest", "delivery"} and all(stored for _, stored in jobs.values())
    digest_at = jobs["digest"][0]
    assert (digest_at.weekday(), digest_at.hour, digest_at.minute) == (0, 9, 0)
    assert str(digest_at.tzinfo) == "Europe/London"


def test_a_digest_missed_while_down_is_posted_once_when_pcp_comes_back(settings, fresh_store, slack):
    client = WebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[])
    stored_job_due(settings, fresh_store, "digest", datetime.now(UTC) - timedelta(minutes=10))
    run_for(settings, fresh_store, client, 3)
    assert len(digests(slack)) == 1
    run_for(settings, fresh_store, client, 2)  # a restart: the digest is not due again
    assert len(digests(slack)) == 1


def test_several_missed_runs_coalesce_into_one(settings, fresh_store, slack):
    client = WebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[])
    settings.pcp_digest_cron = "*/5 * * * *"  # every 5 minutes, so an hour down misses twelve runs
    stored_job_due(settings, fresh_store, "digest", datetime.now(UTC) - timedelta(hours=1))
    run_for(settings, fresh_store, client, 3)
    assert len(digests(slack)) == 1


def test_a_run_missed_longer_ago_than_the_grace_time_is_skipped(settings, fresh_store, slack):
    client = WebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[])
    stored_job_due(settings, fresh_store, "digest", datetime.now(UTC) - timedelta(seconds=MISFIRE_GRACE_SECONDS + 600))
    run_for(settings, fresh_store, client, 2)
    assert digests(slack) == []


def test_a_changed_schedule_replaces_the_stored_job(settings, fresh_store, slack):
    client = WebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[])
    run_for(settings, fresh_store, client, 0.3)
    settings.pcp_digest_cron = "30 7 * * fri"
    run_for(settings, fresh_store, client, 0.3)
    digest_at = next(next_run for job_id, _, next_run, _ in upcoming(settings, fresh_store) if job_id == "digest")
    assert (digest_at.weekday(), digest_at.hour, digest_at.minute) == (4, 7, 30)
