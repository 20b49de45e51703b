"""`pcp serve` as a real process: HTTP, signed requests, health, logs and a clean stop."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.scheduler import JOBS_TABLE
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, Bot, get
from tests.slack_stub import SlackStub


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Bot, subprocess.Popen]]:
    with SlackStub() as slack:
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PCP_"))}
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
        process = subprocess.Popen([sys.executable, "-m", "bot.cli", "serve"], env=env, stdout=log, stderr=log)
        bot = Bot(f"http://127.0.0.1:{port}", slack)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if get(f"{bot.base_url}/healthz").status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        else:
            process.kill()
            pytest.fail("pcp serve did not become healthy:\n" + (tmp_path / "serve.log").read_text())
        try:
            yield bot, process
        finally:
            if process.poll() is None:
                process.kill()
            log.close()


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
