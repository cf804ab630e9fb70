"""One plain-text line per event on stderr: ``ts=... level=... event=... key=value``."""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import TextIO

from gitsync.config import redact_url


def _format_value(value: object) -> str:
    text = redact_url(str(value))
    if text == "" or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text)
    return text


def format_line(level: str, event: str, fields: dict[str, object], now: float) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    parts = [f"ts={stamp}", f"level={level}", f"event={event}"]
    parts += [f"{k}={_format_value(v)}" for k, v in fields.items() if v is not None]
    return " ".join(parts)


class Logger:
    def __init__(self, verbose: bool, stream: TextIO = sys.stderr) -> None:
        self.verbose = verbose
        self._stream = stream
        self._lock = threading.RLock()  # re-entrant: the SIGTERM handler logs too

    def _emit(self, level: str, event: str, fields: dict[str, object]) -> None:
        line = format_line(level, event, fields, time.time())
        with self._lock:
            self._stream.write(line + "\n")
            self._stream.flush()

    def info(self, event: str, **fields: object) -> None:
        self._emit("info", event, fields)

    def warn(self, event: str, **fields: object) -> None:
        self._emit("warn", event, fields)

    def error(self, event: str, **fields: object) -> None:
        self._emit("error", event, fields)

    def debug(self, event: str, **fields: object) -> None:
        if self.verbose:
            self._emit("debug", event, fields)
