"""Statistical process control: the NHS "Making Data Count" (MDC) XmR chart.

A board should react to signals, not to noise. `xmr` computes, per point, the limits and the
four MDC special-cause rules; `summarise` reduces a chart to the icons and the reason for the
last point's signal, as structured data (wording is the templates' job).

The method is MDC's exactly: limits per limit period, moving ranges only inside a period,
an exact mean (math.fsum, because a point exactly on the mean breaks a shift), no moving-range
screening, no clipping at zero, strict comparisons, shift and trend of 6.

Decisions where the method is silent:
- Fewer than 13 points in the chart (all periods together): mean and moving ranges only;
  limits and two-sigma lines NaN, every flag False, `variation` "common_cause" on every
  point, and both icons None.
- `recalculate_at` holds zero-based *positions* (also for a Series, whatever its index):
  duplicates and order do not matter, 0 is ignored (the chart starts a period there anyway),
  a negative or past-the-end position or a non-integer raises ValueError.
- `baseline` N applies to the first period only: its limits come from its first N points and
  are carried over the rest of that period; the next recalculation starts a period whose
  limits use all of its points. N must be at least 2 (one moving range); N reaching past the
  first recalculation point raises ValueError; N longer than an unrecalculated series just
  covers the whole series, so a growing series can be configured before it has N points.
- A period of one point has no moving range, hence NaN limits: the limit-based rules cannot
  fire there, the shift and trend rules still can.
- A point flagged both ways counts as improvement (MDC); with direction "neither" its icon
  side is where the point lies against its mean ("high" when exactly on it).
- The assurance icon uses the last point's limits; a target exactly on a limit counts as
  passing or failing (<=, >= as MDC states), not hit or miss.
- NaN, infinite, missing or non-numeric values raise ValueError naming the position: a gap
  must be dealt with by the caller, never silently skipped (it would join unrelated points
  into one moving range).
"""

from __future__ import annotations

import itertools
import math
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

ImprovementDirection = Literal["up", "down", "neither"]

DIRECTIONS: tuple[str, ...] = ("up", "down", "neither")
LIMIT_FACTOR = 2.66  # 3 / d2 (1.128) rounded as MDC does
MIN_POINTS = 13
SHIFT_LENGTH = 6
TREND_LENGTH = 6

COLUMNS: tuple[str, ...] = (
    "value",
    "period",
    "mean",
    "mr",
    "upl",
    "lpl",
    "upper_two_sigma",
    "lower_two_sigma",
    "above_upl",
    "below_lpl",
    "shift_high",
    "shift_low",
    "trend_up",
    "trend_down",
    "two_of_three_high",
    "two_of_three_low",
    "special_cause_high",
    "special_cause_low",
    "variation",
)

VARIATION_ICONS: tuple[str, ...] = (
    "common_cause",
    "improvement_high",
    "improvement_low",
    "concern_high",
    "concern_low",
    "neither_high",
    "neither_low",
)
ASSURANCE_ICONS: tuple[str, ...] = ("consistently_passing", "consistently_failing", "hit_or_miss")

Reason = dict[str, str | int]


@dataclass(frozen=True)
class SpcSummary:
    """What a card needs from a chart: icons and why the last point is (or is not) a signal."""

    points: int
    enough_points: bool
    variation_icon: str | None
    assurance_icon: str | None
    last_variation: str | None  # None only for an empty chart
    reason: Reason | None  # e.g. {"rule": "shift", "side": "high", "length": 6}; None for common cause


def xmr(
    values: Iterable[Any] | pd.Series,
    *,
    direction: ImprovementDirection = "up",
    recalculate_at: Iterable[int] = (),
    baseline: int | None = None,
    target: float | None = None,
) -> pd.DataFrame:
    """XmR chart of `values`, one row per value, with the MDC rules applied to every point.

    The icons are in `df.attrs["variation_icon"]` and `df.attrs["assurance_icon"]`.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}, not {direction!r}")
    index = values.index if isinstance(values, pd.Series) else None
    ys = _numbers(values)
    n = len(ys)
    starts = _period_starts(recalculate_at, n)
    ends = [*starts[1:], n]
    baseline_end = _baseline_end(baseline, ends[0], recalculated=len(starts) > 1)
    goal = _target(target)
    enough = n >= MIN_POINTS

    nan = math.nan
    period = [0] * n
    mean = [nan] * n
    mr = [nan] * n
    upl, lpl, upper2, lower2 = ([nan] * n for _ in range(4))
    for number, (start, end) in enumerate(zip(starts, ends, strict=True)):
        if start == end:  # only for an empty chart
            continue
        calc = ys[start : baseline_end if number == 0 else end]
        centre = math.fsum(calc) / len(calc)
        ranges = [abs(b - a) for a, b in itertools.pairwise(calc)]
        mr_bar = math.fsum(ranges) / len(ranges) if ranges else nan
        width = LIMIT_FACTOR * mr_bar
        two_sigma = width * 2 / 3
        for i in range(start, end):
            period[i] = number
            mean[i] = centre
            if i > start:
                mr[i] = abs(ys[i] - ys[i - 1])
            if enough:
                upl[i], lpl[i] = centre + width, centre - width
                upper2[i], lower2[i] = centre + two_sigma, centre - two_sigma

    if enough:
        above = [y > u for y, u in zip(ys, upl, strict=True)]
        below = [y < lo for y, lo in zip(ys, lpl, strict=True)]
        side = [(y > m) - (y < m) for y, m in zip(ys, mean, strict=True)]
        shift_high, shift_low = _shift(side, 1), _shift(side, -1)
        trend_up, trend_down = _trend(ys, 1), _trend(ys, -1)
        two_high = _two_of_three(side, 1, [y > u and not a for y, u, a in zip(ys, upper2, above, strict=True)])
        two_low = _two_of_three(side, -1, [y < lo and not b for y, lo, b in zip(ys, lower2, below, strict=True)])
    else:
        above = below = shift_high = shift_low = trend_up = trend_down = two_high = two_low = [False] * n
    high = [any(flags) for flags in zip(above, shift_high, trend_up, two_high, strict=True)]
    low = [any(flags) for flags in zip(below, shift_low, trend_down, two_low, strict=True)]
    variation = [_variation(h, lo, direction) for h, lo in zip(high, low, strict=True)]

    chart = pd.DataFrame(
        {
            "value": np.array(ys, dtype=float),
            "period": np.array(period, dtype=int),
            "mean": np.array(mean, dtype=float),
            "mr": np.array(mr, dtype=float),
            "upl": np.array(upl, dtype=float),
            "lpl": np.array(lpl, dtype=float),
            "upper_two_sigma": np.array(upper2, dtype=float),
            "lower_two_sigma": np.array(lower2, dtype=float),
            "above_upl": np.array(above, dtype=bool),
            "below_lpl": np.array(below, dtype=bool),
            "shift_high": np.array(shift_high, dtype=bool),
            "shift_low": np.array(shift_low, dtype=bool),
            "trend_up": np.array(trend_up, dtype=bool),
            "trend_down": np.array(trend_down, dtype=bool),
            "two_of_three_high": np.array(two_high, dtype=bool),
            "two_of_three_low": np.array(two_low, dtype=bool),
            "special_cause_high": np.array(high, dtype=bool),
            "special_cause_low": np.array(low, dtype=bool),
            "variation": variation,
        },
        index=index,
    )
    variation_icon = assurance_icon = None
    if enough:
        last = n - 1
        if variation[last] == "common_cause":
            variation_icon = "common_cause"
        else:
            side_of_signal = _signal_side(high[last], low[last], direction, ys[last], mean[last])
            variation_icon = f"{variation[last]}_{side_of_signal}"
        assurance_icon = _assurance(goal, direction, upl[last], lpl[last])
    chart.attrs["variation_icon"] = variation_icon
    chart.attrs["assurance_icon"] = assurance_icon
    return chart


def summarise(chart: pd.DataFrame) -> SpcSummary:
    """Icons and the reason for the last point's signal, from an unmodified `xmr` result.

    When several rules flag the last point the reason is the first of: single point, shift,
    trend, two of three, on the side that decided the icon; runs report the length of the run
    the last point ends.
    """
    points = len(chart)
    variation_icon = chart.attrs.get("variation_icon")
    reason = None
    if variation_icon is not None and variation_icon != "common_cause":
        reason = _reason(chart, variation_icon.rsplit("_", 1)[1])
    return SpcSummary(
        points=points,
        enough_points=points >= MIN_POINTS,
        variation_icon=variation_icon,
        assurance_icon=chart.attrs.get("assurance_icon"),
        last_variation=str(chart["variation"].iloc[-1]) if points else None,
        reason=reason,
    )


def _numbers(values: Iterable[Any] | pd.Series) -> list[float]:
    """Finite floats, or ValueError naming the first bad position (a gap is never skipped)."""
    if isinstance(values, str | bytes):
        raise TypeError("values must be a sequence of numbers, not a string")
    numbers = []
    for position, item in enumerate(values):
        if isinstance(item, str | bytes | bool | np.bool_):
            raise ValueError(f"value at position {position} is not a number: {item!r}")
        try:
            number = float(item)
        except (TypeError, ValueError):
            raise ValueError(f"value at position {position} is missing or not a number: {item!r}") from None
        if not math.isfinite(number):
            raise ValueError(f"value at position {position} is {number}: every point needs a finite number")
        numbers.append(number)
    return numbers


def _period_starts(recalculate_at: Iterable[int], n: int) -> list[int]:
    """Sorted, unique period starts beginning with 0; positions outside the chart are an error."""
    if isinstance(recalculate_at, int | np.integer):
        raise TypeError("recalculate_at takes a sequence of positions, e.g. (12,)")
    positions = set()
    for item in recalculate_at:
        if isinstance(item, bool | np.bool_):
            raise ValueError(f"recalculation position {item!r} is not an integer")
        try:
            position = operator.index(item)
        except TypeError:
            raise ValueError(f"recalculation position {item!r} is not an integer") from None
        if not 0 <= position < n:
            raise ValueError(f"recalculation position {position} is outside the chart's positions 0..{n - 1}")
        positions.add(position)
    positions.discard(0)
    return [0, *sorted(positions)]


def _baseline_end(baseline: int | None, first_end: int, *, recalculated: bool) -> int:
    """End (exclusive) of the points the first period's limits are computed from."""
    if baseline is None:
        return first_end
    if isinstance(baseline, bool | np.bool_):
        raise ValueError(f"baseline must be a number of points, not {baseline!r}")
    try:
        count = operator.index(baseline)
    except TypeError:
        raise ValueError(f"baseline must be a whole number of points, not {baseline!r}") from None
    if count < 2:
        raise ValueError(f"baseline must be at least 2 points (one moving range), not {count}")
    if recalculated and count > first_end:
        raise ValueError(f"baseline of {count} points reaches past the first recalculation point ({first_end})")
    return min(count, first_end)


def _target(target: float | None) -> float | None:
    if target is None:
        return None
    if isinstance(target, str | bytes | bool | np.bool_):
        raise ValueError(f"target must be a number, not {target!r}")
    try:
        goal = float(target)
    except (TypeError, ValueError):
        raise ValueError(f"target must be a number, not {target!r}") from None
    if not math.isfinite(goal):
        raise ValueError(f"target must be a finite number, not {goal}")
    return goal


def _runs(keys: Sequence[int]) -> Iterator[tuple[int, int, int]]:
    """(start, end exclusive, key) of each maximal run of equal keys."""
    start = 0
    for i in range(1, len(keys) + 1):
        if i == len(keys) or keys[i] != keys[start]:
            yield start, i, keys[start]
            start = i


def _shift(side: Sequence[int], wanted: int) -> list[bool]:
    """Every point of a run of SHIFT_LENGTH+ points strictly on the `wanted` side of its own mean."""
    flags = [False] * len(side)
    for start, end, key in _runs(side):
        if key == wanted and end - start >= SHIFT_LENGTH:
            flags[start:end] = [True] * (end - start)
    return flags


def _trend(ys: Sequence[float], sign: int) -> list[bool]:
    """Every point, first included, of a run of TREND_LENGTH+ points each strictly beyond the last."""
    steps = [0, *(sign * ((b > a) - (b < a)) for a, b in itertools.pairwise(ys))]
    # a run of rising points is its first point (any step into it) followed by rises
    flags = [False] * len(ys)
    start = 0
    for i in range(1, len(ys) + 1):
        if i < len(ys) and steps[i] == 1:
            continue
        if i - start >= TREND_LENGTH:
            flags[start:i] = [True] * (i - start)
        start = i
    return flags


def _two_of_three(side: Sequence[int], wanted: int, beyond: Sequence[bool]) -> list[bool]:
    """In 3 consecutive points all on the `wanted` side, 2+ beyond two-sigma (not the limit): flag those."""
    flags = [False] * len(side)
    for i in range(len(side) - 2):
        window = range(i, i + 3)
        if all(side[j] == wanted for j in window) and sum(beyond[j] for j in window) >= 2:
            for j in window:
                flags[j] = flags[j] or beyond[j]
    return flags


def _variation(high: bool, low: bool, direction: str) -> str:
    """Improvement wins when a point is flagged both ways (only a trend crossing the mean can do it)."""
    if not (high or low):
        return "common_cause"
    if direction == "neither":
        return "neither"
    good_high = direction == "up"
    return "improvement" if (high if good_high else low) else "concern"


def _signal_side(high: bool, low: bool, direction: str, value: float, centre: float) -> str:
    """Which side a signal is on; for a point flagged both ways, the side that made it improvement."""
    if high and low:
        if direction == "neither":
            return "low" if value < centre else "high"
        return "high" if direction == "up" else "low"
    return "high" if high else "low"


def _assurance(goal: float | None, direction: str, upl: float, lpl: float) -> str | None:
    """Can the process meet the target? Needs a target, a direction and limits."""
    if goal is None or direction == "neither" or math.isnan(upl) or math.isnan(lpl):
        return None
    passing_side, failing_side = (goal <= lpl, goal >= upl) if direction == "up" else (goal >= upl, goal <= lpl)
    if passing_side:
        return "consistently_passing"
    if failing_side:
        return "consistently_failing"
    return "hit_or_miss"


def _reason(chart: pd.DataFrame, side: str) -> Reason | None:
    """The most informative rule flagging the last point on `side` (the icon's side)."""
    last = chart.iloc[-1]
    high = side == "high"
    if last["above_upl" if high else "below_lpl"]:
        return {"rule": "single_point", "side": side}
    values = chart["value"].to_numpy(dtype=float)
    if last["shift_high" if high else "shift_low"]:
        means = chart["mean"].to_numpy(dtype=float)
        sign = 1 if high else -1
        return {"rule": "shift", "side": side, "length": _trailing(lambda i: sign * (values[i] - means[i]) > 0, values)}
    if last["trend_up" if high else "trend_down"]:
        sign = 1 if high else -1
        rises = _trailing(lambda i: i > 0 and sign * (values[i] - values[i - 1]) > 0, values)
        return {"rule": "trend", "side": "up" if high else "down", "length": rises + 1}
    if last["two_of_three_high" if high else "two_of_three_low"]:
        return {"rule": "two_of_three", "side": side}
    return None


def _trailing(holds: Callable[[int], bool], values: Sequence[float]) -> int:
    """How many points, counting back from the last, satisfy `holds(position)`."""
    count = 0
    for i in range(len(values) - 1, -1, -1):
        if not holds(i):
            break
        count += 1
    return count
