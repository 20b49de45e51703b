"""`pcp serve` in Socket Mode as a real process: app token -> apps.connections.open -> WebSocket -> ack -> answer.

Why: Socket Mode (SLACK_APP_TOKEN) is the way to run pcp without a public URL, and it goes through code the HTTP
tests never touch (slack_sdk's builtin WebSocket client, envelopes and acks). Both ends of Slack are local stubs
(tests/slack_stub.py for the Web API and response_url, tests/socket_mode_stub.py for the WebSocket); nothing is
patched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import BOT_TOKEN, SIGNING_SECRET
from tests.slack_stub import SlackStub
from tests.socket_mode_stub import SocketModeStub

APP_TOKEN = "xapp-1-test"
PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")  # slack_sdk would tunnel the 127.0.0.1 stubs through these


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL after 5 s: whatever happened, no `pcp serve` outlives the test."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _stub_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("slack-stub", "socket-mode-stub"))]


def test_socket_mode_acks_a_command_and_answers_through_response_url(tmp_path: Path) -> None:
    started = time.monotonic()
    log_path = tmp_path / "serve.log"
    with SlackStub() as slack, SocketModeStub() as sm, log_path.open("w") as log:
        slack.socket_mode_url = sm.url
        inherited = {k: v for k, v in os.environ.items() if k.upper() not in PROXY_VARS}
        env = {k: v for k, v in inherited.items() if not k.startswith(("SLACK_", "PCP_"))}
        env |= {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_API_URL": slack.api_url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'pcp.db'}",
            "LOG_LEVEL": "DEBUG",  # the most a library will ever log: tokens must still not appear
        }
        # cwd=tmp_path: a developer's .env (maybe with real tokens) must not leak into the test
        command = [sys.executable, "-m", "bot.cli", "serve"]
        process = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 12
            while process.poll() is None and time.monotonic() < deadline:  # fail fast if pcp serve crashed
                with contextlib.suppress(AssertionError):
                    sm.wait_connected(timeout=0.1)
                    break
            else:
                pytest.fail(f"pcp serve did not connect (exit {process.poll()}); log:\n{log_path.read_text()}")
            (opened,) = slack.calls("apps.connections.open")
            assert opened.headers["authorization"] == f"Bearer {APP_TOKEN}" and opened.response["ok"]
            assert sm.paths == ["/link/?ticket=pcp-test-ticket&app_id=A0PCP"]
            assert all(c.headers["authorization"] == f"Bearer {BOT_TOKEN}" for c in slack.calls("auth.test"))

            command_payload = {
                "token": "deprecated",
                "team_id": "T0TEST",
                "team_domain": "pcp-test",
                "channel_id": "C0PERF",
                "channel_name": "performance",
                "user_id": "U0ANALYST",
                "user_name": "analyst",
                "command": "/pcp",
                "text": "knife-crime",
                "api_app_id": "A0PCP",
                "is_enterprise_install": "false",
                "response_url": slack.response_url("sm"),
                "trigger_id": "123.456.abc",
            }
            envelope_id = sm.send_envelope("slash_commands", command_payload)
            ack = sm.wait_ack(envelope_id, timeout=3)  # Slack shows the user an error after 3 s
            assert ack == {"envelope_id": envelope_id}, "an empty ack: the answer follows through response_url"

            (reply,) = slack.wait_for("webhook", count=1, timeout=10)
            assert reply.name == "sm"
            assert reply.body["response_type"] == "ephemeral"
            assert reply.body["blocks"][0]["text"]["text"] == "Knife crime"

            process.send_signal(signal.SIGTERM)
            assert process.wait(timeout=10) == 0, "SIGTERM disconnects and exits cleanly"
        finally:
            _stop(process)

    output = log_path.read_text()
    assert "pcp connected to Slack in Socket Mode" in output and " DEBUG " in output, output
    assert "pcp stopping (signal 15)" in output
    assert BOT_TOKEN not in output and APP_TOKEN not in output and SIGNING_SECRET not in output
    assert _stub_threads() == [], "the stubs left threads running"
    assert time.monotonic() - started < 20


def test_a_rejected_app_token_stops_with_a_clear_message(tmp_path: Path) -> None:
    with SlackStub() as slack:
        slack.fail("apps.connections.open", error="invalid_auth")
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PCP_")) and k.upper() not in PROXY_VARS
        }
        env |= {
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_APP_TOKEN": APP_TOKEN,
            "SLACK_API_URL": slack.api_url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'pcp.db'}",
        }
        result = subprocess.run(
            [sys.executable, "-m", "bot.cli", "serve"],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 3
    assert "Slack rejected SLACK_APP_TOKEN (invalid_auth)" in result.stderr
    assert "Traceback" not in result.stderr and APP_TOKEN not in result.stderr
