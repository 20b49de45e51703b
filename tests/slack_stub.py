"""A local HTTP stand-in for the Slack Web API and slash-command ``response_url`` webhooks.

Why: tests drive the *real* slack_sdk ``WebClient`` / ``WebhookClient`` / Bolt over real HTTP (no patching), with
Slack's error shapes, HTTP 429 + ``Retry-After`` and dropped connections, so retry/backoff code runs as in production
(the approach of the stdlib mock servers in slack-bolt / python-slack-sdk tests). Usage: ``with SlackStub() as slack:
WebClient(token="xoxb-test", base_url=slack.api_url)``; ``slack.fail("chat.postMessage", status=429, retry_after=1)``.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, urlsplit

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.views import View

TRIGGER_SECONDS = 3.0  # a trigger_id expires 3 s after Slack sends it (reference/slack.md)
SCOPES = "chat:write,commands,im:write,files:write,users:read"
BOT_USER_ID, BOT_ID, TEAM_ID = "UBOT", "BBOT", "T0TEST"
#: ``xoxb-`` tokens that still fail, so tests can exercise revoked/expired-token paths.
SPECIAL_TOKENS = {"xoxb-invalid": "invalid_auth", "xoxb-revoked": "token_revoked", "xoxb-expired": "token_expired"}

Json = dict[str, Any]
Reply = tuple[int, Json | str, dict[str, str]]  # HTTP status, JSON object or text/plain body, extra headers


@dataclass
class Recorded:
    """One request as received; ``failed``/``status`` tell whether an injected fault answered it."""

    method: str  # API method ("chat.postMessage"); "webhook" for response_url; "upload" for upload URLs
    path: str
    headers: dict[str, str]  # lower-cased names
    body: Json
    raw: bytes
    time: float  # time.monotonic(), so gaps between attempts measure client backoff
    failed: bool = False
    status: int = 200  # HTTP status sent; 0 when the connection was dropped
    response: Json | None = None  # JSON answer, set just before it is sent

    @property
    def name(self) -> str:
        """Last path segment: the webhook name of ``response_url(name)``, or the upload's file id."""
        return self.path.rstrip("/").rsplit("/", 1)[-1]


class _Fault(NamedTuple):
    status: int | None
    error: str | None
    retry_after: int | None
    delay: float | None
    disconnect: bool


def _err(error: str) -> Json:
    return {"ok": False, "error": error}


def _decoded(value: Any) -> Any:
    """Form-encoded calls carry blocks/view/files as JSON strings, JSON calls as objects; accept both."""
    if isinstance(value, str) and value[:1] in "[{":
        with contextlib.suppress(ValueError):
            return json.loads(value)
    return value


def _valid_blocks(blocks: Any, limit: int) -> bool:
    sized = isinstance(blocks, list) and len(blocks) <= limit
    return sized and all(isinstance(block, dict) and "type" in block for block in blocks)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # listen() backlog: the default 5 resets connections when many instances answer at once

    def __init__(self, stub: SlackStub) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.stub, self.workers = stub, list[threading.Thread]()

    def process_request(self, request: Any, client_address: Any) -> None:
        """As ThreadingMixIn, but keeps the daemon workers so ``stop()`` can join them."""
        args = (request, client_address)
        worker = threading.Thread(target=self.process_request_thread, args=args, name="slack-stub-worker", daemon=True)
        self.workers = [t for t in self.workers if t.is_alive()] + [worker]
        worker.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that time out or hang up are expected in fault tests; stay quiet about those."""
        if not isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """Silenced: tests read ``SlackStub.requests`` instead of stderr noise."""

    def do_POST(self) -> None:
        self.server.stub._serve(self)

    do_GET = do_POST

    def reply(self, status: int, body: Json | str | bytes, headers: dict[str, str]) -> None:
        if isinstance(body, bytes):
            data, ctype = body, "application/octet-stream"
        else:
            text, ctype = (json.dumps(body), "application/json") if isinstance(body, dict) else (body, "text/plain")
            data = text.encode()
        self.send_response(status)
        headers = {"Content-Type": f"{ctype}; charset=utf-8", "Content-Length": str(len(data)), **headers}
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def drop(self) -> None:
        """Close the socket without answering, like a reset connection."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


class SlackStub:
    """Fake ``https://slack.com/api/`` plus ``response_url`` webhooks on 127.0.0.1 (ephemeral port)."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.messages: list[Json] = []  # every chat.postMessage: channel, ts, text, blocks, thread_ts[, metadata]
        self.uploads: dict[str, bytes] = {}  # file_id -> bytes POSTed to its upload_url
        self.views: dict[str, Json] = {}  # user_id -> last view published with views.publish
        self.modals: list[Json] = []  # every view opened with views.open, as Slack stored it (with its id)
        self.socket_mode_url: str | None = None  # what apps.connections.open hands out: a SocketModeStub's url
        self._files: dict[str, Json] = {}  # file_id -> filename from files.getUploadURLExternal
        self.hosted: dict[str, tuple[Json, bytes]] = {}  # file_id -> (files.info object, bytes) a user shared
        self._faults: dict[str, deque[_Fault]] = {}
        self._triggers: dict[str, float] = {}
        self._used_triggers: set[str] = set()  # trigger_id -> time.monotonic() it was issued, until exchanged
        self._cond = threading.Condition()  # guards all state above; notified on every request
        self._closing = threading.Event()
        self._counter = 0
        self._last_ts = 0  # microseconds of the last message ts handed out
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> SlackStub:
        if self._server is None:
            self._closing.clear()
            self._server = _Server(self)
            serve = self._server.serve_forever  # short poll interval: stop() returns in ~50 ms, not 0.5 s
            self._thread = threading.Thread(target=serve, args=(0.05,), name="slack-stub", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and join in-flight workers (pending ``delay`` faults are cut short)."""
        server, self._server = self._server, None
        if server is None:
            return
        self._closing.set()
        server.shutdown()
        server.server_close()
        for thread in filter(None, [self._thread, *server.workers]):
            thread.join(timeout=5)

    def __enter__(self) -> SlackStub:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("SlackStub is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        """Pass as ``WebClient(base_url=...)`` or ``SLACK_API_URL``."""
        return f"{self.url}/api/"

    def response_url(self, name: str = "x") -> str:
        """A fake slash-command ``response_url``; its calls are recorded as method ``"webhook"``."""
        return f"{self.url}/webhook/{name}"

    def calls(self, method: str) -> list[Recorded]:
        with self._cond:
            return [r for r in self.requests if r.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Recorded]:
        """Block until ``count`` calls of ``method`` arrived: for code that calls Slack from other threads."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.calls(method)) >= count, timeout):
                got, seen = len(self.calls(method)), [f"{r.method} {r.path}" for r in self.requests]
                raise AssertionError(f"expected {count} x {method!r} within {timeout}s, got {got}; received: {seen}")
            return self.calls(method)

    def reset(self) -> None:
        """Forget recorded requests, stored messages/uploads/views and pending faults."""
        with self._cond:
            stores = (self.requests, self.messages, self.uploads, self.views, self.modals, self._files, self._faults)
            for store in stores:
                store.clear()

    def fail(self, method: str, *, status: int | None = None, error: str | None = None, retry_after: int | None = None,
             times: int = 1, delay: float | None = None, disconnect: bool = False) -> None:  # fmt: skip
        """Make the next ``times`` calls of ``method`` fail (``"webhook"`` / ``"upload"`` for those URLs).

        ``status=429`` answers like Slack's rate limiter (``Retry-After``, default 1; ``retry_after`` alone implies
        429); 5xx sends a plain-text error page; ``error`` sends HTTP 200 ``{"ok": false, "error": ...}`` (webhooks:
        text/plain, HTTP 400 unless ``status``); ``delay`` sleeps first (alone, it still answers normally, like a
        slow Slack); ``disconnect`` closes the socket without any response.
        """
        if retry_after is not None and status is None:
            status = 429
        if status is None and error is None and delay is None and not disconnect:
            raise ValueError("fail() needs status, error, delay or disconnect")
        with self._cond:
            queue = self._faults.setdefault(method, deque())
            queue.extend([_Fault(status, error, retry_after, delay, disconnect)] * times)

    def _serve(self, handler: _Handler) -> None:
        url = urlsplit(handler.path)
        kind, _, rest = url.path.lstrip("/").partition("/")
        method = {"api": rest, "webhook": "webhook", "upload": "upload", "files-pri": "download"}.get(kind) or "unknown"
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in handler.headers.items()}
        body = self._parse(raw, headers.get("content-type", ""), url.query)
        with self._cond:
            queue = self._faults.get(method)
            fault = queue.popleft() if queue else None
            failed = fault is not None and (fault.status, fault.error, fault.disconnect) != (None, None, False)
            rec = Recorded(method, url.path, headers, body, raw, time.monotonic(), failed)
            rec.status = 0 if fault and fault.disconnect else (fault and fault.status) or 200
            self.requests.append(rec)
            self._cond.notify_all()
        stopping = bool(fault and fault.delay and self._closing.wait(fault.delay))
        if stopping or (fault and fault.disconnect):
            return handler.drop()
        status, reply, extra = (
            self._fault_reply(fault, method) if fault and failed else self._route(method, rest, headers, body, raw)
        )
        with self._cond:
            rec.status, rec.response = status, reply if isinstance(reply, dict) else None
        handler.reply(status, reply, extra)

    @staticmethod
    def _parse(raw: bytes, content_type: str, query: str) -> Json:
        """JSON bodies via json.loads; form bodies (and query strings) flattened to single values."""
        body: Json = {k: v[-1] for k, v in parse_qs(query).items()}
        if "application/json" in content_type:
            loaded = _decoded(raw.decode("utf-8", "replace").strip() or "{}")
            body.update(loaded if isinstance(loaded, dict) else {})
        elif "multipart/" not in content_type:
            body.update({k: v[-1] for k, v in parse_qs(raw.decode("utf-8", "replace")).items()})
            if "payload" in body:
                body["payload"] = _decoded(body["payload"])
        return body

    @staticmethod
    def _fault_reply(fault: _Fault, method: str) -> Reply:
        status = fault.status or (400 if method == "webhook" else 200)
        if status == 429:
            retry_after = {"Retry-After": str(1 if fault.retry_after is None else fault.retry_after)}
            return 429, {"ok": False, "error": fault.error or "ratelimited"}, retry_after
        if method in ("webhook", "upload") or not fault.error:
            return status, fault.error or f"{status} {HTTPStatus(status).phrase}", {}
        return status, {"ok": False, "error": fault.error}, {}

    def _route(self, method: str, rest: str, headers: dict[str, str], body: Json, raw: bytes) -> Reply:
        if method == "webhook":
            return (200, "ok", {}) if body else (400, "invalid_payload", {})
        if method == "unknown" or (method == "upload" and rest not in self._files):
            return 404, "Not Found", {}
        if method == "upload":
            with self._cond:
                self.uploads[rest] = raw
            return 200, "OK", {}
        if method == "download":
            return self._download(rest, headers)
        auth = headers.get("authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else str(body.get("token") or "")
        if not token:
            return 200, _err("not_authed"), {}
        app_level = method == "apps.connections.open"  # like Slack, the one method here that needs an xapp- token
        if not token.startswith("xapp-" if app_level else "xoxb-") or token in SPECIAL_TOKENS:
            return 200, _err(SPECIAL_TOKENS.get(token, "not_allowed_token_type" if app_level else "invalid_auth")), {}
        api = getattr(self, "_api_" + method.replace(".", "_"), None)
        with self._cond:
            return 200, api(body) if api else {"ok": True}, {"x-oauth-scopes": SCOPES}

    def host_file(self, name: str, content: bytes, *, user: str = "U0ADMIN") -> Json:
        """A file a user shared, as files.info describes it; its bytes need the bot token, as on Slack."""
        with self._cond:
            file_id = self._id("F")
            info = {
                "id": file_id,
                "name": name,
                "title": name,
                "filetype": name.rsplit(".", 1)[-1].lower(),
                "size": len(content),
                "user": user,
                "url_private": f"{self.url}/files-pri/{TEAM_ID}-{file_id}/{name}",
                "url_private_download": f"{self.url}/files-pri/{TEAM_ID}-{file_id}/download/{name}",
            }
            self.hosted[file_id] = (info, content)
        return info

    def _download(self, rest: str, headers: dict[str, str]) -> Reply:
        """Slack answers a download without a valid token with 200 and its HTML sign-in page."""
        file_id = rest.split("/", 1)[0].removeprefix(f"{TEAM_ID}-")
        token = headers.get("authorization", "")[7:].strip()
        if file_id not in self.hosted:
            return 404, "Not Found", {}
        if not token.startswith("xoxb-") or token in SPECIAL_TOKENS:
            return 200, "<!DOCTYPE html><html><body>Sign in to Slack</body></html>", {"Content-Type": "text/html"}
        return 200, self.hosted[file_id][1], {}

    def _api_files_info(self, body: Json) -> Json:
        hosted = self.hosted.get(str(body.get("file", "")))
        return {"ok": True, "file": hosted[0]} if hosted else _err("file_not_found")

    def _id(self, prefix: str) -> str:
        """Unique increasing ids; ``"ts"`` gives message timestamps from the wall clock, as Slack's are (so
        ``conversations.history(oldest=...)`` compares them with real times), strictly increasing."""
        self._counter += 1
        if prefix != "ts":
            return f"{prefix}{self._counter:08d}"
        self._last_ts = micros = max(time.time_ns() // 1000, self._last_ts + 1)
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    # Web API methods, looked up as "_api_" + method with dots as underscores; called with the lock held.
    def _api_auth_test(self, body: Json) -> Json:
        return {"ok": True, "url": "https://pcp-test.slack.com/", "team": "PCP Test", "user": "pcp", "team_id": TEAM_ID,
                "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}  # fmt: skip

    def _api_apps_connections_open(self, body: Json) -> Json:
        """Socket Mode's WebSocket URL; an error until a test sets ``socket_mode_url``, so a missing one is loud."""
        return {"ok": True, "url": self.socket_mode_url} if self.socket_mode_url else _err("socket_mode_url_not_set")

    def _api_chat_postMessage(self, body: Json) -> Json:
        channel, text, blocks = body.get("channel"), body.get("text"), _decoded(body.get("blocks"))
        if not channel:
            return _err("channel_not_found")
        if blocks is not None and not _valid_blocks(blocks, 50):
            return _err("invalid_blocks")
        if not (text or blocks or body.get("attachments")):
            return _err("no_text")
        channel = "D" + channel[1:] if channel.startswith("U") else channel
        ts, thread_ts, metadata = self._id("ts"), body.get("thread_ts"), _decoded(body.get("metadata"))
        self.messages.append({"channel": channel, "ts": ts, "text": text, "blocks": blocks, "thread_ts": thread_ts})
        self.messages[-1].update({"metadata": metadata} if metadata else {})  # only when sent: keeps old shapes
        message = {"text": text, "blocks": blocks, "ts": ts, "user": BOT_USER_ID, "bot_id": BOT_ID, "type": "message"}
        message.update({"thread_ts": thread_ts} if thread_ts else {})
        message.update({"metadata": metadata} if metadata else {})
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _api_conversations_history(self, body: Json) -> Json:
        """Top-level messages of a channel (thread replies stay in their thread), newest first, after ``oldest``."""
        channel = body.get("channel")
        if not channel:
            return _err("channel_not_found")
        found = [m for m in self.messages if m["channel"] == channel and m["thread_ts"] in (None, m["ts"])]
        return self._listing(found[::-1], body)

    def _api_conversations_replies(self, body: Json) -> Json:
        """A thread, parent first then replies oldest first, after ``oldest``."""
        channel, ts = body.get("channel"), body.get("ts")
        thread = [m for m in self.messages if m["channel"] == channel and ts in (m["ts"], m["thread_ts"])]
        if not channel or not thread:
            return _err("channel_not_found" if not channel else "thread_not_found")
        return self._listing(thread, body)

    @staticmethod
    def _listing(found: list[Json], body: Json) -> Json:
        """One page (``limit``, ``cursor`` = offset) of messages as the history methods return them; like Slack,
        ``metadata`` only with ``include_all_metadata``."""
        oldest, start = float(body.get("oldest") or 0), int(body.get("cursor") or 0)
        with_metadata = str(body.get("include_all_metadata", "")).lower() in ("1", "true")
        found = [m for m in found if float(m["ts"]) > oldest]
        end = start + int(body.get("limit") or 100)
        page = []
        for m in found[start:end]:
            item = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "text": m["text"], "ts": m["ts"]}
            item.update({k: m[k] for k in ("blocks", "thread_ts", "files") if m.get(k)})
            item.update({"metadata": m["metadata"]} if with_metadata and m.get("metadata") else {})
            page.append(item)
        cursor = str(end) if end < len(found) else ""
        return {"ok": True, "messages": page, "has_more": bool(cursor), "response_metadata": {"next_cursor": cursor}}

    def _api_chat_postEphemeral(self, body: Json) -> Json:
        if not body.get("channel") or not body.get("user"):
            return _err("user_not_found" if body.get("channel") else "channel_not_found")
        return {"ok": True, "message_ts": self._id("ts")}

    def _api_chat_update(self, body: Json) -> Json:
        channel, ts, blocks = body.get("channel"), body.get("ts"), _decoded(body.get("blocks"))
        found = [m for m in self.messages if m["channel"] == channel and m["ts"] == ts]
        if not channel or not found:
            return _err("channel_not_found" if not channel else "message_not_found")
        if blocks is not None and not _valid_blocks(blocks, 50):
            return _err("invalid_blocks")
        found[0].update({k: v for k, v in (("text", body.get("text")), ("blocks", blocks)) if v is not None})
        return {"ok": True, "channel": channel, "ts": ts, "text": found[0]["text"], "message": dict(found[0])}

    def _api_conversations_open(self, body: Json) -> Json:
        users = body.get("users") or ""
        first = (users.split(",") if isinstance(users, str) else users or [""])[0].strip()
        if not first and not body.get("channel"):
            return _err("users_list_not_supplied")
        return {"ok": True, "channel": {"id": "D" + first[1:] if first else body["channel"]}}

    def _api_views_publish(self, body: Json) -> Json:
        user_id, view = body.get("user_id"), _decoded(body.get("view"))
        if not user_id or not isinstance(view, dict) or not _valid_blocks(view.get("blocks", []), 100):
            return _err("invalid_arguments")
        self.views[user_id] = view = {**view, "id": self._id("V"), "team_id": TEAM_ID}
        return {"ok": True, "view": view}

    def issue_trigger(self) -> str:
        """A trigger_id as Slack puts in an interaction payload: good for one views.open, for 3 seconds."""
        with self._cond:
            self._counter += 1
            trigger = f"{self._counter}.{int(time.time())}.{self._counter:032x}"
            self._triggers[trigger] = time.monotonic()
        return trigger

    def _api_views_open(self, body: Json) -> Json:
        """Like Slack: the trigger must be one it issued, used once, within 3 s; the view a valid modal."""
        trigger, view = str(body.get("trigger_id") or ""), _decoded(body.get("view"))
        issued = self._triggers.pop(trigger, None)
        if issued is None:
            return _err("exchanged_trigger_id" if trigger in self._used_triggers else "invalid_trigger_id")
        self._used_triggers.add(trigger)
        if time.monotonic() - issued > TRIGGER_SECONDS:
            return _err("expired_trigger_id")
        if not isinstance(view, dict) or view.get("type") != "modal" or not _valid_blocks(view.get("blocks"), 100):
            return _err("invalid_arguments")
        try:
            View(**view).to_dict()  # title <= 24 chars, callback_id, private_metadata <= 3,000, every block
        except (SlackObjectFormationError, TypeError) as error:
            return {"ok": False, "error": "invalid_arguments", "response_metadata": {"messages": [str(error)]}}
        self.modals.append(view := {**view, "id": self._id("V"), "team_id": TEAM_ID})
        return {"ok": True, "view": view}

    def _api_users_info(self, body: Json) -> Json:
        if not (user := body.get("user")):
            return _err("user_not_found")
        profile = {"id": user, "name": user.lower(), "real_name": f"Test User {user}", "tz": "Europe/London"}
        return {"ok": True, "user": profile}

    def _api_files_getUploadURLExternal(self, body: Json) -> Json:
        if not body.get("filename") or not str(body.get("length", "")).isdigit():
            return _err("invalid_arguments")
        file_id = self._id("F")
        self._files[file_id] = {"filename": body["filename"], "length": int(body["length"])}
        return {"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id}

    def _api_files_completeUploadExternal(self, body: Json) -> Json:
        files = _decoded(body.get("files"))
        if not isinstance(files, list) or not files or not all(isinstance(f, dict) for f in files):
            return _err("invalid_arguments")
        if any(f.get("id") not in self.uploads for f in files):
            return _err("file_not_found")
        names = [self._files[f["id"]]["filename"] for f in files]
        out = [{"id": f["id"], "title": f.get("title") or n, "name": n} for f, n in zip(files, names, strict=True)]
        if channel := body.get("channel_id"):  # shared: Slack posts a message carrying the files
            comment, thread_ts = body.get("initial_comment") or "", body.get("thread_ts")
            self.messages.append(
                {"channel": channel, "ts": self._id("ts"), "text": comment, "blocks": None, "thread_ts": thread_ts}
            )
            self.messages[-1]["files"] = out
        return {"ok": True, "files": out}
