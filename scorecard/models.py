"""All SQLModel tables of the store, in one place.

The plan document is loaded into these tables (see `scorecard.plan_loader`); every
answer is read back from them, so a figure shown in Slack always has a row and a source.
Lists that are only ever read whole (aliases, paragraphs, notes) are JSON columns.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel


def _now() -> datetime:
    return datetime.now(UTC)


def _json_list() -> Column:
    return Column(JSON, nullable=False, default=list)


class Area(SQLModel, table=True):
    """A priority, a cross-cutting theme, or a cross-cutting work section of the plan."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, index=True)
    kind: str  # priority | theme | work
    number: int | None = None
    position: int = 0
    name: str
    short_name: str
    summary: str = ""
    aliases: list[str] = Field(default_factory=list, sa_column=_json_list())
    objective: list[str] = Field(default_factory=list, sa_column=_json_list())
    outcomes: list[str] = Field(default_factory=list, sa_column=_json_list())
    sections: list[dict] = Field(default_factory=list, sa_column=_json_list())
    related: list[str] = Field(default_factory=list, sa_column=_json_list())
    source: str


class Milestone(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    area_id: int = Field(foreign_key="area.id", index=True)
    number: int
    title: str
    summary: str
    source: str


class Headline(SQLModel, table=True):
    """A performance headline; its key (`p3-h3`) is how metrics refer to it."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, index=True)
    area_id: int = Field(foreign_key="area.id", index=True)
    position: int
    text: str
    source: str


class Metric(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, index=True)
    name: str
    short_name: str
    area_id: int = Field(foreign_key="area.id", index=True)
    position: int = 0
    direction: str  # increase | reduce | maintain | keep_below | monitor
    unit: str  # percent | count | number
    national_baseline: str = ""
    trend: str = ""
    target_value: float | None = None
    target_by: str | None = None
    target_of: str | None = None
    aliases: list[str] = Field(default_factory=list, sa_column=_json_list())
    headline_keys: list[str] = Field(default_factory=list, sa_column=_json_list())
    spc_recalculate_at: list[str] = Field(default_factory=list, sa_column=_json_list())  # "YYYY-MM" months
    notes: list[str] = Field(default_factory=list, sa_column=_json_list())
    discrepancies: list[str] = Field(default_factory=list, sa_column=_json_list())
    source: str


class MetricSeries(SQLModel, table=True):
    """One labelled series of a metric ("" for a metric with a single series)."""

    __table_args__ = (UniqueConstraint("metric_id", "label"),)

    id: int | None = Field(default=None, primary_key=True)
    metric_id: int = Field(foreign_key="metric.id", index=True)
    label: str = ""
    position: int = 0
    stated_change: str = ""
    trend: str = ""


HOME_FORCE = "West Yorkshire Police"


class Reading(SQLModel, table=True):
    """One figure of one series for one period and force, with where it came from.

    `value` is None when the source gives text instead of a number ("Not available");
    the text is then in `text`. `period_start`/`period_end` are None when the source does
    not state the period, and `observed_on` (the publication date) orders such readings.

    Readings are never overwritten: a revision adds a row and stamps the old one's
    `replaced_at`, so the history stays and "revised from X to Y" can be shown. Only one
    current (unreplaced) reading may exist per metric, series, force and period.
    """

    __table_args__ = (
        Index(
            "one_current_reading",
            "metric_id",
            "series",
            "force",
            "period_start",
            "period_end",
            "is_baseline",
            unique=True,
            sqlite_where=text("replaced_at IS NULL AND period_start IS NOT NULL"),
            postgresql_where=text("replaced_at IS NULL AND period_start IS NOT NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    metric_id: int = Field(foreign_key="metric.id", index=True)
    series: str = ""
    force: str = Field(default=HOME_FORCE, index=True)
    period_label: str
    period_start: date | None = None
    period_end: date | None = None
    observed_on: date
    value: float | None = None
    text: str | None = None
    is_baseline: bool = False
    provisional: bool = False
    source: str
    recorded_at: datetime = Field(default_factory=_now)
    replaced_at: datetime | None = None
    revision_of_id: int | None = Field(default=None, foreign_key="reading.id")
    import_id: int | None = Field(default=None, foreign_key="importbatch.id", index=True)


class ImportBatch(SQLModel, table=True):
    """One applied import: what came in, from whom, and what it changed."""

    id: int | None = Field(default=None, primary_key=True)
    kind: str  # readings | police-uk
    file_name: str
    sha256: str
    actor: str  # a Slack user id, or cli:<login>
    added: int = 0
    revised: int = 0
    unchanged: int = 0
    applied_at: datetime = Field(default_factory=_now)


class AuditLog(SQLModel, table=True):
    """Every change made through pcp: who, when, what, and the detail to judge it by."""

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(default_factory=_now, index=True)
    actor: str
    action: str
    subject: str
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class FundingYear(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    year: str = Field(unique=True)
    heading: str
    stated_awarded: int
    stated_awarded_mark: str = ""
    stated_allocated: int
    stated_allocated_mark: str = ""
    source: str


class FundingStream(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True, index=True)
    name: str
    position: int = 0
    aliases: list[str] = Field(default_factory=list, sa_column=_json_list())
    source: str


class FundingAward(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("stream_id", "year"),)

    id: int | None = Field(default=None, primary_key=True)
    stream_id: int = Field(foreign_key="fundingstream.id", index=True)
    year: str
    label: str
    awarded: int
    awarded_mark: str = ""
    allocated: int
    allocated_mark: str = ""
    source: str


class DataVersion(SQLModel, table=True):
    """A counter bumped by every change to what answers show, so caches know when to forget.

    One row; reading it is a primary-key lookup, cheap enough for every request, and it is
    shared by every instance that uses the same database.
    """

    id: int = Field(default=1, primary_key=True)
    version: int = 0


class PlanFact(SQLModel, table=True):
    """Small document-level facts read whole: footnote markers, planned commissions, title."""

    key: str = Field(primary_key=True)
    value: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Lead(SQLModel, table=True):
    """A person (Slack user id) who owns a metric or a priority and receives its alerts."""

    __table_args__ = (UniqueConstraint("subject", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    subject: str = Field(index=True)  # "metric:knife-crime" or "area:p3"
    user_id: str
    added_by: str = ""
    added_at: datetime = Field(default_factory=_now)


class AlertRule(SQLModel, table=True):
    """One way a metric can worsen enough to tell its leads; defaults come from data/alert_rules.yaml.

    kind: baseline_margin (worse than the plan baseline by more than `margin_percent`),
    threshold (beyond `value` in the bad direction), consecutive (`count` worsening readings
    in a row), spc (an SPC concern signal; for "monitor" metrics any signal).
    """

    __table_args__ = (UniqueConstraint("metric_id", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    metric_id: int = Field(foreign_key="metric.id", index=True)
    kind: str
    params: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    enabled: bool = True


class AlertRuleOverride(SQLModel, table=True):
    """An admin's change to one metric's rule from Slack; it outlasts reloading the rules file."""

    __table_args__ = (UniqueConstraint("metric_id", "kind"),)

    id: int | None = Field(default=None, primary_key=True)
    metric_id: int = Field(foreign_key="metric.id", index=True)
    kind: str
    params: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    enabled: bool = True
    set_by: str
    set_at: datetime = Field(default_factory=_now)


class AlertEvent(SQLModel, table=True):
    """A rule that fired for a metric, series and period: at most one, ever (the key is unique)."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)  # alert:<metric>:<rule>:<series>:<period end>
    metric_id: int = Field(foreign_key="metric.id", index=True)
    rule: str
    series: str = ""
    period_label: str
    opened_at: datetime = Field(default_factory=_now)
    recovered_at: datetime | None = None
    detail: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class AlertAcknowledgement(SQLModel, table=True):
    """Someone answering an alert with a short comment, for the accountability meeting's record."""

    id: int | None = Field(default=None, primary_key=True)
    event_id: int = Field(foreign_key="alertevent.id", index=True)
    user_id: str
    comment: str
    at: datetime = Field(default_factory=_now)


class Snooze(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("metric_id", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    metric_id: int = Field(foreign_key="metric.id", index=True)
    user_id: str
    until: datetime


class Outbox(SQLModel, table=True):
    """Every message pcp sends on its own initiative, written in the same transaction as the
    decision to send it. The unique key makes a decision taken twice a no-op; delivery marks
    the row sent with Slack's ts, so a restart or a second instance never sends it again."""

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(unique=True)  # digest:<channel>:<week> / alert:<metric>:<rule>:<series>:<period>:<user>
    target: str  # a channel id (C…) or a user id (U…, sent as a direct message)
    thread_of: str | None = None  # the key of an earlier message to reply under (e.g. "recovered")
    chart: str | None = None  # a metric key: upload its SPC chart (into the thread_of thread) instead of posting
    text: str
    blocks: list[dict] = Field(default_factory=list, sa_column=_json_list())
    status: str = Field(default="pending", index=True)  # pending | sending | sent | failed
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=_now, index=True)
    claimed_until: datetime | None = None
    last_error: str = ""
    channel: str | None = None  # where it was posted (a DM's D… id)
    ts: str | None = None
    created_at: datetime = Field(default_factory=_now)
    sent_at: datetime | None = None


class DigestChannel(SQLModel, table=True):
    """A channel an admin added from Slack; PCP_DIGEST_CHANNELS adds more from the environment."""

    channel_id: str = Field(primary_key=True)
    added_by: str
    added_at: datetime = Field(default_factory=_now)


class HomeVisitor(SQLModel, table=True):
    """Someone who opened pcp's Home tab: their view is republished when the figures change."""

    user_id: str = Field(primary_key=True)
    last_opened: datetime = Field(default_factory=_now)


class Follow(SQLModel, table=True):
    """Someone who asked to hear a metric's alerts without leading it."""

    __table_args__ = (UniqueConstraint("metric_key", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    metric_key: str = Field(index=True)
    user_id: str
    since: datetime = Field(default_factory=_now)
