"""App stand-in for the log-rotate tests: writes a numbered sequence into three files at a
steady rate and never rotates them itself; something else (the log-rotate sidecar) does.

Every line is ``<L>:<n> <padding>`` with L in E/W/I (error/warning/info.log) and n counting
from 0 per file. Files are opened with O_APPEND (so copytruncate leaves no NUL bytes). The app
reopens its files, creating them if missing, when told: on SIGHUP, or on POST /reopen to
127.0.0.1:WRITER_REOPEN_PORT (answered once the files are reopened). Then it prints
"writer done" and stays up until stopped, as an app does. Stdlib only; runs as `python3 -c`.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

LEVEL_FILES = {"E": "error.log", "W": "warning.log", "I": "info.log"}
PADDING = "x" * 60


class Files:
    """The three open files; reopen() swaps them between two batches."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.lock = threading.Lock()
        self.fds = {letter: self._open(name) for letter, name in LEVEL_FILES.items()}
        self.reopens = 0

    def _open(self, name: str) -> int:
        return os.open(self.directory / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)

    def reopen(self) -> None:
        with self.lock:
            for letter, name in LEVEL_FILES.items():
                old = self.fds[letter]
                self.fds[letter] = self._open(name)
                os.close(old)
            self.reopens += 1

    def write(self, start: int, stop: int) -> None:
        with self.lock:
            for letter, fd in self.fds.items():
                os.write(fd, "".join(f"{letter}:{n} {PADDING}\n"
                                     for n in range(start, stop)).encode())


def serve_reopen(files: Files, port: int) -> None:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            if self.path != "/reopen":
                self.send_response(404)
            else:
                files.reopen()
                self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    directory = Path(os.environ.get("WRITER_DIR", "/var/log/app"))
    lines = int(os.environ.get("WRITER_LINES_PER_FILE", "20000"))
    rate = float(os.environ.get("WRITER_RATE", "500"))  # lines per second per file
    batch = int(os.environ.get("WRITER_BATCH", "10"))
    files = Files(directory)
    pending = threading.Event()
    # The handler only flags; the main loop reopens between two batches, as an app does.
    signal.signal(signal.SIGHUP, lambda *_: pending.set())
    if os.environ.get("WRITER_REOPEN_PORT"):
        serve_reopen(files, int(os.environ["WRITER_REOPEN_PORT"]))
    started = time.monotonic()
    for start in range(0, lines, batch):
        if pending.is_set():
            pending.clear()
            files.reopen()
        files.write(start, min(start + batch, lines))
        delay = started + (start + batch) / rate - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    print(f"writer done reopens={files.reopens}", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
