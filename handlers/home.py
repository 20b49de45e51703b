"""The App Home tab: published when someone opens it, and again for them when figures change."""

from __future__ import annotations

from datetime import UTC, datetime
from logging import Logger

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.db import Store
from bot.render import render_view
from scorecard.home import home_view, remember_visitor, visitors


def publish_home(user_id: str, *, client: WebClient, store: Store) -> None:
    with store.session() as session:
        view = render_view("home", home=home_view(user_id, session=session))
    client.views_publish(user_id=user_id, view=view)


def handle_home_opened(*, event: dict, client: WebClient, store: Store, logger: Logger) -> None:
    if event.get("tab") != "home":
        return
    user_id = event["user"]
    with store.session() as session:
        remember_visitor(user_id, session=session, now=datetime.now(UTC))
    publish_home(user_id, client=client, store=store)


def refresh_homes(*, client: WebClient, store: Store, logger: Logger) -> int:
    """After an import: everyone who has opened Home sees the new figures without reopening it."""
    with store.session() as session:
        users = visitors(session=session)
    refreshed = 0
    for user_id in users:
        try:
            publish_home(user_id, client=client, store=store)
            refreshed += 1
        except SlackApiError as error:  # one person's failure (left the workspace...) must not stop the rest
            logger.warning("could not refresh %s's Home tab: %s", user_id, error.response.get("error"))
    return refreshed


def register(app: App, *, store: Store) -> None:
    def home_opened(event: dict, client: WebClient, logger: Logger) -> None:
        handle_home_opened(event=event, client=client, store=store, logger=logger)

    app.event("app_home_opened")(home_opened)
