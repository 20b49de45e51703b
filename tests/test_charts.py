"""Metric charts: valid PNGs of a phone-friendly size, alt text that says what the chart shows,
and the "Show chart" button sending the chart by DM through Slack's external-upload flow.

All figures here are SYNTHETIC test data, never real performance figures.
"""

from __future__ import annotations

import io
import json
import struct

import numpy as np
from matplotlib.image import imread

from bot.charts import Chart, metric_chart
from bot.db import Store
from handlers.answer import answer
from tests.conftest import running_bot
from tests.slack_stub import SlackStub
from tests.test_imports import csv_bytes, run_import

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
KNIFE = [198, 207, 189, 214, 201, 195, 210, 203, 192, 206, 171, 165, 160, 168, 158, 163, 155, 150]  # a shift down
DVPO = [40, 52, 47, 55, 61]
FATAL = [3, 5, 2, 4, 6, 3, 4, 2, 5, 3, 4, 6, 3, 4]
SERIOUS = [90, 101, 95, 88, 110, 97, 93, 105, 99, 91, 96, 102, 94, 120]


def months(count: int, year: int, month: int) -> list[str]:
    out = []
    for _ in range(count):
        out.append(f"{year}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def seed(store: Store) -> None:
    """18 months of knife crime to Jun 2026, 5 of DVPO, 14 of KSI Fatal and Serious (SYNTHETIC)."""
    rows = [f"knife-crime,,{p},{v},SYNTHETIC," for p, v in zip(months(18, 2025, 1), KNIFE, strict=True)]
    rows += [f"dvpo,,{p},{v},SYNTHETIC," for p, v in zip(months(5, 2026, 2), DVPO, strict=True)]
    rows += [f"ksi,Fatal,{p},{v},SYNTHETIC," for p, v in zip(months(14, 2025, 5), FATAL, strict=True)]
    rows += [f"ksi,Serious,{p},{v},SYNTHETIC," for p, v in zip(months(14, 2025, 5), SERIOUS, strict=True)]
    run_import(store, "synthetic.csv", csv_bytes(*rows))


def chart_of(store: Store, key: str) -> Chart | None:
    with store.session() as session:
        return metric_chart(key, session=session)


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which a valid PNG has first, right after the signature."""
    assert png.startswith(PNG_SIGNATURE)
    length, kind = struct.unpack(">I4s", png[8:16])
    assert (length, kind) == (13, b"IHDR")
    return struct.unpack(">II", png[16:24])


def has_colour(image: np.ndarray, hex_colour: str) -> bool:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)]) / 255
    return bool((np.abs(image[..., :3] - rgb).max(axis=-1) < 0.02).any())


def chart_buttons(blocks: list[dict]) -> list[tuple[str, str]]:
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    return [(e["text"]["text"], e["value"]) for e in buttons if e["action_id"] == "pcp_chart"]


def test_charts_are_valid_pngs_of_a_phone_friendly_size(fresh_store):
    seed(fresh_store)
    for key in ("knife-crime", "dvpo", "ksi"):
        chart = chart_of(fresh_store, key)
        assert chart is not None, key
        width, height = png_size(chart.png)
        assert 800 <= width <= 2400 and 400 <= height <= 1600, (key, width, height)
        assert len(chart.png) < 400_000
        image = imread(io.BytesIO(chart.png))  # decodes the whole image, not just its header
        assert image.shape[:2] == (height, width)
        assert chart.png == chart_of(fresh_store, key).png, "the same figures give the same bytes"
    knife = chart_of(fresh_store, "knife-crime")
    assert knife.title == "Knife crime" and knife.filename == "knife-crime-2026-06.png"
    image = imread(io.BytesIO(knife.png))
    assert has_colour(image, "#00B0F0") and has_colour(image, "#E46C0A"), "points coloured by variation"
    assert not has_colour(image, "#490092"), "no 'neither' points on a metric with a direction"


def test_alt_text_says_what_the_chart_shows(fresh_store):
    seed(fresh_store)
    knife = chart_of(fresh_store, "knife-crime").alt_text
    assert "Knife crime" in knife and "18 months, Jan 2025 to Jun 2026" in knife
    assert "latest 150 in Jun 2026" in knife
    assert "special cause variation, improving" in knife and "process limits" in knife
    assert "Plan baseline 2,599 (National Baseline (12 months to Dec 2019)), not a monthly figure" in knife
    dvpo = chart_of(fresh_store, "dvpo").alt_text
    assert "5 months" in dvpo and "latest 61 in Jun 2026" in dvpo
    assert "fewer than 13 months: no process limits yet" in dvpo
    ksi = chart_of(fresh_store, "ksi").alt_text
    assert "Fatal: 14 months" in ksi and "Serious: 14 months" in ksi and "latest 120 in Jun 2026" in ksi
    assert "common cause variation" in ksi
    assert all(len(text) <= 1000 for text in (knife, dvpo, ksi)), "Slack's alt_txt limit"


def test_no_monthly_figures_no_chart_and_no_button(fresh_store):
    seed(fresh_store)
    assert chart_of(fresh_store, "dvpn") is None
    assert chart_of(fresh_store, "no-such-metric") is None
    with fresh_store.session() as session:
        with_months, without = (answer(key, session=session).blocks for key in ("knife-crime", "dvpn"))
    assert chart_buttons(with_months) == [("Show chart", "knife-crime")]
    assert chart_buttons(without) == []


def test_show_chart_sends_the_png_by_dm_through_the_external_upload_flow(slack: SlackStub, fresh_store):
    seed(fresh_store)
    expected = chart_of(fresh_store, "knife-crime")
    with running_bot(slack, fresh_store) as bot:
        assert bot.click("pcp_chart", "knife-crime", user="U0ANALYST").status == 200
        (reply,) = bot.replies()
    (opened,) = slack.calls("conversations.open")
    assert opened.body["users"] == "U0ANALYST"
    (asked,) = slack.calls("files.getUploadURLExternal")
    assert asked.body["filename"] == "knife-crime-2026-06.png" and asked.body["alt_txt"] == expected.alt_text
    (file_id,) = slack.uploads
    assert slack.uploads[file_id] == expected.png
    (completed,) = slack.calls("files.completeUploadExternal")
    assert completed.body["channel_id"] == "D0ANALYST", "the user's DM, not the channel the card is in"
    assert "Knife crime" in completed.body["initial_comment"]
    assert [f["id"] for f in json.loads(completed.body["files"])] == [file_id]
    assert reply["response_type"] == "ephemeral" and "direct message" in reply["text"]
    order = [r.method for r in slack.requests if r.method != "auth.test"]
    assert order[:4] == ["conversations.open", "files.getUploadURLExternal", "upload", "files.completeUploadExternal"]


def test_show_chart_without_monthly_figures_says_so_and_uploads_nothing(slack: SlackStub, fresh_store):
    with running_bot(slack, fresh_store) as bot:
        bot.click("pcp_chart", "dvpn")
        (reply,) = bot.replies()
    assert "No monthly figures yet to chart for" in reply["text"] and reply["response_type"] == "ephemeral"
    assert not slack.calls("files.getUploadURLExternal") and not slack.uploads


def test_a_failed_upload_is_apologised_for_not_swallowed(slack: SlackStub, fresh_store):
    seed(fresh_store)
    slack.fail("files.completeUploadExternal", error="not_in_channel")
    with running_bot(slack, fresh_store) as bot:
        bot.click("pcp_chart", "knife-crime")
        (reply,) = bot.replies()
    assert "could not send the chart of Knife crime" in reply["text"]
