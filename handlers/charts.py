"""The "Show chart" button on a metric card: draw the SPC chart and send it to whoever asked.

The card is an ephemeral message, and ephemeral messages cannot carry files; uploading to the
channel would show the chart to everyone who never asked. So the chart goes to the person's
direct message with pcp (files_upload_v2, Slack's external-upload flow), and the ephemeral
reply says where it went.
"""

from __future__ import annotations

from logging import Logger

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackClientError

from bot.charts import metric_chart
from bot.db import Store
from bot.render import render
from scorecard import queries

CHART_ACTION = "pcp_chart"


def handle_show_chart(
    *, ack: Ack, body: dict, action: dict, client: WebClient, respond: Respond, store: Store, logger: Logger
) -> None:
    """Upload the metric's chart to the clicking user's DM, or say why there is none."""
    ack()
    key = action.get("value", "")
    user_id = body.get("user", {}).get("id", "")
    with store.session() as session:
        metric = queries.metric_by_key(key, session=session)
        name = metric.short_name if metric else key
        chart = metric_chart(key, session=session) if metric else None
    if chart is None:
        respond(**render("chart_none", metric_name=name).payload(response_type="ephemeral", replace_original=False))
        return
    try:
        dm = client.conversations_open(users=user_id)["channel"]["id"]
        client.files_upload_v2(
            content=chart.png,
            filename=chart.filename,
            title=f"{chart.title}: {chart.subtitle}",
            alt_txt=chart.alt_text,
            channel=dm,
            initial_comment=f"{chart.title}: {chart.subtitle}.",
        )
    except SlackClientError as error:  # an API error or a failed upload POST: say so, and log why
        logger.error("could not send the chart of %s to %s: %s", key, user_id, error, exc_info=error)
        respond(**render("chart_failed", metric_name=name).payload(response_type="ephemeral", replace_original=False))
        return
    message = render("chart_sent", metric_name=name, filename=chart.filename)
    respond(**message.payload(response_type="ephemeral", replace_original=False))
    logger.info("sent a chart", extra={"user": user_id, "metric": key})


def register(app: App, *, store: Store) -> None:
    def show_chart(ack: Ack, body: dict, action: dict, client: WebClient, respond: Respond, logger: Logger) -> None:
        handle_show_chart(ack=ack, body=body, action=action, client=client, respond=respond, store=store, logger=logger)

    app.action(CHART_ACTION)(show_chart)
