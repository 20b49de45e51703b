"""Change and status against the plan's intended direction."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.render import figure, money, signed
from scorecard.status import Direction, Status, agrees, combine, compute_change, judge, parse_stated


def test_change_is_exact_decimal_arithmetic():
    change = compute_change(85.1, 85.7)
    assert change.absolute == Decimal("0.6")
    assert change.percent == Decimal("0.7")
    assert compute_change(2599, 2366).absolute == Decimal(-233)
    assert compute_change(2599, 2366).percent == Decimal("-9.0")


def test_percent_change_from_zero_is_undefined():
    assert compute_change(0, 5).percent is None


@pytest.mark.parametrize(
    ("direction", "baseline", "latest", "status"),
    [
        (Direction.REDUCE, 2599, 2366, Status.IMPROVING),
        (Direction.REDUCE, 42, 57, Status.WORSENING),
        (Direction.INCREASE, 441, 638, Status.IMPROVING),
        (Direction.INCREASE, 72.6, 71.2, Status.WORSENING),
        (Direction.MAINTAIN, 85.6, 87.0, Status.IMPROVING),
        (Direction.MAINTAIN, 87.0, 85.6, Status.WORSENING),
        (Direction.KEEP_BELOW, 46162, 32143, Status.IMPROVING),
        (Direction.KEEP_BELOW, 933, 1000, Status.WORSENING),
        (Direction.INCREASE, 7.7, 7.7, Status.NO_CHANGE),
        (Direction.MONITOR, 650, 780, Status.MONITORED),
        (Direction.MONITOR, 780, 650, Status.MONITORED),
    ],
)
def test_status_follows_the_intended_direction(direction, baseline, latest, status):
    assert judge(direction, compute_change(baseline, latest)) is status


def test_no_figures_is_no_data_unless_monitored():
    assert judge(Direction.REDUCE, None) is Status.NO_DATA
    assert judge(Direction.MONITOR, None) is Status.MONITORED


def test_series_combine():
    assert combine([Status.WORSENING, Status.WORSENING]) is Status.WORSENING
    assert combine([Status.IMPROVING, Status.WORSENING]) is Status.MIXED
    assert combine([Status.IMPROVING, Status.NO_CHANGE]) is Status.IMPROVING
    assert combine([Status.NO_DATA]) is Status.NO_DATA


@pytest.mark.parametrize(
    ("stated", "computed", "ok"),
    [
        ("-1.4%", "-1.4", True),
        ("1.3%", "1.5", False),
        ("+1.3%", "4.2", False),
        ("2078", "2078", True),
        ("407", "-107", False),
        ("0.0%", "0", True),
        ("-5", "-5", True),
    ],
)
def test_stated_changes_are_compared_at_their_own_precision(stated, computed, ok):
    assert agrees(parse_stated(stated), Decimal(computed)) is ok


def test_blank_stated_change_is_none():
    assert parse_stated("") is None


def test_figures_are_written_as_the_document_writes_them():
    assert figure(2599.0, "count") == "2,599"
    assert figure(87.0, "percent") == "87.0%"
    assert figure(72, "number") == "72"
    assert signed(Decimal("-233"), "count") == "-233"
    assert signed(Decimal("1.5"), "percent") == "+1.5 pp"
    assert signed(Decimal("0"), "percent") == "±0 pp"
    assert money(16966014) == "£16,966,014"
