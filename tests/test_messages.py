"""Every answer the bot can give is a valid Slack message within Slack's limits.

Validated with slack_sdk's own Block Kit models (to_dict() runs every validator, nested
ones included) plus the limits slack_sdk does not check (50 blocks, 2,000 per field).
"""

from __future__ import annotations

import json

import pytest
from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.blocks import Block

from bot.render import InvalidMessage, Message, escape, validate
from handlers.answer import answer
from scorecard import queries
from scorecard.lookup import resolve


def every_question(session) -> list[str]:
    questions = [m.key for m in queries.all_metrics(session=session)]
    questions += [a.key for a in queries.all_areas(session=session)]
    questions += [f"funding {s.key}" for s in queries.all_streams(session=session)]
    return [*questions, "funding", "scorecard", "import", "help", "", "officers", "xyzzy", "knife crme"]


def assert_valid_slack_message(message: Message) -> None:
    assert message.text.strip(), "every message has a plain-text fallback"
    assert message.text == message.text.strip()
    assert len(message.text) <= 4000
    assert 1 <= len(message.blocks) <= 50
    for raw, block in zip(message.blocks, Block.parse_all(message.blocks), strict=True):
        assert block is not None, raw
        assert block.to_dict() == raw
        for item in raw.get("fields", []):
            assert len(item["text"]) <= 2000
    action_ids = [e["action_id"] for b in message.blocks if b["type"] == "actions" for e in b["elements"]]
    assert len(action_ids) == len(set(action_ids)), "action_ids are unique within a message"


def test_every_answer_is_a_valid_slack_message(session):
    for question in every_question(session):
        assert_valid_slack_message(answer(question, session=session))
        assert_valid_slack_message(answer(question, session=session, shared_by="U0LEAD"))


def test_every_question_resolves_to_what_it_names(session):
    for question in every_question(session)[:-3]:
        assert resolve(question, session=session).kind.value != "not_found", question


def test_shared_answers_have_no_buttons_and_credit_the_sharer(session):
    message = answer("ksi", session=session, shared_by="U0LEAD")
    assert not [b for b in message.blocks if b["type"] == "actions"]
    assert "<@U0LEAD>" in json.dumps(message.blocks)


def test_only_a_real_user_id_can_become_a_mention(session):
    message = answer("ksi", session=session, shared_by="<!channel>")
    assert "<!channel>" not in json.dumps(message.payload())


def test_data_text_is_escaped_wherever_it_appears(session):
    for question in ["<!here> knife", "a & b <@U1>", "<https://x.example|y>"]:
        raw = json.dumps(answer(question, session=session).payload())
        assert "<!here>" not in raw and "<@U1>" not in raw and "<https://x" not in raw


def test_escape_is_slacks_three_characters_only():
    assert escape("a & b < c > d \"e\" 'f'") == "a &amp; b &lt; c &gt; d \"e\" 'f'"


def test_validate_rejects_what_slack_would():
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}
    with pytest.raises(SlackObjectFormationError):
        validate(Message(text="t", blocks=[section]))
    with pytest.raises(InvalidMessage):
        validate(Message(text="t", blocks=[{"type": "divider"}] * 51))
    with pytest.raises(InvalidMessage):
        validate(Message(text="", blocks=[{"type": "divider"}]))
    with pytest.raises(InvalidMessage):
        validate(Message(text="t", blocks=[{"type": "no-such-block"}]))


def test_metric_card_reports_the_documents_own_inconsistency(session):
    raw = json.dumps(answer("female officers", session=session).payload(), ensure_ascii=False)
    assert "The document states a change of +1.3%, but its own figures give +4.2 pp" in raw


def test_funding_table_shows_computed_totals_and_flags_the_stated_one(session):
    message = answer("funding", session=session)
    raw = json.dumps(message.payload(), ensure_ascii=False)
    assert "*£16,966,014* awarded" in raw  # the sum of the 2023/24 rows
    assert "total awarded is £16,996,014" in raw  # the document's figure, flagged
    assert "*£16,324,360* awarded" in raw and "*£13,688,437* allocated" in raw
    assert "Estimated figures (Sept 2023)" in raw


def test_help_lists_every_priority_and_theme(session):
    raw = json.dumps(answer("help", session=session).payload())
    for area in queries.all_areas(session=session):
        assert area.short_name in raw
