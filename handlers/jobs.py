"""Scheduled and on-demand jobs: decide what to send, write it to the outbox in the same
transaction as the decision, and deliver. Plain module-level functions, so a scheduler, the
CLI and the tests all call exactly the same code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from slack_sdk import WebClient
from sqlmodel import Session

from bot.db import Store
from bot.outbox import DeliveryReport, deliver_due, enqueue, messages_keyed
from bot.render import Message, render
from scorecard.alerts import Finding, evaluate, is_snoozed, record
from scorecard.digest import added_digest_channels, build_digest, last_digest_at
from scorecard.leads import recipients_of_metric

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AlertsDecided:
    opened: int
    recovered: int
    messages: int


def preview_alerts(*, store: Store, as_of: date) -> list[tuple[Finding, list[str]]]:
    """What evaluation finds now, with who would hear of it; writes nothing (`pcp alerts`)."""
    with store.session() as session:
        return [(f, recipients_of_metric(f.metric, session=session)) for f in evaluate(session=session, as_of=as_of)]


def decide_alerts(*, store: Store, as_of: date, now: datetime) -> AlertsDecided:
    """Open and recover alerts, and queue one DM per lead, all in one transaction.

    A snoozed lead is skipped; a recovery goes only to those who got the alert, as a reply in
    its thread. Running it again with the same data queues nothing.
    """
    messages = 0
    with store.session() as session:
        transitions = record(evaluate(session=session, as_of=as_of), session=session, now=now)
        for transition in transitions:
            key, finding = transition.event.key, transition.finding
            if transition.kind == "opened":
                alert = render("alert", f=finding)
                for user in recipients_of_metric(finding.metric, session=session):
                    if not is_snoozed(finding.metric, user, session=session, now=now):
                        messages += enqueue(session, key=f"{key}:{user}", target=user, message=alert)
            else:
                reply = render("alert_recovered", f=finding)
                messages += reply_to_alert(session, key, suffix="recovered", message=reply)
    opened = sum(t.kind == "opened" for t in transitions)
    log.info("alerts: %s opened, %s recovered, %s messages queued", opened, len(transitions) - opened, messages)
    return AlertsDecided(opened=opened, recovered=len(transitions) - opened, messages=messages)


def reply_to_alert(session: Session, alert_key: str, *, suffix: str, message: Message) -> int:
    """Queue `message` in the thread of every copy of an alert (one per recipient); returns how many.

    The copies are the outbox rows keyed `<alert key>:<user>`; replies are keyed under them
    (`…:recovered`, `…:ack:<id>`), so a reply is never queued twice and never itself replied to.
    """
    prefix = f"{alert_key}:"
    copies = [row for row in messages_keyed(session, prefix=prefix) if ":" not in row.key[len(prefix) :]]
    return sum(
        enqueue(session, key=f"{row.key}:{suffix}", target=row.target, message=message, thread_of=row.key)
        for row in copies
    )


def digest_channels(*, store: Store, configured: list[str]) -> list[str]:
    """PCP_DIGEST_CHANNELS plus the channels admins added from Slack, each once."""
    with store.session() as session:
        added = added_digest_channels(session=session)
    return list(dict.fromkeys([*configured, *added]))


def decide_digest(*, store: Store, channels: list[str], now: datetime) -> int:
    """Queue this week's digest for each channel; the key (channel and ISO week) makes it once a week."""
    year, week, _ = now.isocalendar()
    with store.session() as session:
        since = last_digest_at(session=session) or now - timedelta(days=7)
        digest = build_digest(session=session, since=since, until=now)
        message = render("digest", digest=digest, posted=True)
        queued = 0
        for channel in channels:
            key = f"digest:{channel}:{year}-W{week:02d}"
            queued += enqueue(session, key=key, target=channel, message=message)
            for metric, name in digest.charts:  # uploaded under the digest once it is posted
                comment = render("digest_chart", metric_name=name, metric=metric)
                enqueue(
                    session, key=f"{key}:chart:{metric}", target=channel, message=comment, thread_of=key, chart=metric
                )
    log.info("digest: queued for %s of %s channels", queued, len(channels))
    return queued


def deliver(*, store: Store, client: WebClient, admins: list[str], now: datetime | None = None) -> DeliveryReport:
    report = deliver_due(store, client, admins=admins, now=now)
    log.info("delivery: %s", report)
    return report
