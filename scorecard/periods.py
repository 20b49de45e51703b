"""Which figures can be compared: a monthly count is never set against a 12-month baseline."""

from __future__ import annotations

from datetime import date, timedelta

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
