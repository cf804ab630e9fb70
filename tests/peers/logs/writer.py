"""App stand-in for the log-collector tests: writes a known numbered sequence into three files.

Every line is ``<L>:<n> <padding>`` with L in E/W/I (error/warning/info.log) and n counting from 0
per file, so a receiver can check per file that it got exactly 0..N-1, in order, once each.
Halfway it rotates every file: WRITER_ROTATE=rename (logrotate's default "create"),
copytruncate (copy, then truncate in place) or none; WRITER_QUIET seconds of silence come
before the rotation (logrotate runs when it runs; copytruncate is only safe once the shipper
has read to the end). Then it prints "writer done" and stays up until stopped, as an app does.
Stdlib only, configured by environment so a pod spec can set it; it runs as `python3 -c`.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

LEVEL_FILES = {"E": "error.log", "W": "warning.log", "I": "info.log"}
PADDING = "x" * 60


def rotate(path: Path, mode: str) -> None:
    """Rotate one file the way logrotate would."""
    if mode == "rename":
        path.rename(path.with_name(path.name + ".1"))
    elif mode == "copytruncate":
        shutil.copyfile(path, path.with_name(path.name + ".1"))
        os.truncate(path, 0)


def open_log(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def write_sequence(directory: Path, lines_per_file: int, batch: int, pause: float, mode: str,
                   quiet: float) -> None:
    """Write batches round-robin over the three files, rotating once at the midpoint."""
    fds = {letter: open_log(directory / name) for letter, name in LEVEL_FILES.items()}
    middle = lines_per_file // 2 // batch * batch
    for start in range(0, lines_per_file, batch):
        if start == middle and mode != "none":
            time.sleep(quiet)
            for letter, name in LEVEL_FILES.items():
                rotate(directory / name, mode)
                if mode == "rename":
                    os.close(fds[letter])
                    fds[letter] = open_log(directory / name)
        stop = min(start + batch, lines_per_file)
        for letter, fd in fds.items():
            os.write(fd, "".join(f"{letter}:{n} {PADDING}\n" for n in range(start, stop)).encode())
        if pause:
            time.sleep(pause)
    for fd in fds.values():
        os.close(fd)


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    write_sequence(
        Path(os.environ.get("WRITER_DIR", "/var/log/app")),
        lines_per_file=int(os.environ.get("WRITER_LINES_PER_FILE", "40000")),
        batch=int(os.environ.get("WRITER_BATCH", "500")),
        pause=float(os.environ.get("WRITER_PAUSE", "0")),
        mode=os.environ.get("WRITER_ROTATE", "rename"),
        quiet=float(os.environ.get("WRITER_QUIET", "0")),
    )
    print("writer done", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
