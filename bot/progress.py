"""Progress for long terminal jobs: a bar on a terminal, a line every tenth when piped."""

from __future__ import annotations

import sys
import time
from typing import TextIO

BAR_WIDTH = 30


class Progress:
    """Call with (done, total) as often as you like; it draws at most ten times a second."""

    def __init__(self, label: str, *, unit: str = "", stream: TextIO = sys.stderr) -> None:
        self.label, self.unit, self.stream = label, unit, stream
        self.tty = stream.isatty()
        self._last_draw = 0.0
        self._last_tenth = -1

    def __call__(self, done: int, total: int) -> None:
        share = done / total if total else 1.0
        if self.tty:
            now = time.monotonic()
            if now - self._last_draw < 0.1 and done < total:
                return
            self._last_draw = now
            filled = round(share * BAR_WIDTH)
            bar = "█" * filled + "░" * (BAR_WIDTH - filled)
            end = "\n" if done >= total else ""
            self.stream.write(f"\r{self.label} {bar} {share:4.0%} {self._amount(done, total)}{end}")
        else:
            tenth = int(share * 10)
            if tenth == self._last_tenth:
                return
            self._last_tenth = tenth
            self.stream.write(f"{self.label}: {share:.0%} {self._amount(done, total)}\n")
        self.stream.flush()

    def _amount(self, done: int, total: int) -> str:
        if self.unit == "bytes":
            return f"({done / 2**20:,.1f} of {total / 2**20:,.1f} MB)"
        return f"({done:,} of {total:,} {self.unit})".replace("  ", " ")
