"""Prove SlackStub answers the real slack_sdk and Bolt like Slack: auth, payloads, rate limits, retries, webhooks."""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlencode

import pytest
from slack_bolt import App
from slack_bolt.request import BoltRequest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.webhook import WebhookClient

from tests.slack_stub import SlackStub

FAST = FixedValueRetryIntervalCalculator(fixed_internal=0.01)  # keep backoff tests quick
SECTION = {"type": "section", "text": {"type": "mrkdwn", "text": "*hello*"}}


def stub_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("slack-stub")]


@pytest.fixture
def slack() -> Iterator[SlackStub]:
    with SlackStub() as stub:
        yield stub
    assert stub_threads() == [], "SlackStub.stop() left threads running"


@pytest.fixture
def client(slack: SlackStub) -> WebClient:
    return WebClient(token="xoxb-test", base_url=slack.api_url, retry_handlers=[])


def test_auth_test_returns_team_and_scopes(slack: SlackStub, client: WebClient) -> None:
    resp = client.auth_test()
    assert resp["team"] == "PCP Test" and resp["team_id"] == "T0TEST" and resp["user_id"] == "UBOT"
    assert "chat:write" in resp.headers["x-oauth-scopes"].split(",")
    (call,) = slack.calls("auth.test")
    assert call.headers["authorization"] == "Bearer xoxb-test" and call.status == 200 and not call.failed


@pytest.mark.parametrize(
    ("token", "error"),
    [("xoxp-user-token", "invalid_auth"), ("xoxb-revoked", "token_revoked"), (None, "not_authed")],
)
def test_bad_or_missing_token_is_rejected_like_slack(slack: SlackStub, token: str | None, error: str) -> None:
    with pytest.raises(SlackApiError) as exc:
        WebClient(token=token, base_url=slack.api_url).auth_test()
    assert exc.value.response.status_code == 200 and exc.value.response["error"] == error


def test_token_form_field_and_payload_are_parsed(slack: SlackStub) -> None:
    form = urlencode({"token": "xoxb-form", "payload": json.dumps({"type": "block_actions"})}).encode()
    with urllib.request.urlopen(slack.api_url + "api.test", data=form, timeout=5) as resp:
        assert json.loads(resp.read()) == {"ok": True}
    assert slack.calls("api.test")[0].body == {"token": "xoxb-form", "payload": {"type": "block_actions"}}


def test_post_message_with_blocks_is_recorded_as_parsed_json(slack: SlackStub, client: WebClient) -> None:
    first = client.chat_postMessage(channel="C1", text="hello", blocks=[SECTION])
    second = client.chat_postMessage(channel="C1", text="again", thread_ts=first["ts"])
    assert re.fullmatch(r"\d{10}\.\d{6}", first["ts"]) and second["ts"] > first["ts"]
    assert first["message"]["blocks"] == [SECTION] and first["message"]["bot_id"] == "BBOT"
    call = slack.calls("chat.postMessage")[0]
    assert call.headers["content-type"].startswith("application/json")
    assert call.body == {"channel": "C1", "text": "hello", "blocks": [SECTION]}
    assert json.loads(call.raw) == call.body and call.response == first.data
    assert slack.messages[1] == {"channel": "C1", "ts": second["ts"], "text": "again", "blocks": None,
                                 "thread_ts": first["ts"]}  # fmt: skip


def test_post_message_to_user_lands_in_dm(client: WebClient) -> None:
    assert client.chat_postMessage(channel="U123", text="hi")["channel"] == "D123"


@pytest.mark.filterwarnings("ignore::UserWarning")  # slack_sdk warns when text is missing; Slack says no_text
@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"channel": "", "text": "x"}, "channel_not_found"),
        ({"channel": "C1"}, "no_text"),
        ({"channel": "C1", "blocks": [{"text": "no type"}]}, "invalid_blocks"),
        ({"channel": "C1", "blocks": [SECTION] * 51}, "invalid_blocks"),
    ],
)
def test_post_message_validation_errors(client: WebClient, kwargs: dict, error: str) -> None:
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(**kwargs)
    assert exc.value.response["error"] == error


def test_conversations_open_form_body_returns_dm_channel(slack: SlackStub, client: WebClient) -> None:
    assert client.conversations_open(users=["U42", "U43"])["channel"]["id"] == "D42"
    call = slack.calls("conversations.open")[0]
    assert call.headers["content-type"] == "application/x-www-form-urlencoded"
    assert call.body == {"users": "U42,U43"}


def test_update_ephemeral_views_and_users(slack: SlackStub, client: WebClient) -> None:
    posted = client.chat_postMessage(channel="C1", text="draft")
    updated = client.chat_update(channel="C1", ts=posted["ts"], text="final")
    assert updated["text"] == "final" and slack.messages[0]["text"] == "final"
    with pytest.raises(SlackApiError, match="message_not_found"):
        client.chat_update(channel="C1", ts="1.000000", text="nope")
    assert client.chat_postEphemeral(channel="C1", user="U1", text="psst")["message_ts"]
    view = client.views_publish(user_id="U1", view={"type": "home", "blocks": [SECTION]})["view"]
    assert view["id"].startswith("V") and slack.views["U1"]["blocks"] == [SECTION]
    with pytest.raises(SlackApiError, match="invalid_arguments"):
        client.views_publish(user_id="U1", view={"type": "home", "blocks": [SECTION] * 101})
    assert client.users_info(user="U7")["user"] == {
        "id": "U7", "name": "u7", "real_name": "Test User U7", "tz": "Europe/London"}  # fmt: skip


def test_rate_limit_is_retried_after_retry_after(slack: SlackStub) -> None:
    slack.fail("chat.postMessage", status=429, retry_after=1)
    handler = RateLimitErrorRetryHandler(max_retry_count=1)
    client = WebClient(token="xoxb-test", base_url=slack.api_url, retry_handlers=[handler])
    assert client.chat_postMessage(channel="C1", text="hi")["ok"] is True
    first, second = slack.calls("chat.postMessage")
    assert (first.failed, first.status, second.failed, second.status) == (True, 429, False, 200)
    assert second.time - first.time >= 1.0, "client must wait Retry-After seconds"
    assert len(slack.messages) == 1


def test_rate_limit_without_handler_surfaces_429(slack: SlackStub, client: WebClient) -> None:
    slack.fail("chat.postMessage", status=429, retry_after=1)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C1", text="hi")
    resp = exc.value.response
    assert resp.status_code == 429 and resp.headers["Retry-After"] == "1" and resp["error"] == "ratelimited"
    assert len(slack.calls("chat.postMessage")) == 1 and slack.messages == []


def test_server_error_is_retried(slack: SlackStub) -> None:
    handler = ServerErrorRetryHandler(max_retry_count=1, interval_calculator=FAST)
    client = WebClient(token="xoxb-test", base_url=slack.api_url, retry_handlers=[handler])
    slack.fail("chat.postMessage", status=500)
    assert client.chat_postMessage(channel="C1", text="hi")["ok"] is True
    assert [c.status for c in slack.calls("chat.postMessage")] == [500, 200]
    slack.reset()
    slack.fail("chat.postMessage", status=503, times=2)
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C1", text="hi")
    assert exc.value.response.status_code == 503 and len(slack.calls("chat.postMessage")) == 2


def test_disconnect_is_retried_as_connection_error(slack: SlackStub) -> None:
    handler = ConnectionErrorRetryHandler(max_retry_count=1, interval_calculator=FAST)
    client = WebClient(token="xoxb-test", base_url=slack.api_url, retry_handlers=[handler])
    slack.fail("chat.postMessage", disconnect=True)
    assert client.chat_postMessage(channel="C1", text="hi")["ok"] is True
    assert [c.status for c in slack.calls("chat.postMessage")] == [0, 200]
    slack.fail("chat.postMessage", disconnect=True)
    with pytest.raises(OSError):  # RemoteDisconnected / URLError, as with a real dropped connection
        WebClient(token="xoxb-test", base_url=slack.api_url, retry_handlers=[]).chat_postMessage(channel="C", text="x")


def test_injected_api_error_then_recovery(slack: SlackStub, client: WebClient) -> None:
    slack.fail("chat.postMessage", error="channel_not_found")
    with pytest.raises(SlackApiError) as exc:
        client.chat_postMessage(channel="C1", text="hi")
    assert exc.value.response.status_code == 200 and exc.value.response["error"] == "channel_not_found"
    assert client.chat_postMessage(channel="C1", text="hi")["ok"] is True
    assert [c.failed for c in slack.calls("chat.postMessage")] == [True, False]


def test_delay_makes_the_client_time_out(slack: SlackStub) -> None:
    slack.fail("chat.postMessage", delay=2.0)
    client = WebClient(token="xoxb-test", base_url=slack.api_url, timeout=0.2, retry_handlers=[])  # type: ignore[arg-type]
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        client.chat_postMessage(channel="C1", text="slow")
    assert time.monotonic() - started < 1.5 and len(slack.calls("chat.postMessage")) == 1


def test_webhook_response_url(slack: SlackStub) -> None:
    resp = WebhookClient(slack.response_url("abc")).send(text="hi", response_type="ephemeral")
    assert (resp.status_code, resp.body) == (200, "ok")
    (call,) = slack.calls("webhook")
    assert call.name == "abc" and call.path == "/webhook/abc"
    assert call.body == {"text": "hi", "response_type": "ephemeral"}
    slack.fail("webhook", status=404, error="expired_url")
    assert (lambda r: (r.status_code, r.body))(WebhookClient(slack.response_url("abc")).send(text="x")) == (
        404, "expired_url")  # fmt: skip


def test_files_upload_v2_stores_bytes(slack: SlackStub, client: WebClient) -> None:
    resp = client.files_upload_v2(content=b"PNGDATA", filename="x.png", channel="C1", initial_comment="chart")
    file_id = resp["file"]["id"]
    assert slack.uploads[file_id] == b"PNGDATA" and resp["file"]["title"] == "x.png"
    complete = slack.calls("files.completeUploadExternal")[0].body
    assert complete["channel_id"] == "C1" and json.loads(complete["files"])[0]["id"] == file_id
    assert [c.method for c in slack.requests] == [
        "files.getUploadURLExternal", "upload", "files.completeUploadExternal"]  # fmt: skip


def test_wait_for_blocks_until_background_call_and_explains_timeouts(slack: SlackStub, client: WebClient) -> None:
    worker = threading.Timer(0.1, lambda: client.chat_postMessage(channel="C1", text="later"))
    worker.start()
    assert slack.wait_for("chat.postMessage", timeout=5)[0].body["text"] == "later"
    worker.join()
    with pytest.raises(AssertionError, match=r"expected 1 x 'chat.update'.*received: \['chat.postMessage /api/"):
        slack.wait_for("chat.update", timeout=0.1)


def test_reset_clears_recordings_and_faults(slack: SlackStub, client: WebClient) -> None:
    client.chat_postMessage(channel="C1", text="hi")
    slack.fail("auth.test", status=500)
    slack.reset()
    assert slack.requests == [] and slack.messages == []
    assert client.auth_test()["ok"] is True


def test_bolt_slash_command_responds_via_response_url(slack: SlackStub) -> None:
    app = App(
        client=WebClient(token="xoxb-test", base_url=slack.api_url),
        signing_secret="secret",
        request_verification_enabled=False,
        process_before_response=False,
    )

    @app.command("/pcp")
    def pcp(ack, respond, command) -> None:  # type: ignore[no-untyped-def]
        ack()
        respond(text=f"you said {command['text']}")

    body = urlencode({"command": "/pcp", "text": "hello", "response_url": slack.response_url("cmd"),
                      "team_id": "T0TEST", "user_id": "U1", "channel_id": "C1", "trigger_id": "1.2"})  # fmt: skip
    resp = app.dispatch(BoltRequest(body=body, headers={"content-type": ["application/x-www-form-urlencoded"]}))
    assert resp.status == 200
    (call,) = slack.wait_for("webhook")
    assert call.name == "cmd" and call.body["text"] == "you said hello"


def test_start_stop_are_idempotent_and_leave_no_threads() -> None:
    stub = SlackStub().start()
    assert stub.start() is stub and stub.api_url.startswith("http://127.0.0.1:")
    stub.stop()
    stub.stop()
    assert stub_threads() == []
    with pytest.raises(RuntimeError):
        _ = stub.api_url
