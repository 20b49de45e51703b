"""When something breaks on our side, the person gets an apology and the log gets the cause."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import SQLModel

from bot.config import Settings
from bot.db import Store
from bot.server import make_server, wsgi_app
from bot.slack_app import create_app
from tests.conftest import BOT_TOKEN, SIGNING_SECRET, Bot, get


@pytest.fixture
def broken(slack, tmp_path: Path) -> Iterator[tuple[Bot, Store, Path]]:
    folder = tmp_path / "store"
    store = Store.open(f"sqlite:///{folder / 'pcp.db'}")
    settings = Settings(slack_bot_token=BOT_TOKEN, slack_signing_secret=SIGNING_SECRET, slack_api_url=slack.api_url)
    server = make_server(wsgi_app(create_app(settings, store=store), store=store), host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    yield Bot(f"http://127.0.0.1:{server.effective_port}", slack), store, folder
    server.close()
    store.close()


def test_a_failing_store_gets_an_apology_not_silence(broken, caplog):
    bot, store, _ = broken
    SQLModel.metadata.drop_all(store.engine)  # the store loses its tables under a running bot
    assert bot.command("knife-crime").status == 200
    (reply,) = bot.replies(1)
    assert reply["text"].startswith("Sorry, pcp could not answer that just now.")
    assert any("unhandled error" in r.getMessage() for r in caplog.records)


def test_health_check_fails_when_the_database_is_gone(broken):
    bot, store, folder = broken
    store.engine.dispose()
    shutil.rmtree(folder)
    reply = get(f"{bot.base_url}/healthz")
    assert reply.status == 503
    assert '"database": "unavailable"' in reply.body
