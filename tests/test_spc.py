"""XmR charts by the NHS "Making Data Count" rules.

Each rule is tested on hand-made data that triggers it alone: alternating 8 and 12 (mean 10,
moving range 4, so no run, trend or two-sigma pattern) with one pattern injected. Low-side
cases are the high-side ones mirrored about 10, which mirrors every line exactly.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pandas as pd
import pytest

from scorecard.spc import COLUMNS, SpcSummary, summarise, xmr

RULES = (
    "above_upl",
    "below_lpl",
    "shift_high",
    "shift_low",
    "trend_up",
    "trend_down",
    "two_of_three_high",
    "two_of_three_low",
)
MIRRORED = {
    "above_upl": "below_lpl",
    "shift_high": "shift_low",
    "trend_up": "trend_down",
    "two_of_three_high": "two_of_three_low",
}
MIRRORED |= {low: high for high, low in MIRRORED.items()}

NOISE = [8.0, 12.0] * 12  # 24 points: even positions 8 (below the mean), odd 12 (above)
WORKED = [20, 24, 20, 26, 22, 16, 18, 16, 31, 28, 34, 26, 30, 19, 18]


def flagged(chart: pd.DataFrame) -> dict[str, list[int]]:
    """Positions flagged by each rule, leaving out rules that flag nothing."""
    return {rule: [i for i, flag in enumerate(chart[rule]) if flag] for rule in RULES if chart[rule].any()}


def injected(start: int, pattern: list[float], base: list[float] = NOISE) -> list[float]:
    values = list(base)
    values[start : start + len(pattern)] = pattern
    return values


def mirror(values: list[float]) -> list[float]:
    return [20 - value for value in values]


def positions(start: int, stop: int) -> list[int]:
    return list(range(start, stop))


# --- the worked example ---------------------------------------------------------------------


def test_worked_example_from_the_mdc_conformance_checks():
    chart = xmr(WORKED, direction="up")
    assert list(chart.columns[: len(COLUMNS)]) == list(COLUMNS)
    mr_bar = chart["mr"].iloc[1:].sum() / 14
    assert round(mr_bar, 6) == 5.428571
    assert chart["mean"].tolist() == pytest.approx([23.2] * 15)
    assert chart["upl"].tolist() == pytest.approx([37.64] * 15)
    assert chart["lpl"].tolist() == pytest.approx([8.76] * 15)
    assert chart["upper_two_sigma"].tolist() == pytest.approx([32.826667] * 15)
    assert chart["lower_two_sigma"].tolist() == pytest.approx([13.573333] * 15)
    assert math.isnan(chart["mr"].iloc[0])
    assert chart["mr"].iloc[1:].tolist() == [4, 4, 6, 4, 6, 2, 2, 15, 3, 6, 8, 4, 11, 1]
    assert chart["period"].tolist() == [0] * 15
    assert flagged(chart) == {}
    assert not chart["special_cause_high"].any() and not chart["special_cause_low"].any()
    assert set(chart["variation"]) == {"common_cause"}
    assert chart.attrs == {"variation_icon": "common_cause", "assurance_icon": None}
    assert summarise(chart) == SpcSummary(
        points=15,
        enough_points=True,
        variation_icon="common_cause",
        assurance_icon=None,
        last_variation="common_cause",
        reason=None,
    )


def test_noise_alone_signals_nothing():
    chart = xmr(NOISE)
    assert chart["mean"].iloc[0] == 10
    assert chart["upl"].iloc[0] == pytest.approx(20.64)
    assert chart["upper_two_sigma"].iloc[0] == pytest.approx(10 + 2.66 * 4 * 2 / 3)
    assert flagged(chart) == {}


# --- every rule, both sides, every direction --------------------------------------------------

HIGH_SIDE_CASES = {
    "single point above UPL": (injected(10, [30]), {"above_upl": [10]}),
    "shift of exactly 6": (injected(7, [8, 13, 13, 13, 13, 13, 13, 8]), {"shift_high": positions(8, 14)}),
    "shift of 5 is not a signal": (injected(7, [8, 13, 13, 13, 13, 13, 8]), {}),
    "trend of exactly 6, first point included": (
        injected(8, [8.5, 9, 9.5, 10.5, 11, 11.5]),
        {"trend_up": positions(8, 14)},
    ),
    "trend of 5 is not a signal": (injected(8, [8.5, 9, 10.5, 11, 11.5, 8]), {}),
    "two of three beyond two-sigma, not the third": (injected(10, [20, 12, 20]), {"two_of_three_high": [10, 12]}),
}
SIGNAL_VARIATION = {
    ("high", "up"): "improvement",
    ("high", "down"): "concern",
    ("high", "neither"): "neither",
    ("low", "up"): "concern",
    ("low", "down"): "improvement",
    ("low", "neither"): "neither",
}


@pytest.mark.parametrize("direction", ["up", "down", "neither"])
@pytest.mark.parametrize("side", ["high", "low"])
@pytest.mark.parametrize("case", list(HIGH_SIDE_CASES))
def test_each_rule_flags_exactly_its_points(case, side, direction):
    values, expected = HIGH_SIDE_CASES[case]
    if side == "low":
        values = mirror(values)
        expected = {MIRRORED[rule]: where for rule, where in expected.items()}
    chart = xmr(values, direction=direction)

    assert flagged(chart) == expected
    signals = sorted({i for where in expected.values() for i in where})
    assert [i for i, flag in enumerate(chart[f"special_cause_{side}"]) if flag] == signals
    other = "low" if side == "high" else "high"
    assert not chart[f"special_cause_{other}"].any()
    want = SIGNAL_VARIATION[side, direction]
    assert chart["variation"].tolist() == [want if i in signals else "common_cause" for i in range(len(values))]
    assert chart.attrs["variation_icon"] == "common_cause"  # the last point is noise


def test_two_of_three_premise_both_points_between_two_sigma_and_the_limit():
    chart = xmr(HIGH_SIDE_CASES["two of three beyond two-sigma, not the third"][0])
    row = chart.iloc[10]
    assert row["upper_two_sigma"] < 20 < row["upl"]
    assert row["mean"] < 12 < row["upper_two_sigma"]


def test_a_point_beyond_the_limit_does_not_count_towards_two_of_three():
    base = [8.0, 12.0] * 20
    beyond_limit = xmr(injected(10, [30, 12, 21], base))
    row = beyond_limit.iloc[10]
    assert row["upl"] < 30 and row["upper_two_sigma"] < 21 < row["upl"]  # both past two-sigma
    assert flagged(beyond_limit) == {"above_upl": [10]}
    assert beyond_limit["variation"].tolist()[10:13] == ["improvement", "common_cause", "common_cause"]

    both_inside = xmr(injected(10, [21, 12, 21], base))
    assert both_inside["upper_two_sigma"].iloc[10] < 21 < both_inside["upl"].iloc[10]
    assert flagged(both_inside) == {"two_of_three_high": [10, 12]}

    low = xmr(mirror(injected(10, [30, 12, 21], base)))
    assert flagged(low) == {"below_lpl": [10]}


# --- ties -------------------------------------------------------------------------------------


# 32 points with mean exactly 10: a run of 7 above and one of 7 below, each with its middle point
# set to a given value (10 = exactly on the mean).
def runs_with_middle(high_middle: float, low_middle: float) -> list[float]:
    above = [13, 13, 13, high_middle, 13, 13, 13]
    below = [7, 7, 7, low_middle, 7, 7, 7]
    return [12, 8] * 3 + above + [8, 12] * 3 + below + [12, 8] * 3


def test_a_point_exactly_on_the_mean_breaks_a_shift():
    chart = xmr(runs_with_middle(10, 10))
    assert chart["mean"].iloc[0] == 10
    assert chart["value"].iloc[9] == 10 and chart["value"].iloc[22] == 10
    assert flagged(chart) == {}


def test_the_mean_is_exact_so_a_flat_series_sits_on_it():
    # sum([0.1] * 20) / 20 is 0.10000000000000002, which would put every point below the mean
    chart = xmr([0.1] * 20)
    assert chart["mean"].iloc[0] == 0.1
    assert chart["upl"].iloc[0] == chart["lpl"].iloc[0] == 0.1
    assert flagged(chart) == {}


def test_the_same_runs_just_off_the_mean_are_shifts():
    chart = xmr(runs_with_middle(11, 9))
    assert chart["mean"].iloc[0] == 10
    assert flagged(chart) == {"shift_high": positions(6, 13), "shift_low": positions(19, 26)}


def test_a_repeated_value_breaks_a_trend():
    tied = xmr(injected(8, [8.5, 9, 9.5, 9.5, 10.5, 11, 11.5, 8]))
    assert flagged(tied) == {}
    untied = xmr(injected(8, [8.5, 9, 9.5, 9.7, 10.5, 11, 11.5, 8]))
    assert flagged(untied) == {"trend_up": positions(8, 15)}


def test_a_value_exactly_on_the_limit_or_the_two_sigma_line_is_not_beyond_it():
    lines = xmr(NOISE[:20]).iloc[0]  # the same limits as the 20-point baseline below
    upl, lpl, two_sigma = lines["upl"], lines["lpl"], lines["upper_two_sigma"]

    on_lines = xmr([*NOISE[:20], upl, 8, 12, lpl, 12, 8, two_sigma, 12, two_sigma, 8], baseline=20)
    assert on_lines["upl"].iloc[20] == upl and on_lines["lpl"].iloc[23] == lpl
    assert flagged(on_lines) == {}

    past = xmr(
        [*NOISE[:20], upl + 0.01, 8, 12, lpl - 0.01, 12, 8, two_sigma + 0.01, 12, two_sigma + 0.01, 8], baseline=20
    )
    assert flagged(past) == {"above_upl": [20], "below_lpl": [23], "two_of_three_high": [26, 28]}


# --- flagged both ways ------------------------------------------------------------------------


def test_a_trend_crossing_the_mean_flagged_both_ways_counts_as_improvement():
    # a shift below the mean (12..18) whose last four points start a trend up (15..20) across it
    values = [8, 12] * 6 + [6, 6, 6, 5, 6, 7, 8, 11, 12.5] + [8, 12] * 5
    up = xmr(values, direction="up")
    assert flagged(up) == {"shift_low": positions(12, 19), "trend_up": positions(15, 21)}
    assert up["mean"].iloc[0] < 11
    both = [15, 16, 17, 18]
    assert all(up["special_cause_high"].iloc[both]) and all(up["special_cause_low"].iloc[both])
    variation = {
        direction: xmr(values, direction=direction)["variation"].tolist()[12:21] for direction in ("up", "down")
    }
    assert variation["up"] == ["concern"] * 3 + ["improvement"] * 6
    assert variation["down"] == ["improvement"] * 7 + ["concern"] * 2
    assert set(xmr(values, direction="neither")["variation"].iloc[12:21]) == {"neither"}


@pytest.mark.parametrize(
    ("direction", "icon", "reason"),
    [
        ("up", "improvement_high", {"rule": "trend", "side": "up", "length": 6}),
        ("down", "improvement_low", {"rule": "shift", "side": "low", "length": 6}),
        ("neither", "neither_low", {"rule": "shift", "side": "low", "length": 6}),
    ],
)
def test_last_point_flagged_both_ways_reports_the_side_that_made_it_improvement(direction, icon, reason):
    chart = xmr([8, 12] * 10 + [5, 5.5, 6, 6.5, 7, 7.5], direction=direction)
    assert flagged(chart) == {"shift_low": positions(20, 26), "trend_up": positions(20, 26)}
    summary = summarise(chart)
    assert summary.variation_icon == icon
    assert summary.reason == reason
    assert summary.last_variation == ("neither" if direction == "neither" else "improvement")


# --- fewer than 13 points -----------------------------------------------------------------------


def test_fewer_than_13_points_is_a_run_chart_mean_only():
    values = list(range(1, 13))  # a 12-point trend up, which would be a signal on a chart
    chart = xmr(values, target=5)
    assert chart["mean"].tolist() == [6.5] * 12
    assert chart["mr"].iloc[1:].tolist() == [1.0] * 11
    for column in ("upl", "lpl", "upper_two_sigma", "lower_two_sigma"):
        assert chart[column].isna().all(), column
    assert flagged(chart) == {}
    assert not chart["special_cause_high"].any() and not chart["special_cause_low"].any()
    assert set(chart["variation"]) == {"common_cause"}
    assert chart.attrs == {"variation_icon": None, "assurance_icon": None}
    assert summarise(chart) == SpcSummary(
        points=12,
        enough_points=False,
        variation_icon=None,
        assurance_icon=None,
        last_variation="common_cause",
        reason=None,
    )


def test_fewer_than_13_points_with_a_recalculation_still_shows_each_period_mean():
    chart = xmr([1, 3, 1, 3, 1, 3, 10, 12, 10, 12], recalculate_at=[6])
    assert chart["mean"].tolist() == [2] * 6 + [11] * 4
    assert chart["period"].tolist() == [0] * 6 + [1] * 4
    assert chart["upl"].isna().all()


def test_exactly_13_points_has_limits_and_signals():
    chart = xmr(list(range(1, 14)), target=0)
    assert chart["upl"].tolist() == pytest.approx([7 + 2.66] * 13)
    assert chart["lpl"].tolist() == pytest.approx([7 - 2.66] * 13)
    assert flagged(chart) == {
        "above_upl": positions(9, 13),
        "below_lpl": positions(0, 4),
        "shift_low": positions(0, 6),
        "shift_high": positions(7, 13),
        "trend_up": positions(0, 13),
    }
    assert chart.attrs == {"variation_icon": "improvement_high", "assurance_icon": "consistently_passing"}
    assert summarise(chart).reason == {"rule": "single_point", "side": "high"}  # reported before the trend


def test_an_empty_series_is_a_chart_with_no_points():
    chart = xmr([])
    assert list(chart.columns) == list(COLUMNS) and len(chart) == 0
    assert summarise(chart) == SpcSummary(0, False, None, None, None, None)


# --- recalculation ----------------------------------------------------------------------------

STEP = [8.0, 12.0] * 8 + [28.0, 32.0] * 8  # a step change at position 16


def test_recalculation_gives_each_period_its_own_mean_limits_and_moving_ranges():
    chart = xmr(STEP, recalculate_at=[16])
    assert chart["period"].tolist() == [0] * 16 + [1] * 16
    assert chart["mean"].tolist() == [10] * 16 + [30] * 16
    assert chart["upl"].tolist() == pytest.approx([20.64] * 16 + [40.64] * 16)
    assert chart["lpl"].tolist() == pytest.approx([-0.64] * 16 + [19.36] * 16)  # not clipped at zero
    mr = chart["mr"].tolist()
    assert math.isnan(mr[0]) and math.isnan(mr[16])  # no moving range across the step
    assert mr[1:16] == [4] * 15 and mr[17:] == [4] * 15
    assert flagged(chart) == {}


def test_without_recalculation_the_step_is_two_shifts():
    chart = xmr(STEP)
    assert chart["mr"].iloc[16] == 16
    assert flagged(chart)["shift_low"] == positions(0, 16)
    assert flagged(chart)["shift_high"] == positions(16, 32)


def test_a_shift_crossing_a_recalculation_is_judged_against_each_points_own_period():
    first = [12.0, 8.0] * 8 + [13.0] * 3  # 19 points, mean 10.47: the 13s are above it
    crossing = xmr(first + [31.0] * 3 + [28.0, 32.0] * 8, recalculate_at=[19])
    assert crossing["mean"].iloc[0] < 12 < 13 and 28 < crossing["mean"].iloc[19] < 31
    assert flagged(crossing) == {"shift_high": positions(16, 22)}

    # 29 is far above the first period's mean but below its own period's: the run breaks
    broken = xmr(first + [29.0] * 3 + [32.0, 28.0] * 8, recalculate_at=[19])
    assert 29 < broken["mean"].iloc[19] < 32
    assert flagged(broken) == {}


@pytest.mark.parametrize("given", [[16, 16], [16, 0], (np.int64(16),)])
def test_recalculation_positions_are_deduplicated_and_zero_is_ignored(given):
    assert xmr(STEP, recalculate_at=given).equals(xmr(STEP, recalculate_at=[16]))


def test_recalculation_positions_may_come_in_any_order():
    assert xmr(STEP, recalculate_at=[20, 16]).equals(xmr(STEP, recalculate_at=[16, 20]))
    assert xmr(STEP, recalculate_at=[20, 16])["period"].tolist() == [0] * 16 + [1] * 4 + [2] * 12


@pytest.mark.parametrize("given", [[-1], [32], [100], [2.5], ["3"], [True]])
def test_recalculation_outside_the_chart_or_not_a_position_is_an_error(given):
    with pytest.raises(ValueError, match="recalculation position"):
        xmr(STEP, recalculate_at=given)


# --- baseline ---------------------------------------------------------------------------------


def test_baseline_limits_are_carried_forward_unmoved_by_later_points():
    values = NOISE[:20] + [15.0] * 10
    chart = xmr(values, baseline=20)
    reference = xmr(NOISE[:20])
    for column in ("mean", "upl", "lpl", "upper_two_sigma", "lower_two_sigma"):
        assert chart[column].tolist() == [reference[column].iloc[0]] * 30, column
    assert chart["mean"].iloc[0] == 10
    assert chart["period"].tolist() == [0] * 30
    assert chart["mr"].iloc[20] == 3  # moving ranges run on within the period
    assert flagged(chart) == {"shift_high": positions(19, 30)}  # the baseline's last point, 12, starts it
    assert xmr(values)["mean"].iloc[0] == pytest.approx(35 / 3)  # without the baseline the level moves


def test_a_later_point_beyond_the_carried_limits_is_flagged():
    values = [*NOISE[:20], 12.0, 8.0, 21.0, 8.0, 12.0, 8.0]
    chart = xmr(values, baseline=20)
    assert chart["upl"].iloc[22] == pytest.approx(20.64)
    assert flagged(chart) == {"above_upl": [22]}
    assert chart["variation"].iloc[22] == "improvement"
    assert flagged(xmr(values)) == {}  # the same point is inside limits computed on every point


def test_baseline_applies_to_the_first_period_and_the_next_period_uses_all_its_points():
    values = NOISE[:20] + [15.0] * 4 + [28.0, 32.0] * 8 + [40.0]
    chart = xmr(values, baseline=20, recalculate_at=[24])
    assert chart["mean"].tolist()[:24] == [10] * 24
    assert chart["mean"].iloc[24] == pytest.approx((30 * 16 + 40) / 17)
    assert chart["period"].tolist() == [0] * 24 + [1] * 17


def test_a_baseline_longer_than_an_unrecalculated_series_covers_all_of_it():
    assert xmr(WORKED, baseline=24).equals(xmr(WORKED))
    assert xmr(WORKED, baseline=15).equals(xmr(WORKED))


@pytest.mark.parametrize("baseline", [0, 1, -3, 2.5, True])
def test_baseline_must_be_a_whole_number_of_at_least_two_points(baseline):
    with pytest.raises(ValueError, match="baseline"):
        xmr(WORKED, baseline=baseline)


def test_baseline_reaching_past_the_first_recalculation_is_an_error():
    with pytest.raises(ValueError, match="past the first recalculation"):
        xmr(STEP, baseline=17, recalculate_at=[16])
    assert xmr(STEP, baseline=16, recalculate_at=[16]).equals(xmr(STEP, recalculate_at=[16]))


# --- assurance ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("direction", "target", "icon"),
    [
        ("up", 5, "consistently_passing"),  # LPL 8.76, UPL 37.64
        ("up", 40, "consistently_failing"),
        ("up", 20, "hit_or_miss"),
        ("down", 40, "consistently_passing"),
        ("down", 5, "consistently_failing"),
        ("down", 20, "hit_or_miss"),
        ("neither", 5, None),
        ("neither", 40, None),
        ("neither", 20, None),
        ("up", None, None),
        ("down", None, None),
    ],
)
def test_assurance_icon(direction, target, icon):
    chart = xmr(WORKED, direction=direction, target=target)
    assert chart.attrs["assurance_icon"] == icon
    assert summarise(chart).assurance_icon == icon


def test_assurance_at_exactly_a_limit_counts_as_beyond_it():
    lines = xmr(WORKED).iloc[-1]
    assert xmr(WORKED, target=lines["lpl"]).attrs["assurance_icon"] == "consistently_passing"
    assert xmr(WORKED, target=lines["upl"]).attrs["assurance_icon"] == "consistently_failing"
    assert xmr(WORKED, direction="down", target=lines["lpl"]).attrs["assurance_icon"] == "consistently_failing"


def test_assurance_uses_the_last_periods_limits():
    assert xmr(STEP, target=15).attrs["assurance_icon"] == "hit_or_miss"
    assert xmr(STEP, target=15, recalculate_at=[16]).attrs["assurance_icon"] == "consistently_passing"


# --- icons and the reason for the last point ------------------------------------------------------

SHIFT_AT_END = [12.0, 8.0] * 10 + [13.0] * 6


@pytest.mark.parametrize(
    ("direction", "icon", "variation"),
    [
        ("down", "concern_high", "concern"),
        ("up", "improvement_high", "improvement"),
        ("neither", "neither_high", "neither"),
    ],
)
def test_last_six_points_above_the_mean(direction, icon, variation):
    chart = xmr(SHIFT_AT_END, direction=direction)
    assert flagged(chart) == {"shift_high": positions(20, 26)}
    assert summarise(chart) == SpcSummary(
        points=26,
        enough_points=True,
        variation_icon=icon,
        assurance_icon=None,
        last_variation=variation,
        reason={"rule": "shift", "side": "high", "length": 6},
    )


def test_the_reason_reports_the_length_of_the_run_the_last_point_ends():
    chart = xmr([12.0, 8.0] * 10 + [13.0] * 9, direction="down")
    assert summarise(chart).reason == {"rule": "shift", "side": "high", "length": 9}


def test_single_point_below_the_limit_at_the_end():
    chart = xmr([8.0, 12.0] * 10 + [-10.0], direction="up")
    assert flagged(chart) == {"below_lpl": [20]}
    summary = summarise(chart)
    assert summary.variation_icon == "concern_low"
    assert summary.reason == {"rule": "single_point", "side": "low"}


def test_a_single_point_is_reported_before_the_shift_it_ends():
    chart = xmr([12.0, 8.0] * 10 + [13.0] * 5 + [30.0], direction="up")
    assert flagged(chart) == {"above_upl": [25], "shift_high": positions(20, 26)}
    assert summarise(chart).reason == {"rule": "single_point", "side": "high"}


def test_trend_of_seven_at_the_end():
    chart = xmr([8.0, 12.0] * 10 + [8.5, 9, 9.5, 10.5, 11, 11.5, 11.8], direction="up")
    assert flagged(chart) == {"trend_up": positions(20, 27)}
    summary = summarise(chart)
    assert summary.variation_icon == "improvement_high"
    assert summary.reason == {"rule": "trend", "side": "up", "length": 7}


def test_trend_down_at_the_end_with_direction_down():
    chart = xmr(mirror([8.0, 12.0] * 10 + [8.5, 9, 9.5, 10.5, 11, 11.5]), direction="down")
    assert flagged(chart) == {"trend_down": positions(20, 26)}
    assert summarise(chart).variation_icon == "improvement_low"
    assert summarise(chart).reason == {"rule": "trend", "side": "down", "length": 6}


def test_two_of_three_at_the_end():
    chart = xmr([8.0, 12.0] * 11 + [20.0, 12.0, 20.0], direction="down")
    assert flagged(chart) == {"two_of_three_high": [22, 24]}
    summary = summarise(chart)
    assert summary.variation_icon == "concern_high"
    assert summary.reason == {"rule": "two_of_three", "side": "high"}


def test_a_signal_earlier_in_the_series_does_not_set_the_icon():
    chart = xmr(injected(10, [30]), direction="up")
    assert chart["variation"].iloc[10] == "improvement"
    assert summarise(chart).variation_icon == "common_cause"
    assert summarise(chart).reason is None


# --- input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["Up", "increase", "", None])
def test_a_bad_direction_is_an_error(direction):
    with pytest.raises(ValueError, match="direction"):
        xmr(WORKED, direction=direction)


@pytest.mark.parametrize("bad", [math.nan, None, math.inf, "7", pd.NA])
def test_a_missing_or_non_numeric_value_is_an_error_naming_its_position(bad):
    values: list[object] = list(WORKED)
    values[4] = bad
    with pytest.raises(ValueError, match="position 4"):
        xmr(values)


def test_nan_in_a_series_is_an_error_naming_its_position():
    with pytest.raises(ValueError, match="position 2"):
        xmr(pd.Series([1.0, 2.0, np.nan, 4.0], index=["a", "b", "c", "d"]))


@pytest.mark.parametrize("target", [math.nan, "high", math.inf])
def test_a_bad_target_is_an_error(target):
    with pytest.raises(ValueError, match="target"):
        xmr(WORKED, target=target)


def test_a_series_keeps_its_index_and_recalculation_is_by_position():
    months = pd.period_range("2021-01", periods=32, freq="M")
    chart = xmr(pd.Series(STEP, index=months), recalculate_at=[16])
    assert chart.index.equals(months)
    assert chart.loc[pd.Period("2022-05", freq="M"), "period"] == 1
    assert chart.reset_index(drop=True).equals(xmr(STEP, recalculate_at=[16]))


def test_decimals_and_numpy_arrays_are_numbers():
    assert xmr([Decimal(str(v)) for v in WORKED]).equals(xmr(WORKED))
    assert xmr(np.array(WORKED)).equals(xmr(WORKED))


def test_ten_thousand_points_well_under_a_second():
    values = np.random.default_rng(7).normal(100, 10, 10_000)
    started = time.perf_counter()
    chart = xmr(values, recalculate_at=[2_500, 5_000], baseline=500, target=90)
    assert time.perf_counter() - started < 1.0
    assert len(chart) == 10_000 and chart["period"].iloc[-1] == 2


# --- the rules as written, checked against an independent window-by-window reading -----------


def by_the_book(values: list[int], starts: list[int]) -> dict[str, list[int]]:
    """The reference's sentences applied literally, in exact arithmetic, window by window."""
    n = len(values)
    mean, upl, lpl, upper2, lower2 = ([Fraction(0)] * n for _ in range(5))
    for start, end in zip(starts, [*starts[1:], n], strict=True):
        period = values[start:end]
        centre = Fraction(sum(period), len(period))
        ranges = [abs(b - a) for a, b in itertools.pairwise(period)]
        width = Fraction("2.66") * Fraction(sum(ranges), len(ranges)) if ranges else None
        for i in range(start, end):
            mean[i] = centre
            if width is not None:  # no moving range in a one-point period: no limits there
                upl[i], lpl[i] = centre + width, centre - width
                upper2[i], lower2[i] = centre + width * 2 / 3, centre - width * 2 / 3
            else:
                upl[i] = upper2[i] = Fraction(10**9)
                lpl[i] = lower2[i] = Fraction(-(10**9))
    found: dict[str, set[int]] = {rule: set() for rule in RULES}
    for i, y in enumerate(values):
        if y > upl[i]:
            found["above_upl"].add(i)
        if y < lpl[i]:
            found["below_lpl"].add(i)
    for i in range(n - 5):
        six = range(i, i + 6)
        if all(values[j] > mean[j] for j in six):
            found["shift_high"].update(six)
        if all(values[j] < mean[j] for j in six):
            found["shift_low"].update(six)
        if all(values[j + 1] > values[j] for j in six[:-1]):
            found["trend_up"].update(six)
        if all(values[j + 1] < values[j] for j in six[:-1]):
            found["trend_down"].update(six)
    for i in range(n - 2):
        three = range(i, i + 3)
        if all(values[j] > mean[j] for j in three):
            beyond = [j for j in three if upper2[j] < values[j] <= upl[j]]
            if len(beyond) >= 2:
                found["two_of_three_high"].update(beyond)
        if all(values[j] < mean[j] for j in three):
            beyond = [j for j in three if lpl[j] <= values[j] < lower2[j]]
            if len(beyond) >= 2:
                found["two_of_three_low"].update(beyond)
    return {rule: sorted(where) for rule, where in found.items() if where}


def test_agrees_with_the_rules_read_window_by_window_on_random_series():
    rng = random.Random(20240601)
    seen: set[str] = set()
    for _ in range(300):
        n = rng.randint(13, 70)
        values = [rng.choice([0, 1, 2, 2, 3, 3, 4, 5]) + rng.choice([0] * 12 + [-9, 9]) for _ in range(n)]
        if rng.random() < 0.5:
            values = [v + i // 3 for i, v in enumerate(values)]  # drift, for longer trends and shifts
        starts = sorted({0, *rng.sample(range(2, n - 1), rng.randint(0, 2))})
        chart = xmr(values, recalculate_at=starts)
        expected = by_the_book(values, starts)
        assert flagged(chart) == expected, (values, starts)
        seen |= set(expected)
    assert seen == set(RULES)  # the random series exercised every rule
