"""Shared fixtures: a seeded store in a real SQLite file, the Slack stand-in, a real HTTP server.

Slack itself is replaced only by tests/slack_stub.py, a local HTTP server speaking the Web
API and response_url protocol; our own code is never patched.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url, text

from bot.config import Settings
from bot.db import Store, normalise_url
from bot.server import make_server, run_until_closed, wsgi_app
from bot.slack_app import create_app
from tests.slack_stub import SlackStub

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token-1234567890"
SOURCE = Path(__file__).resolve().parents[1] / "data" / "source" / "police-and-crime-plan-overview-2023-12.txt"
REPO = Path(__file__).resolve().parents[1]


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for this run, dropped afterwards."""
    server = os.environ.get("PCP_TEST_DATABASE_URL")
    if not server:
        pytest.skip("PostgreSQL not configured: set PCP_TEST_DATABASE_URL (.ci/run starts a server and sets it)")
    admin = create_engine(normalise_url(server), isolation_level="AUTOCOMMIT")
    name = f"pcp_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield str(make_url(normalise_url(server)).set(database=name).render_as_string(hide_password=False))
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """One seeded store per database kind for read-only tests (answers never write)."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'pcp.db'}"
        else:
            url = stack.enter_context(postgres_database())
        store = Store.open(url)
        stack.callback(store.close)
        yield store


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a new, empty database of each kind, for tests that write."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'pcp.db'}"
    else:
        with postgres_database() as url:
            yield url


@pytest.fixture
def fresh_store(fresh_url: str) -> Iterator[Store]:
    """A seeded store of each kind that a test may change."""
    store = Store.open(fresh_url)
    yield store
    store.close()


@pytest.fixture
def session(store: Store):
    with store.session() as session:
        yield session


@pytest.fixture
def slack() -> Iterator[SlackStub]:
    with SlackStub() as stub:
        yield stub


def sign(body: str, *, secret: str = SIGNING_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Slack's v0 signature headers for a raw body."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


@dataclass
class Reply:
    status: int
    body: str
    headers: dict[str, str]


def post(url: str, body: str, headers: dict[str, str], content_type: str) -> Reply:
    request = urllib.request.Request(url, data=body.encode(), method="POST")
    request.add_header("Content-Type", content_type)
    for name, value in headers.items():
        request.add_header(name, value)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Reply(response.status, response.read().decode(), dict(response.headers))
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read().decode(), dict(error.headers))


def get(url: str) -> Reply:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return Reply(response.status, response.read().decode(), dict(response.headers))
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read().decode(), dict(error.headers))


def slash_command_body(text: str, *, user: str, response_url: str) -> str:
    """`/pcp text` as Slack posts it (form-encoded), answered at `response_url`."""
    return urllib.parse.urlencode(
        {
            "token": "deprecated",
            "team_id": "T0TEST",
            "team_domain": "pcp-test",
            "channel_id": "C0PERF",
            "channel_name": "performance",
            "user_id": user,
            "user_name": "analyst",
            "command": "/pcp",
            "text": text,
            "response_url": response_url,
            "trigger_id": "123.456.abc",
            "api_app_id": "A0PCP",
            "is_enterprise_install": "false",
        }
    )


class Bot:
    """Our real WSGI app on a real waitress server, talking to the Slack stand-in."""

    def __init__(self, base_url: str, slack: SlackStub) -> None:
        self.base_url = base_url
        self.events_url = f"{base_url}/slack/events"
        self.slack = slack

    def command(self, text: str, *, user: str = "U0ANALYST", signed: bool = True, **headers: str) -> Reply:
        body = slash_command_body(text, user=user, response_url=self.slack.response_url("cmd"))
        signature = sign(body) if signed else {}
        return post(self.events_url, body, {**signature, **headers}, "application/x-www-form-urlencoded")

    def click(self, action_id: str, value: str, *, user: str = "U0ANALYST", message: dict | None = None) -> Reply:
        """A button click, signed, as Slack sends it; `message` (channel, ts) is the message the button
        is on, otherwise an ephemeral reply in #performance. The trigger_id is fresh from the stand-in."""
        channel, ts = (message["channel"], message["ts"]) if message else ("C0PERF", "1700000000.000100")
        payload = {
            "type": "block_actions",
            "team": {"id": "T0TEST", "domain": "pcp-test"},
            "user": {"id": user, "username": "analyst", "team_id": "T0TEST"},
            "api_app_id": "A0PCP",
            "container": {"type": "message", "message_ts": ts, "channel_id": channel, "is_ephemeral": not message},
            "channel": {"id": channel, "name": "performance" if not message else "directmessage"},
            "trigger_id": self.slack.issue_trigger(),
            "response_url": self.slack.response_url("action"),
            "actions": [
                {
                    "type": "button",
                    "action_id": action_id,
                    "block_id": "b1",
                    "value": value,
                    "text": {"type": "plain_text", "text": "x"},
                    "action_ts": "1700000001.000200",
                }
            ],
        }
        body = "payload=" + urllib.parse.quote(json.dumps(payload))
        return post(self.events_url, body, sign(body), "application/x-www-form-urlencoded")

    def submit(self, view: dict, values: dict[str, dict[str, str]], *, user: str = "U0ANALYST") -> Reply:
        """A modal's Submit, signed, as Slack sends it: `view` as views.open returned it, `values` as
        {block_id: {action_id: text}}. The HTTP reply carries any `response_action` (errors)."""
        state = {
            block: {action: {"type": "plain_text_input", "value": text} for action, text in actions.items()}
            for block, actions in values.items()
        }
        payload = {
            "type": "view_submission",
            "team": {"id": "T0TEST", "domain": "pcp-test"},
            "user": {"id": user, "username": "analyst", "team_id": "T0TEST"},
            "api_app_id": "A0PCP",
            "trigger_id": self.slack.issue_trigger(),
            "view": {**view, "state": {"values": state}, "hash": "1700000002.abcd", "app_id": "A0PCP"},
            "response_urls": [],
        }
        body = "payload=" + urllib.parse.quote(json.dumps(payload))
        return post(self.events_url, body, sign(body), "application/x-www-form-urlencoded")

    def event(self, event: dict, *, headers: dict[str, str] | None = None) -> Reply:
        """An Events API callback, signed, as Slack sends it (JSON)."""
        body = json.dumps(
            {
                "token": "deprecated",
                "team_id": "T0TEST",
                "api_app_id": "A0PCP",
                "event": event,
                "type": "event_callback",
                "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
                "event_time": int(time.time()),
            }
        )
        return post(self.events_url, body, {**sign(body), **(headers or {})}, "application/json")

    def replies(self, count: int = 1) -> list[dict]:
        """The JSON bodies posted to response_url, once `count` have arrived."""
        return [r.body for r in self.slack.wait_for("webhook", count=count)]


@contextmanager
def running_bot(slack: SlackStub, store: Store, *, admins: tuple[str, ...] = ()) -> Iterator[Bot]:
    """Our app on a real waitress server on a free port, talking to the Slack stand-in."""
    settings = Settings(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SIGNING_SECRET,
        slack_api_url=slack.api_url,
        database_url="sqlite://",  # unused: the app is given the store
        pcp_admins=list(admins),
    )
    app = create_app(settings, store=store)
    server = make_server(wsgi_app(app, store=store), host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=run_until_closed, args=(server,), daemon=True)
    thread.start()
    try:
        yield Bot(f"http://127.0.0.1:{server.effective_port}", slack)
    finally:
        server.close()
        thread.join(timeout=5)


@pytest.fixture
def bot(slack: SlackStub, store: Store) -> Iterator[Bot]:
    with running_bot(slack, store) as running:
        yield running
