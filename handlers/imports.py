"""Imports from Slack: an admin shares a CSV or XLSX with pcp; the answer comes in the thread.

Same checks and all-or-nothing apply as `pcp import`. Anyone else gets a polite refusal and
nothing changes. Writing "dry run" with the file shows what would change without writing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from logging import Logger

from slack_bolt import App
from slack_sdk import WebClient

from bot.db import Store
from bot.render import Message, render
from bot.slack_files import DownloadError, download
from handlers.home import refresh_homes
from handlers.jobs import decide_alerts
from scorecard.imports import MAX_BYTES, ImportRefused, RowError, apply_import, prepare_import
from scorecard.models import HOME_FORCE
from scorecard.periods import today_in

IMPORTABLE = (".csv", ".xlsx")


def import_shared_file(
    file: dict, *, client: WebClient, store: Store, actor: str, dry_run: bool, timezone: str
) -> Message:
    """Fetch, check and (unless dry run) apply one shared file; the reply says what happened."""
    info = client.files_info(file=file["id"])["file"]
    name = info.get("name", "the file")
    context = {"file_name": name, "dry_run": dry_run, "home_force": HOME_FORCE, "plan": None, "batch": None}
    if not name.lower().endswith(IMPORTABLE):
        problem = "only CSV and XLSX files can be imported"
    elif info.get("size", 0) > MAX_BYTES:
        problem = f"the file is larger than {MAX_BYTES // 2**20} MB"
    else:
        try:
            data = download(info["url_private_download"], token=client.token or "", max_bytes=MAX_BYTES)
            with store.session() as session:
                plan = prepare_import(name, data, session=session)
                batch = None if dry_run else apply_import(plan, session=session, actor=actor)
            if batch is not None:  # new figures may make a metric worse: its leads hear at the next delivery
                decide_alerts(store=store, as_of=today_in(timezone), now=datetime.now(UTC))
            return render("import_result", **{**context, "plan": plan, "batch": batch}, errors=[])
        except ImportRefused as refused:
            return render("import_result", **context, errors=refused.errors)
        except DownloadError as error:
            problem = str(error)
    return render("import_result", **context, errors=[RowError(0, "", problem)])


def handle_file_share(
    *, event: dict, client: WebClient, store: Store, admins: list[str], timezone: str, logger: Logger
) -> None:
    channel, user = event["channel"], event.get("user", "")
    thread_ts = event.get("thread_ts") or event["ts"]
    files = [f for f in event.get("files", []) if f.get("id")]
    if not files:
        return
    if user not in admins:
        reply = render("not_admin", action="import figures")
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, **reply.payload())
        logger.info("refused an import from a non-admin", extra={"user": user})
        return
    dry_run = "dry" in (event.get("text") or "").lower()
    for file in files:
        reply = import_shared_file(file, client=client, store=store, actor=user, dry_run=dry_run, timezone=timezone)
        client.chat_postMessage(channel=channel, thread_ts=thread_ts, **reply.payload())
    if not dry_run:
        refresh_homes(client=client, store=store, logger=logger)


def register(app: App, *, store: Store, admins: list[str], timezone: str) -> None:
    def file_share(event: dict, client: WebClient, logger: Logger) -> None:
        handle_file_share(event=event, client=client, store=store, admins=admins, timezone=timezone, logger=logger)

    def other_message() -> None:
        """Other direct messages need no answer, but must be acknowledged or Slack retries them."""

    app.event({"type": "message", "subtype": "file_share"})(file_share)
    app.event("message")(other_message)
