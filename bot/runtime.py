"""Wiring: settings -> store -> Bolt app (with handlers) -> HTTP server or Socket Mode.

Also how `pcp serve` logs and stops:

- Logs go to stderr, as text (`LOG_FORMAT=text`, the default: for a developer's terminal) or as
  JSON lines (`LOG_FORMAT=json`, recommended for a service: one object a line with `ts` (ISO 8601,
  UTC), `level`, `logger`, `message`, every `extra=` field a handler passes, and `exc_info` as
  text). Slack tokens (by their shape) and the configured secrets are redacted from every field,
  tracebacks and extras included, whatever the level or the library that logs.
- SIGTERM (or Ctrl-C) stops gracefully: no new connections; requests already received, answers
  being worked on and a running job (say a delivery, which then records its outcome) finish; the
  database engine is disposed; exit 0. All within PCP_SHUTDOWN_SECONDS; after that pcp logs what
  it abandoned and exits 1 (an interrupted delivery is resolved by the outbox: see bot/outbox.py).
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from datetime import UTC, datetime
from types import FrameType, TracebackType
from typing import Any, Literal

from apscheduler.schedulers.base import BaseScheduler
from slack_bolt import App
from sqlalchemy import make_url

from bot.config import Settings
from bot.db import Store
from bot.outbox import delivery_client
from bot.scheduler import JobMonitor, delivery_stale_after, start_scheduler
from bot.server import make_server, run_until_closed, wsgi_app
from bot.slack_app import create_app

log = logging.getLogger("pcp")
TOKEN_PATTERN = re.compile(r"xox[a-z]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+")
REDACTED = "[redacted]"
_RECORD_FIELDS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime", "taskName"}
_MAX_DEPTH = 6  # extras nested deeper than this are logged as their str()


# Logging


class Redactor:
    """Replaces Slack tokens (by shape) and the given secrets (literally) in text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        literals = sorted({secret for secret in secrets if secret}, key=len, reverse=True)
        self.pattern = re.compile("|".join([*map(re.escape, literals), TOKEN_PATTERN.pattern]))

    def __call__(self, text: str) -> str:
        return self.pattern.sub(REDACTED, text)

    def value(self, value: Any, depth: int = 0) -> Any:
        """A JSON-ready copy of `value` with every string in it, keys included, redacted."""
        if value is None or isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            return value if math.isfinite(value) else str(value)
        if isinstance(value, dict) and depth < _MAX_DEPTH:
            return {self(str(key)): self.value(item, depth + 1) for key, item in value.items()}
        if isinstance(value, list | tuple | set | frozenset) and depth < _MAX_DEPTH:
            return [self.value(item, depth + 1) for item in value]
        if isinstance(value, datetime):
            return value.isoformat()
        return self(value if isinstance(value, str) else str(value))


def secrets_of(settings: Settings) -> list[str]:
    """The configured secrets: Slack tokens, the signing secret, the database password."""
    secrets = [s.get_secret_value() for s in (settings.slack_bot_token, settings.slack_app_token) if s is not None]
    if settings.slack_signing_secret is not None:
        secrets.append(settings.slack_signing_secret.get_secret_value())
    try:
        password = make_url(settings.database_url).password
    except Exception:  # an unparsable URL fails later, with its own message
        password = None
    return secrets + ([str(password)] if password else [])


class TextFormatter(logging.Formatter):
    """`time LEVEL logger: message` (and any traceback), redacted."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.redact = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, message, the record's `extra=` fields, exc_info, stack_info."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redact = redactor

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _RECORD_FIELDS and not key.startswith("_"):
                entry[f"extra_{key}" if key in entry else key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return self.redact(json.dumps(self.redact.value(entry)))  # the last pass: belt and braces


def configure_logging(level: str, *, log_format: str = "text", secrets: Iterable[str] = ()) -> None:
    """All logging to stderr through one redacting handler; Python warnings and uncaught exceptions
    (main thread or any other) are logged through it too, so nothing reaches stderr unredacted."""
    redactor = Redactor(secrets)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter(redactor) if log_format == "json" else TextFormatter(redactor))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    log.critical("uncaught exception", exc_info=(kind, error, trace))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread else "?"
    trace = (args.exc_type, args.exc_value, args.exc_traceback)
    log.error("uncaught exception in thread %s", name, exc_info=trace)  # type: ignore[arg-type]


# Serving


def build(settings: Settings) -> tuple[Store, App]:
    store = Store.open(settings.database_url)
    return store, create_app(settings, store=store)


class Stop:
    """A request to stop (SIGTERM, SIGINT), and the time left to stop in, counted from the request."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.requested = threading.Event()
        self.signal: int | None = None
        self._deadline: float | None = None

    def request(self, signum: int | None = None) -> None:
        """Safe in a signal handler: sets a flag and reads the clock, nothing more."""
        if self._deadline is None:
            self._deadline = time.monotonic() + self.seconds
            self.signal = signum
        self.requested.set()

    @property
    def reason(self) -> str:
        return f"signal {self.signal}" if self.signal is not None else "interrupted"

    def remaining(self) -> float:
        if self._deadline is None:  # stopping for another reason (Ctrl-C, an error): the clock starts now
            self._deadline = time.monotonic() + self.seconds
        return max(0.0, self._deadline - time.monotonic())


def serve(settings: Settings) -> None:
    """Run until SIGTERM or Ctrl-C: Socket Mode with an app token, otherwise HTTP; then stop gracefully."""
    configure_logging(settings.log_level, log_format=settings.log_format, secrets=secrets_of(settings))
    stop = Stop(settings.pcp_shutdown_seconds)
    _on_signals(stop)
    store, app = build(settings)
    monitor: JobMonitor | None = None
    scheduler: BaseScheduler | None = None
    if settings.pcp_scheduler:
        monitor = JobMonitor(stale_after=delivery_stale_after(settings))
        scheduler = start_scheduler(settings, store, delivery_client(settings), monitor=monitor)
    finished = True
    try:
        if settings.slack_app_token is not None:
            _serve_socket_mode(app, settings.slack_app_token.get_secret_value(), stop)
        else:
            finished = _serve_http(app, store, settings, stop, monitor or "disabled")
    finally:
        log.info("pcp stopping (%s): finishing work in progress, at most %.0f s", stop.reason, stop.remaining())
        finished = _finish(app, scheduler, stop) and finished
        store.close()
    if not finished:
        log.warning("pcp stopped after %g s with work unfinished (PCP_SHUTDOWN_SECONDS)", settings.pcp_shutdown_seconds)
        logging.shutdown()
        os._exit(1)  # the unfinished threads would otherwise hold the process open
    log.info("pcp stopped")


def _on_signals(stop: Stop) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        stop.request(signum)  # no logging here: the main thread may be inside the logging lock

    signal.signal(signal.SIGTERM, handler)


def _serve_http(
    app: App, store: Store, settings: Settings, stop: Stop, scheduler: JobMonitor | Literal["disabled"]
) -> bool:
    application = wsgi_app(app, store=store, scheduler=scheduler)
    server = make_server(application, host=settings.host, port=settings.port, threads=settings.http_threads)
    log.info("pcp listening on http://%s:%s/slack/events", settings.host, server.effective_port)
    return run_until_closed(server, stopping=stop.requested, grace=stop.seconds)


def _serve_socket_mode(app: App, app_token: str, stop: Stop) -> None:
    """Connect out to Slack; a rejected app token raises SlackApiError before anything runs."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    handler = SocketModeHandler(app, app_token=app_token)
    handler.connect()
    log.info("pcp connected to Slack in Socket Mode")
    try:
        stop.requested.wait()
    except KeyboardInterrupt:
        pass
    finally:
        handler.close()


def _finish(app: App, scheduler: BaseScheduler | None, stop: Stop) -> bool:
    """Let Bolt's answers in progress and a running job finish, side by side, within the time left.

    The scheduler's shutdown waits for its running jobs: a delivery records its outcome first."""
    waits: list[tuple[str, Callable[[], None]]] = []
    executor = app.listener_runner.listener_executor
    if isinstance(executor, Executor):
        waits.append(("answers in progress", lambda: executor.shutdown(wait=True)))
    if scheduler is not None and scheduler.running:
        waits.append(("scheduled jobs", lambda: scheduler.shutdown(wait=True)))
    threads = [threading.Thread(target=wait, name=f"pcp-stop: {what}", daemon=True) for what, wait in waits]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(stop.remaining())
    unfinished = [what for (what, _), thread in zip(waits, threads, strict=True) if thread.is_alive()]
    if unfinished:
        log.warning("still running at the shutdown deadline: %s", ", ".join(unfinished))
    return not unfinished
