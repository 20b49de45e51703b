"""Build the Bolt App: a WebClient that retries like a well-behaved Slack client, and our handlers."""

from __future__ import annotations

import logging

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_handlers import ServerErrorRetryHandler

import handlers
from bot.config import Settings
from bot.db import Store


def build_client(settings: Settings) -> WebClient:
    """Retry connection errors, 429s (honouring Retry-After) and 5xx, as design.md asks."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    return WebClient(
        token=token,
        base_url=settings.slack_api_url,
        timeout=10,
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=3),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


class _ClientTokenNotice(logging.Filter):
    """Bolt warns that SLACK_BOT_TOKEN is "unused" whenever a client is passed in; ours carries
    that very token, so the warning would only mislead whoever reads the start-up log."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def create_app(settings: Settings, *, store: Store) -> App:
    """The App with every listener registered. Verifies the bot token with auth.test at start."""
    bolt_log = logging.getLogger("slack_bolt.App")
    if not any(isinstance(f, _ClientTokenNotice) for f in bolt_log.filters):
        bolt_log.addFilter(_ClientTokenNotice())
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    app = App(client=build_client(settings), signing_secret=secret, process_before_response=False)
    handlers.register(app, store=store, admins=settings.pcp_admins, timezone=settings.pcp_timezone)
    return app
