"""police.uk street-level files become monthly readings per force, through the same import path.

The City of London files are real (tests/data/police-uk, Open Government Licence v3.0);
the West Yorkshire file is SYNTHETIC, written here, never real figures.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pandas as pd
from sqlmodel import col, select

from bot.db import Store
from handlers.answer import answer
from scorecard.imports import apply_import
from scorecard.models import Metric, Reading
from scorecard.police_import import load_mapping, plan_police_import
from scorecard.police_uk import count_street_crimes, street_files

REAL = Path(__file__).resolve().parent / "data" / "police-uk"
HEADER = "Crime ID,Month,Reported by,Falls within,Longitude,Latitude,Location,LSOA code,LSOA name,Crime type,"
HEADER += "Last outcome category,Context\n"


def import_police(store: Store, path: Path):
    with store.session() as session:
        plan = plan_police_import(
            path.name, count_street_crimes(street_files(path)), session=session, mapping=load_mapping()
        )
        return plan, apply_import(plan, session=session, actor="cli:test")


def monthly(store: Store, metric: str, force: str) -> dict[str, float]:
    with store.session() as session:
        metric_id = session.exec(select(Metric.id).where(Metric.key == metric)).one()
        current = (Reading.metric_id == metric_id, Reading.force == force, col(Reading.replaced_at).is_(None))
        rows = session.exec(select(Reading).where(*current)).all()
        return {f"{r.period_start:%Y-%m}": r.value for r in rows if r.period_start and not r.is_baseline}


def synthetic_wyp(folder: Path, month: str, asb: int, burglary: int) -> Path:
    """A SYNTHETIC West Yorkshire street file: `asb` ASB rows and `burglary` burglaries."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [f",{month},West Yorkshire Police,West Yorkshire Police,,,,,,Anti-social behaviour,,\n"] * asb
    rows += [f"x{i},{month},West Yorkshire Police,West Yorkshire Police,,,,,,Burglary,,\n" for i in range(burglary)]
    path = folder / f"{month}-west-yorkshire-street.csv"
    path.write_text(HEADER + "".join(rows))
    return path


def test_real_files_become_monthly_readings_for_their_force(fresh_store, tmp_path):
    archive = tmp_path / "police.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for file in REAL.glob("*.csv"):
            zipped.write(file, f"{file.name[:7]}/{file.name}")
    plan, batch = import_police(fresh_store, archive)
    assert batch is not None and plan.count("added") == 4  # 2 metrics x 2 months

    frame = pd.concat(pd.read_csv(file) for file in REAL.glob("*.csv"))
    types = load_mapping().crime_types
    for metric in ("asb", "neighbourhood-crime"):
        expected = frame[frame["Crime type"].isin(types[metric])].groupby("Month").size().astype(float).to_dict()
        assert monthly(fresh_store, metric, "City of London Police") == expected
    assert monthly(fresh_store, "asb", "West Yorkshire Police") == {}, "another force never reaches the plan's cards"

    again, second = import_police(fresh_store, archive)
    assert second is None and again.count("unchanged") == 4


def test_west_yorkshire_months_reach_the_card_and_republished_months_are_revisions(fresh_store, tmp_path):
    folder = tmp_path / "wyp"
    synthetic_wyp(folder, "2024-01", asb=30, burglary=4)
    synthetic_wyp(folder, "2024-02", asb=25, burglary=0)
    import_police(fresh_store, folder)
    assert monthly(fresh_store, "neighbourhood-crime", "West Yorkshire Police") == {"2024-01": 4.0, "2024-02": 0.0}
    with fresh_store.session() as session:
        shown = json.dumps(answer("asb", session=session).payload(), ensure_ascii=False)
    assert "latest *25* in Feb 2024" in shown

    synthetic_wyp(folder, "2024-02", asb=27, burglary=0)  # police.uk republishes February
    plan, _ = import_police(fresh_store, folder)
    assert (plan.count("revised"), plan.count("unchanged")) == (1, 3)
    with fresh_store.session() as session:
        assert "revised from 25 to 27" in json.dumps(answer("asb", session=session).payload(), ensure_ascii=False)


def test_cli_refuses_a_bad_archive_and_changes_nothing(tmp_path):
    folder = tmp_path / "bad"
    shutil.copytree(REAL, folder)
    target = folder / "2018-02-city-of-london-street.csv"
    lines = target.read_text().splitlines(keepends=True)
    lines[6] = lines[6].replace("2018-02", "2018-13")
    target.write_text("".join(lines))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PCP_"))}
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'pcp.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "import-police", str(folder)], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert "bad was refused: nothing was imported" in result.stderr
    assert '2018-02-city-of-london-street.csv, line 7, column "Month"' in result.stderr
    store = Store.open(env["DATABASE_URL"])
    try:
        assert monthly(store, "asb", "City of London Police") == {}
    finally:
        store.close()
