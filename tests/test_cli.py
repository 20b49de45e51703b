"""The installed `pcp` command, run as a person would run it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.slack_stub import SlackStub

PCP = [sys.executable, "-m", "bot.cli"]


def run(*args: str, db: Path, stdin: str | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SLACK_", "PCP_"))}
    environment |= {"DATABASE_URL": f"sqlite:///{db}", **(env or {})}
    return subprocess.run(
        [*PCP, *args], input=stdin, capture_output=True, text=True, env=environment, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli") / "pcp.db"


def test_ask_prints_the_card(db):
    result = run("ask", "knife-crime", db=db)
    assert result.returncode == 0, result.stderr
    assert "Knife crime" in result.stdout
    assert "2,599" in result.stdout and "2,366" in result.stdout and "-233 (-9.0%)" in result.stdout


def test_first_start_creates_and_seeds_the_store(tmp_path):
    db = tmp_path / "fresh" / "pcp.db"
    assert run("ask", "ksi", db=db).returncode == 0
    assert db.exists()


def test_ask_json_prints_the_slack_payload(db):
    result = run("ask", "--json", "priority", "3", db=db)
    payload = json.loads(result.stdout)
    assert set(payload) == {"text", "blocks"}
    assert payload["blocks"][0]["text"]["text"] == "Priority 3: Safer Places and Thriving Communities"


def test_ask_with_a_typo_suggests(db):
    result = run("ask", "domestic abuse", db=db)
    assert "Nothing in the plan matches" in result.stdout
    assert "/pcp repeat-da-victims" in result.stdout


def test_check_data_lists_the_documents_disagreements(db):
    result = run("check-data", db=db)
    assert result.returncode == 0
    assert result.stdout.startswith("5 places where the document disagrees with its own figures.")
    assert "stated:   £16,996,014" in result.stdout and "computed: £16,966,014" in result.stdout
    assert "stated:   407" in result.stdout and "computed: -107" in result.stdout


def test_console_answers_typed_commands(db):
    result = run("console", db=db, stdin="/pcp ksi\nfunding vrp\nquit\n")
    assert result.returncode == 0
    assert "Killed or seriously injured on the roads" in result.stdout
    assert "Home Office - VRP" in result.stdout and "£4,388,080" in result.stdout


def test_serve_without_credentials_says_what_to_do(db):
    result = run("serve", db=db)
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN" in result.stderr and "pcp console" in result.stderr


def test_serve_stops_at_start_when_slack_rejects_the_token(db):
    with SlackStub() as slack:
        env = {"SLACK_BOT_TOKEN": "xoxb-revoked", "SLACK_SIGNING_SECRET": "s", "SLACK_API_URL": slack.api_url}
        result = run("serve", db=db, env={**env, "PORT": "0"})
    assert result.returncode == 3
    assert "Slack rejected SLACK_BOT_TOKEN" in result.stderr and "token_revoked" in result.stderr
    assert "Traceback" not in result.stderr
    assert "xoxb-revoked" not in result.stderr
