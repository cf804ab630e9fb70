"""git-sync against a real `git daemon`: publish, poll, trigger, hooks, refs, checkout options."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
from pathlib import Path

from gitsync_testkit import (
    GitDaemon,
    Sidecar,
    Upstream,
    WebhookReceiver,
    git,
    running_sidecar,
    sidecar_command,
    sidecar_env,
)
from support import free_port, seconds_until, wait_for


def one_time(root: Path, repo: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        sidecar_command("--repo", repo, "--root", str(root), "--one-time", "--http-bind", "off",
                        "--period", "1s", *args),
        env=sidecar_env(), capture_output=True, text=True, timeout=60, check=False)


def test_first_sync_publishes_a_relative_link_named_by_the_commit(
        tmp_path: Path, upstream: Upstream, sidecar: Sidecar) -> None:
    head = git("rev-parse", "HEAD", cwd=upstream.work)
    target = os.readlink(sidecar.current)
    assert not target.startswith("/"), "the link must be relative so any mount path works"
    assert os.path.basename(target) == head
    assert sidecar.read_version() == "v1"
    code, body = sidecar.request("/healthz")
    assert (code, body["commit"]) == (200, head)
    assert sidecar.status()["last_commit"] == head
    assert sidecar.stop() == 0
    moved = tmp_path / "mounted-elsewhere"
    sidecar.root.rename(moved)
    assert (moved / "current" / "VERSION").read_text() == "v1\n"
    # git run by the app, which mounts the volume at another path, finds the commit too.
    assert git("-C", str(moved / "current"), "rev-parse", "HEAD") == head


def test_exchange_mode_trees_are_git_checkouts_wherever_mounted(
        tmp_path: Path, upstream: Upstream, daemon: GitDaemon) -> None:
    with running_sidecar(tmp_path, daemon.url(), free_port(), "--publish",
                         "exchange") as sidecar:
        for n in (2, 3):
            head = upstream.commit_and_push()
            wait_for(f"v{n} published", lambda n=n: sidecar.read_version() == f"v{n}", 30)  # type: ignore[misc]
    # Stopped, so no cleanup runs meanwhile: prune as the sidecar's cleanup does, then every
    # tree left has its entry, and the published directory has one too.
    repo = sidecar.root / ".git-sync" / "repo.git"
    git("--git-dir", str(repo), "worktree", "prune")
    assert git("-C", str(sidecar.current), "rev-parse", "HEAD") == head
    trees = {p.name for p in (sidecar.root / ".git-sync" / "trees").iterdir()}
    entries = {p.name for p in (repo / "worktrees").iterdir()}
    assert len(entries) == len(trees) + 1, (entries, trees)
    moved = tmp_path / "mounted-elsewhere"
    sidecar.root.rename(moved)
    assert git("-C", str(moved / "current"), "rev-parse", "HEAD") == head


def test_push_is_visible_within_period_plus_one_second(upstream: Upstream,
                                                       sidecar: Sidecar) -> None:
    upstream.commit_and_push()
    # Latency is the benchmark's to measure (images/git-sync/bench.py); this proves polling.
    took = seconds_until("the condition", lambda: sidecar.read_version() == "v2", 30)
    print(f"visible after {took:.2f}s with --period 1s")
    # The tree is published a moment before the status counts it: wait for the count.
    status = wait_for("the publish counted", lambda: (
        s := sidecar.status())["commits_published"] >= 2 and s, 30)
    assert status["commits_published"] == 2
    assert status["history"] == "unknown"  # shallow clone: cannot tell fast-forward from rewrite


def test_old_trees_are_cleaned_up_keeping_only_the_previous(upstream: Upstream,
                                                            sidecar: Sidecar) -> None:
    shas = []
    for n in (2, 3, 4):
        shas.append(upstream.commit_and_push())
        wait_for(f"v{n} published",
                 lambda n=n: sidecar.read_version() == f"v{n}", 60)  # type: ignore[misc]
    # Cleanup runs just after the publish that the reader already sees: wait for it.
    trees = sidecar.root / ".git-sync" / "trees"
    wait_for("only the last two trees",
             lambda: sorted(p.name for p in trees.iterdir()) == sorted(shas[-2:]), 60)


def test_a_new_tree_links_unchanged_files_and_never_changes_the_old_one(
        upstream: Upstream, sidecar: Sidecar) -> None:
    """A commit's tree starts as hard links to the published one; git then replaces only the
    files that differ, so the tree the app may still be reading keeps every byte and mode."""
    work = upstream.work
    for name, text in (("keep.txt", "same\n"), ("changed.txt", "old\n"), ("gone.txt", "x\n"),
                       ("bin/run.sh", "echo hi\n")):
        (work / name).parent.mkdir(exist_ok=True)
        (work / name).write_text(text)
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "files", cwd=work)
    upstream.push()
    first = git("rev-parse", "HEAD", cwd=work)
    wait_for("the files published", lambda: os.path.basename(os.readlink(sidecar.current))
             == first, 30)
    (work / "changed.txt").write_text("new\n")
    (work / "bin" / "run.sh").chmod(0o755)
    (work / "gone.txt").unlink()
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "change", cwd=work)
    upstream.push()
    second = git("rev-parse", "HEAD", cwd=work)
    wait_for("the change published", lambda: os.path.basename(os.readlink(sidecar.current))
             == second, 30)
    trees = sidecar.root / ".git-sync" / "trees"
    old, new = trees / first, trees / second
    assert (old / "changed.txt").read_text() == "old\n" and (old / "gone.txt").exists()
    assert (old / "bin" / "run.sh").stat().st_mode & 0o777 == 0o644
    assert (new / "changed.txt").read_text() == "new\n" and not (new / "gone.txt").exists()
    assert (new / "bin" / "run.sh").stat().st_mode & 0o111
    assert (old / "keep.txt").stat().st_ino == (new / "keep.txt").stat().st_ino
    assert (old / "changed.txt").stat().st_ino != (new / "changed.txt").stat().st_ino
    assert git("-C", str(new), "status", "--porcelain") == ""
    assert git("-C", str(new), "rev-parse", "HEAD") == second
    assert git("-C", str(old), "status", "--porcelain") == ""


def test_trigger_needs_the_token_and_syncs_within_one_second(
        tmp_path: Path, daemon: GitDaemon, upstream: Upstream, port: int) -> None:
    token_file = tmp_path / "trigger-token"
    token_file.write_text("first-token\n")
    with running_sidecar(tmp_path, daemon.url(), port, "--period", "10m",
                         "--trigger-token-file", str(token_file)) as sc:
        upstream.commit_and_push()
        code, _ = sc.request("/sync", "POST")
        assert code == 401
        code, _ = sc.request("/sync", "POST", {"Authorization": "Bearer wrong"})
        assert code == 403
        assert sc.read_version() == "v1"

        code, _ = sc.request("/sync", "POST", {"Authorization": "Bearer first-token"})
        assert code == 202
        assert seconds_until("the condition", lambda: sc.read_version() == "v2", 3) <= 1.0

        token_file.write_text("rotated-token\n")
        upstream.commit_and_push()
        assert sc.request("/sync", "POST", {"Authorization": "Bearer first-token"})[0] == 403
        body = b'{"ref": "refs/heads/main"}'
        signature = "sha256=" + hmac.new(b"rotated-token", body, hashlib.sha256).hexdigest()
        code, _ = sc.request("/sync", "POST", {"X-Hub-Signature-256": signature}, body)
        assert code == 202
        assert seconds_until("the condition", lambda: sc.read_version() == "v3", 3) <= 1.0
        assert sc.status()["triggers_total"] == 2
        assert "first-token" not in sc.log() and "rotated-token" not in sc.log()


def test_trigger_is_off_without_a_token_file(sidecar: Sidecar) -> None:
    code, body = sidecar.request("/sync", "POST", {"Authorization": "Bearer x"})
    assert code == 404
    assert "--trigger-token-file" in body["error"]


def test_webhook_once_per_new_commit_with_its_hash(
        tmp_path: Path, daemon: GitDaemon, upstream: Upstream, port: int) -> None:
    receiver = WebhookReceiver(free_port())
    server = receiver.start()
    try:
        with running_sidecar(tmp_path, daemon.url(), port, "--webhook-url",
                             f"http://127.0.0.1:{receiver.port}/reload") as sc:
            first = git("rev-parse", "HEAD", cwd=upstream.work)
            second = upstream.commit_and_push()
            wait_for("the condition", lambda: len(receiver.calls) >= 2, 30)
            # Several unchanged polls later, with both answers counted (a hook is counted
            # when the receiver has answered, a moment after the receiver saw the call).
            status = wait_for("the condition", lambda: (s := sc.status())["syncs_ok"] >= 5
                              and s["hooks_ok"] >= 2 and s, 30)
            hashes = [c.headers["Gitsync-Hash"] for c in receiver.calls]
            assert hashes == [first, second]
            assert status["hooks_ok"] == 2
    finally:
        server.shutdown()


def test_failing_webhook_is_retried_a_bounded_number_of_times(
        tmp_path: Path, daemon: GitDaemon, port: int) -> None:
    receiver = WebhookReceiver(free_port(), status=500)
    server = receiver.start()
    try:
        with running_sidecar(tmp_path, daemon.url(), port,
                             "--webhook-url", f"http://127.0.0.1:{receiver.port}/",
                             "--hook-retries", "2", "--hook-backoff", "100ms") as sc:
            wait_for("the condition", lambda: sc.status()["hooks_failed"] == 1, 30)
            wait_for("the condition", lambda: sc.status()["syncs_ok"] >= 3, 30)
            assert len(receiver.calls) == 3
            # Logged just after the failure is counted.
            wait_for("the give-up in the log", lambda: "event=hook_gave_up" in sc.log(), 30)
            assert sc.request("/healthz")[0] == 200  # the app's trouble is not the sidecar's
    finally:
        server.shutdown()


def test_slow_or_refusing_webhook_is_counted_failed_and_never_fired_twice(
        tmp_path: Path, daemon: GitDaemon, port: int) -> None:
    receiver = WebhookReceiver(free_port(), delay_s=2.0)
    server = receiver.start()
    try:
        with running_sidecar(tmp_path, daemon.url(), port,
                             "--webhook-url", f"http://127.0.0.1:{receiver.port}/",
                             "--webhook-timeout", "500ms", "--hook-retries", "3",
                             "--hook-backoff", "100ms") as sc:
            wait_for("the condition", lambda: sc.status()["hooks_failed"] == 1, 30)
            assert len(receiver.calls) == 1, "a hook that may still be running is not re-fired"
            assert "not retried" in sc.log()
        receiver.delay_s, receiver.status = 0.0, 404
        (tmp_path / "refused").mkdir()
        with running_sidecar(tmp_path / "refused", daemon.url(), free_port(),
                             "--webhook-url", f"http://127.0.0.1:{receiver.port}/",
                             "--hook-retries", "3", "--hook-backoff", "100ms") as sc:
            wait_for("the condition", lambda: sc.status()["hooks_failed"] == 1, 30)
            assert len(receiver.calls) == 2, "a refusal (4xx) is not retried"
    finally:
        server.shutdown()


def test_webhook_slower_than_its_default_but_within_its_timeout_succeeds(
        tmp_path: Path, daemon: GitDaemon, port: int) -> None:
    receiver = WebhookReceiver(free_port(), delay_s=1.0)
    server = receiver.start()
    try:
        with running_sidecar(tmp_path, daemon.url(), port,
                             "--webhook-url", f"http://127.0.0.1:{receiver.port}/",
                             "--webhook-timeout", "10s") as sc:
            wait_for("the condition", lambda: sc.status()["hooks_ok"] == 1, 30)
            assert len(receiver.calls) == 1 and sc.status()["hooks_failed"] == 0
    finally:
        server.shutdown()


def test_exechook_runs_in_the_new_tree_with_the_hash(
        tmp_path: Path, daemon: GitDaemon, upstream: Upstream, port: int) -> None:
    record = tmp_path / "hook.log"
    command = f'echo "$GITSYNC_HASH $(cat VERSION)" >> {record}'
    with running_sidecar(tmp_path, daemon.url(), port, "--exechook-command", command):
        second = upstream.commit_and_push()
        wait_for("the condition",
                 lambda: record.exists() and len(record.read_text().splitlines()) == 2, 30)
    first_line, second_line = record.read_text().splitlines()
    assert first_line.endswith(" v1")
    assert second_line == f"{second} v2"


def test_tag_and_full_hash_refs_stay_put_while_main_moves(
        tmp_path: Path, daemon: GitDaemon, upstream: Upstream) -> None:
    first = git("rev-parse", "HEAD", cwd=upstream.work)
    git("tag", "-a", "release-1", "-m", "release 1", cwd=upstream.work)
    git("push", "-q", "origin", "release-1", cwd=upstream.work)
    upstream.commit_and_push()
    by_tag = one_time(tmp_path / "by-tag", daemon.url(), "--ref", "release-1")
    assert by_tag.returncode == 0, by_tag.stderr
    assert (tmp_path / "by-tag" / "current" / "VERSION").read_text() == "v1\n"
    by_hash = one_time(tmp_path / "by-hash", daemon.url(), "--ref", first)
    assert by_hash.returncode == 0, by_hash.stderr
    assert os.path.basename(os.readlink(tmp_path / "by-hash" / "current")) == first
    assert one_time(tmp_path / "by-branch", daemon.url(), "--ref", "main").returncode == 0
    assert (tmp_path / "by-branch" / "current" / "VERSION").read_text() == "v2\n"


def test_one_time_exit_codes(tmp_path: Path, daemon: GitDaemon) -> None:
    ok = one_time(tmp_path / "ok", daemon.url())
    assert ok.returncode == 0, ok.stderr
    missing = one_time(tmp_path / "missing", daemon.url(), "--ref", "no-such-branch",
                       "--max-failures", "1")
    assert missing.returncode == 1
    assert "ref 'no-such-branch' not found on remote" in missing.stderr
    assert not (tmp_path / "missing" / "current").exists()
    usage = one_time(tmp_path / "usage", daemon.url(), "--period", "100ms")
    assert usage.returncode == 2
    assert "below the floor" in usage.stderr


def test_depth_one_is_shallow_and_zero_is_full(tmp_path: Path, daemon: GitDaemon,
                                               upstream: Upstream) -> None:
    upstream.commit_and_push()
    upstream.commit_and_push()
    for depth, expected in (("1", "1"), ("0", "3")):
        root = tmp_path / f"depth{depth}"
        assert one_time(root, daemon.url(), "--depth", depth).returncode == 0
        count = git("rev-list", "--count", "HEAD", cwd=root / "current")
        assert count == expected


def test_sparse_checkout_only_materialises_the_patterns(tmp_path: Path,
                                                        daemon: GitDaemon) -> None:
    root = tmp_path / "sparse"
    done = one_time(root, daemon.url(), "--sparse-checkout", "/VERSION,/data/f001.txt")
    assert done.returncode == 0, done.stderr
    files = sorted(str(p.relative_to(root / "current")) for p in (root / "current").rglob("*")
                   if p.is_file() and p.name != ".git")
    assert files == ["VERSION", "data/f001.txt"]


def test_submodules_off_and_recursive(tmp_path: Path, daemon: GitDaemon,
                                      upstream: Upstream) -> None:
    lib = tmp_path / "lib-work"
    git("init", "-q", "--bare", "-b", "main", str(upstream.base / "lib.git"))
    git("init", "-q", "-b", "main", str(lib))
    (lib / "LIB").write_text("library\n")
    git("add", "-A", cwd=lib)
    git("commit", "-q", "-m", "lib", cwd=lib)
    git("push", "-q", str(upstream.base / "lib.git"), "HEAD:refs/heads/main", cwd=lib)
    git("submodule", "add", "-q", daemon.url("lib.git"), "vendor/lib", cwd=upstream.work)
    upstream.commit_and_push()
    off = one_time(tmp_path / "off", daemon.url())
    assert off.returncode == 0, off.stderr
    assert not (tmp_path / "off" / "current" / "vendor" / "lib" / "LIB").exists()
    rec = one_time(tmp_path / "rec", daemon.url(), "--submodules", "recursive")
    assert rec.returncode == 0, rec.stderr
    assert (tmp_path / "rec" / "current" / "vendor" / "lib" / "LIB").read_text() == "library\n"
