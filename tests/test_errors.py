"""When something breaks on our side, the person gets an apology and the log gets the cause."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import SQLModel

from bot.db import Store
from tests.conftest import Bot, get, running_bot


@pytest.fixture
def broken(slack, tmp_path: Path) -> Iterator[tuple[Bot, Store, Path]]:
    folder = tmp_path / "store"
    store = Store.open(f"sqlite:///{folder / 'pcp.db'}")
    with running_bot(slack, store) as bot:
        yield bot, store, folder
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
