"""Real `pcp serve` processes and the `pcp` command, for tests that run several of them or kill them.

Why: "several instances", "SIGKILL mid-delivery" and "the database went away" are properties of whole
processes sharing a database, so these tests start `python -m bot.cli serve` exactly as production does
(waitress, Bolt and the APScheduler jobs, configured by environment), talking to the Slack stand-in
(tests/slack_stub.py) over real HTTP. Nothing of ours is patched; the tests only look at what reached
Slack and at the database.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import create_engine, text

from bot.db import Store, normalise_url
from bot.outbox import METADATA_TYPE, enqueue
from bot.render import Message
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, Reply, get, post, sign, slash_command_body
from tests.slack_stub import SlackStub

REPO = Path(__file__).resolve().parents[1]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(check: Callable[[], T], *, timeout: float, what: str, every: float = 0.2) -> T:
    """Poll `check` until it returns something truthy (returned) or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:g} s: {what}")
        time.sleep(every)


def environment(database_url: str, slack: SlackStub, **extra: str) -> dict[str, str]:
    """This process's environment without any SLACK_/PCP_/DATABASE_ setting, plus the test's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PCP_", "DATABASE_"))}
    env |= {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "DATABASE_URL": database_url,
        "HOST": "127.0.0.1",
        "LOG_LEVEL": "INFO",
    }
    return env | extra


def pcp(database_url: str, slack: SlackStub, *args: str, **env: str) -> str:
    """Run the `pcp` command to completion; its stdout (fails the test if it exits non-zero)."""
    command = [sys.executable, "-m", "bot.cli", *args]
    done = subprocess.run(
        command, cwd=REPO, env=environment(database_url, slack, **env), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, f"pcp {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@dataclass
class Served:
    """One running `pcp serve`: its process, port and log."""

    process: subprocess.Popen
    port: int
    log_path: Path
    slack: SlackStub

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def health(self) -> int | None:
        """HTTP status of GET /healthz; None when nothing answers."""
        try:
            return get(f"{self.base_url}/healthz").status
        except OSError:
            return None

    def command(self, text: str, *, answer_to: str, user: str = "U0ANALYST") -> Reply:
        """A signed `/pcp text` whose answer goes to the stand-in's response_url named `answer_to`."""
        body = slash_command_body(text, user=user, response_url=self.slack.response_url(answer_to))
        return post(f"{self.base_url}/slack/events", body, sign(body), "application/x-www-form-urlencoded")

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, as when a host dies."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        assert self.process.returncode == -signal.SIGKILL

    def stop(self) -> None:
        """SIGTERM (a clean stop), then SIGKILL if it lingers."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def serve(database_url: str, slack: SlackStub, log_path: Path, *, timeout: float = 60, **env: str) -> Served:
    """Start `pcp serve` on a free port and wait until GET /healthz answers 200."""
    port = free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve"],
            cwd=REPO,
            env=environment(database_url, slack, PORT=str(port), **env),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    served = Served(process, port, log_path, slack)
    deadline = time.monotonic() + timeout
    while served.health() != 200:
        if process.poll() is not None or time.monotonic() > deadline:
            served.stop()
            raise AssertionError(f"pcp serve did not become healthy (exit {process.returncode}):\n{served.log()}")
        time.sleep(0.1)
    return served


def answers(slack: SlackStub, name: str) -> list[dict[str, Any]]:
    """The JSON bodies posted to the response_url named `name`."""
    return [r.body for r in slack.calls("webhook") if r.name == name]


def outbox_key(message: dict[str, Any]) -> str | None:
    metadata = message.get("metadata") or {}
    return (metadata.get("event_payload") or {}).get("key") if metadata.get("event_type") == METADATA_TYPE else None


def posted_keys(slack: SlackStub) -> Counter[str]:
    """How many messages the stand-in holds per outbox key (from the message metadata)."""
    return Counter(key for m in list(slack.messages) if (key := outbox_key(m)))


def outbox(database_url: str) -> dict[str, dict[str, Any]]:
    """Every outbox row by key, read with plain SQL (no pcp code in the way)."""
    engine = create_engine(normalise_url(database_url))
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT * FROM outbox ORDER BY id")).mappings().all()
        return {row["key"]: dict(row) for row in rows}
    finally:
        engine.dispose()


def queue(database_url: str, keys: list[str], *, target: str) -> None:
    """Queue one plain message per key, in one transaction, as a decision does (bot.outbox.enqueue)."""
    store = Store.open(database_url)
    try:
        with store.session() as session:
            for n, key in enumerate(keys, 1):
                enqueue(session, key=key, target=target, message=Message(text=f"SYNTHETIC test message {n}"))
    finally:
        store.close()


def prepare(database_url: str) -> None:
    """Create the tables and seed the plan once, before any `pcp serve` starts (see the module docstrings)."""
    Store.open(database_url).close()
