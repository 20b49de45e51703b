"""Buttons on answers: share the answer in the channel, or open a related answer."""

from __future__ import annotations

import re

from slack_bolt import Ack, App, Respond

from bot.db import Store
from handlers.answer import answer
from handlers.subscriptions import follow_command, snooze_command

OPEN_ACTION = re.compile(r"^pcp_open")
SNOOZE_ACTION = re.compile(r"^pcp_snooze_(1|4|12)$")
FOLLOW_ACTION = re.compile(r"^pcp_(un)?follow$")


def handle_share(*, ack: Ack, body: dict, action: dict, respond: Respond, store: Store) -> None:
    """Post the answer for everyone, credited to whoever shared it, and remove the private copy."""
    ack()
    with store.session() as session:
        message = answer(action.get("value", ""), session=session, shared_by=body["user"]["id"])
    respond(**message.payload(response_type="in_channel", replace_original=False))
    respond(delete_original=True)


def handle_open(*, ack: Ack, action: dict, respond: Respond, store: Store) -> None:
    """Replace the private answer with the one the button names (a priority, a suggestion...)."""
    ack()
    with store.session() as session:
        message = answer(action.get("value", ""), session=session)
    respond(**message.payload(response_type="ephemeral", replace_original=True))


def handle_view(*, ack: Ack, action: dict, respond: Respond, store: Store) -> None:
    """ "Open the card" on an alert: the card arrives below it; the alert itself stays."""
    ack()
    with store.session() as session:
        message = answer(action.get("value", ""), session=session)
    respond(**message.payload(response_type="ephemeral", replace_original=False))


def handle_snooze(*, ack: Ack, body: dict, action: dict, respond: Respond, store: Store) -> None:
    """A snooze button on an alert: no alerts about that metric for the clicker, for N weeks."""
    ack()
    weeks = action["action_id"].rsplit("_", 1)[1]
    message = snooze_command(f"snooze {action.get('value', '')} {weeks}", user_id=body["user"]["id"], store=store)
    respond(**message.payload(response_type="ephemeral", replace_original=False))


def handle_follow(*, ack: Ack, body: dict, action: dict, respond: Respond, store: Store) -> None:
    """Follow (or unfollow) from a card: whoever clicks hears (or stops hearing) its alerts."""
    ack()
    verb = "follow" if action["action_id"] == "pcp_follow" else "unfollow"
    message = follow_command(f"{verb} {action.get('value', '')}", user_id=body["user"]["id"], store=store)
    respond(**message.payload(response_type="ephemeral", replace_original=False))


def register(app: App, *, store: Store) -> None:
    def share(ack: Ack, body: dict, action: dict, respond: Respond) -> None:
        handle_share(ack=ack, body=body, action=action, respond=respond, store=store)

    def open_(ack: Ack, action: dict, respond: Respond) -> None:
        handle_open(ack=ack, action=action, respond=respond, store=store)

    def view(ack: Ack, action: dict, respond: Respond) -> None:
        handle_view(ack=ack, action=action, respond=respond, store=store)

    app.action("pcp_share")(share)

    def snooze_(ack: Ack, body: dict, action: dict, respond: Respond) -> None:
        handle_snooze(ack=ack, body=body, action=action, respond=respond, store=store)

    def follow_(ack: Ack, body: dict, action: dict, respond: Respond) -> None:
        handle_follow(ack=ack, body=body, action=action, respond=respond, store=store)

    app.action("pcp_view")(view)
    app.action(FOLLOW_ACTION)(follow_)
    app.action(SNOOZE_ACTION)(snooze_)
    app.action(OPEN_ACTION)(open_)
