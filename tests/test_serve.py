"""`pcp serve` as a real process: HTTP, signed requests, health, logs and a clean stop."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from bot.scheduler import JOBS_TABLE
from bot.server import make_server, run_until_closed
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, Bot, Reply, get
from tests.slack_stub import SlackStub

Served = tuple[Bot, subprocess.Popen]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def start_serve(tmp_path: Path, slack: SlackStub, *, healthy: bool = True, **settings: str) -> Iterator[Served]:
    """`pcp serve` in its own process with this environment (plus `settings`), on a SQLite file in
    tmp_path; once /healthz answers (with 200 when `healthy`, with anything otherwise). Killed at the end."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PCP_", "LOG_"))}
    env |= {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'pcp.db'}",
        "HOST": "127.0.0.1",
        "PORT": str(port),
        "LOG_LEVEL": "DEBUG",  # the most a library will ever log: tokens must still not appear
    }
    log = (tmp_path / "serve.log").open("w+")
    env |= settings
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve"], env=env, stdout=log, stderr=log)
    bot = Bot(f"http://127.0.0.1:{port}", slack)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if get(f"{bot.base_url}/healthz").status == 200 or not healthy:
                break
        except OSError:
            pass
        time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("pcp serve did not become healthy:\n" + (tmp_path / "serve.log").read_text())
    try:
        yield bot, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        log.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with SlackStub() as slack, start_serve(tmp_path, slack) as running:
        yield running


def test_serve_answers_signed_commands_and_refuses_unsigned(served, tmp_path):
    bot, process = served
    assert bot.command("ksi").status == 200
    (answer,) = bot.replies(1)
    assert answer["blocks"][0]["text"]["text"] == "Killed or seriously injured on the roads"
    assert bot.command("ksi", signed=False).status == 401
    assert len(bot.slack.calls("auth.test")) >= 1, "the bot token was verified with Slack at start"
    with sqlite3.connect(tmp_path / "pcp.db") as db:
        stored = {row[0] for row in db.execute(f"SELECT id FROM {JOBS_TABLE}")}
    assert stored == {"alerts", "digest", "delivery"}, "pcp serve runs the scheduler with its jobs stored"

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=10) == 0, "SIGTERM stops the server cleanly"
    log = (tmp_path / "serve.log").read_text()
    assert "pcp listening on http://127.0.0.1" in log
    assert BOT_TOKEN not in log and SIGNING_SECRET not in log
    assert "will be unused" not in log


def refuses_connections(url: str) -> bool:
    try:
        get(url)
    except OSError:
        return True
    return False


def wait_for(check, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.05)


def test_sigterm_mid_answer_stops_accepting_and_still_delivers_the_answer(served, tmp_path):
    bot, process = served
    bot.slack.fail("webhook", delay=2)  # Slack is slow to take the answer
    assert bot.command("ksi").status == 200, "acknowledged at once; the answer follows through response_url"
    (posting,) = bot.slack.wait_for("webhook", 1)  # the answer is on its way, not yet answered
    process.send_signal(signal.SIGTERM)
    wait_for(lambda: refuses_connections(f"{bot.base_url}/healthz"), timeout=2, what="new connections refused")
    assert process.poll() is None, "still finishing the answer in progress"

    assert process.wait(timeout=15) == 0
    assert time.monotonic() - posting.time >= 2, "pcp exited only once Slack had taken the answer"
    assert posting.body["blocks"][0]["text"]["text"] == "Killed or seriously injured on the roads"
    log = (tmp_path / "serve.log").read_text()
    assert "pcp stopping (signal 15)" in log and "pcp stopped" in log
    assert "Traceback" not in log and "unfinished" not in log


def test_work_that_outlasts_the_shutdown_time_is_abandoned_in_bounded_time(tmp_path):
    with SlackStub() as slack, start_serve(tmp_path, slack, PCP_SHUTDOWN_SECONDS="1") as (bot, process):
        slack.fail("webhook", delay=30)  # Slack never answers in time
        assert bot.command("ksi").status == 200
        slack.wait_for("webhook", 1)
        stopped_at = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 1, "exit 1: work was abandoned"
        assert time.monotonic() - stopped_at < 5
    log = (tmp_path / "serve.log").read_text()
    assert "still running at the shutdown deadline: answers in progress" in log


def test_a_graceful_stop_lets_a_request_in_progress_send_its_response():
    started = threading.Event()

    def slow(environ: dict, start_response) -> list[bytes]:
        started.set()
        time.sleep(1)
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
        return [b"done"]

    server = make_server(slow, host="127.0.0.1", port=0, threads=2)
    url = f"http://127.0.0.1:{server.effective_port}/"
    stopping, outcome, replies = threading.Event(), list[bool](), list[Reply]()
    runner = threading.Thread(target=lambda: outcome.append(run_until_closed(server, stopping=stopping, grace=5)))
    client = threading.Thread(target=lambda: replies.append(get(url)))
    runner.start()
    client.start()
    assert started.wait(5)
    stopping.set()
    wait_for(lambda: refuses_connections(url), timeout=2, what="new connections refused")
    client.join(10)
    runner.join(10)
    assert [(r.status, r.body) for r in replies] == [(200, "done")]
    assert outcome == [True], "nothing was left unfinished"


def test_a_graceful_stop_gives_up_on_a_request_after_the_grace_time():
    started = threading.Event()

    def stuck(environ: dict, start_response) -> list[bytes]:
        started.set()
        time.sleep(3)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"late"]

    server = make_server(stuck, host="127.0.0.1", port=0, threads=2)
    url = f"http://127.0.0.1:{server.effective_port}/"
    stopping, outcome = threading.Event(), list[bool]()
    runner = threading.Thread(target=lambda: outcome.append(run_until_closed(server, stopping=stopping, grace=0.5)))
    runner.start()
    threading.Thread(target=refuses_connections, args=(url,), daemon=True).start()  # a request, left hanging
    assert started.wait(5)
    began = time.monotonic()
    stopping.set()
    runner.join(10)
    assert outcome == [False] and time.monotonic() - began < 2.5
