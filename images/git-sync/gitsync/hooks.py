"""Tell the app about a new commit: an HTTP webhook and/or a shell command, with bounded retries.

Hooks run on their own thread so a slow app never delays the next sync. Only the newest commit
matters to the app, so a pending retry is dropped as soon as a newer commit is published.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitsync.config import Config
from gitsync.log import Logger


@dataclass(frozen=True)
class HookJob:
    commit: str
    tree: Path


def call_webhook(url: str, job: HookJob, ref: str, timeout_s: float) -> str | None:
    """POST once; None on any 2xx, else a short reason."""
    body = json.dumps({"hash": job.commit, "ref": ref}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Gitsync-Hash": job.commit, "Content-Type": "application/json",
        "User-Agent": "git-sync"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return None if 200 <= response.status < 300 else f"status {response.status}"
    except urllib.error.HTTPError as exc:
        return f"status {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"


def run_exechook(argv: tuple[str, ...], job: HookJob, ref: str, link: Path,
                 timeout_s: float) -> str | None:
    env = dict(os.environ, GITSYNC_HASH=job.commit, GITSYNC_REF=ref, GITSYNC_PATH=str(link),
               GITSYNC_TREE=str(job.tree))
    try:
        done = subprocess.run(list(argv), cwd=job.tree, env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout_s,
                              check=False)
    except subprocess.TimeoutExpired:
        return f"timed out after {timeout_s:g}s"
    except OSError as exc:  # the program is missing or not executable
        return f"cannot run {argv[0]!r}: {exc.strerror}"
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or [""]
        return f"exit {done.returncode}: {tail[0][:200]}"
    return None


class HookRunner:
    def __init__(self, cfg: Config, logger: Logger, stop: threading.Event,
                 on_result: Callable[[str, bool], None]) -> None:
        self._cfg = cfg
        self._log = logger
        self._stop = stop
        self._on_result = on_result
        self._pending: HookJob | None = None
        self._cond = threading.Condition()

    @property
    def enabled(self) -> bool:
        return bool(self._cfg.webhook_url or self._cfg.exechook_argv)

    def submit(self, job: HookJob) -> None:
        with self._cond:
            self._pending = job
            self._cond.notify()

    def _superseded(self, job: HookJob) -> bool:
        with self._cond:
            return self._pending is not None and self._pending != job

    def _attempts(self, name: str, job: HookJob, call: Callable[[], str | None]) -> None:
        delay = self._cfg.hook_backoff_s
        for attempt in range(1, self._cfg.hook_retries + 2):
            problem = call()
            if problem is None:
                self._log.info("hook_ok", hook=name, commit=job.commit, attempt=attempt)
                self._on_result(name, True)
                return
            self._log.warn("hook_failed", hook=name, commit=job.commit, attempt=attempt,
                           error=problem)
            if attempt > self._cfg.hook_retries:
                break
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._stop.is_set(),
                                    timeout=delay)
            if self._stop.is_set() or self._superseded(job):
                self._log.info("hook_superseded", hook=name, commit=job.commit)
                return
            delay *= 2
        self._on_result(name, False)
        self._log.error("hook_gave_up", hook=name, commit=job.commit,
                        attempts=self._cfg.hook_retries + 1)

    def run_job(self, job: HookJob) -> None:
        cfg = self._cfg
        if cfg.webhook_url:
            url = cfg.webhook_url
            self._attempts("webhook", job,
                           lambda: call_webhook(url, job, cfg.ref, cfg.webhook_timeout_s))
        if cfg.exechook_argv and not self._superseded(job):
            link = cfg.root / cfg.link
            self._attempts("exechook", job, lambda: run_exechook(
                cfg.exechook_argv, job, cfg.ref, link, cfg.exechook_timeout_s))

    def serve_forever(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._stop.is_set())
                job, self._pending = self._pending, None
            if job is not None:
                self.run_job(job)
