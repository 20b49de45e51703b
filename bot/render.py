"""Render templates/*.j2 into Slack messages (plain-text fallback + Block Kit blocks).

Safety by construction: every string in the context is mrkdwn-escaped (& < >) before the
template sees it, so text from users or data can never become `<!channel>`, a mention or
a disguised link, however a template uses it. Templates write blocks with the macros in
`templates/_blocks.j2`, one JSON block per line; every message is then checked against
Slack's limits with slack_sdk's own Block Kit models before it is sent.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import BaseModel
from slack_sdk.models.blocks import Block
from slack_sdk.models.views import View

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
MAX_BLOCKS = 50
MAX_TEXT = 3000  # the fallback `text`; Slack advises at most 4,000
BLOCKS_MARKER = "@@blocks@@"  # where templates/_message.j2 separates the text from the blocks


def escape(text: str) -> str:
    """Slack's mrkdwn escaping: only & < > (in that order), never the whole of HTML."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def escape_context(value: Any) -> Any:
    """Escape every string inside dataclasses, models, dicts, lists and tuples; keep other values."""
    if isinstance(value, Enum):
        return value
    if isinstance(value, str):
        return escape(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: escape_context(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {escape_context(k) if isinstance(k, str) else k: escape_context(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [escape_context(v) for v in value]
    if isinstance(value, BaseModel):  # SQLModel rows (an AuditLog's detail holds users' words)
        return escape_context(value.model_dump())
    return value


def clip(text: str, limit: int) -> str:
    """Cut to Slack's limit without leaving half an entity ("&am") at the end."""
    if len(text) <= limit:
        return text
    return re.sub(r"&[a-z]*$", "", text[: limit - 1]) + "…"


def _decimal(value: Any) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def figure(value: float | int | Decimal | None, unit: str) -> str:
    """A figure as the document writes it: 2,599 / 72.6% / 67 (no unit stated)."""
    if value is None:
        return "–"
    number = _decimal(value)
    whole = number == number.to_integral_value() and unit != "percent"
    text = f"{int(number):,}" if whole else f"{number:,}"
    return f"{text}%" if unit == "percent" else text


def signed(value: Decimal | int | float, unit: str) -> str:
    """A change with its sign: +402, -233, -1.4 pp (percentage points for rates)."""
    number = _decimal(value)
    sign = "+" if number > 0 else "-" if number < 0 else "±"
    magnitude = figure(abs(number), "count" if unit == "percent" else unit)
    return f"{sign}{magnitude} pp" if unit == "percent" else f"{sign}{magnitude}"


def percent(value: Decimal | None, *, signed_: bool = False) -> str:
    if value is None:
        return "–"
    text = f"{value:,}%"
    return f"+{text}" if signed_ and value > 0 else text


def money(value: int) -> str:
    return f"£{value:,}"


@cache
def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
        keep_trailing_newline=False,
    )
    env.filters.update(
        figure=figure,
        signed=signed,
        percent=percent,
        money=money,
        clip=clip,
        unescape=unescape,
        mrkdwn_object=lambda text: {"type": "mrkdwn", "text": text},
    )
    return env


@dataclass(frozen=True)
class Message:
    """What a reply or a post carries: the notification/screen-reader text and the blocks."""

    text: str
    blocks: list[dict] = field(default_factory=list)

    def payload(self, **extra: Any) -> dict[str, Any]:
        return {"text": self.text, "blocks": self.blocks, **extra}


class InvalidMessage(ValueError):
    """A rendered message breaks one of Slack's rules that slack_sdk does not check itself."""


def render(name: str, **context: Any) -> Message:
    """Render templates/<name>.j2 (which extends _message.j2) into a validated Message."""
    output = _environment().get_template(f"{name}.j2").render({k: escape_context(v) for k, v in context.items()})
    text, _, block_lines = output.partition(BLOCKS_MARKER)
    blocks = [json.loads(line) for line in block_lines.splitlines() if line.strip()]
    message = Message(text=clip(re.sub(r"\n{3,}", "\n\n", text.strip()), MAX_TEXT), blocks=blocks)
    validate(message)
    return message


def render_view(name: str, **fields: Any) -> dict[str, Any]:
    """A Home tab or modal view from templates/<name>.j2, validated as slack_sdk's View model.

    The template's blocks (up to 100) become the view's blocks; top-level `{% set %}`s of
    `type`, `title`, `submit` and `close` give the view's type and labels, so the wording stays
    in the template. `fields` that are not template context (callback_id, private_metadata)
    go to the view as they are.
    """
    view_keys = {"callback_id", "private_metadata"}
    context = {k: escape_context(v) for k, v in fields.items() if k not in view_keys}
    module = _environment().get_template(f"{name}.j2").make_module(context)
    blocks = [json.loads(line) for line in str(module).partition(BLOCKS_MARKER)[2].splitlines() if line.strip()]
    view: dict[str, Any] = {"type": getattr(module, "type", "home"), "blocks": blocks}
    for label in ("title", "submit", "close"):
        if hasattr(module, label):
            view[label] = {"type": "plain_text", "text": unescape(getattr(module, label)), "emoji": True}
    view.update({k: v for k, v in fields.items() if k in view_keys})
    View(**view).to_dict()  # raises SlackObjectFormationError past 100 blocks, on a long title, any bad block
    return view


def phrase(name: str, **context: Any) -> str:
    """One sentence the CLI prints: the macro `name` of templates/cli.txt.j2 (terminal text, unescaped)."""
    return str(getattr(_environment().get_template("cli.txt.j2").module, name)(**context))


def render_plain(name: str, **context: Any) -> str:
    """Render a plain-text template for the terminal (no mrkdwn, so nothing to escape)."""
    return _environment().get_template(f"{name}.j2").render(**context)


def validate(message: Message) -> None:
    """Slack's limits, checked with slack_sdk's Block Kit models plus the ones it skips."""
    if not message.text:
        raise InvalidMessage("a message needs a plain-text fallback")
    if len(message.blocks) > MAX_BLOCKS:
        raise InvalidMessage(f"{len(message.blocks)} blocks; Slack allows {MAX_BLOCKS} in a message")
    for raw, block in zip(message.blocks, Block.parse_all(message.blocks), strict=True):
        if block is None:
            raise InvalidMessage(f"not a Block Kit block: {raw!r:.80}")
        block.to_dict()  # validates the block and everything inside it; raises SlackObjectFormationError
        for item in getattr(block, "fields", None) or []:
            if len(item.text) > 2000:
                raise InvalidMessage("a section field is over 2,000 characters")
