"""Acknowledging an alert: the button opens a modal; the comment is recorded, then posted in
the thread of every copy of the alert, so all its recipients see who responded and how."""

from __future__ import annotations

from datetime import UTC, datetime
from logging import Logger

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.db import Store
from bot.outbox import without_retries
from bot.render import render, render_view
from handlers.jobs import deliver, reply_to_alert
from scorecard.acknowledgements import COMMENT_MAX, acknowledge, alert, comment_problem
from scorecard.alerts import AlertError

CALLBACK_ID = "pcp_ack"
BLOCK_ID, ACTION_ID = "ack", "comment"  # where the comment sits in view.state.values


def handle_ack_button(*, ack: Ack, body: dict, action: dict, client: WebClient, respond: Respond, store: Store) -> None:
    """Open the modal at once: the trigger_id Slack sent expires three seconds after the click."""
    ack()
    key = action.get("value", "")
    try:
        with store.session() as session:
            finding = alert(key, session=session)
    except AlertError:
        respond(**render("error").payload(response_type="ephemeral", replace_original=False))
        return
    view = render_view("ack_modal", f=finding, max_chars=COMMENT_MAX, callback_id=CALLBACK_ID, private_metadata=key)
    client.views_open(trigger_id=body["trigger_id"], view=view)


def handle_ack_submission(
    *, ack: Ack, body: dict, view: dict, client: WebClient, store: Store, admins: list[str], logger: Logger
) -> None:
    """Keep the comment, queue it under each copy of the alert, close the modal, then post.

    The modal closes only once the comment is committed; a problem with it is shown under the
    box instead, and nothing is recorded.
    """
    comment = view["state"]["values"].get(BLOCK_ID, {}).get(ACTION_ID, {}).get("value") or ""
    user_id = body["user"]["id"]
    problem = comment_problem(comment)
    if problem:
        ack(response_action="errors", errors={BLOCK_ID: problem})
        return
    try:
        with store.session() as session:
            key, now = view.get("private_metadata", ""), datetime.now(UTC)
            done = acknowledge(key, user_id, comment, session=session, now=now)
            reply = render("alert_acknowledged", a=done)
            queued = reply_to_alert(session, done.alert.key, suffix=f"ack:{done.id}", message=reply)
    except AlertError as error:
        ack(response_action="errors", errors={BLOCK_ID: str(error)})
        return
    ack()
    logger.info("alert acknowledged", extra={"alert": done.alert.key, "user": user_id, "replies": queued})
    deliver(store=store, client=without_retries(client), admins=admins)  # now, not at the next scheduled delivery


def register(app: App, *, store: Store, admins: list[str]) -> None:
    def button(ack: Ack, body: dict, action: dict, client: WebClient, respond: Respond) -> None:
        handle_ack_button(ack=ack, body=body, action=action, client=client, respond=respond, store=store)

    def submission(ack: Ack, body: dict, view: dict, client: WebClient, logger: Logger) -> None:
        handle_ack_submission(ack=ack, body=body, view=view, client=client, store=store, admins=admins, logger=logger)

    app.action("pcp_ack")(button)
    app.view(CALLBACK_ID)(submission)
