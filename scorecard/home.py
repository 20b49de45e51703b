"""What a person's Home tab shows: the scorecard, the latest figures' date, signals, what they lead."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, func, select

from scorecard import cards
from scorecard.cards import ScorecardView
from scorecard.digest import Signal, signals_of
from scorecard.models import HomeVisitor, ImportBatch, Lead


@dataclass(frozen=True)
class HomeView:
    board: ScorecardView
    signals: list[Signal]
    last_import: datetime | None
    leads: list[str]  # subjects this person leads: "metric:knife-crime", "area:p3"


def home_view(user_id: str, *, session: Session) -> HomeView:
    board = cards.scorecard(session=session)
    views = [view for group in board.groups for view in group.metrics]
    last_import = session.exec(select(func.max(ImportBatch.applied_at))).one()
    subjects = session.exec(select(Lead.subject).where(Lead.user_id == user_id).order_by(col(Lead.subject))).all()
    return HomeView(board=board, signals=signals_of(views), last_import=last_import, leads=list(subjects))


def remember_visitor(user_id: str, *, session: Session, now: datetime) -> None:
    visitor = session.get(HomeVisitor, user_id) or HomeVisitor(user_id=user_id)
    visitor.last_opened = now
    session.add(visitor)


def visitors(*, session: Session) -> list[str]:
    return list(session.exec(select(HomeVisitor.user_id).order_by(col(HomeVisitor.user_id))).all())
