"""What `/pcp <text>` answers, as a Message: resolve the text, build the card, render it.

Shared by the slash command, the buttons, `pcp ask` and the console, so all of them say
exactly the same thing. No Slack objects here: callers decide how to send it.
"""

from __future__ import annotations

import re

from sqlmodel import Session

from bot.render import Message, render
from scorecard import cards, queries
from scorecard.lookup import Kind, resolve

SHARE_WORD = "share"
SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


def split_share(text: str) -> tuple[str, bool]:
    """`/pcp share knife-crime` asks for the answer in the channel rather than just to me."""
    words = text.strip().split(maxsplit=1)
    if words and words[0].lower() == SHARE_WORD:
        return (words[1] if len(words) > 1 else ""), True
    return text.strip(), False


def answer(text: str, *, session: Session, shared_by: str | None = None) -> Message:
    """The reply to `text`. With `shared_by` (a Slack user id) it is the in-channel version."""
    if shared_by is not None and not SLACK_USER_ID.match(shared_by):
        shared_by = None  # only a real user id may become a mention
    resolution = resolve(text, session=session)
    common = {
        "command": resolution.command,
        "corrected_from": resolution.corrected_from,
        "shared_by": shared_by,
        "interactive": shared_by is None,
    }
    match resolution.kind:
        case Kind.METRIC:
            card = cards.metric_card(resolution.key or "", session=session)
            return render("metric", card=card, **common)
        case Kind.AREA:
            card = cards.area_card(resolution.key or "", session=session)
            return render("area", card=card, **common)
        case Kind.FUNDING_STREAM:
            card = cards.funding_stream_card(resolution.key or "", session=session)
            return render("funding_stream", card=card, **common)
        case Kind.FUNDING:
            return render("funding", table=cards.funding_table(session=session), **common)
        case Kind.SCORECARD:
            return render("scorecard", card=cards.scorecard(session=session), **common)
        case Kind.HELP:
            return render("help", areas=[cards.area_ref(a) for a in queries.all_areas(session=session)])
        case _:
            return render("not_found", query=text.strip(), suggestions=resolution.suggestions)


def apology() -> Message:
    return render("error")
