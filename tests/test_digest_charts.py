"""Charts in the weekly digest: where a metric worsened month on month, its SPC chart is uploaded
in the digest's thread, once per channel, through Slack outages and answers lost in transit.

Figures here are SYNTHETIC test data.
"""

from __future__ import annotations

import json
import time

import pytest
from slack_sdk import WebClient

from handlers.jobs import decide_alerts, decide_digest, deliver
from tests.conftest import BOT_TOKEN
from tests.test_imports import run_import
from tests.test_jobs import AS_OF, NOW, RISING, later

CHANNELS = ["C0PERF", "C0BOARD"]


@pytest.fixture
def worsened(fresh_store):
    """Knife crime worse three months running: an alert opens, so the digest charts it."""
    run_import(fresh_store, "rising.csv", RISING)
    assert decide_alerts(store=fresh_store, as_of=AS_OF, now=NOW).opened == 1
    return fresh_store


def digests(slack) -> list[dict]:
    return [m for m in slack.messages if m["channel"] in CHANNELS and not m["thread_ts"]]


def charts(slack) -> list[dict]:
    return [m for m in slack.messages if m.get("files")]


def test_a_worsened_metric_gets_its_chart_in_each_digests_thread(worsened, slack):
    client = WebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[])
    assert decide_digest(store=worsened, channels=CHANNELS, now=later()) == 2
    report = deliver(store=worsened, client=client, admins=[], now=later())
    assert report.sent == 4, "two digests, then a chart under each"

    for digest in digests(slack):
        assert "SPC charts in this digest's thread: Knife crime." in json.dumps(digest["blocks"], ensure_ascii=False)
        (chart,) = [m for m in charts(slack) if m["thread_ts"] == digest["ts"] and m["channel"] == digest["channel"]]
        assert chart["text"].startswith("Knife crime: monthly figures with the SPC mean and process limits.")
        (file,) = chart["files"]
        assert file["name"].startswith("knife-crime-chart-") and file["title"].startswith(
            "Knife crime: monthly figures"
        )
        png = slack.uploads[file["id"]]
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and 20_000 < len(png) < 1_000_000
    asked = [c.body for c in slack.calls("files.getUploadURLExternal")]
    assert len(asked) == 2 and all("Knife crime" in body["alt_txt"] for body in asked), asked

    deliver(store=worsened, client=client, admins=[], now=later(hours=1))
    assert len(charts(slack)) == 2, "never twice"


def test_no_chart_when_nothing_changed_month_on_month(fresh_store, slack):
    client = WebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[])
    decide_digest(store=fresh_store, channels=CHANNELS, now=later())
    deliver(store=fresh_store, client=client, admins=[], now=later())
    assert len(digests(slack)) == 2 and charts(slack) == []
    assert "SPC charts" not in json.dumps([d["blocks"] for d in digests(slack)])


def test_rate_limits_delay_a_chart_but_never_drop_or_double_it(worsened, slack):
    client = WebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[])
    decide_digest(store=worsened, channels=CHANNELS[:1], now=later())
    slack.fail("files.getUploadURLExternal", status=429, retry_after=1)
    slack.fail("files.completeUploadExternal", status=503)
    for minutes in (0, 1, 10, 30):  # each run after the last one's Retry-After or backoff
        deliver(store=worsened, client=client, admins=[], now=later(minutes=minutes))
    (chart,) = charts(slack)
    assert chart["thread_ts"] == digests(slack)[0]["ts"]


def test_a_chart_whose_answer_was_lost_is_found_in_the_thread_not_uploaded_again(worsened, slack):
    """Slack shares the file but the answer never arrives (the client times out): the next delivery
    finds the file by its name in the digest's thread and records it as sent."""
    decide_digest(store=worsened, channels=CHANNELS[:1], now=later())
    impatient = WebClient(token=BOT_TOKEN, base_url=slack.api_url, retry_handlers=[], timeout=1)
    slack.fail("files.completeUploadExternal", delay=1.5)  # Slack shares the file after the client gave up
    first = deliver(store=worsened, client=impatient, admins=[], now=later())
    assert (first.sent, first.retried) == (1, 1), "the digest posted; its chart in doubt"
    deadline = time.monotonic() + 5
    while not charts(slack) and time.monotonic() < deadline:  # the stand-in finishes sharing after its delay
        time.sleep(0.05)
    assert len(charts(slack)) == 1
    again = deliver(store=worsened, client=impatient, admins=[], now=later(minutes=5))
    assert again.in_doubt_resolved == 1
    assert len(charts(slack)) == 1 and len(slack.calls("files.completeUploadExternal")) == 1, "not uploaded again"
