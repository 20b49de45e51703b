"""The one global error handler: log the failure with its traceback, apologise to the person."""

from __future__ import annotations

from logging import Logger

from slack_bolt import App, Respond

from handlers.answer import apology


def handle_error(*, error: Exception, body: dict, respond: Respond | None, logger: Logger) -> None:
    logger.error("unhandled error: %s", error, exc_info=error)
    if respond is not None and body.get("response_url"):
        try:
            respond(**apology().payload(response_type="ephemeral", replace_original=False))
        except Exception:  # the apology itself failing must not hide the first error
            logger.exception("could not send the apology")


def register(app: App) -> None:
    def on_error(error: Exception, body: dict, respond: Respond, logger: Logger) -> None:
        handle_error(error=error, body=body, respond=respond, logger=logger)

    app.error(on_error)
