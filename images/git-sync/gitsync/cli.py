"""Entry point: parse configuration, run the sync loop, serve HTTP, stop cleanly on SIGTERM."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from lean_imports import without_tls

from gitsync import __version__
from gitsync.config import Config, ConfigError, load_config, redact_url
from gitsync.gitcmd import GitError, GitRunner
from gitsync.hooks import HookJob, HookRunner
from gitsync.log import Logger
from gitsync.status import Snapshot, Status
from gitsync.sync import Syncer

EXIT_OK, EXIT_SYNC_FAILED, EXIT_USAGE = 0, 1, 2


def next_delay(period_s: float, consecutive_failures: int, max_backoff_s: float) -> float:
    """Poll period when healthy; exponential backoff (capped) after failures."""
    if consecutive_failures == 0:
        return period_s
    return min(period_s * 2.0 ** (consecutive_failures - 1), max(period_s, max_backoff_s))


class App:
    def __init__(self, cfg: Config, logger: Logger) -> None:
        self.cfg = cfg
        self.log = logger
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.private_dir = Path(tempfile.mkdtemp(prefix="git-sync-"))
        self.git = GitRunner(cfg, logger, self.private_dir)
        self.status = Status(Snapshot(repo=redact_url(cfg.repo), ref=cfg.ref,
                                      link=str(cfg.root / cfg.link), publish=cfg.publish,
                                      started_unix=time.time()), cfg.max_failures)
        self.hooks = HookRunner(cfg, logger, self.stop, self.status.record_hook)
        self.syncer = Syncer(cfg, logger, self.git)

    def on_signal(self, signum: int, _frame: FrameType | None) -> None:
        self.log.info("shutdown", signal=signal.Signals(signum).name)
        self.stop.set()
        self.wake.set()
        self.git.kill_current()

    def trigger(self) -> None:
        self.wake.set()

    def sync_step(self) -> HookJob | bool | None:
        """One attempt. False on failure, a HookJob for a new commit, None when unchanged."""
        started = time.monotonic()
        try:
            outcome = self.syncer.sync()
        except (GitError, OSError) as exc:
            if self.stop.is_set():
                return False
            kind = exc.kind if isinstance(exc, GitError) else "filesystem"
            message = exc.message if isinstance(exc, GitError) else str(exc)
            count = self.status.record_failure(kind, message)
            self.log.error("sync_failed", kind=kind, error=message, consecutive=count,
                           serving=self.syncer.published or "none")
            if count == self.cfg.max_failures:
                self.log.error("unhealthy", consecutive=count, max_failures=self.cfg.max_failures)
            return False
        failures_before = self.status.snapshot().consecutive_failures
        self.status.record_success(outcome.commit, outcome.changed, outcome.history)
        ms = round((time.monotonic() - started) * 1000, 1)
        if failures_before:
            self.log.info("recovered", after_failures=failures_before)
        if not outcome.changed:
            self.log.debug("unchanged", commit=outcome.commit, ms=ms)
            return None
        self.log.info("published", commit=outcome.commit, previous=outcome.previous or "none",
                      history=outcome.history, ms=ms)
        self.syncer.cleanup()
        if outcome.history == "rewritten":
            self.log.warn("history_rewritten", ref=self.cfg.ref, old=outcome.previous,
                          new=outcome.commit, note="the remote ref was force-pushed")
        return HookJob(outcome.commit, outcome.tree)

    def run_one_time(self) -> int:
        for attempt in range(1, self.cfg.max_failures + 1):
            result = self.sync_step()
            if isinstance(result, HookJob) and self.hooks.enabled:
                self.hooks.run_job(result)
            if result is not False:
                return EXIT_OK
            if self.stop.is_set() or attempt == self.cfg.max_failures:
                break
            self.wake.wait(next_delay(self.cfg.period_s, attempt, self.cfg.max_backoff_s))
        return EXIT_SYNC_FAILED

    def run_forever(self) -> int:
        if self.hooks.enabled:
            threading.Thread(target=self.hooks.serve_forever, name="hooks", daemon=True).start()
        while not self.stop.is_set():
            self.wake.clear()
            result = self.sync_step()
            if isinstance(result, HookJob) and self.hooks.enabled:
                self.hooks.submit(result)
            failures = self.status.snapshot().consecutive_failures
            self.wake.wait(next_delay(self.cfg.period_s, failures, self.cfg.max_backoff_s))
        return EXIT_OK

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        cfg = self.cfg
        self.log.info("starting", version=__version__, repo=cfg.repo, ref=cfg.ref, root=cfg.root,
                      link=cfg.link, period=f"{cfg.period_s:g}s", publish=cfg.publish,
                      uid=os.getuid(), one_time=cfg.one_time)
        try:
            self.syncer.prepare()
        except (GitError, OSError) as exc:
            message = exc.message if isinstance(exc, GitError) else str(exc)
            self.log.error("startup_failed", error=message)
            return EXIT_SYNC_FAILED
        self.status.record_published(self.syncer.published)
        server = None
        if cfg.http_bind:
            from gitsync.server import make_handler, start_server  # after main's without_tls

            handler = make_handler(self.status, cfg.trigger_token_file, self.trigger, self.log,
                                   cfg.stall_after_s)
            try:
                server = start_server(cfg.http_bind, handler)
            except OSError as exc:
                self.log.error("http_bind_failed", bind=f"{cfg.http_bind[0]}:{cfg.http_bind[1]}",
                               error=exc.strerror)
                return EXIT_SYNC_FAILED
            self.log.info("http_listening", bind=f"{cfg.http_bind[0]}:{cfg.http_bind[1]}",
                          trigger="on" if cfg.trigger_token_file else "off")
        try:
            code = self.run_one_time() if cfg.one_time else self.run_forever()
        finally:
            if server is not None:
                server.shutdown()
                server.server_close()
        self.log.info("exit", code=code)
        return code

    def close(self) -> None:
        shutil.rmtree(self.private_dir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        cfg = load_config(sys.argv[1:] if argv is None else argv, os.environ)
    except ConfigError as exc:
        print(f"git-sync: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not (cfg.webhook_url or "").lower().startswith("https:"):
        # The webhook is the only TLS the sidecar itself speaks (git's is libcurl's, ssh's its
        # own): without one, http.client loads without ssl and OpenSSL stays unmapped.
        without_tls()
    app = App(cfg, Logger(cfg.verbose))
    try:
        return app.run()
    finally:
        app.close()
