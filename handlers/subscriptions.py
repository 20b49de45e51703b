"""`/pcp snooze` and `/pcp digest`: what a person hears, and where the digest goes.

/pcp snooze knife-crime [1|4|12]   no alerts about it for that many weeks (default 4); for yourself
/pcp unsnooze knife-crime          alerts again
/pcp digest                        preview this week's digest, privately
/pcp digest here | stop            admins: this channel gets (or stops getting) the weekly digest
/pcp follow knife-crime            its alerts as a DM, without leading it (unfollow, following)
/pcp audit                         admins: the latest changes, who made them and when
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.db import Store
from bot.render import Message, render
from scorecard.alerts import AlertError, snooze
from scorecard.digest import add_digest_channel, build_digest, last_digest_at, remove_digest_channel
from scorecard.leads import follow, followed_by, unfollow
from scorecard.lookup import Kind, resolve
from scorecard.queries import recent_changes

DEFAULT_WEEKS = 4
MAX_WEEKS = 52


def first_word(text: str) -> str:
    return text.split(maxsplit=1)[0].lower() if text.split() else ""


def snooze_command(text: str, *, user_id: str, store: Store, now: datetime | None = None) -> Message:
    now = now or datetime.now(UTC)
    word, _, rest = text.strip().partition(" ")
    words = rest.split()
    weeks = int(words.pop()) if words and words[-1].isdigit() else DEFAULT_WEEKS
    ending = word.lower() == "unsnooze"
    with store.session() as session:
        resolution = resolve(" ".join(words), session=session)
        if resolution.kind is not Kind.METRIC or not 1 <= weeks <= MAX_WEEKS:
            return render("snoozed", metric=None, until=None, ending=ending, query=" ".join(words), max_weeks=MAX_WEEKS)
        until = now if ending else now + timedelta(weeks=weeks)
        try:
            snooze(resolution.key or "", user_id, until=until, session=session)
        except AlertError:
            return render("snoozed", metric=None, until=None, ending=ending, query=" ".join(words), max_weeks=MAX_WEEKS)
    return render("snoozed", metric=resolution.key, until=until, ending=ending, query="", max_weeks=MAX_WEEKS)


def digest_command(text: str, *, user_id: str, channel_id: str, admins: list[str], store: Store) -> Message:
    action = text.split()[1].lower() if len(text.split()) > 1 else "preview"
    if action == "preview":
        now = datetime.now(UTC)
        with store.session() as session:
            since = last_digest_at(session=session) or now - timedelta(days=7)
            return render("digest", digest=build_digest(session=session, since=since, until=now))
    if user_id not in admins:
        return render("not_admin", action="choose where the weekly digest is posted")
    with store.session() as session:
        if action in ("here", "add", "start"):
            changed = add_digest_channel(channel_id, session=session, actor=user_id)
            return render("digest_channel", channel=channel_id, added=True, changed=changed)
        if action in ("stop", "remove"):
            changed = remove_digest_channel(channel_id, session=session, actor=user_id)
            return render("digest_channel", channel=channel_id, added=False, changed=changed)
    return render("digest_channel", channel=channel_id, added=None, changed=False)


def follow_command(text: str, *, user_id: str, store: Store) -> Message:
    """`/pcp follow knife-crime`, `/pcp unfollow knife-crime`, `/pcp following`."""
    word, _, rest = text.strip().partition(" ")
    word = word.lower()
    with store.session() as session:
        if word == "following":
            return render(
                "followed", action="list", metric=None, changed=False, metrics=followed_by(user_id, session=session)
            )
        resolution = resolve(rest, session=session)
        if resolution.kind is not Kind.METRIC:
            return render("followed", action="unknown", metric=None, changed=False, metrics=[], query=rest)
        change = follow if word == "follow" else unfollow
        changed = change(resolution.key or "", user_id, session=session)
    return render("followed", action=word, metric=resolution.key, changed=changed, metrics=[])


def audit_command(*, user_id: str, admins: list[str], store: Store, limit: int = 25) -> Message:
    if user_id not in admins:
        return render("not_admin", action="see the audit log")
    with store.session() as session:
        entries = recent_changes(session=session, limit=limit)
    return render("audit", entries=entries)
