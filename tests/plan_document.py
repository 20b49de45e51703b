"""Read the performance table straight out of the plan document, independently of data/plan.

Tests compare what the bot shows with this, so a typo in our YAML cannot hide behind a
test that reads the same YAML.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal

from tests.conftest import SOURCE

ARROWS = {"↑", "↓", "↔"}
METRIC_CELL = re.compile(r"^(Increase|Reduce|Maintain|Improve|Decrease|Monitor|Keep|Recruit)\b")
PERIOD_PHRASES = re.compile(r"\(?\d+\s*m(?:on)?ths to [A-Za-z]+ \d+\)?|\(\d{4}\)")
NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?")


def numbers(text: str) -> list[Decimal]:
    """Every figure in a cell, with period phrases like '12 months to Mar 2019' removed first."""
    return [Decimal(n.replace(",", "")) for n in NUMBER.findall(PERIOD_PHRASES.sub(" ", text))]


@dataclass
class Row:
    name: str
    text_value: str | None = None  # "See Appendix 2" / "Not available" rows
    baselines: list[Decimal] = field(default_factory=list)
    currents: list[Decimal] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)  # the Change cells as printed
    arrows: list[str] = field(default_factory=list)


def table_rows() -> list[Row]:
    lines = SOURCE.read_text(encoding="utf-8").split("Police and Crime Plan Performance Monitoring", 1)[1]
    rows: list[Row] = []
    for line in lines.splitlines():
        cells = [c.strip() for c in line.split("\t")]
        while cells and not cells[-1]:
            cells.pop()
        if not cells or cells[0] == "PCP Priority":
            continue
        name = next((c for c in cells if METRIC_CELL.match(c)), None)
        if name is None and not rows:
            continue
        if name is not None:
            rows.append(Row(name=name))
        row = rows[-1]
        if cells[-1] not in ARROWS:  # a row the document gives as text only
            after = cells[cells.index(name) + 1 :] if name else cells
            row.text_value = next(c for c in after if c)
            continue
        trend, change, current, baseline = cells[-1], cells[-2], cells[-3], cells[-4]
        row.arrows.append(trend)
        row.baselines += numbers(baseline)
        row.currents += numbers(current)
        row.changes.append(change)
    return rows
