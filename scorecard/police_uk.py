"""Read police.uk street-level crime files and count crimes per month, force and crime type.

data.police.uk publishes one CSV per force and month (`2023-01/2023-01-west-yorkshire-street.csv`), as a
folder or a zip archive that can hold tens of millions of rows. This module streams them: memory stays
bounded whatever the archive size, and nothing is extracted to disk. It only counts and validates; mapping
counts to plan metrics and storing them is scorecard.police_import's job.

Two readers share one definition of a valid file:

* the fast path splits decoded blocks of lines with `str.split` (or `csv.reader` when a block has quotes) and
  counts with `collections.Counter` at C speed, checking field counts per block and Month / Falls within /
  Crime type per distinct value;
* the exact path (`csv.reader`, row by row) is the reference. Any file the fast path cannot vouch for — a
  record spanning lines, lone carriage returns, bytes that are not UTF-8, a wrong field count, a bad value —
  is read again from the start by the exact path, which either counts it or names the first problem's line
  and column. Errors are rare, so the second read costs nothing in the normal case.

Decisions: an empty (0-byte) file has no header and is refused; a header-only file is valid and adds zero
rows; blank lines are skipped; values are counted exactly as written (not trimmed); a physical line longer
than 128 KiB is refused (police.uk lines are a few hundred bytes); two files with the same name are refused
as a duplicate download. The first problem refuses the whole input: nothing partial is returned.
"""

from __future__ import annotations

import csv
import re
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from itertools import pairwise, repeat
from operator import itemgetter
from pathlib import Path
from typing import IO

REQUIRED = ("Month", "Falls within", "Crime type")
STREET_NAME = re.compile(r"^(\d{4}-\d{2})-([a-z0-9]+(?:-[a-z0-9]+)*)-street\.csv$")
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
BLOCK_BYTES = 256 * 1024  # read size of the fast path: large enough to amortise, small enough to stay in cache
MAX_LINE_BYTES = 128 * 1024  # also keeps every field under csv's default field_size_limit (131,072)
MAX_KEYS_PER_FILE = 10_000  # distinct (force, crime type) pairs; police.uk has ~45 forces x 14 types
EXACT_PROGRESS_ROWS = 8192  # the exact path reports progress every this many rows

Progress = Callable[[int, int], None]


class PoliceDataError(ValueError):
    """The input was refused; `file`, `line` (header = 1) and `column` say where, when it is about one file."""

    def __init__(self, problem: str, *, file: str | None = None, line: int | None = None, column: str | None = None):
        where = [file] if file else []
        if line is not None:
            where.append(f"line {line}")
        if column is not None:
            where.append(f'column "{column}"')
        super().__init__(f"{', '.join(where)}: {problem}" if where else problem)
        self.problem, self.file, self.line, self.column = problem, file, line, column


@dataclass(frozen=True)
class StreetFile:
    """One monthly street-level file, in a folder or a zip archive; opened only when read."""

    name: str  # display name: the path inside the folder or archive
    month: str  # "YYYY-MM", from the file name
    force_slug: str  # e.g. "west-yorkshire", from the file name
    size: int  # uncompressed bytes, for progress
    opener: Callable[[], IO[bytes]] = field(repr=False, compare=False)

    @property
    def file_name(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    def open(self) -> IO[bytes]:
        """A binary stream of the file's bytes (decompressed on the fly for an archive member)."""
        return self.opener()


@dataclass
class StreetCounts:
    """Rows per (month "YYYY-MM", force as in `Falls within`, crime type), over every file read."""

    counts: dict[tuple[str, str, str], int]
    rows: int
    files: int


# --- finding the files -----------------------------------------------------------------------------------


def street_files(path: Path) -> list[StreetFile]:
    """Every `YYYY-MM-<force>-street.csv` under a folder (recursively) or in a zip archive, sorted by name.

    Outcomes and stop-and-search files, and anything else, are ignored.
    """
    path = Path(path)
    if not path.exists():
        raise PoliceDataError(f"{path} does not exist")
    if path.is_dir():
        found = [
            _street_file(p.relative_to(path).as_posix(), p.stat().st_size, partial(open, p, "rb"))
            for p in path.rglob("*-street.csv")
            if p.is_file()
        ]
    elif path.is_file() and zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                members = [i for i in archive.infolist() if not i.is_dir() and i.filename.endswith("-street.csv")]
        except (zipfile.BadZipFile, OSError) as error:
            raise PoliceDataError(f"{path.name} is not a readable zip archive ({error})") from None
        found = [_street_file(info.filename, info.file_size, partial(_open_member, path, info)) for info in members]
    else:
        raise PoliceDataError(f"{path.name} is neither a folder nor a zip archive of police.uk street files")
    files = sorted((f for f in found if f is not None), key=lambda f: (f.file_name, f.name))
    if not files:
        raise PoliceDataError(f"{path.name} holds no police.uk street files (named like 2023-01-<force>-street.csv)")
    for before, after in pairwise(files):
        if before.file_name == after.file_name:
            raise PoliceDataError(f"{after.file_name} appears twice ({before.name} and {after.name})", file=after.name)
    return files


def _open_member(archive_path: Path, info: zipfile.ZipInfo) -> IO[bytes]:
    """The member's bytes; the archive is opened per member, so closing the stream closes it too
    and no file handle outlives the read."""
    archive = zipfile.ZipFile(archive_path)
    member = archive.open(info)
    original_close = member.close

    def close() -> None:
        original_close()
        archive.close()

    member.close = close  # type: ignore[method-assign]
    return member


def _street_file(name: str, size: int, opener: Callable[[], IO[bytes]]) -> StreetFile | None:
    match = STREET_NAME.match(name.rsplit("/", 1)[-1])
    if not match:
        return None
    month, slug = match.groups()
    if not MONTH.match(month):
        raise PoliceDataError(f'the file name\'s month "{month}" is not a month (YYYY-MM)', file=name)
    return StreetFile(name=name, month=month, force_slug=slug, size=size, opener=opener)


# --- counting ----------------------------------------------------------------------------------------------


class _Defer(Exception):
    """The fast path cannot vouch for this file; the exact path reads it again."""


@dataclass(frozen=True)
class _Header:
    names: list[str]  # stripped of whitespace and a UTF-8 byte order mark
    month: int
    force: int
    crime: int

    def column(self, index: int) -> str:
        return self.names[index] if index < len(self.names) else f"field {index + 1} (beyond the header)"


class _Progress:
    """Forwards bytes done to the caller's callback, never backwards (a re-read file restarts its count)."""

    def __init__(self, callback: Progress | None, total: int) -> None:
        self.callback, self.total, self.done, self.reported = callback, total, 0, -1

    def report(self, in_file: int) -> None:
        if self.callback is not None:
            value = min(self.done + in_file, self.total)
            if value > self.reported:
                self.reported = value
                self.callback(value, self.total)


def count_street_crimes(files: Iterable[StreetFile], *, progress: Progress | None = None) -> StreetCounts:
    """Stream every file and count its rows per (month, force, crime type); refuse all on the first problem.

    `progress(bytes_done, bytes_total)` is called every block of a few hundred KB, never per row.
    """
    files = list(files)
    tracker = _Progress(progress, sum(f.size for f in files))
    totals: Counter[tuple[str, str, str]] = Counter()
    for street in files:
        try:
            try:
                counted = _count_fast(street, tracker)
            except _Defer:
                counted = _count_exact(street, tracker)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError, NotImplementedError) as error:
            raise PoliceDataError(f"cannot be read ({error})", file=street.name) from None
        totals.update(counted)
        tracker.done += street.size
        tracker.report(0)
    return StreetCounts(counts=dict(sorted(totals.items())), rows=sum(totals.values()), files=len(files))


def _parse_header(row: list[str] | None, street: StreetFile) -> _Header:
    """The positions of the required columns; names match exactly after trimming whitespace and a BOM."""
    if not row:
        what = "the file is empty" if row is None else "the first line is blank"
        raise PoliceDataError(
            f"{what}: no header row with the columns {', '.join(REQUIRED)}",
            file=street.name,
            line=1,
            column=REQUIRED[0],
        )
    names = [name.strip().lstrip("\ufeff").strip() for name in row]
    positions = []
    for required in REQUIRED:
        found = [i for i, name in enumerate(names) if name == required]
        if not found:
            raise PoliceDataError(
                f"the header has no {required} column (it has: {', '.join(names)})",
                file=street.name,
                line=1,
                column=required,
            )
        if len(found) > 1:
            raise PoliceDataError(f"the header names {required} twice", file=street.name, line=1, column=required)
        positions.append(found[0])
    return _Header(names, *positions)


def _key_problem(key: tuple[str, str, str], month: str) -> tuple[int, str] | None:
    """Which of (Month, Falls within, Crime type) is wrong in this key, and why; None when all are fine."""
    if key[0] != month:
        if not MONTH.match(key[0]):
            return 0, f'"{key[0]}" is not a month (YYYY-MM)'
        return 0, f'"{key[0]}" does not match the month in the file name ({month})'
    if not key[1].strip():
        return 1, "is empty: every row needs the force area it falls within"
    if not key[2].strip():
        return 2, "is empty: every row needs a crime type"
    return None


def _count_fast(street: StreetFile, tracker: _Progress) -> Counter[tuple[str, str, str]]:
    """Count UTF-8, LF or CRLF files whose records are one line each, in blocks; raise _Defer on anything else.

    Unquoted blocks are split with str.split, blocks with quotes by csv.reader; both run at C speed.
    """
    counts: Counter[tuple[str, str, str]] = Counter()
    good: set[tuple[str, str, str]] = set()
    commas = repeat(",")
    with street.open() as stream:
        read = stream.read
        pending, done, header = b"", 0, None
        while True:
            chunk = read(BLOCK_BYTES)
            done += len(chunk)
            data = pending + chunk if pending else chunk
            if chunk:
                cut = data.rfind(b"\n") + 1
                if cut == 0:
                    pending = data
                    if len(pending) > MAX_LINE_BYTES:
                        raise _Defer
                    continue
                if pending and data.find(b"\n") + 1 > MAX_LINE_BYTES:
                    raise _Defer
                block, pending = data[:cut], data[cut:]
            else:
                if len(data) > MAX_LINE_BYTES:
                    raise _Defer
                block, pending = data, b""
            try:
                text = block.decode("utf-8")
            except UnicodeDecodeError:
                raise _Defer from None
            quoted = '"' in text
            if "\r" in text:  # CRLF, as police.uk writes: any other line break shows as more lines than LFs
                lines = text.splitlines()
                if len(lines) != text.count("\n") + (not text.endswith("\n")):
                    raise _Defer
            else:
                lines = text.split("\n")
                if lines[-1] == "":
                    lines.pop()
            if header is None:
                if not lines:
                    raise _Defer  # empty file: the exact path words the error
                first = lines.pop(0)
                try:
                    header = _parse_header(next(csv.reader([first], strict=True)), street)
                except (csv.Error, PoliceDataError):
                    raise _Defer from None
                width = len(header.names)
                key_of = itemgetter(header.month, header.force, header.crime)
            if "" in lines:
                lines = [line for line in lines if line]
            if lines:
                if quoted:  # csv.reader, at C speed too, as long as no record spans lines
                    try:
                        rows = list(csv.reader(lines, strict=True))
                    except csv.Error:
                        raise _Defer from None
                    if len(rows) != len(lines):
                        raise _Defer
                else:
                    rows = list(map(str.split, lines, commas))
                widths = set(map(len, rows))
                if len(widths) != 1 or width not in widths:
                    raise _Defer
                block_counts = Counter(map(key_of, rows))
                for key in block_counts:
                    if key not in good:
                        if _key_problem(key, street.month) or len(good) >= MAX_KEYS_PER_FILE:
                            raise _Defer
                        good.add(key)
                counts.update(block_counts)
            tracker.report(done)
            if not chunk:
                break
    if header is None:
        raise _Defer
    return counts


class _Lines:
    """Physical lines of a binary stream, decoded one by one so a bad byte is pinned to its line and column."""

    def __init__(self, stream: IO[bytes], street: StreetFile) -> None:
        self.readline = partial(stream.readline, MAX_LINE_BYTES + 1)
        self.street, self.header, self.line, self.bytes = street, None, 0, 0
        self.text, self.mark, self.mark_text = "", 1, ""  # mark: the first line of the record being read

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        raw = self.readline()
        if not raw:
            raise StopIteration
        self.line += 1
        self.bytes += len(raw)
        if len(raw) > MAX_LINE_BYTES:
            raise PoliceDataError(
                f"the line is longer than {MAX_LINE_BYTES // 1024} KiB: this is not a police.uk street file",
                file=self.street.name,
                line=self.line,
                column=self.column_at(raw[:MAX_LINE_BYTES].decode("utf-8", "replace"), MAX_LINE_BYTES),
            )
        if self.line == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            self.text = raw.decode("utf-8")
            if self.line == self.mark:
                self.mark_text = self.text
        except UnicodeDecodeError as error:
            prefix = raw[: error.start].decode("utf-8", "replace")
            bad = raw[error.start : error.end]
            raise PoliceDataError(
                f"byte(s) {bad!r} are not UTF-8 text: save the file as UTF-8 (CSV UTF-8)",
                file=self.street.name,
                line=self.line,
                column=self.column_at(prefix, len(prefix)),
            ) from None
        return self.text

    def column_at(self, text: str, position: int) -> str:
        """The column a character position of this line falls in (header field number on line 1)."""
        prefix = text[:position].replace("\r", " ").replace("\n", " ")
        try:
            index = len(next(csv.reader([prefix]), [""])) - 1 if prefix else 0
        except csv.Error:
            index = prefix.count(",")
        if self.header is None:
            return f"field {index + 1} of the header"
        return self.header.column(index)


def _count_exact(street: StreetFile, tracker: _Progress) -> Counter[tuple[str, str, str]]:
    """Row by row with csv.reader: counts any valid file, and names the first problem's line and column."""
    counts: Counter[tuple[str, str, str]] = Counter()
    with street.open() as stream:
        lines = _Lines(stream, street)
        reader = csv.reader(lines, strict=True)
        start = 1
        try:
            header = lines.header = _parse_header(next(reader, None), street)
            width, month = len(header.names), street.month
            key_of = itemgetter(header.month, header.force, header.crime)
            positions = (header.month, header.force, header.crime)
            start = lines.mark = lines.line + 1
            for number, row in enumerate(reader, start=1):
                if row:
                    if len(row) != width:
                        index = min(len(row), width)
                        raise PoliceDataError(
                            f"the row has {len(row)} fields but the header has {width}",
                            file=street.name,
                            line=start,
                            column=header.column(index),
                        )
                    key = key_of(row)
                    if key not in counts:
                        problem = _key_problem(key, month)
                        if problem:
                            index, message = problem
                            raise PoliceDataError(
                                message, file=street.name, line=start, column=header.names[positions[index]]
                            )
                        if len(counts) >= MAX_KEYS_PER_FILE:
                            raise PoliceDataError(
                                f"more than {MAX_KEYS_PER_FILE} distinct (force, crime type) pairs in one file",
                                file=street.name,
                                line=start,
                                column=header.names[header.crime],
                            )
                    counts[key] += 1
                if number % EXACT_PROGRESS_ROWS == 0:
                    tracker.report(lines.bytes)
                start = lines.mark = lines.line + 1
        except csv.Error as error:
            raise _csv_problem(error, lines, street, start) from None
    return counts


def _csv_problem(error: csv.Error, lines: _Lines, street: StreetFile, start: int) -> PoliceDataError:
    """csv.reader's complaint in our words, with the line and (best effort) the column it is about."""
    text = lines.text
    lone_cr = re.search(r"\r(?!\n)", text)
    if lone_cr:
        problem = "a carriage return inside an unquoted field: lines must end with a line feed (LF or CRLF)"
        column = lines.column_at(text, lone_cr.start())
        return PoliceDataError(problem, file=street.name, line=lines.line, column=column)
    if "unexpected end of data" in str(error):
        problem = 'a quoted field is still open at the end of the file (a closing " is missing)'
        text = lines.mark_text if lines.mark <= lines.line else text
        return PoliceDataError(problem, file=street.name, line=start, column=lines.column_at(text, len(text)))
    stray = re.search(r'(?<=[^,"])"(?=[^,"\r\n])', text)
    position = stray.start() if stray else len(text)
    problem = f"malformed CSV ({error}): a quoted field must be followed by a comma or the end of the line"
    return PoliceDataError(problem, file=street.name, line=lines.line, column=lines.column_at(text, position))


# --- a progress bar for terminals --------------------------------------------------------------------------


__all__ = [
    "PoliceDataError",
    "StreetCounts",
    "StreetFile",
    "count_street_crimes",
    "street_files",
]
