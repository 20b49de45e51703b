"""Who leads what: Slack users who own a metric or a priority and receive its alerts.

Every change is recorded in the audit log with who made it. Subjects are written
"metric:<key>" or "area:<key>"; a metric's leads include its priority's leads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml
from sqlmodel import Session, col, select

from scorecard import queries
from scorecard.lookup import Kind, resolve
from scorecard.models import AuditLog, Follow, Lead

SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
LEADS_FILE = Path(__file__).resolve().parent.parent / "data" / "leads.yaml"


class LeadError(ValueError):
    """The metric, priority or user could not be understood; the message says which."""


@dataclass(frozen=True)
class Subject:
    key: str  # "metric:knife-crime" / "area:p3"
    label: str


def subject_for(text: str, *, session: Session) -> Subject:
    """A metric or priority named the way /pcp understands names; anything else is refused."""
    resolution = resolve(text, session=session)
    if resolution.kind is Kind.METRIC and resolution.corrected_from is None:
        metric = queries.metric_by_key(resolution.key or "", session=session)
        return Subject(f"metric:{metric.key}", metric.short_name)
    if resolution.kind is Kind.AREA and resolution.corrected_from is None:
        area = queries.area_by_key(resolution.key or "", session=session)
        return Subject(f"area:{area.key}", area.short_name)
    hint = ", ".join(s.command for s in resolution.suggestions) or resolution.command
    raise LeadError(f"“{text}” is not a metric or priority" + (f" (did you mean {hint}?)" if hint else ""))


def check_user(user_id: str) -> str:
    if not SLACK_USER.match(user_id):
        raise LeadError(f"“{user_id}” is not a Slack user id (like U0123ABCD)")
    return user_id


def add_lead(subject: Subject, user_id: str, *, session: Session, actor: str) -> bool:
    """False when that person already leads it (nothing changes, nothing is recorded)."""
    check_user(user_id)
    existing = session.exec(select(Lead).where(Lead.subject == subject.key, Lead.user_id == user_id)).first()
    if existing:
        return False
    session.add(Lead(subject=subject.key, user_id=user_id, added_by=actor))
    session.add(AuditLog(actor=actor, action="add lead", subject=subject.key, detail={"user": user_id}))
    return True


def remove_lead(subject: Subject, user_id: str, *, session: Session, actor: str) -> bool:
    existing = session.exec(select(Lead).where(Lead.subject == subject.key, Lead.user_id == user_id)).first()
    if not existing:
        return False
    session.delete(existing)
    session.add(AuditLog(actor=actor, action="remove lead", subject=subject.key, detail={"user": user_id}))
    return True


def leads(*, session: Session, subject: Subject | None = None) -> list[Lead]:
    statement = select(Lead).order_by(col(Lead.subject), col(Lead.user_id))
    if subject is not None:
        statement = statement.where(Lead.subject == subject.key)
    return list(session.exec(statement).all())


def leads_of_metric(metric_key: str, *, session: Session) -> list[str]:
    """Who hears about a metric: its own leads, then its priority's, each once."""
    metric = queries.metric_by_key(metric_key, session=session)
    if metric is None:
        return []
    area = next(a for a in queries.all_areas(session=session) if a.id == metric.area_id)
    subjects = [f"metric:{metric.key}", f"area:{area.key}"]
    rows = session.exec(select(Lead).where(col(Lead.subject).in_(subjects)).order_by(col(Lead.id))).all()
    return list(dict.fromkeys(row.user_id for row in sorted(rows, key=lambda r: subjects.index(r.subject))))


def follow(metric_key: str, user_id: str, *, session: Session) -> bool:
    """False when already following. Following is about one's own DMs, so it is not audited."""
    check_user(user_id)
    if session.exec(select(Follow).where(Follow.metric_key == metric_key, Follow.user_id == user_id)).first():
        return False
    session.add(Follow(metric_key=metric_key, user_id=user_id))
    return True


def unfollow(metric_key: str, user_id: str, *, session: Session) -> bool:
    existing = session.exec(select(Follow).where(Follow.metric_key == metric_key, Follow.user_id == user_id)).first()
    if existing is None:
        return False
    session.delete(existing)
    return True


def followed_by(user_id: str, *, session: Session) -> list[str]:
    statement = select(Follow.metric_key).where(Follow.user_id == user_id).order_by(col(Follow.metric_key))
    return list(session.exec(statement).all())


def recipients_of_metric(metric_key: str, *, session: Session) -> list[str]:
    """Who gets a metric's alerts: its leads, its priority's leads, then its followers, each once."""
    followers = session.exec(select(Follow.user_id).where(Follow.metric_key == metric_key).order_by(col(Follow.id)))
    return list(dict.fromkeys([*leads_of_metric(metric_key, session=session), *followers]))


def seed_leads(*, session: Session, path: Path = LEADS_FILE) -> int:
    """Add the leads listed in data/leads.yaml that the store lacks; never removes anyone."""
    if not path.exists():
        return 0
    listed = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("leads") or {}
    added = 0
    for name, users in listed.items():
        try:
            subject = subject_for(str(name), session=session)
        except LeadError as error:
            raise LeadError(f"{path.name}: {error}") from None
        for user in users or []:
            added += add_lead(subject, check_user(str(user)), session=session, actor=f"file:{path.name}")
    return added
