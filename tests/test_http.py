"""The real HTTP endpoint with Slack-signed requests; replies land on the Slack stand-in."""

from __future__ import annotations

import json
import time

from slack_sdk.models.blocks import Block

from tests.conftest import get, post, sign


def _all_text(reply: dict) -> str:
    return json.dumps(reply, ensure_ascii=False)


def test_slash_command_is_acknowledged_then_answered_privately(bot):
    started = time.monotonic()
    reply = bot.command("knife-crime")
    assert reply.status == 200
    assert time.monotonic() - started < 3.0
    (answer,) = bot.replies(1)
    assert answer["response_type"] == "ephemeral"
    assert "Knife crime" in answer["text"]
    assert answer["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Knife crime", "emoji": True},
    }
    assert all(block is not None for block in Block.parse_all(answer["blocks"]))


def test_bad_signature_is_refused_and_nothing_runs(bot):
    reply = bot.command("knife-crime", signed=False, **{"X-Slack-Signature": "v0=" + "0" * 64})
    assert reply.status == 401
    reply = bot.command("knife-crime", signed=False)
    assert reply.status == 401
    time.sleep(0.3)
    assert bot.slack.calls("webhook") == []


def test_signature_with_the_wrong_secret_is_refused(bot):
    body = "command=%2Fpcp&text=ksi&response_url=" + bot.slack.response_url("cmd")
    reply = post(bot.events_url, body, sign(body, secret="not-our-secret"), "application/x-www-form-urlencoded")
    assert reply.status == 401
    time.sleep(0.3)
    assert bot.slack.calls("webhook") == []


def test_stale_timestamp_is_refused_even_when_correctly_signed(bot):
    body = "command=%2Fpcp&text=ksi&user_id=U1&response_url=" + bot.slack.response_url("cmd")
    stale = sign(body, timestamp=int(time.time()) - 301)
    assert post(bot.events_url, body, stale, "application/x-www-form-urlencoded").status == 401
    fresh = sign(body, timestamp=int(time.time()) - 200)
    assert post(bot.events_url, body, fresh, "application/x-www-form-urlencoded").status == 200
    assert len(bot.replies(1)) == 1


def test_broadcast_syntax_from_a_user_never_reaches_slack_live(bot):
    bot.command("<!channel> <!here> <@U0BOSS> <https://evil.example|click>")
    (answer,) = bot.replies(1)
    raw = _all_text(answer)
    for live in ("<!channel>", "<!here>", "<@U0BOSS>", "<https://evil.example"):
        assert live not in raw
    assert "&lt;!channel&gt;" in raw


def test_share_keyword_posts_in_channel_and_credits_the_sharer(bot):
    bot.command("share ksi", user="U0LEAD")
    (answer,) = bot.replies(1)
    assert answer["response_type"] == "in_channel"
    assert "Shared by <@U0LEAD>" in _all_text(answer)
    assert not any(b["type"] == "actions" for b in answer["blocks"]), "a shared card carries no private buttons"


def test_share_button_posts_in_channel_and_removes_the_private_copy(bot):
    assert bot.click("pcp_share", "knife-crime", user="U0LEAD").status == 200
    shared, deleted = bot.replies(2)
    assert shared["response_type"] == "in_channel" and shared["replace_original"] is False
    assert "Shared by <@U0LEAD>" in _all_text(shared)
    assert deleted["delete_original"] is True


def test_priority_button_replaces_the_card_with_the_priority(bot):
    bot.click("pcp_open_area", "priority 3")
    (answer,) = bot.replies(1)
    assert answer["replace_original"] is True
    assert answer["blocks"][0]["text"]["text"] == "Priority 3: Safer Places and Thriving Communities"


def test_a_miss_offers_suggestions_as_buttons(bot):
    bot.command("knif crme stats")
    (answer,) = bot.replies(1)
    buttons = [e for b in answer["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert "knife-crime" in [button["value"] for button in buttons]


def test_healthz_reports_the_database(bot):
    reply = get(f"{bot.base_url}/healthz")
    assert reply.status == 200
    empty = {"pending": 0, "failed": 0, "oldest_due_seconds": None}
    assert json.loads(reply.body) == {"status": "ok", "database": "ok", "outbox": empty, "problems": []}


def test_unknown_paths_are_404(bot):
    assert get(f"{bot.base_url}/admin").status == 404


def test_open_the_card_on_an_alert_adds_the_card_below_it(bot):
    bot.click("pcp_view", "knife-crime")
    (answer,) = bot.replies(1)
    assert answer["replace_original"] is False, "the alert itself stays"
    assert answer["blocks"][0]["text"]["text"] == "Knife crime"
