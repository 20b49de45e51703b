"""A metric's monthly figures as an SPC chart (PNG) with alt text, for Slack on a phone.

Presentation only: the figures and the SPC reading come from scorecard (the same readings and
XmR call as the card, so chart and card never disagree); nothing here knows about Slack.

Decisions:
- One panel per series (shared month axis): series of one metric can differ by orders of
  magnitude (KSI Fatal vs Serious), so one shared y-axis would flatten the small one.
- The plan baseline is drawn as a labelled line only when it is like-for-like, i.e. itself a
  calendar month. The plan's baselines are 12-month totals, and drawing 2,599 above points of
  about 200 would mislead; it is then stated in the panel subtitle and the alt text instead.
- matplotlib's object API (Figure + FigureCanvasAgg), never pyplot: no global state, so charts
  can be drawn from Bolt's worker threads at once. Fonts are passed per call for the same reason.
- The PNG carries no "Software" or time metadata, so the same figures give the same bytes.
- The file is named after the metric and its latest month (knife-crime-2025-06.png): the name
  says what the chart shows, and the chart changes only when the figures do.
"""

from __future__ import annotations

import io
import math
import textwrap
from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.dates import DateFormatter, MonthLocator
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, MaxNLocator
from sqlmodel import Session

from bot.render import figure
from scorecard import cards, queries
from scorecard.models import Metric, Reading
from scorecard.periods import is_month, month_end, pick_figures
from scorecard.spc import MIN_POINTS, summarise

# NHS "Making Data Count" colours (reference/spc.md)
VARIATION_COLOUR = {
    "common_cause": "#A6A6A6",
    "improvement": "#00B0F0",
    "concern": "#E46C0A",
    "neither": "#490092",
}
VARIATION_LABEL = {
    "common_cause": "Common cause",
    "improvement": "Improvement",
    "concern": "Concern",
    "neither": "Neither better nor worse",
}
LINE_COLOUR = "#404040"
BASELINE_COLOUR = "#2E7D32"
WIDTH_IN, PANEL_IN, EXTRA_IN, DPI = 8.0, 3.3, 1.37, 150  # one panel: 1200 x 700 px
MAX_PANELS = 4  # 4 panels: 1200 x 1545 px; more would be unreadable on a phone
FONT, TITLE_FONT = 12, 16
MAX_TICKS = 6
ALT_TEXT_LIMIT = 1000  # Slack's limit for a file's alt_txt

SPC_WORDS = {
    "common_cause": "common cause variation: no signal, only month-to-month noise",
    "improvement_high": "special cause variation, improving",
    "improvement_low": "special cause variation, improving",
    "concern_high": "special cause variation, concerning",
    "concern_low": "special cause variation, concerning",
    "neither_high": "special cause variation, neither better nor worse",
    "neither_low": "special cause variation, neither better nor worse",
}


@dataclass(frozen=True)
class Chart:
    """A chart ready to upload: the image, what it says in words, and how to name it."""

    png: bytes
    alt_text: str
    title: str
    subtitle: str
    filename: str


@dataclass(frozen=True)
class _Panel:
    label: str
    months: list[Reading]
    frame: pd.DataFrame  # the xmr() result, one row per month
    baseline: Reading | None


def metric_chart(key: str, *, session: Session) -> Chart | None:
    """The SPC chart of a metric's home-force monthly figures; None with no monthly figures."""
    metric = queries.metric_by_key(key, session=session)
    if metric is None or metric.id is None:
        return None
    readings = queries.readings_of([metric.id], session=session)
    panels = []
    for series in queries.series_of([metric.id], session=session).get(metric.id, []):
        figures = pick_figures(readings.get((metric.id, series.label), []))
        if figures.months:
            chart = cards.spc_chart(figures.months, metric)
            panels.append(_Panel(series.label, figures.months, chart, figures.baseline))
    if not panels:
        return None
    panels = panels[:MAX_PANELS]
    latest = max(_start(p.months[-1]) for p in panels)
    subtitle = f"monthly figures to {latest:%b %Y}, with the SPC mean and process limits"
    return Chart(
        png=_draw(metric, panels),
        alt_text=_alt_text(metric, panels),
        title=metric.short_name,
        subtitle=subtitle,
        filename=f"{metric.key}-{latest:%Y-%m}.png",
    )


def _start(reading: Reading) -> date:
    assert reading.period_start is not None  # only monthly readings reach here
    return reading.period_start


def _number(value: float, unit: str, *, places: int | None = None) -> str:
    """As the cards write figures (render.figure); numpy floats become plain floats first."""
    plain = float(value)
    return figure(round(plain, places) if places is not None else plain, unit)


def _like_for_like(baseline: Reading | None) -> bool:
    return baseline is not None and baseline.value is not None and is_month(baseline)


def _baseline_words(panel: _Panel, unit: str) -> str:
    baseline = panel.baseline
    if baseline is None:
        return "no plan baseline"
    figure = _number(baseline.value, unit) if baseline.value is not None else baseline.text or "not stated"
    words = f"plan baseline {figure} ({baseline.period_label})"
    if _like_for_like(baseline):
        return words + ", drawn as a dotted line"
    return words + ", not a monthly figure, so not drawn"


def _spc_words(panel: _Panel, unit: str) -> str:
    summary = summarise(panel.frame)
    if not summary.enough_points:
        return f"fewer than {MIN_POINTS} months: no process limits yet, the mean only"
    last = panel.frame.iloc[-1]
    words = SPC_WORDS.get(summary.variation_icon or "", "no SPC reading")
    reason = _reason_words(summary.reason or {})
    limits = (
        f"mean {_number(last['mean'], unit, places=1)}, process limits "
        f"{_number(last['lpl'], unit, places=1)} to {_number(last['upl'], unit, places=1)}"
    )
    return f"{words}{' (' + reason + ')' if reason else ''}; {limits}"


def _reason_words(reason: dict) -> str:
    rule, side, length = reason.get("rule"), reason.get("side"), reason.get("length")
    if rule == "single_point":
        return f"the latest month is {'above the upper' if side == 'high' else 'below the lower'} process limit"
    if rule == "shift":
        return f"{length} months in a row {'above' if side == 'high' else 'below'} the mean"
    if rule == "trend":
        return f"{length} months in a row {'rising' if side in ('up', 'high') else 'falling'}"
    if rule == "two_of_three":
        return f"two of the last three months close to the {'upper' if side == 'high' else 'lower'} process limit"
    return ""


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _alt_text(metric: Metric, panels: list[_Panel]) -> str:
    """What a screen-reader user needs: what is plotted, the latest figure, the SPC reading, the baseline."""
    parts = [f"Chart of {metric.short_name} ({metric.name}): West Yorkshire Police monthly figures."]
    for panel in panels:
        first, last = _start(panel.months[0]), panel.months[-1]
        count = len(panel.months)
        span = f"{first:%b %Y} to {_start(last):%b %Y}" if count > 1 else f"{first:%b %Y}"
        label = f"{panel.label}: " if panel.label else ""
        parts.append(
            f"{label}{count} month{'s' if count != 1 else ''}, {span}; latest {_number(last.value, metric.unit)} "
            f"in {_start(last):%b %Y}{' (provisional)' if last.provisional else ''}. "
            f"SPC: {_spc_words(panel, metric.unit)}. {_sentence(_baseline_words(panel, metric.unit))}."
        )
    parts.append(
        "Points are coloured grey for common cause, blue for improvement, orange for concern, "
        "purple for a signal that is neither better nor worse."
    )
    text = " ".join(parts)
    return text if len(text) <= ALT_TEXT_LIMIT else text[: ALT_TEXT_LIMIT - 1] + "…"


def _draw(metric: Metric, panels: list[_Panel]) -> bytes:
    height = PANEL_IN + EXTRA_IN + (len(panels) - 1) * (PANEL_IN - 0.4)
    figure = Figure(figsize=(WIDTH_IN, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(panels), 1, sharex=True, squeeze=False)[:, 0]
    figure.suptitle(metric.short_name, fontsize=TITLE_FONT, fontweight="bold", x=0.01, ha="left")
    used: set[str] = set()
    limits_drawn = baseline_drawn = False
    for ax, panel in zip(axes, panels, strict=True):
        limits_drawn |= _draw_panel(ax, panel, metric.unit, used)
        baseline_drawn |= _like_for_like(panel.baseline)
    first = min(_start(p.months[0]) for p in panels)
    last = max(_start(p.months[-1]) for p in panels)
    span = (last.year - first.year) * 12 + last.month - first.month + 1
    axes[-1].xaxis.set_major_locator(MonthLocator(bymonthday=15, interval=max(1, math.ceil(span / MAX_TICKS))))
    axes[-1].xaxis.set_major_formatter(DateFormatter("%b %Y"))
    axes[-1].set_xlim(first - timedelta(days=3), month_end(last) + timedelta(days=3))
    figure.legend(
        handles=_legend(used, limits_drawn, baseline_drawn), loc="outside lower center", ncol=3, fontsize=FONT
    )
    figure.legends[-1].set_frame_on(False)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _draw_panel(ax: Axes, panel: _Panel, unit: str, used: set[str]) -> bool:
    """Points coloured by variation, the mean and limits as steps per limit period. True if limits drawn."""
    frame = panel.frame
    xs = [_start(r) + timedelta(days=14) for r in panel.months]  # mid-month, inside its limit period's step
    ax.plot(xs, frame["value"], color="#7F7F7F", linewidth=1.5, zorder=2)
    colours = [VARIATION_COLOUR[v] for v in frame["variation"]]
    ax.scatter(xs, frame["value"], c=colours, s=55, zorder=3, edgecolors="white", linewidths=0.6)
    used.update(frame["variation"])
    limits = False
    for _, rows in frame.groupby("period", sort=True):
        positions = list(rows.index)  # xmr() was given a list: a RangeIndex, so labels are positions
        start = _start(panel.months[positions[0]])
        end = month_end(_start(panel.months[positions[-1]])) + timedelta(days=1)
        row = rows.iloc[0]
        ax.plot([start, end], [row["mean"]] * 2, color=LINE_COLOUR, linewidth=1.8, zorder=1)
        if not math.isnan(row["upl"]):
            limits = True
            for name in ("upl", "lpl"):
                ax.plot([start, end], [row[name]] * 2, color=LINE_COLOUR, linewidth=1.2, linestyle="--", zorder=1)
    if panel.baseline is not None and panel.baseline.value is not None and _like_for_like(panel.baseline):
        ax.axhline(panel.baseline.value, color=BASELINE_COLOUR, linewidth=1.5, linestyle=":", zorder=1)
    last = panel.months[-1]
    ax.annotate(
        _number(last.value, unit),
        (xs[-1], last.value),
        xytext=(0, 9),
        textcoords="offset points",
        ha="center",
        fontsize=FONT,
        fontweight="bold",
    )
    ax.set_title(_panel_title(panel, unit, limits=limits), fontsize=FONT, loc="left")
    ax.tick_params(labelsize=FONT)
    ax.yaxis.set_major_locator(MaxNLocator(nbins=4))
    suffix = "%" if unit == "percent" else ""
    ax.yaxis.set_major_formatter(FuncFormatter(lambda y, _: f"{y:,.0f}{suffix}" if abs(y) >= 10 else f"{y:,g}{suffix}"))
    ax.grid(axis="y", color="#E6E6E6", linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return limits


def _panel_title(panel: _Panel, unit: str, *, limits: bool) -> str:
    """Latest month and SPC reading on one line, the plan baseline (when not drawn) on the next."""
    last = panel.months[-1]
    head = f"{panel.label}: " if panel.label else ""
    spc = SPC_WORDS.get(summarise(panel.frame).variation_icon or "", "").split(":")[0] if limits else ""
    spc = spc or f"no process limits yet ({len(panel.months)} of {MIN_POINTS} months)"
    lines = [f"{head}Latest {_number(last.value, unit)} in {_start(last):%b %Y}; {spc}"]
    baseline = panel.baseline
    if baseline is not None and baseline.value is not None and not _like_for_like(baseline):
        lines.append(f"Plan baseline {_number(baseline.value, unit)}, {baseline.period_label}: not monthly, not drawn")
    return "\n".join(textwrap.shorten(line, 90, placeholder="…") for line in lines)


def _legend(used: set[str], limits: bool, baseline: bool) -> list[Line2D]:
    handles = [
        Line2D([], [], marker="o", linestyle="", markersize=9, color=VARIATION_COLOUR[v], label=VARIATION_LABEL[v])
        for v in VARIATION_COLOUR
        if v in used
    ]
    handles.append(Line2D([], [], color=LINE_COLOUR, linewidth=1.8, label="Mean"))
    if limits:
        handles.append(Line2D([], [], color=LINE_COLOUR, linewidth=1.2, linestyle="--", label="Process limits"))
    if baseline:
        handles.append(Line2D([], [], color=BASELINE_COLOUR, linewidth=1.5, linestyle=":", label="Plan baseline"))
    return handles
