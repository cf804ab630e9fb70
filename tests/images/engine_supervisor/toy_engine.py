"""A small engine for the supervisor's tests: it listens on a port, writes every signal it
gets to a journal, stops on SIGQUIT/SIGTERM (unless told to ignore them) or exits with a code
when asked through its port ("exit N\n")."""

from __future__ import annotations

import signal
import socket
import sys
from pathlib import Path
from types import FrameType


def main() -> int:
    port, journal = int(sys.argv[1]), Path(sys.argv[2])
    ignore_stop = "--ignore-stop" in sys.argv

    def note(text: str) -> None:
        with journal.open("a") as handle:
            handle.write(text + "\n")

    def on_signal(number: int, _frame: FrameType | None) -> None:
        name = signal.Signals(number).name
        note(name)
        if name in ("SIGQUIT", "SIGTERM") and not ignore_stop:
            sys.exit(0)

    for sig in (signal.SIGHUP, signal.SIGQUIT, signal.SIGTERM):
        signal.signal(sig, on_signal)
    server = socket.create_server(("127.0.0.1", port))
    note("listening")
    while True:
        conn, _ = server.accept()
        with conn:
            line = conn.makefile().readline().split()
            if line[:1] == ["exit"]:
                note("exit " + line[1])
                return int(line[1])


if __name__ == "__main__":
    sys.exit(main())
