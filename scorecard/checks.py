"""Where the document disagrees with its own figures.

Computed from the store, so `pcp check-data` always describes exactly what the bot
serves. The cards show the computed figure; this report lists every stated change or
total that differs from it, and the inconsistencies recorded by hand in data/plan.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlmodel import Session

from scorecard import cards, queries


@dataclass(frozen=True)
class Discrepancy:
    subject: str  # what a person would look up: a metric key, or "funding 2023/24"
    title: str
    field: str  # "change", "change (Fatal)", "total awarded", "period" ...
    stated: str
    computed: Decimal | int | None  # None for a recorded note with no arithmetic
    unit: str
    note: str
    source: str


def find_discrepancies(*, session: Session) -> list[Discrepancy]:
    found: list[Discrepancy] = []
    for metric in cards.metric_views(queries.all_metrics(session=session), session=session):
        for series in metric.series:
            if series.stated_agrees is False and series.change is not None:
                found.append(
                    Discrepancy(
                        subject=metric.key,
                        title=metric.name,
                        field=f"change ({series.label})" if series.label else "change",
                        stated=series.stated_change,
                        computed=series.change.absolute,
                        unit=metric.unit,
                        note="",
                        source=metric.source,
                    )
                )
        for note in metric.discrepancies:
            found.append(
                Discrepancy(
                    subject=metric.key,
                    title=metric.name,
                    field="period",
                    stated="",
                    computed=None,
                    unit=metric.unit,
                    note=note,
                    source=metric.source,
                )
            )
    for year in cards.funding_table(session=session).years:
        for field, agrees, stated, computed in (
            ("total awarded", year.awarded_agrees, year.stated_awarded, year.total_awarded),
            ("total allocated", year.allocated_agrees, year.stated_allocated, year.total_allocated),
        ):
            if not agrees:
                found.append(
                    Discrepancy(
                        subject=f"funding {year.year}",
                        title=f"Funding {year.year}",
                        field=field,
                        stated=str(stated),
                        computed=computed,
                        unit="money",
                        note="",
                        source=year.source,
                    )
                )
    return found
