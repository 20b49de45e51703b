"""Data access: every SQL statement the domain runs lives here, each taking `*, session`."""

from __future__ import annotations

from collections import defaultdict

from sqlmodel import Session, col, select

from scorecard.models import (
    HOME_FORCE,
    Area,
    AuditLog,
    DataVersion,
    FundingAward,
    FundingStream,
    FundingYear,
    Headline,
    Metric,
    MetricSeries,
    Milestone,
    PlanFact,
    Reading,
)


def metric_by_key(key: str, *, session: Session) -> Metric | None:
    return session.exec(select(Metric).where(Metric.key == key)).first()


def area_by_key(key: str, *, session: Session) -> Area | None:
    return session.exec(select(Area).where(Area.key == key)).first()


def stream_by_key(key: str, *, session: Session) -> FundingStream | None:
    return session.exec(select(FundingStream).where(FundingStream.key == key)).first()


def all_metrics(*, session: Session) -> list[Metric]:
    return list(session.exec(select(Metric).order_by(col(Metric.position))).all())


def all_areas(*, session: Session) -> list[Area]:
    return list(session.exec(select(Area).order_by(col(Area.position))).all())


def all_streams(*, session: Session) -> list[FundingStream]:
    return list(session.exec(select(FundingStream).order_by(col(FundingStream.position))).all())


def metrics_of_area(area_id: int, *, session: Session) -> list[Metric]:
    statement = select(Metric).where(Metric.area_id == area_id).order_by(col(Metric.position))
    return list(session.exec(statement).all())


def series_of(metric_ids: list[int], *, session: Session) -> dict[int, list[MetricSeries]]:
    statement = (
        select(MetricSeries).where(col(MetricSeries.metric_id).in_(metric_ids)).order_by(col(MetricSeries.position))
    )
    grouped: dict[int, list[MetricSeries]] = defaultdict(list)
    for series in session.exec(statement).all():
        grouped[series.metric_id].append(series)
    return grouped


def readings_of(
    metric_ids: list[int], *, session: Session, force: str = HOME_FORCE
) -> dict[tuple[int, str], list[Reading]]:
    """One force's readings per (metric id, series label), replaced ones included, oldest first."""
    statement = (
        select(Reading)
        .where(col(Reading.metric_id).in_(metric_ids), Reading.force == force)
        .order_by(col(Reading.observed_on), col(Reading.is_baseline).desc(), col(Reading.id))
    )
    grouped: dict[tuple[int, str], list[Reading]] = defaultdict(list)
    for reading in session.exec(statement).all():
        grouped[(reading.metric_id, reading.series)].append(reading)
    return grouped


def headlines(keys: list[str], *, session: Session) -> list[Headline]:
    if not keys:
        return []
    statement = select(Headline).where(col(Headline.key).in_(keys)).order_by(col(Headline.id))
    return list(session.exec(statement).all())


def headlines_of_area(area_id: int, *, session: Session) -> list[Headline]:
    statement = select(Headline).where(Headline.area_id == area_id).order_by(col(Headline.position))
    return list(session.exec(statement).all())


def milestones_of_area(area_id: int, *, session: Session) -> list[Milestone]:
    statement = select(Milestone).where(Milestone.area_id == area_id).order_by(col(Milestone.number))
    return list(session.exec(statement).all())


def areas_by_id(*, session: Session) -> dict[int, Area]:
    return {area.id: area for area in all_areas(session=session) if area.id is not None}


def funding_years(*, session: Session) -> list[FundingYear]:
    return list(session.exec(select(FundingYear).order_by(col(FundingYear.year))).all())


def funding_awards(*, session: Session, stream_id: int | None = None) -> list[tuple[FundingAward, FundingStream]]:
    statement = (
        select(FundingAward, FundingStream)
        .join(FundingStream)
        .order_by(col(FundingAward.year), col(FundingStream.position))
    )
    if stream_id is not None:
        statement = statement.where(FundingAward.stream_id == stream_id)
    return [(award, stream) for award, stream in session.exec(statement).all()]


def data_version(*, session: Session) -> int:
    row = session.get(DataVersion, 1)
    return row.version if row else 0


def data_version_key(*, session: Session) -> tuple[str, int]:
    """(which database, which version): what a cache of answers must be keyed on."""
    return str(session.get_bind().url), data_version(session=session)


def bump_data_version(*, session: Session) -> None:
    """Call in the same transaction as any change to plan data or readings."""
    row = session.get(DataVersion, 1) or DataVersion(id=1, version=0)
    row.version += 1
    session.add(row)


def recent_changes(*, session: Session, limit: int) -> list[AuditLog]:
    statement = select(AuditLog).order_by(col(AuditLog.at).desc(), col(AuditLog.id).desc()).limit(limit)
    return list(session.exec(statement))


def plan_fact(key: str, *, session: Session) -> dict:
    fact = session.get(PlanFact, key)
    return fact.value if fact else {}
