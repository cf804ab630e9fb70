"""Counters and health shared by the sync loop, the hook thread and the HTTP server."""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass


@dataclass
class Snapshot:
    repo: str
    ref: str
    link: str
    publish: str
    started_unix: float
    syncs_total: int = 0
    syncs_ok: int = 0
    failures_total: int = 0
    consecutive_failures: int = 0
    commits_published: int = 0
    triggers_total: int = 0
    hooks_ok: int = 0
    hooks_failed: int = 0
    last_commit: str | None = None
    last_success_unix: float | None = None
    last_change_unix: float | None = None
    last_attempt_unix: float | None = None
    last_error: str | None = None
    last_error_kind: str | None = None
    history: str | None = None
    first_sync_done: bool = False
    healthy: bool = False
    ready: bool = False


class Status:
    def __init__(self, snapshot: Snapshot, max_failures: int) -> None:
        self._s = snapshot
        self._max_failures = max_failures
        self._lock = threading.Lock()

    def _recompute(self) -> None:
        s = self._s
        s.ready = s.last_commit is not None
        s.healthy = s.first_sync_done and s.consecutive_failures < self._max_failures

    def record_success(self, commit: str, changed: bool, history: str) -> None:
        now = time.time()
        with self._lock:
            s = self._s
            s.syncs_total += 1
            s.syncs_ok += 1
            s.consecutive_failures = 0
            s.last_attempt_unix = s.last_success_unix = now
            s.first_sync_done = True
            if commit:
                s.last_commit = commit
            if changed:
                s.commits_published += 1
                s.last_change_unix = now
                s.history = history
            s.last_error = s.last_error_kind = None
            self._recompute()

    def record_failure(self, kind: str, message: str) -> int:
        with self._lock:
            s = self._s
            s.syncs_total += 1
            s.failures_total += 1
            s.consecutive_failures += 1
            s.last_attempt_unix = time.time()
            s.last_error, s.last_error_kind = message, kind
            self._recompute()
            return s.consecutive_failures

    def record_published(self, commit: str | None) -> None:
        """A tree left by an earlier run (e.g. the init container) is served before any sync."""
        with self._lock:
            self._s.last_commit = commit
            self._recompute()

    def record_trigger(self) -> None:
        with self._lock:
            self._s.triggers_total += 1

    def record_hook(self, _name: str, ok: bool) -> None:
        with self._lock:
            if ok:
                self._s.hooks_ok += 1
            else:
                self._s.hooks_failed += 1

    def snapshot(self) -> Snapshot:
        with self._lock:
            return Snapshot(**asdict(self._s))


_METRICS = (
    ("syncs_total", "counter", "sync attempts"),
    ("syncs_ok", "counter", "successful syncs"),
    ("failures_total", "counter", "failed syncs"),
    ("consecutive_failures", "gauge", "failures since the last success"),
    ("commits_published", "counter", "new commits published"),
    ("triggers_total", "counter", "accepted POST /sync requests"),
    ("hooks_ok", "counter", "successful hook calls"),
    ("hooks_failed", "counter", "hook calls that gave up"),
    ("last_success_unix", "gauge", "time of the last successful sync"),
    ("healthy", "gauge", "1 while /healthz returns 200"),
)


def prometheus_text(s: Snapshot) -> str:
    lines: list[str] = []
    for name, kind, text in _METRICS:
        value = getattr(s, name)
        lines += [f"# HELP gitsync_{name} {text}", f"# TYPE gitsync_{name} {kind}",
                  f"gitsync_{name} {float(value or 0)}"]
    lines.append(f'gitsync_info{{commit="{s.last_commit or ""}"}} 1')
    return "\n".join(lines) + "\n"
