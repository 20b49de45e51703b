"""Change between two figures, and whether it is good news, judged by what the plan wants.

Arithmetic is done in Decimal from the figures' shortest decimal form, so 85.7 - 85.1 is
0.6 and not 0.6000000000000085: the card shows exactly what a careful analyst would write.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum


class Direction(StrEnum):
    INCREASE = "increase"
    REDUCE = "reduce"
    MAINTAIN = "maintain"  # hold a high level: a fall is what would worry the plan
    KEEP_BELOW = "keep_below"  # stay under the baseline: a fall is good news
    MONITOR = "monitor"  # no good direction: described, never judged


class Status(StrEnum):
    IMPROVING = "improving"
    WORSENING = "worsening"
    NO_CHANGE = "no_change"
    MIXED = "mixed"  # series of one metric moved in opposite senses
    MONITORED = "monitored"
    NO_DATA = "no_data"


HIGHER_IS_BETTER = {Direction.INCREASE, Direction.MAINTAIN}
LOWER_IS_BETTER = {Direction.REDUCE, Direction.KEEP_BELOW}


def exact(value: float | int) -> Decimal:
    """The decimal a person wrote: Decimal(repr(85.7)) is 85.7 exactly."""
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


@dataclass(frozen=True)
class Change:
    """latest - baseline; `percent` is relative to the baseline (None when it is zero)."""

    absolute: Decimal
    percent: Decimal | None

    @property
    def sign(self) -> int:
        return (self.absolute > 0) - (self.absolute < 0)


def compute_change(baseline: float, latest: float) -> Change:
    base, new = exact(baseline), exact(latest)
    absolute = new - base
    percent = None if base == 0 else (absolute / base * 100).quantize(Decimal("0.1"))
    return Change(absolute=absolute, percent=percent)


def judge(direction: Direction, change: Change | None) -> Status:
    """Status of one series against the plan's intended direction."""
    if direction is Direction.MONITOR:
        return Status.MONITORED
    if change is None:
        return Status.NO_DATA
    if change.sign == 0:
        return Status.NO_CHANGE
    rising = change.sign > 0
    return Status.IMPROVING if rising == (direction in HIGHER_IS_BETTER) else Status.WORSENING


def combine(statuses: list[Status]) -> Status:
    """One status for a metric with several series (KSI fatal and serious, ...)."""
    known = {s for s in statuses if s is not Status.NO_DATA}
    if not known:
        return Status.NO_DATA
    if len(known) == 1:
        return known.pop()
    if Status.MONITORED in known:
        return Status.MONITORED
    if {Status.IMPROVING, Status.WORSENING} <= known:
        return Status.MIXED
    return Status.WORSENING if Status.WORSENING in known else Status.IMPROVING


def parse_stated(text: str) -> Decimal | None:
    """The number in a document's "Change" cell ("-1.4%", "+628", "2078"); None if blank."""
    cleaned = text.replace("%", "").replace(",", "").replace("+", "").replace("−", "-").strip()
    return Decimal(cleaned) if cleaned else None


def agrees(stated: Decimal, computed: Decimal) -> bool:
    """Does a stated change equal the computed one at the precision it was written to?"""
    places = Decimal(1).scaleb(stated.as_tuple().exponent)
    return computed.quantize(places) == stated
