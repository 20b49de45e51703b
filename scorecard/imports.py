"""Import readings from a CSV or XLSX file: check everything first, then apply all or nothing.

A file with any problem is refused whole, every problem named by row and column, and the
store is left exactly as it was. A figure that replaces a current one for the same metric,
series, force and period is a revision: the old row is kept and marked replaced. The same
file imported twice changes nothing the second time.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from sqlmodel import Session, col, select

from scorecard import queries
from scorecard.lookup import find_metric
from scorecard.models import HOME_FORCE, AuditLog, ImportBatch, Reading

MAX_BYTES = 50 * 1024 * 1024  # ~1 million rows; police.uk archives have their own streaming import
MAX_LISTED_ERRORS = 100
COLUMNS = ("metric", "series", "period", "period_start", "period_end", "value", "source", "provisional", "force")
MONTH = re.compile(r"^(\d{4})-(\d{2})$")
DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
THOUSANDS = re.compile(r"^-?\d{1,3}(,\d{3})+(\.\d+)?$")
TRUE_WORDS = {"yes", "y", "true", "1", "provisional", "p"}
FALSE_WORDS = {"", "no", "n", "false", "0", "final"}

Cell = str | float | int | datetime | date | None


class _WholeFileError(Exception):
    """A problem with the file as a whole (encoding, header, size), reported as row 0."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class RowError:
    row: int  # the file's line or sheet row, header = 1; 0 for the file as a whole
    column: str
    message: str


class ImportRefused(ValueError):
    """The file was not imported; `errors` says every reason, by row and column."""

    def __init__(self, file_name: str, errors: list[RowError]) -> None:
        super().__init__(f"{file_name}: {len(errors)} problem(s)")
        self.file_name = file_name
        self.errors = errors


@dataclass(frozen=True)
class Incoming:
    """One validated row of the file."""

    row: int
    metric_id: int
    metric_key: str
    unit: str
    series: str
    force: str
    period_start: date
    period_end: date
    period_label: str
    value: float
    provisional: bool
    source: str

    @property
    def identity(self) -> tuple:
        return (self.metric_id, self.series, self.force, self.period_start, self.period_end)


@dataclass(frozen=True)
class Change:
    incoming: Incoming
    kind: str  # added | revised | unchanged
    previous: Reading | None = None


@dataclass
class ImportPlan:
    """What applying a file would do; built without writing anything."""

    kind: str
    file_name: str
    sha256: str
    changes: list[Change] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for change in self.changes if change.kind == kind)

    @property
    def writes(self) -> list[Change]:
        return [c for c in self.changes if c.kind != "unchanged"]


# --- reading the file ----------------------------------------------------------------------


def _rows_from_csv(data: bytes) -> Iterator[tuple[int, list[Cell]]]:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise _WholeFileError(f"line {line} is not UTF-8 text: save the file as CSV UTF-8 and try again") from None
    if "\x00" in text:
        raise _WholeFileError("this is not a CSV text file (it contains binary data)")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            yield reader.line_num, list(row)
    except csv.Error as error:
        raise _WholeFileError(f"line {reader.line_num}: {error}") from None


def _rows_from_xlsx(data: bytes) -> Iterator[tuple[int, list[Cell]]]:
    from openpyxl import load_workbook

    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as error:
        raise _WholeFileError(f"this is not a readable XLSX workbook ({error})") from None
    try:
        sheet = workbook.worksheets[0]
        for number, row in enumerate(sheet.iter_rows(values_only=True), start=1):
            yield number, list(row)
    finally:
        workbook.close()


def _table(file_name: str, data: bytes) -> tuple[dict[str, int], Iterator[tuple[int, list[Cell]]]]:
    """The header's column positions and an iterator over the data rows."""
    if len(data) > MAX_BYTES:
        size, limit = len(data) / 2**20, MAX_BYTES // 2**20
        raise _WholeFileError(f"the file is {size:.0f} MB; a readings import may be at most {limit} MB")
    if not data.strip():
        raise _WholeFileError("the file is empty")
    is_xlsx = file_name.lower().endswith((".xlsx", ".xlsm")) or data[:2] == b"PK"
    rows = _rows_from_xlsx(data) if is_xlsx else _rows_from_csv(data)
    for _, header in rows:
        names = [str(c).strip().lower().replace(" ", "_") if c is not None else "" for c in header]
        if not any(names):
            continue
        missing = [c for c in ("metric", "value") if c not in names]
        if "period" not in names and not {"period_start", "period_end"} <= set(names):
            missing.append("period (or period_start and period_end)")
        if missing:
            expected = ", ".join(COLUMNS)
            raise _WholeFileError(f"the header has no {', '.join(missing)} column; expected columns: {expected}")
        unknown = [n for n in names if n and n not in COLUMNS]
        if unknown:
            raise _WholeFileError(f"unknown column(s) {', '.join(unknown)}; expected columns: {', '.join(COLUMNS)}")
        return {name: i for i, name in enumerate(names) if name}, rows
    raise _WholeFileError("the file has no header row")


# --- checking each row ---------------------------------------------------------------------


def _text(cell: Cell) -> str:
    return "" if cell is None else str(cell).strip()


def _month_bounds(year: int, month: int) -> tuple[date, date]:
    start = date(year, month, 1)
    following = date(year + (month == 12), month % 12 + 1, 1)
    return start, following - timedelta(days=1)


def _day(cell: Cell) -> date | None:
    if isinstance(cell, datetime):
        return cell.date()
    if isinstance(cell, date):
        return cell
    found = DAY.match(_text(cell))
    if not found:
        return None
    try:
        return date(*map(int, found.groups()))
    except ValueError:
        return None


def period_label(start: date, end: date) -> str:
    """How people write the period: "Jan 2024", "12 months to Mar 2024", "1 Apr 2023 – 15 May 2023"."""
    if start.day == 1 and end == _month_bounds(end.year, end.month)[1]:
        months = (end.year - start.year) * 12 + end.month - start.month + 1
        if months == 1:
            return start.strftime("%b %Y")
        return f"{months} months to {end.strftime('%b %Y')}"
    return f"{start.day} {start.strftime('%b %Y')} – {end.day} {end.strftime('%b %Y')}"


def _period(cells: dict[str, Cell], errors: list[RowError], row: int) -> tuple[date, date] | None:
    month_cell = cells.get("period")
    start_cell, end_cell = cells.get("period_start"), cells.get("period_end")
    has_month = _text(month_cell) != ""
    has_range = _text(start_cell) != "" or _text(end_cell) != ""
    if has_month and has_range:
        message = "give either a period (YYYY-MM) or period_start and period_end, not both"
        errors.append(RowError(row, "period", message))
        return None
    if has_month:
        if isinstance(month_cell, datetime | date):
            return _month_bounds(month_cell.year, month_cell.month)
        found = MONTH.match(_text(month_cell))
        if not found or not 1 <= int(found.group(2)) <= 12:
            errors.append(RowError(row, "period", f"“{_text(month_cell)}” is not a month: write it as YYYY-MM"))
            return None
        return _month_bounds(int(found.group(1)), int(found.group(2)))
    if not has_range:
        errors.append(RowError(row, "period", "the period is missing"))
        return None
    start, end = _day(start_cell), _day(end_cell)
    for name, cell, parsed in (("period_start", start_cell, start), ("period_end", end_cell, end)):
        if parsed is None:
            errors.append(RowError(row, name, f"“{_text(cell)}” is not a date: write it as YYYY-MM-DD"))
    if start and end and start > end:
        errors.append(RowError(row, "period_end", f"the period ends ({end}) before it starts ({start})"))
        return None
    return (start, end) if start and end else None


def _value(cell: Cell, unit: str, errors: list[RowError], row: int) -> float | None:
    text = _text(cell)
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        number = float(cell)
    else:
        cleaned = text.replace(",", "") if THOUSANDS.match(text.removesuffix("%")) else text
        if unit == "percent":
            cleaned = cleaned.removesuffix("%").strip()
        try:
            number = float(cleaned)
        except ValueError:
            errors.append(RowError(row, "value", f"“{text}” is not a number" if text else "the value is missing"))
            return None
    if not math.isfinite(number):
        errors.append(RowError(row, "value", f"“{text}” is not a number"))
        return None
    if unit == "count" and number < 0:
        errors.append(RowError(row, "value", f"{text} is negative; this metric counts things"))
        return None
    if unit == "percent" and not 0 <= number <= 100:
        errors.append(RowError(row, "value", f"{text} is outside 0–100; this metric is a percentage"))
        return None
    return number


def _provisional(cell: Cell, errors: list[RowError], row: int) -> bool:
    word = _text(cell).lower()
    if word in TRUE_WORDS:
        return True
    if word not in FALSE_WORDS:
        errors.append(RowError(row, "provisional", f"“{_text(cell)}” is not yes or no"))
    return False


def parse_readings(file_name: str, data: bytes, *, session: Session) -> list[Incoming]:
    """Every row checked; raises ImportRefused listing all problems if there is any."""
    try:
        columns, rows = _table(file_name, data)
        return _check_rows(file_name, columns, rows, session=session)
    except _WholeFileError as error:
        raise ImportRefused(file_name, [RowError(0, "", error.message)]) from None


def _check_rows(
    file_name: str, columns: dict[str, int], rows: Iterator[tuple[int, list[Cell]]], *, session: Session
) -> list[Incoming]:
    metrics = {m.key: m for m in queries.all_metrics(session=session)}
    series_by_metric = queries.series_of([m.id for m in metrics.values()], session=session)
    labels = {metric_id: [s.label for s in series] for metric_id, series in series_by_metric.items()}
    errors: list[RowError] = []
    seen: dict[tuple, int] = {}
    incoming: list[Incoming] = []
    resolved: dict[str, tuple[str | None, list[str]]] = {}
    for row, raw in rows:
        cells = {name: (raw[i] if i < len(raw) else None) for name, i in columns.items()}
        if all(_text(c) == "" for c in cells.values()):
            continue  # blank lines between blocks are harmless
        before = len(errors)
        name = _text(cells.get("metric"))
        if name not in resolved:
            resolved[name] = find_metric(name, session=session) if name else (None, [])
        key, suggestions = resolved[name]
        metric = metrics.get(key) if key else None
        if metric is None:
            hint = f" Did you mean {', '.join(suggestions)}?" if suggestions else ""
            message = f"“{name}” is not a metric.{hint}" if name else "the metric is missing"
            errors.append(RowError(row, "metric", message))
        series = _text(cells.get("series"))
        if metric is not None:
            series = _match_series(series, labels[metric.id], errors, row)
        period = _period(cells, errors, row)
        value = _value(cells.get("value"), metric.unit if metric else "number", errors, row)
        provisional = _provisional(cells.get("provisional"), errors, row)
        if len(errors) > before or metric is None or period is None or value is None or series is None:
            if len(errors) > MAX_LISTED_ERRORS:
                break
            continue
        force = _text(cells.get("force")) or HOME_FORCE
        item = Incoming(
            row=row,
            metric_id=metric.id,
            metric_key=metric.key,
            unit=metric.unit,
            series=series,
            force=force,
            period_start=period[0],
            period_end=period[1],
            period_label=period_label(*period),
            value=value,
            provisional=provisional,
            source=_text(cells.get("source")) or f"Imported from {file_name}",
        )
        if item.identity in seen:
            what = f"{metric.key}{f' ({series})' if series else ''}, {item.period_label}"
            errors.append(RowError(row, "period", f"{what} is already given on row {seen[item.identity]}"))
            continue
        seen[item.identity] = row
        incoming.append(item)
    if errors:
        raise ImportRefused(file_name, errors)
    if not incoming:
        raise ImportRefused(file_name, [RowError(0, "", "the file has a header but no readings")])
    return incoming


def _match_series(given: str, labels: list[str], errors: list[RowError], row: int) -> str | None:
    by_lower = {label.lower(): label for label in labels}
    if given.lower() in by_lower:
        return by_lower[given.lower()]
    named = ", ".join(f"“{label}”" for label in labels if label)
    if not given:
        errors.append(RowError(row, "series", f"this metric has several series: say which ({named})"))
    elif labels == [""]:
        errors.append(RowError(row, "series", f"“{given}”: this metric has a single series; leave series blank"))
    else:
        errors.append(RowError(row, "series", f"“{given}” is not a series of this metric ({named})"))
    return None


# --- comparing with the store and applying -------------------------------------------------


def plan_changes(kind: str, file_name: str, sha256: str, incoming: list[Incoming], *, session: Session) -> ImportPlan:
    """Compare each incoming figure with the current one for its metric, series, force and period."""
    current: dict[tuple, Reading] = {}
    metric_ids = sorted({item.metric_id for item in incoming})
    for chunk in range(0, len(metric_ids), 500):
        statement = select(Reading).where(
            col(Reading.metric_id).in_(metric_ids[chunk : chunk + 500]),
            col(Reading.replaced_at).is_(None),
            col(Reading.is_baseline).is_(False),
            col(Reading.period_start).is_not(None),
        )
        for reading in session.exec(statement):
            key = (reading.metric_id, reading.series, reading.force, reading.period_start, reading.period_end)
            current[key] = reading
    plan = ImportPlan(kind=kind, file_name=file_name, sha256=sha256)
    for item in incoming:
        existing = current.get(item.identity)
        if existing is None:
            plan.changes.append(Change(item, "added"))
        elif existing.value == item.value and existing.provisional == item.provisional:
            plan.changes.append(Change(item, "unchanged", existing))
        else:
            plan.changes.append(Change(item, "revised", existing))
    return plan


def prepare_import(file_name: str, data: bytes, *, session: Session) -> ImportPlan:
    """Parse, check and compare: everything short of writing. Raises ImportRefused."""
    incoming = parse_readings(file_name, data, session=session)
    return plan_changes("readings", file_name, hashlib.sha256(data).hexdigest(), incoming, session=session)


def apply_import(
    plan: ImportPlan, *, session: Session, actor: str, progress: Callable[[int, int], None] | None = None
) -> ImportBatch | None:
    """Write the plan in the caller's transaction; None (and nothing written) when nothing changes."""
    writes = plan.writes
    if not writes:
        return None
    now = datetime.now(UTC)
    batch = ImportBatch(
        kind=plan.kind,
        file_name=plan.file_name,
        sha256=plan.sha256,
        actor=actor,
        added=plan.count("added"),
        revised=plan.count("revised"),
        unchanged=plan.count("unchanged"),
    )
    session.add(batch)
    session.flush()
    for done, change in enumerate(writes, start=1):
        item = change.incoming
        if change.previous is not None:
            change.previous.replaced_at = now
            session.add(change.previous)
            session.flush()  # the old row stops being current before its replacement arrives
        session.add(
            Reading(
                metric_id=item.metric_id,
                series=item.series,
                force=item.force,
                period_label=item.period_label,
                period_start=item.period_start,
                period_end=item.period_end,
                observed_on=item.period_end,
                value=item.value,
                provisional=item.provisional,
                source=item.source,
                recorded_at=now,
                revision_of_id=change.previous.id if change.previous else None,
                import_id=batch.id,
            )
        )
        if done % 1000 == 0 or done == len(writes):
            session.flush()
            if progress:
                progress(done, len(writes))
    session.add(
        AuditLog(
            actor=actor,
            action=f"import {plan.kind}",
            subject=plan.file_name,
            detail={"sha256": plan.sha256, "added": batch.added, "revised": batch.revised, "import_id": batch.id},
        )
    )
    queries.bump_data_version(session=session)
    return batch
