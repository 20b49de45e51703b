"""Which figures can be compared: a monthly count is never set against a 12-month baseline."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from scorecard.models import Reading

SAME_LENGTH_DAYS = 3  # 12 months to Feb in a leap year is still "12 months"


def month_end(day: date) -> date:
    following = date(day.year + (day.month == 12), day.month % 12 + 1, 1)
    return following - timedelta(days=1)


def is_month(reading: Reading) -> bool:
    start, end = reading.period_start, reading.period_end
    return start is not None and end is not None and start.day == 1 and end == month_end(start)


def length_days(reading: Reading) -> int | None:
    if reading.period_start is None or reading.period_end is None:
        return None
    return (reading.period_end - reading.period_start).days + 1


def comparable(baseline: Reading, other: Reading) -> bool:
    """Same length of period. A figure whose period the source does not state is taken as the
    source presents it: comparable with its own baseline (the plan's "Current Performance")."""
    base, length = length_days(baseline), length_days(other)
    if base is None or length is None:
        return length is None
    return abs(base - length) <= SAME_LENGTH_DAYS


def today_in(timezone: str) -> date:
    """Today where the plan's people work: alerts judge figures up to this date, not UTC's."""
    return datetime.now(ZoneInfo(timezone)).date()


def dated(reading: Reading) -> date:
    """A reading's period end, or its publication date when the source states no period."""
    return reading.period_end or reading.observed_on


@dataclass(frozen=True)
class Figures:
    """The figures every view of a series is built from, picked one way so that the card, the
    alerts and the chart always agree."""

    baseline: Reading | None
    latest: Reading | None  # the newest current figure for a period as long as the baseline's
    months: list[Reading]  # current calendar-month figures with a number, oldest first


def pick_figures(readings: Iterable[Reading], *, as_of: date | None = None, imported_only: bool = False) -> Figures:
    """`readings` oldest first (as queries.readings_of gives them); replaced ones are skipped.

    `as_of` leaves out figures for later periods; `imported_only` leaves out the plan's own
    figures (other than its baseline), as alerts do.
    """
    current = [r for r in readings if r.replaced_at is None and (as_of is None or dated(r) <= as_of)]
    baseline = next((r for r in current if r.is_baseline), None)
    others = [r for r in current if not r.is_baseline and (r.import_id is not None or not imported_only)]
    like_baseline = [r for r in others if baseline is None or comparable(baseline, r)]
    months = sorted((r for r in others if is_month(r) and r.value is not None), key=dated)
    return Figures(baseline=baseline, latest=like_baseline[-1] if like_baseline else None, months=months)
