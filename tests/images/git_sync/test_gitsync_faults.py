"""git-sync under faults: remote down, force push, deleted branch, a ref that never existed."""

from __future__ import annotations

import os
from pathlib import Path

from gitsync_testkit import GitDaemon, Upstream, git, running_sidecar
from support import seconds_until, wait_for


def test_remote_down_keeps_last_tree_turns_unhealthy_then_recovers(
        tmp_path: Path, daemon: GitDaemon, upstream: Upstream, port: int) -> None:
    with running_sidecar(tmp_path, daemon.url(), port, "--max-failures", "2",
                         "--max-backoff", "2s") as sc:
        daemon.stop()
        wait_for("the condition", lambda: sc.request("/healthz")[0] == 503, 30)
        status = sc.status()
        assert status["consecutive_failures"] >= 2
        assert status["last_error_kind"] == "remote_unreachable"
        assert sc.read_version() == "v1", "the last good tree must stay published"
        assert sc.request("/readyz")[0] == 200
        # The log line follows the status change that /healthz shows: wait for it.
        wait_for("the unhealthy event in the log", lambda: "event=unhealthy" in sc.log(), 30)

        upstream.commit_and_push()  # straight into the bare repo while the daemon is down
        daemon.start()
        # With backoff doubling uncapped the next attempt would be far later than this.
        took = seconds_until("the condition", lambda: sc.read_version() == "v2", 10)
        print(f"recovered after {took:.1f}s with --max-backoff 2s")
        wait_for("the condition",
                 lambda: sc.request("/healthz")[0] == 200, 30)  # status follows the publish
        assert sc.status()["last_error"] is None
        wait_for("the recovered event in the log", lambda: "event=recovered" in sc.log(), 30)


def test_force_push_replaces_the_tree_and_is_reported(
        tmp_path: Path, daemon: GitDaemon, upstream: Upstream, port: int) -> None:
    with running_sidecar(tmp_path, daemon.url(), port, "--depth", "0") as sc:
        upstream.commit_and_push()
        wait_for("the condition", lambda: sc.read_version() == "v2", 30)
        git("reset", "-q", "--hard", "HEAD~1", cwd=upstream.work)
        rewritten = upstream.commit_version()  # v3 on top of v1: v2 is gone from history
        upstream.push(force=True)
        wait_for("the condition", lambda: sc.read_version() == "v3", 30)
        assert os.path.basename(os.readlink(sc.current)) == rewritten
        wait_for("the condition", lambda: sc.status()["commits_published"] == 3, 30)
        assert sc.status()["history"] == "rewritten"
        # The warning is logged just after the status records the publish.
        wait_for("the condition", lambda: "event=history_rewritten" in sc.log(), 30)
        assert sorted(p.name for p in (sc.current / "data").iterdir())[0] == "f000.txt"


def test_deleted_branch_keeps_the_tree_and_says_why(
        tmp_path: Path, daemon: GitDaemon, upstream: Upstream, port: int) -> None:
    upstream.push("feature")
    with running_sidecar(tmp_path, daemon.url(), port, "--ref", "feature",
                         "--max-failures", "2") as sc:
        kept = os.readlink(sc.current)
        git("push", "-q", "origin", ":refs/heads/feature", cwd=upstream.work)
        wait_for("the condition", lambda: sc.request("/healthz")[0] == 503, 30)
        # Staleness is /healthz's and /status's: liveness stays up, readiness too, since the
        # last good tree is still served (a restart of every sidecar would help nobody).
        assert sc.request("/livez")[0] == 200
        assert sc.request("/readyz")[0] == 200
        status = sc.status()
        assert status["last_error_kind"] == "ref_not_found"
        assert "ref 'feature' not found on remote (deleted or renamed?)" in status["last_error"]
        assert os.readlink(sc.current) == kept
        assert sc.read_version() == "v1"
        wait_for("the failure in the log", lambda: "kind=ref_not_found" in sc.log(), 30)

        upstream.commit_version()
        upstream.push("feature")
        wait_for("the condition", lambda: sc.read_version() == "v2", 30)
        wait_for("the condition", lambda: sc.request("/healthz")[0] == 200, 30)


def test_ref_that_never_existed_publishes_nothing(
        tmp_path: Path, daemon: GitDaemon, port: int) -> None:
    with running_sidecar(tmp_path, daemon.url(), port, "--ref", "no-such-ref",
                         wait_ready=False) as sc:
        wait_for("the condition", lambda: (tmp_path / f"sidecar-{port}.log").exists()
                 and "kind=ref_not_found" in sc.log(), 30)
        assert sc.request("/readyz")[0] == 503
        assert sc.request("/healthz")[0] == 503
        assert "ref 'no-such-ref' not found on remote" in sc.status()["last_error"]
        assert not sc.current.exists() and not sc.current.is_symlink()


def test_abbreviated_hash_is_explained(tmp_path: Path, daemon: GitDaemon,
                                       upstream: Upstream, port: int) -> None:
    short = git("rev-parse", "--short=10", "HEAD", cwd=upstream.work)
    with running_sidecar(tmp_path, daemon.url(), port, "--ref", short, wait_ready=False) as sc:
        wait_for("the condition", lambda: "kind=ref_not_found" in sc.log(), 30)
        assert "use the full 40-character hash" in sc.status()["last_error"]


def test_sigterm_exits_zero_promptly_while_waiting(
        tmp_path: Path, daemon: GitDaemon, port: int) -> None:
    with running_sidecar(tmp_path, daemon.url(), port, "--period", "1m") as sc:
        sc.proc.send_signal(15)
        assert sc.proc.wait(5) == 0
        assert "event=shutdown signal=SIGTERM" in sc.log()
