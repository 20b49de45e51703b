"""Outbound delivery: every message pcp sends on its own initiative goes through an `Outbox` row.

Why: the decision to send (a digest is due, a metric worsened) and the message commit together, so a
crash never loses a decided message; the unique key makes a decision taken twice a no-op; delivery
records Slack's ts, so a restart or a second instance never sends it again.

How delivery stays exactly-once:
1. `enqueue` inserts the row in the caller's transaction (INSERT … ON CONFLICT (key) DO NOTHING).
2. `deliver_due` claims one due row per short transaction: `sending`, a lease, attempts + 1. PostgreSQL
   locks it with FOR UPDATE SKIP LOCKED; on both databases the claim is an UPDATE guarded by the state
   just read, so two instances never claim the same row.
3. Slack is called outside any transaction. Every post carries message metadata with the row's key.
4. The outcome is recorded in a new transaction, fenced by the attempt number: a deliverer whose lease
   was taken over records nothing.
A row left `sending` after its lease (process killed, or a timeout, 5xx or dropped connection, after which
Slack may have posted it) is "in doubt": before posting it again, the conversation's history is searched
for a message carrying its key. This needs the history scopes (channels:history, groups:history, im:history).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.client import HTTPException
from typing import Any, Literal

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError
from sqlalchemy import ColumnElement, and_, case, func, or_, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, col, select

from bot.charts import metric_chart
from bot.config import Settings
from bot.db import Store
from bot.render import Message, render
from scorecard.models import Outbox

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 8  # attempts Slack answered badly or not at all (a 429 is not one), then failed and reported
FIRST_BACKOFF = timedelta(seconds=30)  # longer than the HTTP timeout, so a slow Slack has finished first
MAX_BACKOFF = timedelta(minutes=30)
LEASE = timedelta(minutes=2)  # how long a claim is exclusive; must outlast one attempt's HTTP calls
CLOCK_SKEW = timedelta(minutes=10)  # searched history starts this long before the row was written
HISTORY_PAGES = 50  # x 200 messages since the decision: more and the check gives up (failed, reported)
METADATA_TYPE = "pcp_outbox"
REPORT_PREFIX = "delivery-failed:"
USER_PREFIXES = ("U", "W")  # sent as a direct message
CHANNEL_PREFIXES = ("C", "G", "D")
PERMANENT_ERRORS = frozenset(
    {
        "account_inactive",
        "cannot_dm_bot",
        "channel_not_found",
        "ekm_access_denied",
        "invalid_arguments",
        "invalid_auth",
        "invalid_blocks",
        "invalid_blocks_format",
        "invalid_metadata_format",
        "invalid_metadata_schema",
        "is_archived",
        "messages_tab_disabled",
        "metadata_too_large",
        "missing_scope",
        "msg_blocks_too_long",
        "msg_too_long",
        "no_permission",
        "no_text",
        "not_allowed_token_type",
        "not_authed",
        "not_in_channel",
        "restricted_action",
        "restricted_action_non_threadable_channel",
        "restricted_action_read_only_channel",
        "restricted_action_thread_only_channel",
        "team_access_not_granted",
        "thread_not_found",
        "token_expired",
        "token_revoked",
        "too_many_attachments",
        "user_disabled",
        "user_not_found",
        "user_not_visible",
    }
)
_SLACK_ERRORS = (SlackApiError, OSError, HTTPException)  # OSError covers timeouts and refused/reset connections
Failure = Literal["refused", "rejected", "unanswered", "permanent"]


@dataclass
class DeliveryReport:
    """What one `deliver_due` run did, for the job's log line and for tests."""

    sent: int = 0  # posted by this run
    retried: int = 0  # left for a later attempt (429, 5xx, timeout, connection error)
    failed: int = 0  # given up on and reported to the admins
    in_doubt_resolved: int = 0  # found already posted by an interrupted attempt: recorded, not posted again
    waiting: int = 0  # thread replies whose parent is not sent yet (no attempt counted)


@dataclass(frozen=True)
class _Claim:
    """A claimed row, copied out of its transaction so Slack is called with no database lock held."""

    id: int
    key: str
    target: str
    text: str
    blocks: list[dict]
    attempt: int  # attempts after this claim: the fence for recording the outcome
    in_doubt: bool
    created_at: datetime
    thread: tuple[str, str] | None  # the parent's (channel, ts)
    chart: str | None  # a metric key: upload its chart rather than post


@dataclass(frozen=True)
class _Outcome:
    status: Literal["sent", "retry", "failed"]
    channel: str | None = None
    ts: str | None = None
    found: bool = False  # sent: an earlier attempt had posted it
    retry_at: datetime | None = None
    in_doubt: bool = False  # retry: Slack may have posted it, so look before posting again
    refused: bool = False  # retry: a 429, which gives the attempt back
    error: str = ""


class _Unverifiable(Exception):
    """The history since the decision is too long to be sure an earlier attempt did not post."""


def delivery_client(settings: Settings, *, timeout: float = 10) -> WebClient:
    """A WebClient without retry handlers: the outbox's own backoff decides when to try again, so one
    attempt is one HTTP call and a rate-limited Slack never blocks the delivery job."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return WebClient(token=token, base_url=settings.slack_api_url, timeout=timeout, retry_handlers=[])


def without_retries(client: WebClient) -> WebClient:
    """The same Slack workspace as `client` (Bolt's, which retries), for one-attempt delivery."""
    return WebClient(token=client.token, base_url=client.base_url, timeout=10, retry_handlers=[])


def enqueue(
    session: Session,
    *,
    key: str,
    target: str,
    message: Message,
    thread_of: str | None = None,
    chart: str | None = None,
) -> bool:
    """Queue a message in the caller's transaction, so it commits or rolls back with the decision.

    With `chart` (a metric key) the row uploads that metric's SPC chart, drawn when it is delivered, into
    the `thread_of` thread, with `message.text` as its comment.

    Returns False (and changes nothing) when the key exists: a decision taken twice is a no-op. ON CONFLICT
    DO NOTHING is atomic against a concurrent insert and, unlike a failed INSERT, never aborts the caller's
    PostgreSQL transaction.
    """
    if not target.startswith(USER_PREFIXES + CHANNEL_PREFIXES):
        raise ValueError(f"not a Slack user or conversation id: {target!r}")
    now = datetime.now(UTC)
    values = {"key": key, "target": target, "thread_of": thread_of, "text": message.text, "blocks": message.blocks}
    values |= {"chart": chart}
    values |= {"status": "pending", "attempts": 0, "next_attempt_at": now, "last_error": "", "created_at": now}
    dialect = session.get_bind().dialect.name
    if dialect not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"the outbox supports SQLite and PostgreSQL, not {dialect}")
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(Outbox).values(**values).on_conflict_do_nothing(index_elements=["key"]).returning(Outbox.id)
    return session.exec(statement).first() is not None  # RETURNING: psycopg reports no rowcount here


def messages_keyed(session: Session, *, prefix: str) -> list[Outbox]:
    """Outbox rows whose key starts with `prefix`: e.g. one alert's messages, one per recipient."""
    statement = select(Outbox).where(col(Outbox.key).startswith(prefix)).order_by(col(Outbox.id))
    return list(session.exec(statement).all())


def deliver_due(
    store: Store,
    client: WebClient,
    *,
    now: datetime | None = None,
    limit: int = 50,
    admins: Sequence[str] = (),
    lease: timedelta = LEASE,
) -> DeliveryReport:
    """Send up to `limit` due rows, each claimed, sent and recorded on its own, and report what happened.

    Safe to run from several instances at once. `client` should have no retry handlers (`delivery_client`)
    and an HTTP timeout well under `lease` and FIRST_BACKOFF. `now` is for tests; rows are due when
    next_attempt_at <= now. An unexpected error propagates to the job's error handler; its row stays
    `sending` and is treated as in doubt once the lease is over.
    """
    now = _utc(now or datetime.now(UTC))
    report, looked_at, dms = DeliveryReport(), set[int](), dict[str, str]()
    for _ in range(limit):
        claimed = _claim_next(store, now=now, lease=lease, skip=looked_at, admins=admins, report=report)
        if claimed is None:
            break
        row_id, claim = claimed
        looked_at.add(row_id)
        if claim is not None:
            outcome = _attempt(client, claim, now=now, dms=dms, store=store)
            _record(store, claim, outcome, now=now, admins=admins, report=report)
    return report


def backlog(store: Store, *, now: datetime) -> dict[str, int | float | None]:
    """For /healthz: undelivered rows (`pending`, including `sending`), `failed` rows, and how long the
    longest-waiting due row has been due (`oldest_due_seconds`; None when nothing is due). One grouped
    query; sent rows, the bulk of the table, are left out by the status index."""
    now = _utc(now)
    statement = (
        select(col(Outbox.status), func.count(), func.min(case((_due(now), col(Outbox.next_attempt_at)))))
        .where(col(Outbox.status).in_(("pending", "sending", "failed")))
        .group_by(col(Outbox.status))
    )
    pending = failed = 0
    oldest: datetime | None = None
    with store.session() as session:
        rows = session.exec(statement).all()
    for status, count, due_since in rows:
        if status == "failed":
            failed += count
        else:
            pending += count
            if due_since is not None:
                oldest = _utc(due_since) if oldest is None else min(oldest, _utc(due_since))
    waited = None if oldest is None else round(max(0.0, (now - oldest).total_seconds()), 1)
    return {"pending": pending, "failed": failed, "oldest_due_seconds": waited}


# Claiming


def _due(now: datetime) -> ColumnElement[bool]:
    """Pending and due, or `sending` with an expired lease (in doubt)."""
    in_doubt = and_(col(Outbox.status) == "sending", col(Outbox.claimed_until) < now)
    return and_(col(Outbox.next_attempt_at) <= now, or_(col(Outbox.status) == "pending", in_doubt))


def _claim_next(
    store: Store, *, now: datetime, lease: timedelta, skip: set[int], admins: Sequence[str], report: DeliveryReport
) -> tuple[int, _Claim | None] | None:
    """Claim the next due row in one short transaction; (id, None) when it was looked at but not claimed."""
    with store.session() as session:
        statement = select(Outbox).where(_due(now), col(Outbox.id).not_in(skip))
        statement = statement.order_by(col(Outbox.id)).limit(1)  # oldest decision first: parents before replies
        row = session.exec(statement.with_for_update(skip_locked=True)).first()
        if row is None or row.id is None:
            return None
        # The state just read, re-checked by the UPDATE: on SQLite another instance may have claimed it since.
        guard = and_(col(Outbox.status) == row.status, col(Outbox.attempts) == row.attempts, _due(now))
        thread = None
        if row.thread_of and (thread := _thread(session, row, guard, admins=admins, report=report)) is None:
            return row.id, None
        values = {"status": "sending", "claimed_until": now + lease, "attempts": col(Outbox.attempts) + 1}
        if not _update(session, row.id, guard, **values):
            return row.id, None
        return row.id, _Claim(
            id=row.id,
            key=row.key,
            target=row.target,
            text=row.text,
            blocks=list(row.blocks or []),
            attempt=row.attempts + 1,
            in_doubt=row.status == "sending",
            created_at=row.created_at,
            thread=thread,
            chart=row.chart,
        )


def _thread(
    session: Session, row: Outbox, guard: ColumnElement[bool], *, admins: Sequence[str], report: DeliveryReport
) -> tuple[str, str] | None:
    """The parent's (channel, ts) for a reply. None leaves the reply unclaimed: while the parent is unsent
    (no attempt counted), or for good when the parent failed or never existed (the reply fails, reported)."""
    parent = session.exec(select(Outbox).where(Outbox.key == row.thread_of)).first()
    if parent is not None and parent.status == "sent" and parent.channel and parent.ts:
        return parent.channel, parent.ts
    if parent is not None and parent.status != "failed":
        report.waiting += 1
        return None
    reason = f"its thread parent {row.thread_of} {'failed' if parent else 'does not exist'}"
    if row.id is not None and _update(session, row.id, guard, status="failed", last_error=reason, claimed_until=None):
        _report_failure(session, key=row.key, target=row.target, reason=reason, admins=admins)
        _log_outcome(row.key, row.target, "failed", error=reason)
        report.failed += 1
    return None


def _update(session: Session, row_id: int, guard: ColumnElement[bool], **values: Any) -> bool:
    """UPDATE one row only if it is still in the state the guard describes; True when it was."""
    statement = update(Outbox).where(col(Outbox.id) == row_id, guard).values(**values)
    return session.exec(statement.execution_options(synchronize_session=False)).rowcount == 1


# Talking to Slack (no transaction open)


def _attempt(client: WebClient, claim: _Claim, *, now: datetime, dms: dict[str, str], store: Store) -> _Outcome:
    """One attempt: find the conversation, look for an earlier post if in doubt, else post."""
    try:
        channel = claim.thread[0] if claim.thread else _conversation(client, claim.target, dms)
        if claim.in_doubt and (ts := _posted_before(client, channel, claim)):
            return _Outcome("sent", channel=channel, ts=ts, found=True)
    except _Unverifiable as error:
        return _Outcome("failed", error=str(error))
    except _SLACK_ERRORS as error:
        return _failure(error, claim=claim, now=now, posting=False)
    if claim.chart:
        return _upload_chart(client, claim, channel=channel, now=now, store=store)
    try:
        response = client.chat_postMessage(
            channel=channel,
            text=claim.text,
            blocks=claim.blocks or None,
            thread_ts=claim.thread[1] if claim.thread else None,
            metadata={"event_type": METADATA_TYPE, "event_payload": {"key": claim.key}},
        )
    except _SLACK_ERRORS as error:
        return _failure(error, claim=claim, now=now, posting=True)
    return _Outcome("sent", channel=response["channel"], ts=response["ts"])


def _upload_chart(client: WebClient, claim: _Claim, *, channel: str, now: datetime, store: Store) -> _Outcome:
    """Draw the metric's chart now and upload it (files_upload_v2) under the thread, named after the row.

    Files carry no metadata, so the row's own file name (`_chart_filename`) is what an in-doubt check
    looks for. A metric with no monthly figures left has nothing to draw: recorded as sent, posting nothing.
    """
    with store.session() as session:
        chart = metric_chart(claim.chart or "", session=session)
    if chart is None:
        return _Outcome("sent", channel=channel)
    try:
        response = client.files_upload_v2(
            content=chart.png,
            filename=_chart_filename(claim),
            title=f"{chart.title}: {chart.subtitle}",
            alt_txt=chart.alt_text,
            channel=channel,
            thread_ts=claim.thread[1] if claim.thread else None,
            initial_comment=claim.text,
        )
    except (*_SLACK_ERRORS, SlackRequestError) as error:  # SlackRequestError: the upload POST itself failed
        return _failure(error, claim=claim, now=now, posting=True)
    log.debug("outbox %s: uploaded file %s", claim.key, (response.get("file") or {}).get("id"))
    return _Outcome("sent", channel=channel)  # Slack shares the file asynchronously: no message ts to keep


def _chart_filename(claim: _Claim) -> str:
    return f"{claim.chart}-chart-{claim.id}.png"


def _conversation(client: WebClient, target: str, dms: dict[str, str]) -> str:
    """A user's DM with the app (conversations.open gives the same D… every time; asked once a run)."""
    if not target.startswith(USER_PREFIXES):
        return target
    if target not in dms:
        dms[target] = client.conversations_open(users=target)["channel"]["id"]
    return dms[target]


def _posted_before(client: WebClient, channel: str, claim: _Claim) -> str | None:
    """The ts of a message carrying this row's key, posted since the row was written, if any."""
    oldest = f"{_utc(claim.created_at - CLOCK_SKEW).timestamp():.6f}"
    cursor = None
    for _ in range(HISTORY_PAGES):
        common = {"channel": channel, "oldest": oldest, "include_all_metadata": True, "limit": 200, "cursor": cursor}
        if claim.thread:
            response = client.conversations_replies(ts=claim.thread[1], **common)
        else:
            response = client.conversations_history(**common)
        for message in response.get("messages") or []:
            if _outbox_key(message) == claim.key:
                return message["ts"]
            if claim.chart and any(f.get("name") == _chart_filename(claim) for f in message.get("files") or []):
                return message["ts"]
        cursor = (response.get("response_metadata") or {}).get("next_cursor")
        if not cursor:
            return None
    raise _Unverifiable(f"in doubt, and over {HISTORY_PAGES} pages of history to check for an earlier post")


def _outbox_key(message: dict[str, Any]) -> str | None:
    metadata = message.get("metadata") or {}
    return (metadata.get("event_payload") or {}).get("key") if metadata.get("event_type") == METADATA_TYPE else None


def _failure(error: Exception, *, claim: _Claim, now: datetime, posting: bool) -> _Outcome:
    """Turn an error into failed (permanent, or too many attempts) or a retry at the right time."""
    kind, reason, retry_after = _classify(error)
    if kind == "permanent":
        return _Outcome("failed", error=reason)
    # After a post Slack did not answer, it may have posted; before the post, the doubt is as it was.
    in_doubt = kind == "unanswered" if posting else claim.in_doubt
    if kind == "refused":
        wait = timedelta(seconds=retry_after + random.random())
        return _Outcome("retry", retry_at=now + wait, in_doubt=in_doubt, refused=True, error=reason)
    if claim.attempt >= MAX_ATTEMPTS:
        maybe = "; it may have been posted" if in_doubt else ""
        return _Outcome("failed", error=f"{reason} (gave up after {claim.attempt} attempts{maybe})")
    return _Outcome("retry", retry_at=now + _backoff(claim.attempt), in_doubt=in_doubt, error=reason)


def _classify(error: Exception) -> tuple[Failure, str, float]:
    """(kind, reason, Retry-After seconds): refused = 429; rejected = an ok:false Slack may not repeat;
    unanswered = 5xx, timeout or connection error (Slack may have acted); permanent = retrying cannot help."""
    if isinstance(error, SlackApiError):
        status, code = error.response.status_code, str(error.response.get("error", ""))
        if status == 429:
            headers = {k.lower(): v for k, v in (error.response.headers or {}).items()}
            retry_after = float(_first(headers.get("retry-after")) or 1)
            return "refused", f"rate limited (Retry-After {retry_after:g} s)", retry_after
        if status >= 500:
            return "unanswered", f"HTTP {status} from Slack", 0
        return ("permanent" if code in PERMANENT_ERRORS else "rejected"), code or f"HTTP {status}", 0
    if isinstance(error, TimeoutError):
        return "unanswered", "timed out waiting for Slack", 0
    return "unanswered", f"connection error ({type(error).__name__})", 0


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else value


def _backoff(attempt: int) -> timedelta:
    """30 s, 1, 2, 4, 8, 16, then 30 min, plus up to 25 % jitter so rows that failed together spread out."""
    return min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** min(attempt - 1, 16) * (1 + random.random() / 4))


# Recording


def _record(
    store: Store, claim: _Claim, outcome: _Outcome, *, now: datetime, admins: Sequence[str], report: DeliveryReport
) -> None:
    """Write the outcome if our claim still holds (status sending, our attempt number)."""
    with store.session() as session:
        fence = and_(col(Outbox.status) == "sending", col(Outbox.attempts) == claim.attempt)
        if not _update(session, claim.id, fence, **_outcome_values(claim, outcome, now=now)):
            log.warning(
                "outbox %s: claim taken over before the outcome was recorded; its new owner records it", claim.key
            )
            return
        if outcome.status == "failed":
            _report_failure(session, key=claim.key, target=claim.target, reason=outcome.error, admins=admins)
    if outcome.status == "sent" and outcome.found:
        report.in_doubt_resolved += 1
    elif outcome.status == "sent":
        report.sent += 1
    elif outcome.status == "retry":
        report.retried += 1
    else:
        report.failed += 1
    status = "sent (found posted by an earlier attempt)" if outcome.found else outcome.status
    _log_outcome(claim.key, claim.target, status, ts=outcome.ts, error=outcome.error, quiet=outcome.refused)


def _outcome_values(claim: _Claim, outcome: _Outcome, *, now: datetime) -> dict[str, Any]:
    if outcome.status == "sent":
        return {"status": "sent", "channel": outcome.channel, "ts": outcome.ts, "sent_at": now, "claimed_until": None}
    if outcome.status == "failed":
        return {"status": "failed", "last_error": outcome.error[:500], "claimed_until": None}
    # In doubt stays `sending` with the lease ending at the retry: the next claim then checks history first.
    values = {"status": "sending" if outcome.in_doubt else "pending", "next_attempt_at": outcome.retry_at}
    values |= {"claimed_until": outcome.retry_at if outcome.in_doubt else None, "last_error": outcome.error[:500]}
    return values | ({"attempts": claim.attempt - 1} if outcome.refused else {})


def _report_failure(session: Session, *, key: str, target: str, reason: str, admins: Sequence[str]) -> None:
    """DM each admin about a message given up on, in the transaction that marks it failed; a failed
    report is only logged, so failures never loop."""
    if key.startswith(REPORT_PREFIX):
        log.error("outbox %s: a delivery-failure report could not be delivered (%s); not reported again", key, reason)
        return
    if not admins:
        log.error("outbox %s: delivery failed (%s) and no PCP_ADMINS are set to tell", key, reason)
    for admin in admins:
        enqueue(
            session, key=f"{REPORT_PREFIX}{key}:{admin}", target=admin, message=_failure_message(key, target, reason)
        )


def _failure_message(key: str, target: str, reason: str) -> Message:
    return render("delivery_failed", key=key, target=target, to_user=target.startswith(USER_PREFIXES), reason=reason)


def _log_outcome(
    key: str, target: str, status: str, *, ts: str | None = None, error: str = "", quiet: bool = False
) -> None:
    """INFO for what went well (and 429s, which are Slack pacing us), WARNING for failures; never a token."""
    level = logging.INFO if status.startswith("sent") or quiet else logging.WARNING
    log.log(level, "outbox %s -> %s: %s ts=%s%s", key, target, status, ts, f" ({error})" if error else "")


def _utc(moment: datetime) -> datetime:
    """Aware UTC, as SQLModel's datetime columns want them; a naive time is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
