"""The production HTTP front: a WSGI app served by waitress (multi-threaded, pure Python).

`POST /slack/events` goes to Bolt, which verifies the signature before anything runs;
`GET /healthz` reports whether the store answers. Bolt's own `app.start()` is a
development server and is not used.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from sqlalchemy import text
from waitress.server import create_server

from bot.db import Store

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


def health(store: Store) -> tuple[bool, dict[str, str]]:
    try:
        with store.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True, {"status": "ok", "database": "ok"}
    except Exception as error:  # any failure means unhealthy; the reason goes to the log, not the body
        log.warning("health check failed: %s", error)
        return False, {"status": "error", "database": "unavailable"}


def wsgi_app(app: App, *, store: Store | None) -> WSGIApp:
    slack = SlackRequestHandler(app, path=EVENTS_PATH)

    def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            ok, body = health(store) if store is not None else (True, {"status": "ok"})
            payload = json.dumps(body).encode()
            start_response(
                "200 OK" if ok else "503 Service Unavailable",
                [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
            )
            return [payload]
        return slack(environ, start_response)

    return application


def make_server(application: WSGIApp, *, host: str, port: int, threads: int = 8) -> Any:
    """A waitress server bound now (port 0 picks a free port: see `.effective_port`); call .run()."""
    return create_server(application, host=host, port=port, threads=threads, ident="pcp")


def run_until_closed(server: Any) -> None:
    """Serve until server.close() (from a signal handler or another thread) or Ctrl-C.

    close() from elsewhere ends waitress's loop with EBADF; that, like Ctrl-C, means "stop".
    """
    with contextlib.suppress(KeyboardInterrupt, OSError, ValueError):
        server.run()
