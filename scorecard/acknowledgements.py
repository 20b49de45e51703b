"""Answering an alert: who responded to what, and what they said.

A lead (or follower) acknowledges an alert with a short comment. The comment is kept with the
alert and written to the audit log, so the accountability meeting can see who responded to
which alert and when. Acknowledging again adds another comment; nothing is overwritten.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlmodel import Session, col, select

from scorecard.alerts import AlertError, Finding
from scorecard.models import AlertAcknowledgement, AlertEvent, AuditLog

COMMENT_MAX = 500  # a sentence or two for the meeting's record, not a report


@dataclass(frozen=True)
class Acknowledged:
    """One acknowledgement with the alert it answers, as plain data a message is written from."""

    id: int
    alert: Finding
    user_id: str
    comment: str
    at: datetime


def comment_problem(comment: str) -> str | None:
    """Why a comment cannot be kept, or None; the modal shows this under the box."""
    text = comment.strip()
    if not text:
        return "Write a short comment: what you are doing about it, or why no action is needed."
    if len(text) > COMMENT_MAX:
        return f"Keep it to {COMMENT_MAX} characters ({len(text)} now)."
    return None


def alert(key: str, *, session: Session) -> Finding:
    """The alert as it was sent (from the facts stored when it opened)."""
    event = _event(key, session=session)
    return _finding(event)


def acknowledge(key: str, user_id: str, comment: str, *, session: Session, now: datetime) -> Acknowledged:
    """Record the comment and an audit entry in the caller's transaction."""
    problem = comment_problem(comment)
    if problem:
        raise AlertError(problem)
    event = _event(key, session=session)
    row = AlertAcknowledgement(event_id=event.id or 0, user_id=user_id, comment=comment.strip(), at=now)
    session.add(row)
    detail = {"comment": row.comment}
    session.add(AuditLog(at=now, actor=user_id, action="acknowledge alert", subject=key, detail=detail))
    session.flush()
    return Acknowledged(id=row.id or 0, alert=_finding(event), user_id=user_id, comment=row.comment, at=now)


def acknowledgements(key: str, *, session: Session) -> list[AlertAcknowledgement]:
    statement = (
        select(AlertAcknowledgement)
        .join(AlertEvent, col(AlertEvent.id) == col(AlertAcknowledgement.event_id))
        .where(AlertEvent.key == key)
        .order_by(col(AlertAcknowledgement.at), col(AlertAcknowledgement.id))
    )
    return list(session.exec(statement))


def _event(key: str, *, session: Session) -> AlertEvent:
    event = session.exec(select(AlertEvent).where(AlertEvent.key == key)).first()
    if event is None:
        raise AlertError(f"There is no alert {key}.")
    return event


def _finding(event: AlertEvent) -> Finding:
    facts = {k: v for k, v in event.detail.items() if k in Finding.__dataclass_fields__}
    facts["previous"] = tuple(tuple(p) for p in facts.get("previous", ()))
    facts["period_end"] = date.fromisoformat(facts["period_end"])
    return Finding(**facts)
