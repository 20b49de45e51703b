"""`/pcp owner …`: who leads a metric or priority. Anyone may look; only admins may change.

/pcp owner knife-crime @someone          add a lead
/pcp owner remove knife-crime @someone   remove one
/pcp owner knife-crime                   list a metric's leads; /pcp owner list for all
"""

from __future__ import annotations

import re

from bot.db import Store
from bot.render import Message, render
from scorecard.leads import LeadError, add_lead, leads, remove_lead, subject_for

OWNER_WORDS = {"owner", "owners", "lead", "leads"}
MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def is_owner_command(text: str) -> bool:
    words = text.split(maxsplit=1)
    return bool(words) and words[0].lower() in OWNER_WORDS


def owner_command(text: str, *, user_id: str, admins: list[str], store: Store) -> Message:
    """The reply to an owner command; changes are made (and audited) only for admins."""
    rest = text.split(maxsplit=1)[1] if len(text.split(maxsplit=1)) > 1 else ""
    action, _, remainder = rest.partition(" ")
    if action.lower() not in ("add", "remove", "list"):
        action, remainder = ("add" if MENTION.search(rest) else "list"), rest
    users = MENTION.findall(remainder)
    name = MENTION.sub("", remainder).strip()
    action = action.lower()
    with store.session() as session:
        try:
            subject = subject_for(name, session=session) if name else None
            if action == "list" or (subject is not None and not users):
                return render("leads", leads=leads(session=session, subject=subject), subject=subject)
            if user_id not in admins:
                return render("not_admin", action="change who leads a metric")
            if subject is None or not users:
                raise LeadError("say which metric or priority, and mention the people: /pcp owner knife-crime @name")
            change = add_lead if action == "add" else remove_lead
            changed = [u for u in users if change(subject, u, session=session, actor=user_id)]
            return render("leads_changed", action=action, subject=subject, users=users, changed=changed)
        except LeadError as error:
            return render("leads_changed", action=action, subject=None, users=[], changed=[], problem=str(error))
