"""APScheduler 3.x inside `pcp serve`: alerts, the weekly digest and outbox delivery.

Jobs are kept in the same database (SQLAlchemyJobStore), so a digest that fell due while
pcp was down runs once when it comes back (coalesce, within the misfire grace time), never
several times. Every job is idempotent by its keys (one digest per channel per ISO week,
one alert per metric, rule, series and period, outbox claims), so several instances
running the scheduler cannot double a message either.

Stored jobs must be picklable, so they are module-level functions referenced by name and
find the running store and Slack client in `RUNTIME`, set when the scheduler starts.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from slack_sdk import WebClient

from bot.config import Settings
from bot.db import Store
from handlers import jobs
from scorecard.periods import today_in

log = logging.getLogger(__name__)
JOBS_TABLE = "scheduler_jobs"
MISFIRE_GRACE_SECONDS = 6 * 3600  # a digest or alert run missed while down still runs within 6 hours
DELIVERY_SECONDS = 30


@dataclass
class Runtime:
    store: Store
    client: WebClient
    settings: Settings


RUNTIME: Runtime | None = None


def _runtime() -> Runtime:
    if RUNTIME is None:
        raise RuntimeError("the scheduler's jobs ran before start_scheduler() set their runtime")
    return RUNTIME


def alerts_job() -> None:
    runtime = _runtime()
    jobs.decide_alerts(store=runtime.store, as_of=today_in(runtime.settings.pcp_timezone), now=datetime.now(UTC))
    delivery_job()


def digest_job() -> None:
    runtime = _runtime()
    channels = jobs.digest_channels(store=runtime.store, configured=runtime.settings.pcp_digest_channels)
    if channels:
        jobs.decide_digest(store=runtime.store, channels=channels, now=datetime.now(UTC))
        delivery_job()


def delivery_job() -> None:
    runtime = _runtime()
    jobs.deliver(store=runtime.store, client=runtime.client, admins=runtime.settings.pcp_admins)


def build_scheduler(settings: Settings, store: Store) -> BackgroundScheduler:
    timezone = ZoneInfo(settings.pcp_timezone)
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=store.engine, tablename=JOBS_TABLE)},
        job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": MISFIRE_GRACE_SECONDS},
        timezone=timezone,
    )
    return scheduler


@dataclass(frozen=True)
class JobSpec:
    id: str
    name: str
    func: str  # a textual reference, so the stored job can be pickled
    trigger: CronTrigger | IntervalTrigger


def job_specs(settings: Settings) -> list[JobSpec]:
    timezone = ZoneInfo(settings.pcp_timezone)
    return [
        JobSpec("alerts", "Evaluate alerts and message leads", "bot.scheduler:alerts_job",
                CronTrigger.from_crontab(settings.pcp_alert_cron, timezone=timezone)),
        JobSpec("digest", "Post the weekly digest", "bot.scheduler:digest_job",
                CronTrigger.from_crontab(settings.pcp_digest_cron, timezone=timezone)),
        JobSpec("delivery", "Deliver the outbox", "bot.scheduler:delivery_job",
                IntervalTrigger(seconds=DELIVERY_SECONDS, timezone=timezone)),
    ]  # fmt: skip


def add_jobs(scheduler: BackgroundScheduler, settings: Settings) -> None:
    """Keep a stored job whose trigger is unchanged (with any run it missed while pcp was down);
    replace one whose schedule changed; explicit ids mean a restart never adds copies."""
    stored = {job.id: job for job in scheduler.get_jobs()}
    for spec in job_specs(settings):
        job = stored.get(spec.id)
        if job is not None and job.func_ref == spec.func and str(job.trigger) == str(spec.trigger):
            continue
        scheduler.add_job(spec.func, spec.trigger, id=spec.id, name=spec.name, replace_existing=True)


def start_scheduler(settings: Settings, store: Store, client: WebClient) -> BackgroundScheduler:
    global RUNTIME
    RUNTIME = Runtime(store=store, client=client, settings=settings)
    scheduler = build_scheduler(settings, store)
    scheduler.start(paused=True)  # load the stored jobs, and their missed run times, before anything runs
    add_jobs(scheduler, settings)
    scheduler.resume()
    for job in scheduler.get_jobs():
        log.info("scheduled %s (%s): next run %s", job.id, job.name, job.next_run_time)
    return scheduler


def upcoming(settings: Settings, store: Store) -> list[tuple[str, str, datetime | None, bool]]:
    """(id, name, next run, stored) per job, as `pcp jobs` shows them; changes nothing."""
    scheduler = build_scheduler(settings, store)
    scheduler.start(paused=True)
    try:
        stored = {job.id: job for job in scheduler.get_jobs()}
    finally:
        scheduler.shutdown(wait=False)
    now = datetime.now(UTC)
    rows = []
    for spec in job_specs(settings):
        job = stored.get(spec.id)
        if job is not None and str(job.trigger) == str(spec.trigger):
            rows.append((spec.id, spec.name, job.next_run_time, True))
        else:
            rows.append((spec.id, spec.name, spec.trigger.get_next_fire_time(None, now), False))
    return rows
