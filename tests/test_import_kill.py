"""An import killed half-way (SIGKILL, no chance to clean up) leaves the store exactly as it was."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from sqlmodel import func, select

from bot.db import Store
from scorecard.models import ImportBatch, Reading

FORCES, MONTHS = 100, 300  # 30,000 SYNTHETIC rows: long enough to be caught mid-write


def big_file(path: Path) -> Path:
    lines = ["metric,force,period,value,source"]
    for force in range(FORCES):
        for month in range(MONTHS):
            lines.append(
                f"knife-crime,Test Force {force},{2000 + month // 12}-{month % 12 + 1:02d},{month % 50},SYNTHETIC"
            )
    path.write_text("\n".join(lines) + "\n")
    return path


def counts(url: str) -> tuple[int, int]:
    store = Store.open(url)
    try:
        with store.session() as session:
            readings = session.exec(select(func.count()).select_from(Reading)).one()
            return readings, session.exec(select(func.count()).select_from(ImportBatch)).one()
    finally:
        store.close()


def pcp_import(url: str, file: Path) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PCP_"))} | {"DATABASE_URL": url}
    command = [sys.executable, "-m", "bot.cli", "import", str(file)]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_an_import_killed_midway_changes_nothing_and_the_next_one_works(fresh_url, tmp_path):
    file = big_file(tmp_path / "big.csv")
    before = counts(fresh_url)
    process = pcp_import(fresh_url, file)
    line = process.stderr.readline()  # the first progress line: some rows are written, none committed
    assert line.startswith("Applying: ") and "100%" not in line, line + process.stderr.read()
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=10)  # reaps it and closes its pipes
    assert process.returncode == -signal.SIGKILL
    assert counts(fresh_url) == before

    again = pcp_import(fresh_url, file)
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert counts(fresh_url) == (before[0] + FORCES * MONTHS, before[1] + 1)
