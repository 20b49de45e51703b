"""The `/pcp` slash command: acknowledge at once, then answer through `response_url`."""

from __future__ import annotations

from logging import Logger

from slack_bolt import Ack, App, Respond

from bot.db import Store
from bot.render import unescape
from handlers.answer import answer, split_share
from handlers.leads import is_owner_command, owner_command
from handlers.rules import is_rules_command, rules_command
from handlers.subscriptions import audit_command, digest_command, first_word, follow_command, snooze_command


def handle_pcp(*, ack: Ack, command: dict, respond: Respond, store: Store, admins: list[str], logger: Logger) -> None:
    ack()  # Slack shows an error after 3 s; the answer follows through response_url
    text = unescape(command.get("text", ""))  # should_escape: Slack sent &amp; &lt; &gt; and <@U…> mentions
    user_id, word = command.get("user_id", ""), first_word(text)
    if is_owner_command(text):
        message = owner_command(text, user_id=user_id, admins=admins, store=store)
    elif word in ("snooze", "unsnooze"):
        message = snooze_command(text, user_id=user_id, store=store)
    elif word in ("follow", "unfollow", "following"):
        message = follow_command(text, user_id=user_id, store=store)
    elif is_rules_command(text):
        message = rules_command(text, user_id=user_id, admins=admins, store=store)
    elif word == "audit":
        message = audit_command(user_id=user_id, admins=admins, store=store)
    elif word == "digest":
        channel_id = command.get("channel_id", "")
        message = digest_command(text, user_id=user_id, channel_id=channel_id, admins=admins, store=store)
    else:
        message = None
    if message is not None:
        respond(**message.payload(response_type="ephemeral"))
        return
    text, share = split_share(text)
    with store.session() as session:
        message = answer(text, session=session, shared_by=command.get("user_id") if share else None)
    respond(**message.payload(response_type="in_channel" if share else "ephemeral"))
    logger.info("answered /pcp", extra={"user": command.get("user_id"), "shared": share})


def register(app: App, *, store: Store, admins: list[str]) -> None:
    def pcp(ack: Ack, command: dict, respond: Respond, logger: Logger) -> None:
        handle_pcp(ack=ack, command=command, respond=respond, store=store, admins=admins, logger=logger)

    app.command("/pcp")(pcp)
