"""scorecard.police_uk against real police.uk files: exact counts, folder = zip, and every bad input named.

Expected counts come from pandas on the same real files, so nothing here is hard-coded. The originals in
tests/data/police-uk are only read; every variant is built in tmp_path.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import zipfile
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest

from scorecard.police_uk import PoliceDataError, StreetCounts, count_street_crimes, street_files

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "tests" / "data" / "police-uk"  # real files, Open Government Licence v3.0
JAN, FEB = "2018-01-city-of-london-street.csv", "2018-02-city-of-london-street.csv"
KEY = ["Month", "Falls within", "Crime type"]


def expected_counts(*names: str) -> dict[tuple[str, str, str], int]:
    frames = [pd.read_csv(REAL / name, dtype=str, keep_default_na=False) for name in names]
    sizes = pd.concat(frames).groupby(KEY).size()
    return {tuple(key): int(value) for key, value in sizes.items()}


def real_text(name: str) -> str:
    return (REAL / name).read_bytes().decode("utf-8")


def folder_of(tmp_path: Path, files: dict[str, bytes | str]) -> Path:
    root = tmp_path / "download"
    for name, content in files.items():
        target = root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return root


def zip_of(tmp_path: Path, files: dict[str, bytes | str], name: str = "police.zip") -> Path:
    archive = tmp_path / name
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, content in files.items():
            zf.writestr(member, content)
    return archive


def count(path: Path) -> StreetCounts:
    return count_street_crimes(street_files(path))


def refused(tmp_path: Path, name: str, content: bytes | str) -> PoliceDataError:
    """The error for a folder holding only this one file."""
    with pytest.raises(PoliceDataError) as caught:
        count(folder_of(tmp_path, {name: content}))
    return caught.value


def replace_line(text: str, line: int, old: str, new: str) -> str:
    """`text` with the first `old` on 1-based `line` replaced by `new`."""
    lines = text.split("\n")
    assert old in lines[line - 1]
    lines[line - 1] = lines[line - 1].replace(old, new, 1)
    return "\n".join(lines)


# --- counting ---------------------------------------------------------------------------------------------


def test_counts_match_pandas_on_the_real_files(tmp_path):
    result = count(folder_of(tmp_path, {f"2018-01/{JAN}": real_text(JAN), f"2018-02/{FEB}": real_text(FEB)}))
    expected = expected_counts(JAN, FEB)
    assert result.counts == expected
    for key in [
        ("2018-01", "City of London Police", "Anti-social behaviour"),
        ("2018-01", "City of London Police", "Theft from the person"),
        ("2018-02", "City of London Police", "Violence and sexual offences"),
    ]:
        assert result.counts[key] == expected[key] > 0
    assert result.rows == sum(expected.values()) == sum(len(pd.read_csv(REAL / n)) for n in (JAN, FEB))
    assert result.files == 2


def test_folder_and_zip_give_identical_results_and_other_files_are_ignored(tmp_path):
    garbage = os.urandom(4096)  # would be refused if it were read
    members = {
        f"2018-01/{JAN}": real_text(JAN),
        f"2018-02/{FEB}": real_text(FEB),
        "2018-01/2018-01-city-of-london-outcomes.csv": garbage,
        "2018-01/2018-01-city-of-london-stop-and-search.csv": garbage,
        "2018-02/2018-02-city-of-london-street.csv.bak": garbage,
        "README.txt": "police.uk download",
        "__MACOSX/2018-01/._2018-01-city-of-london-street.csv": garbage,
    }
    from_zip = count(zip_of(tmp_path, members))
    from_folder = count(folder_of(tmp_path, members))
    assert from_zip == from_folder
    assert from_zip.counts == expected_counts(JAN, FEB)

    files = street_files(zip_of(tmp_path, members, "again.zip"))
    assert [(f.name, f.month, f.force_slug) for f in files] == [
        (f"2018-01/{JAN}", "2018-01", "city-of-london"),
        (f"2018-02/{FEB}", "2018-02", "city-of-london"),
    ]
    assert [f.size for f in files] == [(REAL / JAN).stat().st_size, (REAL / FEB).stat().st_size]
    with files[0].open() as stream:
        assert stream.read() == (REAL / JAN).read_bytes()


def variants(tmp_path: Path) -> Path:
    """The real (CRLF) files rewritten in ways a valid CSV may take: each must count exactly like the original."""
    jan = pd.read_csv(REAL / JAN, dtype=str, keep_default_na=False)
    reordered = jan[["Crime type", "Location", "Falls within", "Month"]].rename(columns={"Month": " Month "})
    lines = real_text(FEB).split("\r\n")  # police.uk files end lines with CRLF
    assert lines[4].endswith(",")  # empty Context: give it a quoted value spanning two lines
    lines[4] += '"two\r\nlines, ""quoted"""'
    multiline = "\r\n".join(lines)
    return folder_of(
        tmp_path,
        {
            f"lf/{JAN}": real_text(JAN).replace("\r\n", "\n"),
            f"quoted/{FEB}": re.sub(r",(On or near [^,]*),", r',"\1, ""quoted""",', real_text(FEB)),
            f"bom/{JAN.replace('city-of-london', 'bom')}": "\ufeff" + real_text(JAN).replace("\r\n", "\r\n\r\n", 3),
            f"reordered/{JAN.replace('city-of-london', 'reordered')}": reordered.to_csv(index=False),
            f"multiline/{FEB.replace('city-of-london', 'multiline')}": multiline,
        },
    )


def test_lf_quotes_bom_blank_lines_multiline_records_and_reordered_columns_count_the_same(tmp_path):
    result = count(variants(tmp_path))
    jan_counts, feb_counts = expected_counts(JAN), expected_counts(FEB)
    expected = {k: v * (3 if k in jan_counts else 2) for k, v in {**jan_counts, **feb_counts}.items()}
    assert result.counts == expected


def test_the_fast_path_agrees_with_the_exact_reference_or_defers(tmp_path):
    """White-box: the exact, row-by-row path is the definition; the fast path must match it or step aside."""
    from scorecard.police_uk import _count_exact, _count_fast, _Defer, _Progress

    deferred = []
    for street in street_files(variants(tmp_path)):
        exact = _count_exact(street, _Progress(None, 0))
        try:
            assert _count_fast(street, _Progress(None, 0)) == exact
        except _Defer:
            deferred.append(street.name.split("/")[0])
    assert deferred == ["multiline"]


def test_header_only_file_counts_zero_rows(tmp_path):
    header = real_text(JAN).split("\n", 1)[0] + "\n"
    result = count(folder_of(tmp_path, {JAN: header, FEB: real_text(FEB)}))
    assert result.files == 2
    assert result.counts == expected_counts(FEB)


def test_progress_is_reported_by_block_in_bytes_up_to_the_total(tmp_path):
    header, body = real_text(JAN).split("\n", 1)
    big = header + "\n" + body * 30  # ~4.7 MB, ~21,000 rows
    archive = zip_of(tmp_path, {JAN: big, FEB: real_text(FEB)})
    calls: list[tuple[int, int]] = []
    result = count_street_crimes(street_files(archive), progress=lambda done, total: calls.append((done, total)))
    total = len(big.encode()) + (REAL / FEB).stat().st_size
    assert result.rows == 30 * sum(expected_counts(JAN).values()) + sum(expected_counts(FEB).values())
    assert {t for _, t in calls} == {total}
    assert calls[-1][0] == total
    assert [d for d, _ in calls] == sorted({d for d, _ in calls})  # strictly increasing
    assert 10 < len(calls) < result.rows / 500


def bad_variants() -> dict[str, bytes]:
    """One file per kind of bad content, each named by the exact path (line > 1 where there is one)."""
    text = real_text(JAN)
    header, first, rest = text.split("\n", 2)
    return {
        "latin-1": replace_line(text, 7, "On or near ", "On or near Café ").encode("latin-1"),
        "short row": replace_line(text, 9, ",\r", "\r").encode(),
        "long row": replace_line(text, 9, "\r", ",extra\r").encode(),
        "bad month": replace_line(text, 7, ",2018-01,", ",2018-13,").encode(),
        "other month": replace_line(text, 12, ",2018-01,", ",2018-02,").encode(),
        "no force": "\n".join([header, first, first.replace(",City of London Police,-", ",,-"), rest]).encode(),
        "stray quote": "\n".join([header, first.replace(",Camden 027B,", ',"Camden" 027B,'), rest]).encode(),
        "lone CR": "\n".join([header, first.replace("Charterhouse Street", "Charterhouse\rStreet"), rest]).encode(),
        "unclosed quote": (text + first.replace(",Other theft,", ',"Other theft,') + "\n").encode(),
        "vertical tab": "\n".join([header, first.replace("Street", "Str\x0beet"), rest]).encode(),
    }


BAD_KINDS = ["latin-1", "short row", "long row", "bad month", "other month", "no force", "stray quote", "lone CR"]


@pytest.mark.parametrize("kind", [*BAD_KINDS, "unclosed quote", "vertical tab"])
def test_the_fast_path_never_accepts_what_the_exact_path_refuses(tmp_path, kind):
    from scorecard.police_uk import _count_exact, _count_fast, _Defer, _Progress

    (street,) = street_files(folder_of(tmp_path, {JAN: bad_variants()[kind]}))
    if kind == "vertical tab":  # csv reads \x0b as data; str.splitlines would break the line there
        assert _count_exact(street, _Progress(None, 0)) == Counter(expected_counts(JAN))
    else:
        with pytest.raises(PoliceDataError) as caught:
            _count_exact(street, _Progress(None, 0))
        assert caught.value.line > 1 and caught.value.column
    with pytest.raises(_Defer):
        _count_fast(street, _Progress(None, 0))


# --- refusing bad input -----------------------------------------------------------------------------------


def test_bytes_that_are_not_utf8_are_named_by_line_and_column(tmp_path):
    text = replace_line(real_text(JAN), 7, "On or near ", "On or near Café ")
    error = refused(tmp_path, JAN, text.encode("latin-1"))
    assert (error.file, error.line, error.column) == (JAN, 7, "Location")
    assert str(error).startswith(f'{JAN}, line 7, column "Location": ')
    assert "UTF-8" in str(error)


def test_the_first_problem_is_named_even_when_a_later_line_is_not_utf8(tmp_path):
    text = replace_line(real_text(JAN), 300, "On or near ", "On or near Café ")
    text = replace_line(text, 5, ",2018-01,", ",2018-1,")
    error = refused(tmp_path, JAN, text.encode("latin-1"))
    assert (error.line, error.column) == (5, "Month")


def test_missing_required_column(tmp_path):
    error = refused(tmp_path, JAN, real_text(JAN).replace("Falls within", "Falls", 1))
    assert (error.file, error.line, error.column) == (JAN, 1, "Falls within")
    assert "no Falls within column" in str(error)


def test_empty_file_has_no_header(tmp_path):
    error = refused(tmp_path, JAN, b"")
    assert (error.file, error.line, error.column) == (JAN, 1, "Month")
    assert "empty" in str(error) and "no header" in str(error)


@pytest.mark.parametrize(
    ("edit", "column", "fields"),
    [(("Camden 028B,", "Camden 028B"), "Context", 11), ((",Burglary,", ",Burglary,extra,"), "field 13", 13)],
)
def test_row_with_the_wrong_number_of_fields(tmp_path, edit, column, fields):
    line = next(i for i, row in enumerate(real_text(JAN).split("\n"), 1) if i > 1 and edit[0] in row)
    error = refused(tmp_path, JAN, replace_line(real_text(JAN), line, *edit))
    assert (error.file, error.line) == (JAN, line)
    assert error.column.startswith(column)
    assert f"has {fields} fields but the header has 12" in str(error)


def test_bad_month(tmp_path):
    error = refused(tmp_path, JAN, replace_line(real_text(JAN), 7, ",2018-01,", ",2018-13,"))
    assert str(error) == f'{JAN}, line 7, column "Month": "2018-13" is not a month (YYYY-MM)'


def test_month_that_does_not_match_the_file_name(tmp_path):
    error = refused(tmp_path, JAN, replace_line(real_text(JAN), 12, ",2018-01,", ",2018-02,"))
    assert (error.file, error.line, error.column) == (JAN, 12, "Month")
    assert "does not match the month in the file name (2018-01)" in str(error)


def test_empty_force_or_crime_type(tmp_path):
    header, first, rest = real_text(JAN).split("\n", 2)
    no_force = first.replace(",City of London Police,-", ",,-")
    error = refused(tmp_path, JAN, "\n".join([header, first, no_force, rest]))
    assert (error.line, error.column) == (3, "Falls within")
    no_type = first.replace(",Other theft,", ",,")
    error = refused(tmp_path / "b", JAN, "\n".join([header, first, first, no_type, rest]))
    assert (error.line, error.column) == (4, "Crime type")


def test_a_problem_in_any_file_refuses_the_whole_input(tmp_path):
    bad_feb = replace_line(real_text(FEB), 400, ",2018-02,", ",2018-03,")
    with pytest.raises(PoliceDataError) as caught:
        count(zip_of(tmp_path, {JAN: real_text(JAN), FEB: bad_feb}))
    assert (caught.value.file, caught.value.line, caught.value.column) == (FEB, 400, "Month")


def test_broken_csv_quoting_and_line_ends(tmp_path):
    header, first, rest = real_text(JAN).split("\n", 2)
    stray = first.replace(",Camden 027B,", ',"Camden" 027B,')
    error = refused(tmp_path, JAN, "\n".join([header, first, stray, rest]))
    assert (error.line, error.column) == (3, "LSOA name")
    lone_cr = first.replace("Charterhouse Street", "Charterhouse\rStreet")
    error = refused(tmp_path / "b", JAN, "\n".join([header, first, lone_cr, rest]))
    assert (error.line, error.column) == (3, "Location")
    assert "carriage return" in str(error)
    unclosed = real_text(JAN).rstrip("\n") + "\n" + first.replace(",Other theft,", ',"Other theft,') + "\nmore\n"
    error = refused(tmp_path / "c", JAN, unclosed)
    assert (error.line, error.column) == (len(real_text(JAN).split("\n")), "Crime type")
    assert "still open at the end of the file" in str(error)


def test_zip_without_street_files(tmp_path):
    archive = zip_of(tmp_path, {"2018-01/2018-01-city-of-london-outcomes.csv": "x", "notes.txt": "y"})
    with pytest.raises(PoliceDataError, match=r"police\.zip holds no police\.uk street files"):
        street_files(archive)


def test_paths_that_are_not_a_download(tmp_path):
    with pytest.raises(PoliceDataError, match="does not exist"):
        street_files(tmp_path / "missing.zip")
    single = tmp_path / JAN
    single.write_text(real_text(JAN))
    with pytest.raises(PoliceDataError, match="neither a folder nor a zip"):
        street_files(single)
    with pytest.raises(PoliceDataError, match="appears twice"):
        street_files(folder_of(tmp_path, {f"a/{JAN}": real_text(JAN), f"b/{JAN}": real_text(JAN)}))
    with pytest.raises(PoliceDataError, match='"2018-13" is not a month'):
        street_files(folder_of(tmp_path / "m", {"2018-13-city-of-london-street.csv": real_text(JAN)}))
    assert issubclass(PoliceDataError, ValueError)


GARBAGE_SCRIPT = """
import os, sys, time
from pathlib import Path
from scorecard.police_uk import PoliceDataError, count_street_crimes, street_files
files = street_files(Path(sys.argv[1]))
start = time.perf_counter()
try:
    count_street_crimes(files)
except PoliceDataError as error:
    seconds = time.perf_counter() - start
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so it would include the forking pytest process
    peak_kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
    print(f"{seconds:.3f}", peak_kb // 1024, error.file, error.line, error.column, sep="\\t")
"""


@pytest.mark.parametrize("with_header", [False, True])
def test_100_mb_of_random_bytes_is_refused_quickly_in_bounded_memory(tmp_path, with_header):
    folder = tmp_path / "garbage"
    folder.mkdir()
    name = "2018-03-garbage-street.csv"
    with (folder / name).open("wb") as out:
        if with_header:
            out.write(real_text(JAN).split("\n", 1)[0].encode() + b"\n")
        for _ in range(100):
            out.write(os.urandom(1 << 20))
    assert (folder / name).stat().st_size >= 100 * 2**20
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", GARBAGE_SCRIPT, str(folder)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    seconds, peak_mb, file, line, column = done.stdout.strip().split("\t")
    assert float(seconds) < 2 and time.perf_counter() - started < 10
    assert int(peak_mb) < 60  # the file is 100 MB: it was never held in memory
    assert file == name
    assert int(line) >= (2 if with_header else 1)
    assert column
