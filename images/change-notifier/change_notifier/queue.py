"""The on-disk queue of events not yet delivered, and the snapshot of what was last notified.

Each event is one file, `queue/<sequence>.json`, written and fsynced before the snapshot that
records its change; a delivered event's file is removed only after the receiver's 2xx. So a
SIGKILL at any moment loses nothing: an event not yet queued is found again by the start-up
scan (the snapshot did not move), and one delivered but not yet removed is sent again with
the same id (at-least-once; receivers deduplicate by source + id)."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any


def write_atomic(path: Path, data: bytes) -> None:
    part = path.with_name(f".{path.name}.part")
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(part, path)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def event_id(source: str, kind: str, path: str, size: int, mtime_ns: int) -> str:
    """The same change found twice (a restart's scan, a redelivery) gets the same id."""
    text = f"{source}\0{kind}\0{path}\0{size}\0{mtime_ns}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Queue:
    def __init__(self, state: Path, limit: int) -> None:
        self.folder = state / "queue"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.limit = limit
        self.lock = threading.Condition()
        names = sorted(p.name for p in self.folder.glob("*.json"))
        self.pending = names
        self.sequence = int(names[-1].split(".")[0]) + 1 if names else 0
        self.dropped = 0

    def __len__(self) -> int:
        with self.lock:
            return len(self.pending)

    def put_many(self, events: list[dict[str, Any]]) -> int:
        """Queue events durably; returns how many were dropped because the queue is full."""
        dropped = 0
        wrote = False
        for event in events:
            with self.lock:
                if len(self.pending) >= self.limit:
                    self.dropped += 1
                    dropped += 1
                    continue
                name = f"{self.sequence:012d}.json"
                self.sequence += 1
            write_atomic(self.folder / name, json.dumps(event).encode())
            wrote = True
            with self.lock:
                self.pending.append(name)
                self.lock.notify_all()
        if wrote:
            fsync_dir(self.folder)
        return dropped

    def oldest(self, timeout: float) -> tuple[str, bytes] | None:
        with self.lock:
            if not self.pending:
                self.lock.wait(timeout)
            if not self.pending:
                return None
            name = self.pending[0]
        return name, (self.folder / name).read_bytes()

    def done(self, name: str) -> None:
        (self.folder / name).unlink(missing_ok=True)
        with self.lock:
            if self.pending and self.pending[0] == name:
                self.pending.pop(0)

    def oldest_age(self, now: float) -> float:
        with self.lock:
            name = self.pending[0] if self.pending else None
        if name is None:
            return 0.0
        try:
            return max(0.0, now - (self.folder / name).stat().st_mtime)
        except FileNotFoundError:
            return 0.0


class Snapshot:
    """What was last notified: relative path -> (size, mtime_ns), saved atomically."""

    def __init__(self, state: Path) -> None:
        self.path = state / "snapshot.json"
        self.known = self.path.exists()
        raw = json.loads(self.path.read_text()) if self.known else {}
        self.files: dict[str, tuple[int, int]] = {k: (v[0], v[1]) for k, v in raw.items()}

    def save(self) -> None:
        write_atomic(self.path, json.dumps(self.files, separators=(",", ":")).encode())
        self.known = True
