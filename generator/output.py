"""Terminal output: plain tables, and colour only when it helps (a TTY and no NO_COLOR)."""

from __future__ import annotations

import os
import sys
from typing import TextIO


def use_colour(stream: TextIO) -> bool:
    return "NO_COLOR" not in os.environ and stream.isatty() and os.environ.get("TERM") != "dumb"


def paint(text: str, code: str, stream: TextIO = sys.stderr) -> str:
    return f"\033[{code}m{text}\033[0m" if use_colour(stream) else text


def one_line(message: str) -> str:
    return " ".join(message.split())


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
              for row in rows]
    return "\n".join(lines) + "\n"
