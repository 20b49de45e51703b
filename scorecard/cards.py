"""The facts each answer shows, as plain dataclasses built from the store.

Templates turn these into words; nothing here knows about Slack. Every figure carries
its period and source, and every change is computed here from the figures themselves.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

import pandas as pd
from sqlmodel import Session

from scorecard import queries
from scorecard.models import Area, FundingAward, FundingStream, FundingYear, Metric, MetricSeries, Reading
from scorecard.periods import pick_figures
from scorecard.spc import MIN_POINTS, summarise, xmr
from scorecard.status import Change, Direction, Status, agrees, combine, compute_change, judge, parse_stated


@dataclass(frozen=True)
class AreaRef:
    key: str
    kind: str
    number: int | None
    name: str
    short_name: str


@dataclass(frozen=True)
class Figure:
    value: float | None
    text: str | None
    period: str
    source: str
    provisional: bool


@dataclass(frozen=True)
class SpcView:
    """The SPC reading of a monthly series (see scorecard/spc.py and reference/spc.md)."""

    points: int
    needed: int
    enough: bool
    variation: str | None  # icon: common_cause, improvement_high, concern_low, neither_high, ...
    rule: str | None  # single_point | shift | trend | two_of_three, for the latest month
    side: str | None  # high | low | up | down
    length: int | None  # months in the run, for shift and trend
    mean: float | None
    upl: float | None
    lpl: float | None


@dataclass(frozen=True)
class MonthlyView:
    count: int
    latest: Figure
    revised_from: float | None
    spc: SpcView


@dataclass(frozen=True)
class SeriesView:
    label: str
    baseline: Figure | None
    latest: Figure | None
    latest_revised_from: float | None  # the figure it replaced, when the latest was revised
    change: Change | None
    status: Status
    trend: str
    stated_change: str
    stated_agrees: bool | None  # None when the document states no change
    monthly: MonthlyView | None


@dataclass(frozen=True)
class TargetView:
    value: float
    by: str
    of: str
    achieved: Decimal
    share: Decimal


@dataclass(frozen=True)
class MetricView:
    key: str
    name: str
    short_name: str
    area: AreaRef
    direction: Direction
    unit: str
    national_baseline: str
    trend: str
    series: list[SeriesView]
    status: Status
    headlines: list[str]
    notes: list[str]
    discrepancies: list[str]
    target: TargetView | None
    source: str


@dataclass(frozen=True)
class MilestoneView:
    number: int
    title: str
    summary: str


@dataclass(frozen=True)
class SectionView:
    title: str
    items: list[str]


@dataclass(frozen=True)
class AreaView:
    ref: AreaRef
    summary: str
    objective: list[str]
    outcomes: list[str]
    milestones: list[MilestoneView]
    headlines: list[str]
    sections: list[SectionView]
    related: list[AreaRef]
    metrics: list[MetricView]
    source: str


@dataclass(frozen=True)
class FundingRow:
    stream_key: str
    stream_name: str
    year: str
    label: str
    awarded: int
    awarded_mark: str
    allocated: int
    allocated_mark: str
    share: Decimal | None
    source: str


@dataclass(frozen=True)
class FundingYearView:
    year: str
    heading: str
    rows: list[FundingRow]
    total_awarded: int
    total_allocated: int
    share: Decimal | None
    stated_awarded: int
    stated_awarded_mark: str
    stated_allocated: int
    stated_allocated_mark: str
    awarded_agrees: bool
    allocated_agrees: bool
    source: str


@dataclass(frozen=True)
class FundingTableView:
    years: list[FundingYearView]
    markers: dict[str, str]
    planned_period: str
    planned_commissions: list[str]
    source: str


@dataclass(frozen=True)
class FundingStreamView:
    key: str
    name: str
    rows: list[FundingRow]
    markers: dict[str, str]
    source: str


@dataclass(frozen=True)
class ScorecardGroup:
    area: AreaRef
    metrics: list[MetricView]


@dataclass(frozen=True)
class ScorecardView:
    groups: list[ScorecardGroup]
    counts: dict[str, int] = field(default_factory=dict)


def area_ref(area: Area) -> AreaRef:
    return AreaRef(key=area.key, kind=area.kind, number=area.number, name=area.name, short_name=area.short_name)


def _figure(reading: Reading | None) -> Figure | None:
    if reading is None:
        return None
    return Figure(
        value=reading.value,
        text=reading.text,
        period=reading.period_label,
        source=reading.source,
        provisional=reading.provisional,
    )


SPC_DIRECTION = {
    Direction.INCREASE: "up",
    Direction.MAINTAIN: "up",
    Direction.REDUCE: "down",
    Direction.KEEP_BELOW: "down",
    Direction.MONITOR: "neither",
}


def recalculation_positions(starts: list[str], recalculate_months: list[str]) -> list[int]:
    """Where each recalculation month ("YYYY-MM") falls in the series: the first month on or after it."""
    positions = set()
    for at in recalculate_months:
        position = next((i for i, month in enumerate(starts) if month >= at), None)
        if position:  # None: after the last month; 0: the series starts there anyway
            positions.add(position)
    return sorted(positions)


def spc_chart(months: list[Reading], metric: Metric) -> pd.DataFrame:
    """XmR over the monthly figures (pick_figures().months), split at the metric's recalculation
    months (data/plan), judged by the plan's direction. The card, the alerts and the chart use this."""
    starts = [f"{r.period_start:%Y-%m}" for r in months if r.period_start is not None]
    return xmr(
        [r.value for r in months if r.value is not None],
        direction=SPC_DIRECTION[Direction(metric.direction)],
        recalculate_at=recalculation_positions(starts, metric.spc_recalculate_at),
    )


def spc_view(months: list[Reading], metric: Metric) -> SpcView:
    chart = spc_chart(months, metric)
    summary = summarise(chart)
    last = chart.iloc[-1]
    reason = summary.reason or {}

    def number(name: str) -> float | None:
        return None if last[name] != last[name] else float(last[name])  # NaN before 13 points

    return SpcView(
        points=summary.points,
        needed=MIN_POINTS,
        enough=summary.enough_points,
        variation=summary.variation_icon,
        rule=reason.get("rule"),
        side=reason.get("side"),
        length=reason.get("length"),
        mean=number("mean"),
        upl=number("upl"),
        lpl=number("lpl"),
    )


def _revised_from(reading: Reading | None, by_id: dict[int, Reading]) -> float | None:
    previous = by_id.get(reading.revision_of_id) if reading and reading.revision_of_id else None
    return previous.value if previous else None


def _monthly_view(months: list[Reading], by_id: dict[int, Reading], metric: Metric) -> MonthlyView | None:
    if not months:
        return None
    return MonthlyView(
        count=len(months),
        latest=_figure(months[-1]),
        revised_from=_revised_from(months[-1], by_id),
        spc=spc_view(months, metric),
    )


def _series_view(series: MetricSeries, readings: list[Reading], metric: Metric) -> SeriesView:
    """Latest is the newest current figure for a period like the baseline's; months feed SPC."""
    direction = Direction(metric.direction)
    by_id = {r.id: r for r in readings if r.id is not None}
    figures = pick_figures(readings)
    baseline, latest, months = figures.baseline, figures.latest, figures.months
    change = None
    if baseline and latest and baseline.value is not None and latest.value is not None:
        change = compute_change(baseline.value, latest.value)
    stated = parse_stated(series.stated_change)
    return SeriesView(
        label=series.label,
        baseline=_figure(baseline),
        latest=_figure(latest),
        latest_revised_from=_revised_from(latest, by_id),
        change=change,
        status=judge(direction, change),
        trend=series.trend,
        stated_change=series.stated_change,
        stated_agrees=None if stated is None or change is None else agrees(stated, change.absolute),
        monthly=_monthly_view(months, by_id, metric),
    )


def _target(metric: Metric, series: list[SeriesView]) -> TargetView | None:
    if metric.target_value is None:
        return None
    achieved = sum((s.change.absolute for s in series if s.change), Decimal(0))
    share = (achieved / Decimal(repr(metric.target_value)) * 100).quantize(Decimal("0.1"))
    return TargetView(
        value=metric.target_value, by=metric.target_by or "", of=metric.target_of or "", achieved=achieved, share=share
    )


def metric_views(metrics: list[Metric], *, session: Session) -> list[MetricView]:
    """Views for many metrics with three queries, whatever their number."""
    ids = [m.id for m in metrics if m.id is not None]
    series_by_metric = queries.series_of(ids, session=session)
    readings = queries.readings_of(ids, session=session)
    areas = queries.areas_by_id(session=session)
    headline_text = {
        h.key: h.text for h in queries.headlines(sorted({k for m in metrics for k in m.headline_keys}), session=session)
    }
    views = []
    for metric in metrics:
        direction = Direction(metric.direction)
        series = [
            _series_view(s, readings.get((metric.id, s.label), []), metric) for s in series_by_metric.get(metric.id, [])
        ]
        views.append(
            MetricView(
                key=metric.key,
                name=metric.name,
                short_name=metric.short_name,
                area=area_ref(areas[metric.area_id]),
                direction=direction,
                unit=metric.unit,
                national_baseline=metric.national_baseline,
                trend=metric.trend,
                series=series,
                status=combine([s.status for s in series]),
                headlines=[headline_text[k] for k in metric.headline_keys if k in headline_text],
                notes=list(metric.notes),
                discrepancies=list(metric.discrepancies),
                target=_target(metric, series),
                source=metric.source,
            )
        )
    return views


def metric_card(key: str, *, session: Session) -> MetricView | None:
    metric = queries.metric_by_key(key, session=session)
    return metric_views([metric], session=session)[0] if metric else None


def area_card(key: str, *, session: Session) -> AreaView | None:
    area = queries.area_by_key(key, session=session)
    if area is None or area.id is None:
        return None
    related = [queries.area_by_key(k, session=session) for k in area.related]
    return AreaView(
        ref=area_ref(area),
        summary=area.summary,
        objective=list(area.objective),
        outcomes=list(area.outcomes),
        milestones=[
            MilestoneView(number=m.number, title=m.title, summary=m.summary)
            for m in queries.milestones_of_area(area.id, session=session)
        ],
        headlines=[h.text for h in queries.headlines_of_area(area.id, session=session)],
        sections=[SectionView(title=s.get("title", ""), items=list(s.get("items", []))) for s in area.sections],
        related=[area_ref(r) for r in related if r is not None],
        metrics=metric_views(queries.metrics_of_area(area.id, session=session), session=session),
        source=area.source,
    )


def _share(allocated: int, awarded: int) -> Decimal | None:
    return None if awarded == 0 else (Decimal(allocated) / Decimal(awarded) * 100).quantize(Decimal("0.1"))


def _row(award: FundingAward, stream: FundingStream) -> FundingRow:
    return FundingRow(
        stream_key=stream.key,
        stream_name=stream.name,
        year=award.year,
        label=award.label,
        awarded=award.awarded,
        awarded_mark=award.awarded_mark,
        allocated=award.allocated,
        allocated_mark=award.allocated_mark,
        share=_share(award.allocated, award.awarded),
        source=award.source,
    )


def _used_markers(rows: list[FundingRow], years: list[FundingYear], markers: dict[str, str]) -> dict[str, str]:
    used = {r.awarded_mark for r in rows} | {r.allocated_mark for r in rows}
    used |= {y.stated_awarded_mark for y in years} | {y.stated_allocated_mark for y in years}
    return {mark: meaning for mark, meaning in markers.items() if mark in used}


def funding_table(*, session: Session) -> FundingTableView:
    rows = [_row(a, s) for a, s in queries.funding_awards(session=session)]
    years = queries.funding_years(session=session)
    year_views = []
    for year in years:
        year_rows = [r for r in rows if r.year == year.year]
        awarded = sum(r.awarded for r in year_rows)
        allocated = sum(r.allocated for r in year_rows)
        year_views.append(
            FundingYearView(
                year=year.year,
                heading=year.heading,
                rows=year_rows,
                total_awarded=awarded,
                total_allocated=allocated,
                share=_share(allocated, awarded),
                stated_awarded=year.stated_awarded,
                stated_awarded_mark=year.stated_awarded_mark,
                stated_allocated=year.stated_allocated,
                stated_allocated_mark=year.stated_allocated_mark,
                awarded_agrees=awarded == year.stated_awarded,
                allocated_agrees=allocated == year.stated_allocated,
                source=year.source,
            )
        )
    facts = queries.plan_fact("funding", session=session)
    planned = facts.get("planned_commissions", {})
    return FundingTableView(
        years=year_views,
        markers=_used_markers(rows, years, facts.get("markers", {})),
        planned_period=planned.get("period", ""),
        planned_commissions=list(planned.get("items", [])),
        source=facts.get("source", ""),
    )


def funding_stream_card(key: str, *, session: Session) -> FundingStreamView | None:
    stream = queries.stream_by_key(key, session=session)
    if stream is None:
        return None
    rows = [_row(a, s) for a, s in queries.funding_awards(session=session, stream_id=stream.id)]
    return FundingStreamView(
        key=stream.key,
        name=stream.name,
        rows=rows,
        markers=_used_markers(rows, [], queries.plan_fact("funding", session=session).get("markers", {})),
        source=stream.source,
    )


def scorecard(*, session: Session) -> ScorecardView:
    views = metric_views(queries.all_metrics(session=session), session=session)
    groups = []
    for area in queries.all_areas(session=session):
        members = [v for v in views if v.area.key == area.key]
        if members:
            groups.append(ScorecardGroup(area=area_ref(area), metrics=members))
    counts: dict[str, int] = {}
    for view in views:
        counts[view.status.value] = counts.get(view.status.value, 0) + 1
    return ScorecardView(groups=groups, counts=counts)
