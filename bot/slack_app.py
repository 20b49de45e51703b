"""Build the Bolt App: a WebClient that retries like a well-behaved Slack client, and our handlers."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

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
    # Bolt's default pool has 5 workers, and a worker stays busy until Slack accepts the answer at response_url;
    # with Slack taking ~300 ms, five workers cap an instance near 15 answers/s and new commands wait for their ack
    # (bench/load.py --webhook-delay-ms 300). Acks need a free worker, so the pool is sized for concurrency.
    executor = ThreadPoolExecutor(max_workers=settings.pcp_listener_threads, thread_name_prefix="pcp-listener")
    app = App(
        client=build_client(settings),
        signing_secret=secret,
        process_before_response=False,
        listener_executor=executor,
    )
    handlers.register(app, store=store, admins=settings.pcp_admins, timezone=settings.pcp_timezone)
    return app
