"""Every row of the document's performance table, as the bot shows it.

One test per metric: ask for the metric by the document's own wording (through the real
lookup and renderer), then check each series' Baseline and Latest fields, the stated
change, the trend arrow and the text-only values against the document itself.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.render import unescape
from handlers.answer import answer
from tests.plan_document import Row, numbers, table_rows

ROWS = table_rows()


def test_the_table_parser_finds_every_row():
    # 11 + 7 + 11 + 6 rows under the four priorities
    assert len(ROWS) == 35 - 2  # two of the 35 lines continue the row above (Magistrates, Police Staff)
    assert len({row.name for row in ROWS}) == len(ROWS)


def _field_figure(field_text: str) -> Decimal:
    """'*Baseline*\\n*2,599*\\n_period_' -> 2599."""
    return numbers(field_text.split("\n")[1])[0]


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_metric_card_shows_the_documents_figures(row: Row, session):
    message = answer(row.name, session=session)
    everything = unescape("\n".join(_texts(message.blocks)))
    assert f"*{row.name}*" in unescape(message.blocks[1]["text"]["text"]), "the card names the metric as the plan does"

    if row.text_value is not None:
        assert row.text_value in everything
        return
    series_fields, warnings = _series_blocks(message.blocks)
    stated_changes = [figure for cell in row.changes for figure in numbers(cell)]
    assert len(series_fields) == len(row.baselines) == len(row.currents) == len(stated_changes)
    for fields, warning, baseline, current, stated in zip(
        series_fields, warnings, row.baselines, row.currents, stated_changes, strict=True
    ):
        assert fields[0]["text"].startswith("*Baseline*") and _field_figure(fields[0]["text"]) == baseline
        assert fields[1]["text"].startswith("*Latest*") and _field_figure(fields[1]["text"]) == current
        assert fields[2]["text"].startswith("*Change*")
        # the document's change is the series' Change, or the figure the warning beneath it quotes
        shown = numbers(fields[2]["text"].split(" (")[0]) if warning is None else numbers(warning)
        assert shown[0] == stated
    for arrow in row.arrows:
        assert arrow in everything


def _series_blocks(blocks: list[dict]) -> tuple[list[list[dict]], list[str | None]]:
    """Each series' fields, and the disagreement warning right after them (None when it agrees)."""
    fields, warnings = [], []
    for block, following in zip(blocks, [*blocks[1:], {}], strict=True):
        if block["type"] == "section" and "fields" in block:
            fields.append(block["fields"])
            text = following.get("elements", [{}])[0].get("text", "") if following.get("type") == "context" else ""
            warnings.append(text if text.startswith(":warning:") else None)
    return fields, warnings


def _texts(blocks: list[dict]) -> list[str]:
    out = []
    for block in blocks:
        if "text" in block:
            out.append(block["text"]["text"])
        out += [f["text"] for f in block.get("fields", [])]
        out += [e.get("text", "") for e in block.get("elements", []) if isinstance(e.get("text"), str)]
    return out
