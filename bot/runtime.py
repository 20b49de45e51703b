"""Wiring: settings -> store -> Bolt app (with handlers) -> HTTP server or Socket Mode."""

from __future__ import annotations

import logging
import re
import signal
import threading
from collections.abc import Callable
from types import FrameType

from slack_bolt import App

from bot.config import Settings
from bot.db import Store
from bot.outbox import delivery_client
from bot.scheduler import start_scheduler
from bot.server import make_server, run_until_closed, wsgi_app
from bot.slack_app import create_app

log = logging.getLogger("pcp")
TOKEN_PATTERN = re.compile(r"xox[a-z]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+")


class RedactTokens(logging.Filter):
    """Defence in depth: whatever a library logs, a Slack token never reaches the log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if TOKEN_PATTERN.search(message):
            record.msg, record.args = TOKEN_PATTERN.sub("[redacted token]", message), ()
        return True


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactTokens())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def build(settings: Settings) -> tuple[Store, App]:
    store = Store.open(settings.database_url)
    return store, create_app(settings, store=store)


def serve(settings: Settings) -> None:
    """Run until SIGTERM or Ctrl-C: Socket Mode with an app token, otherwise HTTP."""
    store, app = build(settings)
    scheduler = start_scheduler(settings, store, delivery_client(settings)) if settings.pcp_scheduler else None
    try:
        if settings.slack_app_token is not None:
            _serve_socket_mode(app, settings.slack_app_token.get_secret_value())
        else:
            _serve_http(app, store, settings)
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=True)  # let a running job finish: its outbox rows stay consistent
        store.close()


def _on_sigterm(stop: Callable[[], None]) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        log.info("pcp stopping (signal %s)", signum)
        stop()

    signal.signal(signal.SIGTERM, handler)


def _serve_http(app: App, store: Store, settings: Settings) -> None:
    application = wsgi_app(app, store=store)
    server = make_server(application, host=settings.host, port=settings.port, threads=settings.http_threads)
    _on_sigterm(server.close)
    log.info("pcp listening on http://%s:%s/slack/events", settings.host, server.effective_port)
    run_until_closed(server)


def _serve_socket_mode(app: App, app_token: str) -> None:
    """Connect out to Slack; a rejected app token raises SlackApiError before anything runs."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    handler = SocketModeHandler(app, app_token=app_token)
    stopped = threading.Event()
    _on_sigterm(stopped.set)
    handler.connect()
    log.info("pcp connected to Slack in Socket Mode")
    try:
        stopped.wait()
    except KeyboardInterrupt:
        pass
    finally:
        handler.close()
