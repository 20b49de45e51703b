"""Logs: JSON lines (LOG_FORMAT=json) or text, and never a token or secret in any field of either.

The logging set-up runs in its own process, as `pcp serve` configures it, and what reaches stderr is read.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta

import pytest

from tests.conftest import BOT_TOKEN, REPO, SIGNING_SECRET
from tests.slack_stub import SlackStub
from tests.test_serve import start_serve

OTHER_TOKENS = ("xoxp-1111-2222-usertoken", "xapp-1-A0PCP-apptoken")

# Logs a token, an unshaped secret (the signing secret) and another's token every way it can reach a log.
SCRIPT = textwrap.dedent(
    """
    import logging, sys, threading, warnings
    from bot.runtime import configure_logging

    log_format, token, secret, user_token, app_token = sys.argv[1:]
    configure_logging("DEBUG", log_format=log_format, secrets=[token, secret])
    log = logging.getLogger("handlers.commands")
    log.info("answered /pcp", extra={"user": "U0ANALYST", "shared": False})
    log.info("the bot token %s and the secret %s in the message", token, secret)
    auth = {"header": "Bearer " + token, "tokens": [user_token, app_token]}
    log.info("in extras", extra={"auth": auth, "key": secret})
    try:
        raise RuntimeError(f"Slack refused {user_token} (secret {secret})")
    except RuntimeError:
        log.exception("a request failed")
    warnings.warn(f"a library warns about {token}")
    thread = threading.Thread(target=lambda: exec("raise ValueError(app_token)"), name="worker")
    thread.start()
    thread.join()
    raise KeyError(f"uncaught, with {token} and {secret}")
    """
)


def run_logging(log_format: str) -> subprocess.CompletedProcess[str]:
    args = [log_format, BOT_TOKEN, SIGNING_SECRET, *OTHER_TOKENS]
    return subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )


def assert_no_secrets(text: str) -> None:
    for secret in (BOT_TOKEN, SIGNING_SECRET, *OTHER_TOKENS):
        assert secret not in text
    assert "xox" not in text and "xapp-" not in text


def parse(lines: str) -> list[dict]:
    records = []
    for line in lines.splitlines():
        record = json.loads(line)  # every line is one JSON object
        assert {"ts", "level", "logger", "message"} <= set(record), line
        stamp = datetime.fromisoformat(record["ts"])
        assert stamp.utcoffset() == timedelta(0) and abs(datetime.now(UTC) - stamp) < timedelta(minutes=5)
        records.append(record)
    return records


def test_json_logs_are_one_object_a_line_with_extras_and_nothing_secret():
    done = run_logging("json")
    assert done.returncode == 1, "the uncaught exception still ends the process"
    assert_no_secrets(done.stderr)
    records = parse(done.stderr)
    by_message = {record["message"]: record for record in records}

    answered = by_message["answered /pcp"]
    assert (answered["logger"], answered["level"]) == ("handlers.commands", "INFO")
    assert (answered["user"], answered["shared"]) == ("U0ANALYST", False)
    assert by_message["the bot token [redacted] and the secret [redacted] in the message"]
    extras = by_message["in extras"]
    assert extras["auth"] == {"header": "Bearer [redacted]", "tokens": ["[redacted]", "[redacted]"]}
    assert extras["key"] == "[redacted]"

    failed = by_message["a request failed"]
    assert failed["level"] == "ERROR"
    assert failed["exc_info"].startswith("Traceback (most recent call last):")
    assert "RuntimeError: Slack refused [redacted] (secret [redacted])" in failed["exc_info"]

    warned = next(r for r in records if r["logger"] == "py.warnings")
    assert "a library warns about [redacted]" in warned["message"]
    thread = by_message["uncaught exception in thread worker"]
    assert "ValueError: [redacted]" in thread["exc_info"]
    uncaught = by_message["uncaught exception"]
    assert uncaught["level"] == "CRITICAL"
    assert "KeyError: 'uncaught, with [redacted] and [redacted]'" in uncaught["exc_info"]


def test_text_logs_redact_messages_and_tracebacks():
    done = run_logging("text")
    assert_no_secrets(done.stderr)
    assert " INFO handlers.commands: answered /pcp" in done.stderr
    assert "RuntimeError: Slack refused [redacted] (secret [redacted])" in done.stderr
    assert "Traceback (most recent call last):" in done.stderr


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_pcp_serve_logs_in_the_chosen_format_without_tokens(tmp_path, log_format):
    typed = "xoxb-typed-by-someone-1234"
    with SlackStub() as slack, start_serve(tmp_path, slack, LOG_FORMAT=log_format) as (bot, process):
        assert bot.command("ksi").status == 200
        assert bot.command(f"share {typed}").status == 200
        bot.replies(2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    log = (tmp_path / "serve.log").read_text()
    assert BOT_TOKEN not in log and SIGNING_SECRET not in log and typed not in log
    if log_format == "text":
        assert "INFO pcp: pcp listening on" in log
        return
    records = parse(log)
    assert {"pcp listening on", "pcp stopped"} <= {r["message"].split(" http")[0] for r in records}
    answered = [r for r in records if r["message"] == "answered /pcp"]
    assert sorted((r["user"], r["shared"]) for r in answered) == [("U0ANALYST", False), ("U0ANALYST", True)]
    assert any(r["level"] == "DEBUG" for r in records), "LOG_LEVEL=DEBUG: the libraries' own logs are there too"
