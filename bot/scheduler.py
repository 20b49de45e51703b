"""APScheduler 3.x inside `pcp serve`: alerts, the weekly digest and outbox delivery.

Jobs are kept in the same database (SQLAlchemyJobStore), so a digest that fell due while
pcp was down runs once when it comes back (coalesce, within the misfire grace time), never
several times. Every job is idempotent by its keys (one digest per channel per ISO week,
one alert per metric, rule, series and period, outbox claims), so several instances
running the scheduler cannot double a message either.

Stored jobs must be picklable, so they are module-level functions referenced by name and
find the running store and Slack client in `RUNTIME`, set when the scheduler starts.

A `JobMonitor` listens to the scheduler's events and keeps, in memory, what `/healthz` reports:
whether the scheduler runs, each job's next run and last outcome, and whether delivery has
succeeded recently. A health check therefore never reads the job store.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
    EVENT_JOB_SUBMITTED,
    JobEvent,
    JobExecutionEvent,
    JobSubmissionEvent,
)
from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import STATE_PAUSED, STATE_RUNNING
from apscheduler.triggers.base import BaseTrigger
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
DELIVERY_JOB = "delivery"
STALE_INTERVALS = 3  # delivery is stale when it has not succeeded for this many intervals (PCP_DELIVERY_STALE_SECONDS)


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
        JobSpec(DELIVERY_JOB, "Deliver the outbox", "bot.scheduler:delivery_job",
                IntervalTrigger(seconds=settings.pcp_delivery_seconds, timezone=timezone)),
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


def start_scheduler(
    settings: Settings, store: Store, client: WebClient, *, monitor: JobMonitor | None = None
) -> BackgroundScheduler:
    """Start the jobs; `monitor` (for /healthz) starts watching before any of them can run."""
    global RUNTIME
    RUNTIME = Runtime(store=store, client=client, settings=settings)
    scheduler = build_scheduler(settings, store)
    scheduler.start(paused=True)  # load the stored jobs, and their missed run times, before anything runs
    add_jobs(scheduler, settings)
    if monitor is not None:
        monitor.watch(scheduler)
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


# Health


def delivery_stale_after(settings: Settings) -> timedelta:
    """How long without a successful delivery run before /healthz calls delivery stale."""
    seconds = settings.pcp_delivery_stale_seconds
    return timedelta(seconds=STALE_INTERVALS * settings.pcp_delivery_seconds if seconds is None else seconds)


@dataclass
class JobState:
    """What the monitor knows about one job (times are aware UTC)."""

    trigger: BaseTrigger
    next_run: datetime | None
    submitted: datetime | None = None  # the scheduled time of the latest run handed to the executor
    submitted_at: datetime | None = None  # and when that happened
    finished: datetime | None = None  # the scheduled time of the latest run that ended, well or not
    last_success: datetime | None = None
    last_failure: datetime | None = None
    last_error: str | None = None  # the exception's class name only: its text may hold anything
    missed: int = 0  # runs skipped: past the misfire grace time, or the previous run still going

    @property
    def running_since(self) -> datetime | None:
        """A quick run may end before its submission is reported, hence scheduled times, not arrival order."""
        running = self.submitted is not None and (self.finished is None or self.submitted > self.finished)
        return self.submitted_at if running else None

    def report(self) -> dict[str, str | int | None]:
        return {
            "next_run": _iso(self.next_run),
            "running_since": _iso(self.running_since),
            "last_success": _iso(self.last_success),
            "last_failure": _iso(self.last_failure),
            "last_error": self.last_error,
            "missed": self.missed,
        }


@dataclass(frozen=True)
class SchedulerHealth:
    """One reading of the monitor, for /healthz."""

    state: str  # running | paused | stopped
    jobs: dict[str, dict[str, str | int | None]]
    delivery_stale: bool
    delivery_seconds_since_success: float  # since the last success, or since watching began if none yet
    delivery_stale_after_seconds: float


@dataclass
class JobMonitor:
    """Watches a scheduler through its events (APScheduler calls listeners on its own threads).

    `clock` is for tests; delivery is stale when its last success (or, before the first, the
    moment the monitor started watching) is older than `stale_after`.
    """

    stale_after: timedelta
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))
    _scheduler: BackgroundScheduler | None = field(default=None, init=False)
    _jobs: dict[str, JobState] = field(default_factory=dict, init=False)
    _since: datetime | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def watch(self, scheduler: BackgroundScheduler) -> None:
        """Read the jobs once (the scheduler is started, ideally paused) and follow their events."""
        with self._lock:
            self._scheduler, self._since = scheduler, self.clock()
            self._jobs = {job.id: JobState(job.trigger, _utc(job.next_run_time)) for job in scheduler.get_jobs()}
        mask = EVENT_JOB_SUBMITTED | EVENT_JOB_MAX_INSTANCES | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED
        scheduler.add_listener(self._on_event, mask)

    def _on_event(self, event: JobEvent) -> None:
        now = self.clock()
        with self._lock:
            job = self._jobs.get(event.job_id)
            if job is None:
                return
            if isinstance(event, JobSubmissionEvent):
                scheduled = _utc(max(event.scheduled_run_times))
                # As the scheduler itself computes it after submitting (or skipping) the run.
                job.next_run = _utc(job.trigger.get_next_fire_time(scheduled, now))
                if event.code == EVENT_JOB_SUBMITTED:
                    job.submitted, job.submitted_at = scheduled, now
                else:
                    job.missed += 1
            elif isinstance(event, JobExecutionEvent):
                scheduled = _utc(event.scheduled_run_time)
                job.finished = scheduled if job.finished is None else max(job.finished, scheduled)
                if event.code == EVENT_JOB_MISSED:
                    job.missed += 1
                elif event.code == EVENT_JOB_EXECUTED:
                    job.last_success = now
                else:
                    job.last_failure, job.last_error = now, type(event.exception).__name__

    def health(self) -> SchedulerHealth:
        now = self.clock()
        with self._lock:
            state = self._state()
            jobs = {job_id: job.report() for job_id, job in sorted(self._jobs.items())}
            delivery = self._jobs.get(DELIVERY_JOB)
            since = (delivery.last_success if delivery else None) or self._since or now
        waited = (now - since).total_seconds()
        limit = self.stale_after.total_seconds()
        return SchedulerHealth(
            state=state,
            jobs=jobs,
            delivery_stale=delivery is None or waited > limit,
            delivery_seconds_since_success=round(waited, 1),
            delivery_stale_after_seconds=limit,
        )

    def _state(self) -> str:
        scheduler = self._scheduler
        if scheduler is None:
            return "stopped"
        thread = getattr(scheduler, "_thread", None)  # BackgroundScheduler's loop: if it died, nothing runs
        if scheduler.state == STATE_RUNNING and (thread is None or thread.is_alive()):
            return "running"
        return "paused" if scheduler.state == STATE_PAUSED else "stopped"


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat(timespec="seconds")
