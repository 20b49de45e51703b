"""The app manifest declares what the code serves, within Slack's manifest limits."""

from __future__ import annotations

import yaml

from bot.server import EVENTS_PATH
from tests.conftest import REPO


def test_manifest_matches_the_code_and_slacks_limits():
    manifest = yaml.safe_load((REPO / "bot" / "manifest.yml").read_text())
    assert 1 <= len(manifest["display_information"]["name"]) <= 35
    assert len(manifest["features"]["bot_user"]["display_name"]) <= 80
    (command,) = manifest["features"]["slash_commands"]
    assert command["command"] == "/pcp"
    assert 1 <= len(command["description"]) <= 2000 and len(command["usage_hint"]) <= 1000
    assert command["should_escape"] is True, "so /pcp owner gets user ids; pcp unescapes the text on arrival"
    assert command["url"].endswith(EVENTS_PATH)
    assert manifest["settings"]["interactivity"]["is_enabled"] is True, "the Share and Open buttons need it"
    assert manifest["settings"]["interactivity"]["request_url"].endswith(EVENTS_PATH)
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    assert {"commands", "chat:write", "files:read", "im:history"} <= set(scopes), "what imports from Slack need"
    assert {"im:write", "channels:history", "groups:history"} <= set(scopes), "what exactly-once delivery needs"
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened", "message.im"]
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    assert manifest["settings"]["event_subscriptions"]["request_url"].endswith(EVENTS_PATH)
    assert manifest["features"]["app_home"]["messages_tab_read_only_enabled"] is False
