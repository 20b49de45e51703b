"""Turn police.uk street-level counts into monthly plan readings, per data/police_uk_mapping.yaml.

The counting (streaming, validation) is scorecard.police_uk; this module only maps crime
types to metrics and hands the readings to the same compare-and-apply path as any import,
so revisions, idempotence and all-or-nothing hold here too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml
from sqlmodel import Session

from scorecard import queries
from scorecard.imports import ImportPlan, Incoming, period_label, plan_changes
from scorecard.periods import month_end
from scorecard.police_uk import StreetCounts

MAPPING_FILE = Path(__file__).resolve().parent.parent / "data" / "police_uk_mapping.yaml"


@dataclass(frozen=True)
class Mapping:
    source: str
    crime_types: dict[str, list[str]]  # metric key -> crime types summed into it


def load_mapping(path: Path = MAPPING_FILE) -> Mapping:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return Mapping(source=doc["source"], crime_types={m["metric"]: list(m["crime_types"]) for m in doc["metrics"]})


def plan_police_import(name: str, counts: StreetCounts, *, session: Session, mapping: Mapping) -> ImportPlan:
    """One reading per mapped metric, force and month present in the files (zero when none of its types occur)."""
    metrics = {m.key: m for m in queries.all_metrics(session=session)}
    unknown = sorted(set(mapping.crime_types) - set(metrics))
    if unknown:
        raise ValueError(f"police_uk_mapping.yaml names metrics that do not exist: {', '.join(unknown)}")
    present = sorted({(month, force) for month, force, _ in counts.counts})
    incoming = []
    for key, crime_types in mapping.crime_types.items():
        metric = metrics[key]
        for month, force in present:
            year, number = (int(part) for part in month.split("-"))
            start = date(year, number, 1)
            value = sum(counts.counts.get((month, force, crime_type), 0) for crime_type in crime_types)
            incoming.append(
                Incoming(
                    row=0,
                    metric_id=metric.id,
                    metric_key=key,
                    unit=metric.unit,
                    series="",
                    force=force,
                    period_start=start,
                    period_end=month_end(start),
                    period_label=period_label(start, month_end(start)),
                    value=float(value),
                    provisional=False,
                    source=f"{mapping.source}: {name}, {month} ({', '.join(crime_types)})",
                )
            )
    digest = hashlib.sha256(json.dumps(sorted((*k, v) for k, v in counts.counts.items())).encode()).hexdigest()
    return plan_changes("police-uk", name, digest, incoming, session=session)
