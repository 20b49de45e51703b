"""Time the scheduled jobs (alerts and the weekly digest) as the store grows from 1 to 43 forces.

Why: police.uk imports bring readings for every force in England and Wales, not just West Yorkshire, so the
store can hold 43 forces x 40 metrics x 10 years of months. The scheduler must still evaluate every alert
rule and build the digest quickly (target: under 2 s for the full set), and the cost must grow no faster
than linearly with the data. Prints figures; it is a benchmark, not a test.

Every figure here is SYNTHETIC: the plan's 33 metrics plus 7 SYNTHETIC ones (keys `synthetic-01` ...
`synthetic-07`), each series given 120 monthly readings per force from a seeded random generator (levels
near the plan's baselines, some series made to worsen lately so alerts really open), synthetic leads
(`U0SYNTHETIC..`) so alert DMs are queued, and a synthetic digest channel. Readings look exactly as
`pcp import` writes them (monthly periods, one current reading per metric/series/force/period, an import
batch per force) but are bulk-inserted. Forces are added in steps (West Yorkshire first, since alerts and
the digest judge the home force) and the jobs are timed after each step; each timing is the median of
`--repeat` runs, with alert events and outbox rows cleared before each run so every run does the same work.

    python bench/scale.py [--database-url postgresql://postgres@127.0.0.1:5432/pcp_bench_scale]
                          [--repeat 7] [--steps 1,2,5,10,20,43] [--profile]

SQLite (a temporary file) by default. With a PostgreSQL URL, the named database is created for the run
and dropped afterwards (it must not exist yet; `postgres` itself is never written to: a throwaway name is
used instead).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import hashlib
import io
import math
import os
import platform
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import delete, func, insert, make_url, text  # noqa: E402
from sqlmodel import col, select  # noqa: E402

from bot.db import Store, normalise_url  # noqa: E402
from handlers.jobs import decide_alerts, decide_digest  # noqa: E402
from scorecard import queries  # noqa: E402
from scorecard.alerts import evaluate  # noqa: E402
from scorecard.digest import build_digest  # noqa: E402
from scorecard.imports import period_label  # noqa: E402
from scorecard.models import (  # noqa: E402
    HOME_FORCE,
    AlertEvent,
    Area,
    ImportBatch,
    Lead,
    Metric,
    MetricSeries,
    Outbox,
    Reading,
)
from scorecard.periods import month_end  # noqa: E402

try:
    from scorecard.alert_rules import load_rules
except ImportError:  # before the rules moved out of scorecard.alerts
    from scorecard.alerts import load_rules

# The 43 territorial police forces of England and Wales, the home force first.
FORCES = [
    HOME_FORCE,
    "Avon and Somerset Constabulary", "Bedfordshire Police", "Cambridgeshire Constabulary", "Cheshire Constabulary",
    "City of London Police", "Cleveland Police", "Cumbria Constabulary", "Derbyshire Constabulary",
    "Devon & Cornwall Police", "Dorset Police", "Durham Constabulary", "Dyfed-Powys Police", "Essex Police",
    "Gloucestershire Constabulary", "Greater Manchester Police", "Gwent Police", "Hampshire Constabulary",
    "Hertfordshire Constabulary", "Humberside Police", "Kent Police", "Lancashire Constabulary",
    "Leicestershire Police", "Lincolnshire Police", "Merseyside Police", "Metropolitan Police Service",
    "Norfolk Constabulary", "North Wales Police", "North Yorkshire Police", "Northamptonshire Police",
    "Northumbria Police", "Nottinghamshire Police", "South Wales Police", "South Yorkshire Police",
    "Staffordshire Police", "Suffolk Constabulary", "Surrey Police", "Sussex Police", "Thames Valley Police",
    "Warwickshire Police", "West Mercia Police", "West Midlands Police", "Wiltshire Police",
]  # fmt: skip
assert len(FORCES) == 43 and len(set(FORCES)) == 43

METRICS_WANTED = 40
MONTHS = 120  # Jan 2015 .. Dec 2024
FIRST_MONTH = date(2015, 1, 1)
NOW = datetime(2025, 1, 20, 9, 0, tzinfo=UTC)  # a Monday 09:00, when the digest goes out
ALERTS_AT = NOW - timedelta(hours=1)  # alerts decided earlier the same morning: the digest reports them
AS_OF = NOW.date()
RECORDED_AFTER = timedelta(days=15)  # a month's figures arrive mid next month: the digest sees only the latest
CHANNEL = "C0SYNTHETIC"
TARGET_S = 2.0
SEED = 20250120
SYNTHETIC_DIRECTIONS = ["reduce", "increase", "maintain", "keep_below", "monitor", "reduce", "increase"]
SYNTHETIC_UNITS = ["count", "percent", "percent", "count", "count", "number", "count"]
WORSE_SIGN = {"reduce": 1.0, "keep_below": 1.0, "monitor": 1.0, "increase": -1.0, "maintain": -1.0}


# --- the database ----------------------------------------------------------------------------


@contextlib.contextmanager
def database(url: str | None) -> Iterator[str]:
    """A SQLite file in a temporary directory, or a PostgreSQL database created here and dropped after."""
    if url is None:
        with tempfile.TemporaryDirectory(prefix="pcp-bench-scale-") as tmp:
            yield f"sqlite:///{tmp}/pcp.db"
        return
    import psycopg
    from psycopg import sql

    parsed = make_url(normalise_url(url))
    if not parsed.drivername.startswith("postgresql"):
        raise SystemExit(f"--database-url: expected a postgresql:// URL, not {parsed.drivername}")
    name = parsed.database
    if name in (None, "", "postgres"):
        name = f"pcp_bench_scale_{uuid.uuid4().hex[:8]}"  # never the server's default database
    admin = parsed.set(drivername="postgresql", database="postgres").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            raise SystemExit(f"database {name!r} already exists: name a new one, it is dropped after the run")
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# --- the SYNTHETIC data ----------------------------------------------------------------------


def add_synthetic_metrics(store: Store) -> tuple[int, int]:
    """SYNTHETIC metrics up to 40 in all (7 beside the plan's 33), each with a series, a plan-style baseline
    and the default rules for its direction. Returns (added, metrics in all)."""
    with store.session() as session:
        metrics = queries.all_metrics(session=session)
        areas = [a for a in queries.all_areas(session=session) if a.kind == "priority"]
        position, added = max(m.position for m in metrics) + 1, METRICS_WANTED - len(metrics)
        for n in range(1, added + 1):
            direction, unit = SYNTHETIC_DIRECTIONS[n - 1], SYNTHETIC_UNITS[n - 1]
            area: Area = areas[n % len(areas)]
            metric = Metric(
                key=f"synthetic-{n:02d}",
                name=f"SYNTHETIC benchmark metric {n}",
                short_name=f"SYNTHETIC {n}",
                area_id=area.id,
                position=position + n,
                direction=direction,
                unit=unit,
                source="SYNTHETIC: bench/scale.py, not a plan figure",
            )
            session.add(metric)
            session.flush()
            session.add(MetricSeries(metric_id=metric.id, label="", position=0))
            start, end = date(2021, 5, 1), date(2022, 4, 30)  # like the plan's "Year to Apr 22" baselines
            session.add(
                Reading(
                    metric_id=metric.id,
                    period_label="SYNTHETIC baseline (Year to Apr 22)",
                    period_start=start,
                    period_end=end,
                    observed_on=end,
                    value=60.0 if unit == "percent" else 1200.0,
                    is_baseline=True,
                    source="SYNTHETIC: bench/scale.py",
                )
            )
        session.flush()
        load_rules(session=session)  # default rules by direction for the new metrics
        metrics = queries.all_metrics(session=session)
        for i, metric in enumerate(metrics):  # a SYNTHETIC lead each, so opened alerts queue DMs
            session.add(Lead(subject=f"metric:{metric.key}", user_id=f"U0SYNTHETIC{i:02d}", added_by="bench:scale"))
        queries.bump_data_version(session=session)
        return added, len(metrics)


def series_plan(store: Store) -> list[tuple[int, str, str, str, float]]:
    """(metric id, series label, direction, unit, monthly level) for every series; levels near the baselines."""
    with store.session() as session:
        metrics = queries.all_metrics(session=session)
        series = queries.series_of([m.id for m in metrics], session=session)
        baselines = {
            (r.metric_id, r.series): r.value
            for r in session.exec(select(Reading).where(col(Reading.is_baseline).is_(True)))
        }
    plan = []
    for metric in metrics:
        for s in series.get(metric.id, []):
            base = baselines.get((metric.id, s.label))
            if metric.unit == "percent":
                level = base if base is not None and 5 <= base <= 95 else 60.0
            elif metric.unit == "count":
                level = max(base / 12, 8.0) if base is not None else 100.0  # baselines are 12-month totals
            else:
                level = base if base is not None and base > 0 else 10.0
            plan.append((metric.id, s.label, metric.direction, metric.unit, float(level)))
    return plan


def force_values(plan: list[tuple[int, str, str, str, float]], force_index: int) -> np.ndarray:
    """120 monthly SYNTHETIC values per series for one force: seasonal noise, and for every third series
    a worsening drift over the last 18 months ending in four strictly worse months (alerts fire)."""
    rng = np.random.default_rng(SEED + force_index)
    scale = 1.0 if force_index == 0 else float(rng.lognormal(0.0, 0.6))  # forces differ in size
    t = np.arange(MONTHS)
    out = np.empty((len(plan), MONTHS))
    for j, (_, _, direction, unit, level) in enumerate(plan):
        size = level * (scale if unit == "count" else 1.0)
        spread = 0.03 * level if unit == "percent" else 0.06 * size
        values = size * (1 + 0.04 * np.sin(2 * np.pi * (t + j) / 12)) + rng.normal(0, spread, MONTHS)
        if j % 3 == 0:
            sign = WORSE_SIGN[direction]
            drift = np.clip(t - (MONTHS - 18), 0, None) * 0.25 * spread
            values += sign * drift
            values[-4:] = values[-5] + sign * spread * np.arange(1, 5)  # the last 3 changes all worse
        if unit == "percent":
            values = np.clip(values, 0.0, 100.0).round(1)
        elif unit == "count":
            values = np.clip(values, 0.0, None).round()
        else:
            values = np.clip(values, 0.0, None).round(2)
        out[j] = values
    return out


def month_periods() -> list[tuple[date, date, str]]:
    periods = []
    for m in range(MONTHS):
        start = date(FIRST_MONTH.year + m // 12, m % 12 + 1, 1)
        periods.append((start, month_end(start), period_label(start, month_end(start))))
    return periods


def load_force(store: Store, force: str, index: int, plan: list, periods: list) -> int:
    """One force's readings as `pcp import` writes them: an ImportBatch, monthly rows, observed on period end."""
    values = force_values(plan, index)
    name = f"SYNTHETIC {force}.csv"
    with store.session() as session:
        batch = ImportBatch(
            kind="readings",
            file_name=name,
            sha256=hashlib.sha256(name.encode()).hexdigest(),
            actor="bench:scale",
            added=values.size,
            applied_at=NOW,
        )
        session.add(batch)
        session.flush()
        rows = [
            {
                "metric_id": metric_id,
                "series": label,
                "force": force,
                "period_label": plabel,
                "period_start": start,
                "period_end": end,
                "observed_on": end,
                "value": float(values[j, m]),
                "text": None,
                "is_baseline": False,
                "provisional": False,
                "source": f"SYNTHETIC: imported from {name}",
                "recorded_at": datetime(end.year, end.month, end.day, 12, tzinfo=UTC) + RECORDED_AFTER,
                "replaced_at": None,
                "revision_of_id": None,
                "import_id": batch.id,
            }
            for j, (metric_id, label, _, _, _) in enumerate(plan)
            for m, (start, end, plabel) in enumerate(periods)
        ]
        session.execute(insert(Reading), rows)
        queries.bump_data_version(session=session)
    return len(rows)


def analyze(store: Store) -> None:
    """PostgreSQL: refresh planner statistics, as autovacuum would soon after a large import. SQLite: the
    app never runs ANALYZE, so neither does the benchmark."""
    if store.engine.dialect.name == "postgresql":
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))


# --- timing ----------------------------------------------------------------------------------


def reset(store: Store) -> None:
    """Forget decided alerts and queued messages, so every run opens the same alerts and queues the same DMs."""
    with store.session() as session:
        session.exec(delete(Outbox))
        session.exec(delete(AlertEvent))


def timed(fn: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def run_once(store: Store) -> dict[str, object]:
    """One pass of everything, in the order the scheduler's Monday morning would run it."""
    reset(store)

    def evaluate_only():
        with store.session() as session:
            return evaluate(session=session, as_of=AS_OF)

    def build_only():
        with store.session() as session:
            return build_digest(session=session, since=NOW - timedelta(days=7), until=NOW)

    t_eval, findings = timed(evaluate_only)
    t_alerts, decided = timed(lambda: decide_alerts(store=store, as_of=AS_OF, now=ALERTS_AT))
    t_build, digest = timed(build_only)
    t_digest, queued = timed(lambda: decide_digest(store=store, channels=[CHANNEL], now=NOW))
    return {
        "evaluate": t_eval,
        "decide_alerts": t_alerts,
        "build_digest": t_build,
        "decide_digest": t_digest,
        "total": t_alerts + t_digest,
        "findings": len(findings),
        "opened": decided.opened,
        "dms": decided.messages,
        "signals": len(digest.signals),
        "new_figures": len(digest.new_figures),
        "digests": queued,
    }


def measure(store: Store, repeat: int) -> dict[str, float]:
    runs = [run_once(store) for _ in range(repeat)]
    result = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    result["min_total"] = min(r["total"] for r in runs)  # the least disturbed run: other load only adds time
    return result


def least_squares(xs: list[float], ys: list[float]) -> tuple[float, float, float]:
    """slope, intercept, R² of y = intercept + slope x."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx if sxx else math.nan
    intercept = my - slope * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - intercept - slope * x) ** 2 for x, y in zip(xs, ys, strict=True))
    return slope, intercept, (1 - ss_res / ss_tot) if ss_tot else math.nan


def profile(store: Store, top: int) -> None:
    """cProfile of one decide_alerts + decide_digest at the current size: top functions, cumulative and own time."""
    reset(store)
    profiler = cProfile.Profile()
    profiler.enable()
    decide_alerts(store=store, as_of=AS_OF, now=ALERTS_AT)
    decide_digest(store=store, channels=[CHANNEL], now=NOW)
    profiler.disable()
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(top)
        lines = out.getvalue().splitlines()
        start = next(i for i, line in enumerate(lines) if "ncalls" in line)
        print(f"\ncProfile, decide_alerts + decide_digest, top {top} by {order}:")
        print("\n".join(line for line in lines[start - 1 :] if line.strip()))


# --- main ------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="postgresql://user@host:port/<new db> (default: a temp SQLite file)")
    parser.add_argument("--repeat", type=int, default=7, help="timed runs per step; the median is reported")
    parser.add_argument("--steps", default="1,2,5,10,20,43", help="force counts to measure at, ascending")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the jobs at the last step")
    args = parser.parse_args()
    steps = sorted({int(s) for s in args.steps.split(",")})
    if not steps or steps[0] < 1 or steps[-1] > len(FORCES):
        parser.error(f"--steps: force counts between 1 and {len(FORCES)}")

    with database(args.database_url) as url:
        store = Store.open(url)
        try:
            n_synthetic, n_metrics = add_synthetic_metrics(store)
            plan, periods = series_plan(store), month_periods()
            print("SYNTHETIC DATA: every reading below is generated (seeded RNG), not a real figure.")
            print(f"database: {store.engine.dialect.name}  python: {platform.python_version()}  "
                  f"cores: {os.cpu_count()}  load average: {os.getloadavg()[0]:.1f}  "
                  f"metrics: {n_metrics} ({n_synthetic} SYNTHETIC)  series: {len(plan)}  months: {MONTHS} "
                  f"({periods[0][2]} .. {periods[-1][2]})  repeat: {args.repeat} (median)")  # fmt: skip
            print("total = decide_alerts + decide_digest (the two scheduled jobs, end to end with the outbox); "
                  "min = the fastest of the runs")  # fmt: skip
            print("of WYP = readings of the home force, the only ones alerts and the digest judge")
            widths = (6, 10, 8, 8, 10, 10, 10, 10, 9, 8, 8, 6, 8)
            top = ("forces", "readings", "of WYP", "load", "evaluate", "decide", "build", "decide", "total", "min")
            top += ("alerts", "DMs", "signals")
            sub = ("", "", "", "s", "alerts ms", "alerts ms", "digest ms", "digest ms", "ms", "ms", "opened", "", "")
            print("".join(f"{h:>{w}}" for h, w in zip(top, widths, strict=True)))
            print("".join(f"{h:>{w}}" for h, w in zip(sub, widths, strict=True)))
            loaded, results = 0, []
            run_once(store)  # warm-up: imports, template compilation, connection pool
            for step in steps:
                started = time.perf_counter()
                while loaded < step:
                    load_force(store, FORCES[loaded], loaded, plan, periods)
                    loaded += 1
                analyze(store)
                load_s = time.perf_counter() - started
                with store.session() as session:
                    readings = session.exec(select(func.count()).select_from(Reading)).one()
                    home = session.exec(select(func.count()).where(Reading.force == HOME_FORCE)).one()
                r = measure(store, args.repeat)
                results.append((step, readings, r))
                ms = {k: r[k] * 1000 for k in ("evaluate", "decide_alerts", "build_digest", "decide_digest", "total")}
                cells = (f"{step}", f"{readings:,}", f"{home:,}", f"{load_s:.1f}")
                cells += tuple(f"{ms[k]:.0f}" for k in ("evaluate", "decide_alerts", "build_digest", "decide_digest"))
                cells += (f"{ms['total']:.0f}", f"{r['min_total'] * 1000:.0f}")
                cells += (f"{r['opened']:.0f}", f"{r['dms']:.0f}", f"{r['signals']:.0f}")
                print("".join(f"{c:>{w}}" for c, w in zip(cells, widths, strict=True)))
            last_step, last_readings, last = results[-1]
            print(f"findings per evaluation: {last['findings']:.0f}; new figures in the digest: "
                  f"{last['new_figures']:.0f}; digests queued per run: {last['digests']:.0f}")  # fmt: skip
            verdict = "PASS" if last["total"] < TARGET_S else "MISS"
            print(f"{last_step} forces, {last_readings:,} readings: total {last['total'] * 1000:.0f} ms "
                  f"(target < {TARGET_S * 1000:.0f} ms)  {verdict}")  # fmt: skip
            if len(results) > 1:
                first_step, first_readings, first = results[0]
                xs = [n / 1000 for _, n, _ in results]
                ys = [res["total"] * 1000 for _, _, res in results]
                slope, intercept, r2 = least_squares(xs, ys)
                print(f"per 1,000 readings: {first['total'] * 1e6 / first_readings:.1f} ms at {first_step} force(s), "
                      f"{last['total'] * 1e6 / last_readings:.1f} ms at {last_step}")  # fmt: skip
                print(f"least squares: total ms = {intercept:.0f} + {slope:.3f} x (readings / 1,000)  R² = {r2:.2f}")
                growth_data, growth_time = last_readings / first_readings, last["total"] / first["total"]
                linear = "PASS" if growth_time <= growth_data else "MISS"
                print(f"growth {first_step} -> {last_step} forces: readings x{growth_data:.1f}, total time "
                      f"x{growth_time:.2f} (linear or better: {linear})")  # fmt: skip
            if args.profile:
                profile(store, top=25)
            return 0
        finally:
            store.close()


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        raise SystemExit(130) from None
