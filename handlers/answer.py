"""What `/pcp <text>` answers, as a Message: resolve the text, build the card, render it.

Shared by the slash command, the buttons, `pcp ask` and the console, so all of them say
exactly the same thing. No Slack objects here: callers decide how to send it.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict

from sqlmodel import Session

from bot.render import Message, render
from scorecard import cards, queries
from scorecard.lookup import Kind, resolve

SHARE_WORD = "share"
SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_CACHE_LOCK = threading.Lock()


def split_share(text: str) -> tuple[str, bool]:
    """`/pcp share knife-crime` asks for the answer in the channel rather than just to me."""
    words = text.strip().split(maxsplit=1)
    if words and words[0].lower() == SHARE_WORD:
        return (words[1] if len(words) > 1 else ""), True
    return text.strip(), False


_CACHE: OrderedDict[tuple, Message] = OrderedDict()
CACHE_SIZE = 1024


def answer(text: str, *, session: Session, shared_by: str | None = None) -> Message:
    """The reply to `text`. With `shared_by` (a Slack user id) it is the in-channel version.

    Answers change only when the data does, so they are cached per data version: a repeated
    question costs one primary-key read instead of several queries and a render.
    """
    if shared_by is not None and not SLACK_USER_ID.match(shared_by):
        shared_by = None  # only a real user id may become a mention
    key = (*queries.data_version_key(session=session), " ".join(text.split()).lower(), shared_by)
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key]
    message = _answer(text, session=session, shared_by=shared_by)
    with _CACHE_LOCK:
        _CACHE[key] = message
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return message


def _answer(text: str, *, session: Session, shared_by: str | None) -> Message:
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
        case Kind.IMPORT_HELP:
            return render("import_help")
        case _:
            return render("not_found", query=text.strip(), suggestions=resolution.suggestions)


def apology() -> Message:
    return render("error")
