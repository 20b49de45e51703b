"""The production HTTP front: a WSGI app served by waitress (multi-threaded, pure Python).

`POST /slack/events` goes to Bolt, which verifies the signature before anything runs;
`GET /healthz` reports whether the store answers and, in `pcp serve`, whether the scheduler
runs and delivers (see `health`). Bolt's own `app.start()` is a development server and is
not used.

Waitress has no graceful stop of its own, so `run_until_closed` drives its event loop: asked
to stop, it closes the listening socket, lets the requests already received finish and send
their responses (within a grace period), then closes what is left.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress import wasyncore
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer, create_server

from bot.db import Store
from bot.outbox import backlog

if TYPE_CHECKING:
    from typing import TypeAlias

    from bot.scheduler import JobMonitor

    SchedulerInfo: TypeAlias = JobMonitor | Literal["disabled"] | None  # see `health`

log = logging.getLogger(__name__)
EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
POLL_SECONDS = 0.25  # how often the serving loop looks for a stop request
STOP_GRACE_SECONDS = 10.0  # run_until_closed's default wait for requests in progress

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


# Health


def health(store: Store, *, scheduler: SchedulerInfo = None) -> tuple[bool, dict[str, Any]]:
    """(healthy, JSON body) for GET /healthz; costs one query (the outbox backlog) and never raises.

    `scheduler` is what this process runs: a `JobMonitor` (its scheduler must be running and its
    delivery job must have succeeded recently), "disabled" (PCP_SCHEDULER=false: another instance
    delivers), or None when the app was built without one (tests, benchmarks): then the scheduler
    is not reported. The body names problems in fixed words, never an exception's text, which could
    hold a URL or a secret.
    """
    problems: list[str] = []
    body: dict[str, Any] = {"status": "ok", "database": "ok"}
    try:
        body["outbox"] = backlog(store, now=datetime.now(UTC))  # the one query: the database answers
    except Exception as error:  # any failure means unhealthy; the reason's kind goes to the log, not the body
        log.warning("health check: the database did not answer (%s)", type(error).__name__)
        body["database"], body["outbox"] = "unavailable", None
        problems.append("database unavailable")
    if scheduler == "disabled":
        body["scheduler"] = "disabled"
    elif scheduler is not None:
        reading = scheduler.health()
        body["scheduler"] = reading.state
        body["delivery"] = {
            "stale": reading.delivery_stale,
            "seconds_since_success": reading.delivery_seconds_since_success,
            "stale_after_seconds": reading.delivery_stale_after_seconds,
        }
        body["jobs"] = reading.jobs
        if reading.state != "running":
            problems.append(f"scheduler {reading.state}")
        elif reading.delivery_stale:
            waited, limit = reading.delivery_seconds_since_success, reading.delivery_stale_after_seconds
            problems.append(f"delivery stale: no successful run for {waited:g} s (limit {limit:g} s)")
    if problems:
        body["status"] = "error"
    body["problems"] = problems
    return not problems, body


# The WSGI app


def wsgi_app(app: App, *, store: Store | None, scheduler: SchedulerInfo = None) -> WSGIApp:
    """Bolt at /slack/events and the health check at /healthz (see `health` for `scheduler`)."""
    slack = SlackRequestHandler(app, path=EVENTS_PATH)

    def application(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == HEALTH_PATH and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            ok, body = health(store, scheduler=scheduler) if store is not None else (True, {"status": "ok"})
            payload = json.dumps(body).encode()
            start_response(
                "200 OK" if ok else "503 Service Unavailable",
                [
                    ("Content-Type", "application/json"),
                    ("Content-Length", str(len(payload))),
                    ("Cache-Control", "no-store"),
                ],
            )
            return [payload]
        return slack(environ, start_response)

    return application


# Serving


def make_server(application: WSGIApp, *, host: str, port: int, threads: int = 8) -> Any:
    """A waitress server bound now (port 0 picks a free port: see `.effective_port`); call .run()."""
    return create_server(application, host=host, port=port, threads=threads, ident="pcp")


def run_until_closed(
    server: Any, *, stopping: threading.Event | None = None, grace: float = STOP_GRACE_SECONDS
) -> bool:
    """Serve until `stopping` is set or Ctrl-C (a graceful stop), or server.close() from another thread
    (immediate, as tests do). Returns False only when a graceful stop left requests unfinished.

    A graceful stop closes the listening socket at once (new connections are refused), keeps the event
    loop running while requests already received are processed and their responses sent, for at most
    `grace` seconds, then closes every connection and stops the worker threads.
    """
    stopping = stopping or threading.Event()
    socket_map = server._map if isinstance(server, BaseWSGIServer) else server.map  # MultiSocketServer: .map
    listeners = [d for d in socket_map.values() if isinstance(d, BaseWSGIServer)]
    use_poll = server.adj.asyncore_use_poll
    try:
        while not stopping.is_set():
            if not any(listener.accepting for listener in listeners):
                return True  # closed from elsewhere
            wasyncore.loop(timeout=POLL_SECONDS, map=socket_map, use_poll=use_poll, count=1)
    except (OSError, ValueError):  # a close() from another thread while polling (EBADF)
        return True
    except KeyboardInterrupt:
        pass
    return _drain(server, socket_map, listeners, grace=grace, use_poll=use_poll)


def _drain(server: Any, socket_map: dict, listeners: list[BaseWSGIServer], *, grace: float, use_poll: bool) -> bool:
    deadline = time.monotonic() + grace
    for listener in listeners:
        wasyncore.dispatcher.close(listener)  # stop accepting; the trigger stays, so workers still wake the loop
    busy = _busy_channels(socket_map)
    if busy:
        log.info("waiting for %d request(s) in progress (at most %g s)", len(busy), grace)
    try:
        while busy and time.monotonic() < deadline:
            wasyncore.loop(timeout=POLL_SECONDS, map=socket_map, use_poll=use_poll, count=1)
            busy = _busy_channels(socket_map)
    except (OSError, ValueError, KeyboardInterrupt):
        busy = _busy_channels(socket_map)
    if busy:
        log.warning("stopping with %d request(s) unfinished after %g s", len(busy), grace)
    for channel in [d for d in socket_map.values() if isinstance(d, HTTPChannel)]:
        channel.handle_close()
    wasyncore.close_all(socket_map)  # the trigger (and any listener left)
    server.task_dispatcher.shutdown(cancel_pending=True, timeout=max(0.1, deadline - time.monotonic()))
    return not busy


def _busy_channels(socket_map: dict) -> list[HTTPChannel]:
    """Connections with a request being received, waiting, being processed, or a response not yet sent;
    an idle keep-alive connection is not busy."""
    return [
        channel
        for channel in list(socket_map.values())
        if isinstance(channel, HTTPChannel)
        and channel.connected
        and (channel.requests or channel.total_outbufs_len or channel.request is not None)
    ]
