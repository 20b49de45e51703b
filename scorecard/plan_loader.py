"""Load the plan document's data files (data/plan/*.yaml) into the store.

Everything is written in one transaction, so a broken data file leaves the store as it
was. The loader copies the document's figures and stated changes as they are; it never
copies a stated change or total into a figure. Disagreements are found by
`scorecard.checks`, from the store, so the report always describes what is served.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from sqlmodel import Session, select

from scorecard import queries
from scorecard.models import (
    Area,
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
from scorecard.status import Direction

PLAN_DIR = Path(__file__).resolve().parent.parent / "data" / "plan"

# The overview was published in December 2023; figures whose period it does not state
# ("Current Performance") are ordered by this date.
DOCUMENT_DATE = date(2023, 12, 1)
UNITS = {"percent", "count", "number"}
AREA_KINDS = {"priority", "theme", "work"}
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
COLUMN = {"baseline": "Police and Crime plan baseline", "current": "Current Performance"}


class PlanDataError(ValueError):
    """A data file breaks the schema; the message names the file and the entry."""


def _read(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def plan_is_loaded(*, session: Session) -> bool:
    return session.exec(select(Metric.id).limit(1)).first() is not None


def load_plan(*, session: Session, plan_dir: Path = PLAN_DIR) -> None:
    """Write the whole plan into an empty store. The caller commits."""
    areas = _load_areas(_read(plan_dir / "priorities.yaml"), session=session)
    _load_metrics(_read(plan_dir / "metrics.yaml"), areas=areas, session=session)
    _load_funding(_read(plan_dir / "funding.yaml"), session=session)
    queries.bump_data_version(session=session)


def _load_areas(entries: list[dict], *, session: Session) -> dict[str, Area]:
    areas: dict[str, Area] = {}
    seen_aliases: dict[str, str] = {}
    for position, entry in enumerate(entries):
        key = entry["key"]
        if entry["kind"] not in AREA_KINDS:
            raise PlanDataError(f"priorities.yaml, {key}: unknown kind {entry['kind']!r}")
        for alias in entry.get("aliases", []):
            if alias.lower() in seen_aliases:
                raise PlanDataError(f"priorities.yaml, {key}: alias {alias!r} is also {seen_aliases[alias.lower()]}'s")
            seen_aliases[alias.lower()] = key
        area = Area(
            key=key,
            kind=entry["kind"],
            number=entry.get("number"),
            position=position,
            name=entry["name"],
            short_name=entry.get("short_name", entry["name"]),
            summary=entry.get("summary", ""),
            aliases=entry.get("aliases", []),
            objective=entry.get("objective", []),
            outcomes=entry.get("outcomes", []),
            sections=entry.get("sections", []),
            related=entry.get("related", []),
            source=entry["source"],
        )
        session.add(area)
        areas[key] = area
    session.flush()
    for area in areas.values():
        unknown = [k for k in area.related if k not in areas]
        if unknown:
            raise PlanDataError(f"priorities.yaml, {area.key}: related areas {unknown} do not exist")
    for entry in entries:
        area = areas[entry["key"]]
        for milestone in entry.get("milestones", []):
            session.add(
                Milestone(
                    area_id=area.id,
                    number=milestone["number"],
                    title=milestone["title"],
                    summary=milestone["summary"],
                    source=f"{area.source}, milestone {milestone['number']}",
                )
            )
        for position, text in enumerate(entry.get("headlines", []), start=1):
            session.add(
                Headline(
                    key=f"{area.key}-h{position}",
                    area_id=area.id,
                    position=position,
                    text=text,
                    source=f"{area.source}, Performance Headlines",
                )
            )
    return areas


def _load_metrics(doc: dict, *, areas: dict[str, Area], session: Session) -> None:
    periods: dict[str, dict] = doc["periods"]
    table = doc["document"]["table"]
    title = doc["document"]["title"]
    headline_keys = set(session.exec(select(Headline.key)).all())
    for position, entry in enumerate(doc["metrics"]):
        where = f"metrics.yaml, {entry['key']}"
        if entry["priority"] not in areas:
            raise PlanDataError(f"{where}: unknown priority {entry['priority']!r}")
        Direction(entry["direction"])  # raises on an unknown direction
        if entry["unit"] not in UNITS:
            raise PlanDataError(f"{where}: unknown unit {entry['unit']!r}")
        missing = [h for h in entry.get("headlines", []) if h not in headline_keys]
        if missing:
            raise PlanDataError(f"{where}: headlines {missing} do not exist")
        target = entry.get("target") or {}
        recalculate_at = [str(month) for month in (entry.get("spc") or {}).get("recalculate_at", [])]
        if any(not MONTH.match(month) for month in recalculate_at):
            raise PlanDataError(f"{where}: spc.recalculate_at takes months written YYYY-MM")
        source = f"{title} – {table} table, row “{entry['name']}”"
        metric = Metric(
            key=entry["key"],
            name=entry["name"],
            short_name=entry["short_name"],
            area_id=areas[entry["priority"]].id,
            position=position,
            direction=entry["direction"],
            unit=entry["unit"],
            national_baseline=entry.get("national", ""),
            trend=entry.get("trend", ""),
            target_value=target.get("value"),
            target_by=target.get("by"),
            target_of=target.get("of"),
            aliases=entry.get("aliases", []),
            headline_keys=entry.get("headlines", []),
            spc_recalculate_at=recalculate_at,
            notes=entry.get("notes", []),
            discrepancies=entry.get("discrepancies", []),
            source=source,
        )
        session.add(metric)
        session.flush()
        for series_position, series in enumerate(entry["series"]):
            label = series.get("label", "")
            session.add(
                MetricSeries(
                    metric_id=metric.id,
                    label=label,
                    position=series_position,
                    stated_change=str(series.get("stated_change", "")),
                    trend=series.get("trend", ""),
                )
            )
            row_source = f"{source}, {label}" if label else source
            for role in ("baseline", "current"):
                figure = series[role]
                period = periods.get(figure["period"])
                if period is None:
                    raise PlanDataError(f"{where}: unknown period {figure['period']!r}")
                session.add(
                    Reading(
                        metric_id=metric.id,
                        series=label,
                        period_label=period["label"],
                        period_start=period.get("start"),
                        period_end=period.get("end"),
                        observed_on=period.get("end") or DOCUMENT_DATE,
                        value=figure.get("value"),
                        text=figure.get("text"),
                        is_baseline=role == "baseline",
                        source=f"{row_source} ({COLUMN[role]})",
                    )
                )


def _load_funding(doc: dict, *, session: Session) -> None:
    source = doc["source"]
    for year in doc["years"]:
        total = year["stated_total"]
        session.add(
            FundingYear(
                year=year["year"],
                heading=year["heading"],
                stated_awarded=total["awarded"],
                stated_awarded_mark=total.get("awarded_mark", ""),
                stated_allocated=total["allocated"],
                stated_allocated_mark=total.get("allocated_mark", ""),
                source=f"{source}, {year['year']} Total row",
            )
        )
    years = {y["year"] for y in doc["years"]}
    for position, entry in enumerate(doc["streams"]):
        stream = FundingStream(
            key=entry["key"], name=entry["name"], position=position, aliases=entry.get("aliases", []), source=source
        )
        session.add(stream)
        session.flush()
        for award in entry["awards"]:
            if award["year"] not in years:
                raise PlanDataError(f"funding.yaml, {entry['key']}: unknown year {award['year']!r}")
            for mark in (award.get("awarded_mark", ""), award.get("allocated_mark", "")):
                if mark and mark not in doc["markers"]:
                    raise PlanDataError(f"funding.yaml, {entry['key']}: unknown marker {mark!r}")
            session.add(
                FundingAward(
                    stream_id=stream.id,
                    year=award["year"],
                    label=award["label"],
                    awarded=award["awarded"],
                    awarded_mark=award.get("awarded_mark", ""),
                    allocated=award["allocated"],
                    allocated_mark=award.get("allocated_mark", ""),
                    source=f"{source}, {award['year']}, row “{award['label']}”",
                )
            )
    facts = {"source": source, "markers": doc["markers"], "planned_commissions": doc["planned_commissions"]}
    session.add(PlanFact(key="funding", value=facts))
