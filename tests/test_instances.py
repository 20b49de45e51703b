"""Several instances: two real `pcp serve` processes, both running the scheduler, on one PostgreSQL database.

Behind a load balancer any instance must answer any request, and with every instance running the alert,
digest and delivery jobs nothing may be sent twice: both schedulers decide the same digest at the same minute
boundary and both delivery jobs race for the same outbox rows; the unique keys, the FOR UPDATE SKIP LOCKED
claims and the attempt fence must make every message reach Slack exactly once.

Each run gets a fresh, throwaway PostgreSQL database (dropped afterwards). The instances start one after
the other, the first healthy before the second starts: two started at the same moment on an empty database
can still collide while creating the schema (a known limitation being fixed separately).

Every figure imported here is SYNTHETIC test data, never a real performance figure.
"""

from __future__ import annotations

import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from tests.conftest import postgres_database
from tests.processes import Served, answers, outbox, outbox_key, pcp, posted_keys, serve, wait_until
from tests.slack_stub import SlackStub

DIGEST_CHANNELS = ["C0DIGESTA", "C0DIGESTB"]
LEADS = [("knife-crime", "U0KNIFE"), ("knife-crime", "U0DEPUTY"), ("priority 3", "U0HEAD")]
# SYNTHETIC: four monthly knife-crime figures, each higher than the last (worse three months running).
RISING = "metric,series,period,value,source,provisional\n" + "".join(
    f"knife-crime,,2024-0{m},{180 + 10 * m},SYNTHETIC,\n" for m in range(1, 5)
)
SETTLE_SECONDS = 100  # from the minute boundary: every outbox row delivered (bounded poll)
QUIET_SECONDS = 3  # ... and then no further post or upload for this long


@dataclass
class Cluster:
    url: str
    slack: SlackStub
    instances: list[Served]
    started: datetime


def _week(moment: datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """Leads and SYNTHETIC rising figures imported (their alert DMs queued, not sent), then two instances."""
    tmp = tmp_path_factory.mktemp("instances")
    with postgres_database() as url, SlackStub() as slack:
        for subject, user in LEADS:  # the first `pcp` run creates the schema, alone
            pcp(url, slack, "owner", "add", subject, user)
        (tmp / "rising.csv").write_text(RISING)
        assert "message(s) queued" in pcp(url, slack, "import", str(tmp / "rising.csv"))
        # Both schedulers must be up before the next minute boundary, when the digest falls due.
        if (seconds := 60 - datetime.now(UTC).second) < 20:
            time.sleep(seconds + 1)
        env = {
            "PCP_SCHEDULER": "true",
            "PCP_DIGEST_CHANNELS": ",".join(DIGEST_CHANNELS),
            "PCP_DIGEST_CRON": "* * * * *",
            "PCP_TIMEZONE": "UTC",
        }
        instances: list[Served] = []
        try:
            for n in (1, 2):  # one after the other: see the module docstring
                instances.append(serve(url, slack, tmp / f"serve-{n}.log", **env))
            yield Cluster(url, slack, instances, datetime.now(UTC))
        finally:
            for served in instances:
                served.stop()


@pytest.mark.timeout(120)  # includes starting the module's instances
def test_any_instance_answers_any_request(cluster: Cluster) -> None:
    """Signed /pcp commands sent alternately to both instances are each acknowledged and answered."""
    sent = []
    for n in range(6):
        served = cluster.instances[n % 2]
        name = f"knife-{n}"
        reply = served.command("knife-crime", answer_to=name)
        assert reply.status == 200, f"instance {n % 2 + 1} did not acknowledge: {reply.status} {reply.body}"
        sent.append(name)
    wait_until(lambda: all(answers(cluster.slack, name) for name in sent), timeout=20, what="every answer")
    for name in sent:
        (answer,) = answers(cluster.slack, name)  # one answer per command, at its own response_url
        assert answer["blocks"][0]["text"]["text"] == "Knife crime", answer


def _delivered(url: str, slack: SlackStub) -> bool:
    """Every outbox row sent, each seen by the stand-in (a post by metadata key, a chart by file name)."""
    posts, files = posted_keys(slack), _uploaded(slack)
    twice = {name: n for name, n in (posts + files).items() if n > 1}
    assert not twice, f"sent more than once: {twice}"  # no need to wait for the rest to know that
    rows = outbox(url)
    digests = [k for k in rows if k.startswith("digest:") and ":chart:" not in k]
    if len(digests) < len(DIGEST_CHANNELS) or any(r["status"] != "sent" for r in rows.values()):
        return False
    return all((files if r["chart"] else posts)[_name(r)] for r in rows.values())


def _name(row: dict) -> str:
    """What identifies a row's message at Slack: its key (metadata), or for a chart its file name."""
    return f"{row['chart']}-chart-{row['id']}.png" if row["chart"] else row["key"]


def _uploaded(slack: SlackStub) -> Counter[str]:
    return Counter(f["name"] for m in list(slack.messages) for f in m.get("files") or [])


def _activity(slack: SlackStub) -> int:
    return len(slack.calls("chat.postMessage")) + len(slack.calls("files.completeUploadExternal"))


@pytest.mark.timeout(150)
def test_every_message_is_sent_exactly_once_with_every_instance_running_the_scheduler(cluster: Cluster) -> None:
    url, slack = cluster.url, cluster.slack
    queued = outbox(url)
    alerts = [k for k in queued if k.startswith("alert:")]
    assert sorted(k.rsplit(":", 1)[1] for k in alerts) == sorted(user for _, user in LEADS), "one DM per lead"

    wait_until(lambda: _delivered(url, slack), timeout=SETTLE_SECONDS, what="every outbox row delivered", every=0.5)
    # Settled: nothing more reaches Slack for a while (a duplicate would come from a racing deliverer now).
    last, quiet_since = _activity(slack), time.monotonic()
    while time.monotonic() - quiet_since < QUIET_SECONDS:
        time.sleep(0.2)
        if (now := _activity(slack)) != last:
            last, quiet_since = now, time.monotonic()

    rows = outbox(url)
    messages = list(slack.messages)
    assert {r["status"] for r in rows.values()} == {"sent"}, {k: r["status"] for k, r in rows.items()}
    posts, files = posted_keys(slack), _uploaded(slack)
    assert all(count == 1 for count in posts.values()), f"posted more than once: {posts}"
    assert all(count == 1 for count in files.values()), f"uploaded more than once: {files}"
    assert set(posts) == {r["key"] for r in rows.values() if not r["chart"]}, "every post is an outbox row's, once"
    assert set(files) == {_name(r) for r in rows.values() if r["chart"]}
    for row in rows.values():  # the ts recorded is the one message Slack holds for the row
        if not row["chart"]:
            (message,) = [m for m in messages if outbox_key(m) == row["key"]]
            assert (row["channel"], row["ts"]) == (message["channel"], message["ts"])

    weeks = {_week(cluster.started), _week(datetime.now(UTC))}  # the week the digest was decided in
    for channel in DIGEST_CHANNELS:
        top_level = [m for m in messages if m["channel"] == channel and m["thread_ts"] is None]
        (digest,) = top_level  # exactly one digest in the channel, whatever both schedulers decided
        assert outbox_key(digest) in {f"digest:{channel}:{week}" for week in weeks}
        in_thread = [m for m in messages if m["channel"] == channel and m["thread_ts"] is not None]
        assert all(m["thread_ts"] == digest["ts"] for m in in_thread), "charts go in the digest's thread"
    for key in alerts:  # each lead's DM, once, in that lead's DM conversation
        user = key.rsplit(":", 1)[1]
        (dm,) = [m for m in messages if outbox_key(m) == key]
        assert dm["channel"] == "D" + user[1:] and "Knife crime" in dm["text"]

    # Both schedulers really delivered (otherwise there was no race at all), and no job crashed.
    logs = [served.log() for served in cluster.instances]
    for log in logs:
        assert "delivery: DeliveryReport(" in log and "Traceback" not in log, log[-3000:]
    assert any("digest: queued for" in log for log in logs)
    # Which scheduler picks a due job up is APScheduler's timing over the shared job store: so far both have
    # always decided the digest at the boundary (a few ms apart), but that is not ours to promise, so say so.
    if not all("digest: queued for" in log for log in logs):
        warnings.warn("only one instance decided the digest this run: that race was not exercised", stacklevel=1)
