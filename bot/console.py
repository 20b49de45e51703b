"""A local console that answers like Slack would, for trying pcp without a workspace.

It renders the same Block Kit message the bot would send, as terminal text.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import TextIO

from bot.render import Message, unescape

EMOJI = {
    ":large_green_circle:": "🟢",
    ":red_circle:": "🔴",
    ":white_circle:": "⚪",
    ":large_orange_circle:": "🟠",
    ":large_blue_circle:": "🔵",
    ":black_circle:": "⚫",
    ":warning:": "⚠️ ",
    ":inbox_tray:": "📥",
}
PROMPT = "/pcp "


def _mrkdwn(text: str, *, bold: bool) -> str:
    for code, symbol in EMOJI.items():
        text = text.replace(code, symbol)
    if bold:
        text = re.sub(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])", "\033[1m\\1\033[0m", text)
    return unescape(text)


def to_terminal(message: Message, *, bold: bool = False) -> str:
    """Blocks as lines: headers underlined, fields one per line, buttons in brackets."""
    out: list[str] = []
    for block in message.blocks:
        kind = block["type"]
        if kind == "header":
            title = block["text"]["text"]
            out += ["", title, "=" * len(title)]
        elif kind == "section":
            if "text" in block:
                out.append(_mrkdwn(block["text"]["text"], bold=bold))
            for item in block.get("fields", []):
                out.append("  " + _mrkdwn(item["text"], bold=bold).replace("\n", " · ", 1).replace("\n", " "))
        elif kind == "context":
            out.append("  " + " ".join(_mrkdwn(e.get("text", ""), bold=False) for e in block["elements"]))
        elif kind == "actions":
            out.append("  " + "  ".join(f"[{e['text']['text']}]" for e in block["elements"]))
        elif kind == "divider":
            out.append("-" * 40)
    return "\n".join(out).strip("\n") + "\n"


def run(ask: Callable[[str], Message], *, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout) -> None:
    """Read `/pcp …` lines (the `/pcp` is optional) until EOF or `quit`."""
    interactive = stdin.isatty()
    if interactive:
        stdout.write(
            "pcp console – type what you would after /pcp (e.g. knife-crime, priority 3, help). Ctrl-D quits.\n"
        )
    while True:
        if interactive:
            stdout.write(PROMPT)
            stdout.flush()
        line = stdin.readline()
        if not line:
            break
        text = line.strip()
        if text.startswith("/pcp"):
            text = text[4:].strip()
        if text in ("quit", "exit"):
            break
        stdout.write(to_terminal(ask(text), bold=interactive and stdout.isatty()) + "\n")
        stdout.flush()
