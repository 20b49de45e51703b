"""Slack entry points. Each module exposes register(app, ...); callbacks are plain functions."""

from __future__ import annotations

from slack_bolt import App

from bot.db import Store
from handlers import acknowledge, actions, charts, commands, errors, home, imports


def register(app: App, *, store: Store, admins: list[str], timezone: str) -> None:
    commands.register(app, store=store, admins=admins)
    actions.register(app, store=store)
    charts.register(app, store=store)
    acknowledge.register(app, store=store, admins=admins)
    imports.register(app, store=store, admins=admins, timezone=timezone)
    home.register(app, store=store)
    errors.register(app)
