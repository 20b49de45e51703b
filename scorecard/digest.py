"""The weekly digest: what changed since the last one, then the scorecard by priority.

Built from the store only (figures recorded, alerts opened and recovered, current SPC
signals), so the digest says nothing a metric card would not say.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from scorecard import cards, queries
from scorecard.cards import AreaRef, MetricView, ScorecardGroup
from scorecard.models import HOME_FORCE, AlertEvent, AuditLog, DigestChannel, Metric, Outbox, Reading


@dataclass(frozen=True)
class NewFigure:
    metric_key: str
    metric_name: str
    series: str
    period: str
    value: float | None
    unit: str
    revised_from: float | None
    provisional: bool


@dataclass(frozen=True)
class AlertLine:
    metric_key: str
    metric_name: str
    rule: str
    series: str
    period: str
    detail: dict


@dataclass(frozen=True)
class Signal:
    metric_key: str
    metric_name: str
    series: str
    variation: str
    rule: str | None
    side: str | None
    length: int | None


@dataclass(frozen=True)
class PriorityCount:
    area: AreaRef
    counts: dict[str, int]


@dataclass(frozen=True)
class DigestView:
    since: datetime
    until: datetime
    worsened: list[AlertLine]
    recovered: list[AlertLine]
    signals: list[Signal]
    new_figures: list[NewFigure]
    priorities: list[PriorityCount]
    groups: list[ScorecardGroup]
    charts: list[tuple[str, str]]  # (metric key, name) whose SPC chart goes in the digest's thread


def add_digest_channel(channel_id: str, *, session: Session, actor: str) -> bool:
    """False when the channel already gets the digest; every change is in the audit log."""
    if session.get(DigestChannel, channel_id) is not None:
        return False
    session.add(DigestChannel(channel_id=channel_id, added_by=actor))
    session.add(AuditLog(actor=actor, action="add digest channel", subject=channel_id))
    return True


def remove_digest_channel(channel_id: str, *, session: Session, actor: str) -> bool:
    channel = session.get(DigestChannel, channel_id)
    if channel is None:
        return False
    session.delete(channel)
    session.add(AuditLog(actor=actor, action="remove digest channel", subject=channel_id))
    return True


def added_digest_channels(*, session: Session) -> list[str]:
    """Channels admins added from Slack, oldest first."""
    statement = select(DigestChannel.channel_id).order_by(col(DigestChannel.added_at))
    return list(session.exec(statement).all())


def last_digest_at(*, session: Session) -> datetime | None:
    """When the last digest was decided (its outbox row), whichever channel it went to."""
    statement = select(Outbox.created_at).where(col(Outbox.key).startswith("digest:"))
    return session.exec(statement.order_by(col(Outbox.created_at).desc()).limit(1)).first()


def _names(*, session: Session) -> dict[int, Metric]:
    return {m.id: m for m in queries.all_metrics(session=session) if m.id is not None}


def _new_figures(since: datetime, until: datetime, metrics: dict[int, Metric], *, session: Session) -> list[NewFigure]:
    statement = (
        select(Reading)
        .where(
            Reading.force == HOME_FORCE,
            col(Reading.is_baseline).is_(False),
            col(Reading.replaced_at).is_(None),
            col(Reading.import_id).is_not(None),  # imported, not the plan's own figures
            col(Reading.recorded_at) > since,
            col(Reading.recorded_at) <= until,
        )
        .order_by(col(Reading.metric_id), col(Reading.series), col(Reading.observed_on))
    )
    readings = list(session.exec(statement).all())
    previous_ids = [r.revision_of_id for r in readings if r.revision_of_id]
    previous = {r.id: r.value for r in session.exec(select(Reading).where(col(Reading.id).in_(previous_ids)))}
    return [
        NewFigure(
            metric_key=metrics[r.metric_id].key,
            metric_name=metrics[r.metric_id].short_name,
            series=r.series,
            period=r.period_label,
            value=r.value,
            unit=metrics[r.metric_id].unit,
            revised_from=previous.get(r.revision_of_id) if r.revision_of_id else None,
            provisional=r.provisional,
        )
        for r in readings
    ]


def _alert_lines(events: list[AlertEvent], metrics: dict[int, Metric]) -> list[AlertLine]:
    return [
        AlertLine(
            metric_key=metrics[e.metric_id].key,
            metric_name=metrics[e.metric_id].short_name,
            rule=e.rule,
            series=e.series,
            period=e.period_label,
            detail=dict(e.detail),
        )
        for e in events
    ]


def signals_of(views: list[MetricView]) -> list[Signal]:
    """Series whose latest month is a special cause (SPC), as the cards read them."""
    found = []
    for view in views:
        for series in view.series:
            spc = series.monthly.spc if series.monthly else None
            if spc and spc.enough and spc.variation and spc.variation != "common_cause":
                found.append(
                    Signal(view.key, view.short_name, series.label, spc.variation, spc.rule, spc.side, spc.length)
                )
    return found


MAX_CHARTS = 3  # a digest's thread, not a gallery: only the metrics that changed most visibly
CHARTED_RULES = ("consecutive", "spc")  # alerts judged on monthly figures, which a chart shows


def charted(worsened: list[AlertLine], signals: list[Signal]) -> list[tuple[str, str]]:
    """Where a chart helps: metrics that worsened month on month, then SPC signals; each once, at most 3."""
    picked = [(a.metric_key, a.metric_name) for a in worsened if a.rule in CHARTED_RULES]
    picked += [(s.metric_key, s.metric_name) for s in signals]
    return list(dict.fromkeys(picked))[:MAX_CHARTS]


def build_digest(*, session: Session, since: datetime, until: datetime) -> DigestView:
    metrics = _names(session=session)
    opened = session.exec(
        select(AlertEvent).where(col(AlertEvent.opened_at) > since, col(AlertEvent.opened_at) <= until)
    ).all()
    recovered = session.exec(
        select(AlertEvent).where(col(AlertEvent.recovered_at) > since, col(AlertEvent.recovered_at) <= until)
    ).all()
    board = cards.scorecard(session=session)
    views = [view for group in board.groups for view in group.metrics]
    priorities = [
        PriorityCount(area=group.area, counts=dict(Counter(view.status.value for view in group.metrics)))
        for group in board.groups
    ]
    worsened, signals = _alert_lines(list(opened), metrics), signals_of(views)
    return DigestView(
        since=since,
        until=until,
        worsened=worsened,
        recovered=_alert_lines(list(recovered), metrics),
        signals=signals,
        new_figures=_new_figures(since, until, metrics, session=session),
        priorities=priorities,
        groups=board.groups,
        charts=charted(worsened, signals),
    )
