"""Tell the app about a new commit: an HTTP webhook and/or a shell command, with bounded retries.

Hooks run on their own thread so a slow app never delays the next sync. Only the newest commit
matters to the app, so a pending retry is dropped as soon as a newer commit is published.

A webhook is retried only when it surely did not run: the connection failed, or the receiver
answered 408, 429 or 5xx. A call that times out may still be running at the receiver, and a
4xx is a refusal, so neither is fired again: both count as failed (hooks_failed).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gitsync.config import Config
from gitsync.log import Logger


@dataclass(frozen=True)
class HookJob:
    commit: str
    tree: Path


@dataclass(frozen=True)
class Problem:
    reason: str
    retry: bool  # False when firing again could run the hook twice, or cannot help


_RETRIED_STATUSES = frozenset({408, 429})


def _status_problem(code: int) -> Problem:
    return Problem(f"status {code}", code >= 500 or code in _RETRIED_STATUSES)


def call_webhook(url: str, job: HookJob, ref: str, timeout_s: float) -> Problem | None:
    """POST once; None on any 2xx, else what went wrong and whether a retry is safe."""
    # Here, not at the top: the sidecar decides whether it needs ssl before http.client loads
    # (cli.main: lean_imports.without_tls unless the webhook is https).
    import urllib.error
    import urllib.request

    body = json.dumps({"hash": job.commit, "ref": ref}).encode()
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Gitsync-Hash": job.commit, "Content-Type": "application/json",
        "User-Agent": "git-sync"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return None if 200 <= response.status < 300 else _status_problem(response.status)
    except urllib.error.HTTPError as exc:
        return _status_problem(exc.code)
    except TimeoutError:
        return Problem(f"no answer within {timeout_s:g}s (not retried: it may still be running)",
                       retry=False)
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            return Problem(f"connecting took over {timeout_s:g}s", retry=True)
        return Problem(f"{type(exc).__name__}: {exc.reason}", retry=True)
    except OSError as exc:
        return Problem(f"{type(exc).__name__}: {exc}", retry=True)


def run_exechook(argv: tuple[str, ...], job: HookJob, ref: str, link: Path,
                 timeout_s: float) -> Problem | None:
    """Run once; a hook that timed out was killed, so running it again is safe."""
    reason = _exechook_reason(argv, job, ref, link, timeout_s)
    return None if reason is None else Problem(reason, retry=True)


def _exechook_reason(argv: tuple[str, ...], job: HookJob, ref: str, link: Path,
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

    def _attempts(self, name: str, job: HookJob, call: Callable[[], Problem | None]) -> None:
        delay = self._cfg.hook_backoff_s
        attempt = 0
        for attempt in range(1, self._cfg.hook_retries + 2):
            problem = call()
            if problem is None:
                self._log.info("hook_ok", hook=name, commit=job.commit, attempt=attempt)
                self._on_result(name, True)
                return
            self._log.warn("hook_failed", hook=name, commit=job.commit, attempt=attempt,
                           error=problem.reason)
            if not problem.retry or attempt > self._cfg.hook_retries:
                break
            with self._cond:
                self._cond.wait_for(lambda: self._pending is not None or self._stop.is_set(),
                                    timeout=delay)
            if self._stop.is_set() or self._superseded(job):
                self._log.info("hook_superseded", hook=name, commit=job.commit)
                return
            delay *= 2
        self._on_result(name, False)
        self._log.error("hook_gave_up", hook=name, commit=job.commit, attempts=attempt)

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
