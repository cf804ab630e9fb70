"""One sync: resolve the ref, fetch, check out a new tree, publish it, clean up."""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from gitsync.config import FULL_HASH, Config
from gitsync.gitcmd import GitError, GitRunner
from gitsync.log import Logger
from gitsync.publish import (
    Layout,
    exchange_supported,
    point_worktree,
    prune_trees,
    publish_exchange,
    publish_symlink,
    read_published,
    remove_path,
    worktree_entry,
)

_TARGET_REF = "refs/gitsync/target"


def link_tree(old: Path, new: Path) -> None:
    """Hard-link every file of the checked-out tree `old` into `new` (which exists), except
    its `.git` pointer. Safe because nothing writes a published file in place: git replaces a
    changed file by a new one (unlink, then create), so the old tree keeps its bytes."""
    for folder, dirs, files in os.walk(old):
        here = Path(folder)
        target = new / here.relative_to(old)
        if here == old:
            files = [f for f in files if f != ".git"]
            dirs[:] = [d for d in dirs if d != ".git"]
        for name in dirs:
            source = here / name
            if source.is_symlink():
                os.symlink(os.readlink(source), target / name)
            else:
                (target / name).mkdir()
        for name in files:
            source = here / name
            if source.is_symlink():
                os.symlink(os.readlink(source), target / name)
            else:
                os.link(source, target / name)


@dataclass(frozen=True)
class SyncOutcome:
    commit: str
    changed: bool
    previous: str | None
    tree: Path
    history: str  # fast_forward | rewritten | unknown | first | unchanged


def parse_ls_remote(output: str) -> dict[str, str]:
    refs: dict[str, str] = {}
    for line in output.splitlines():
        sha, _, name = line.partition("\t")
        if name:
            refs[name.strip()] = sha.strip()
    return refs


def pick_ref(ref: str, refs: dict[str, str]) -> str | None:
    """Full name of the remote ref that --ref means: branch first, then tag."""
    if ref == "HEAD" or ref.startswith("refs/"):
        return ref if ref in refs else None
    for candidate in (f"refs/heads/{ref}", f"refs/tags/{ref}"):
        if candidate in refs:
            return candidate
    return None


def ls_remote_patterns(ref: str) -> list[str]:
    if ref == "HEAD" or ref.startswith("refs/"):
        return [ref]
    return [f"refs/heads/{ref}", f"refs/tags/{ref}"]


def not_found_message(ref: str, published: str | None) -> str:
    text = f"ref {ref!r} not found on remote"
    if published:
        text += f" (deleted or renamed?); keeping published commit {published}"
    if re.fullmatch(r"[0-9a-f]{7,39}", ref):
        text += "; abbreviated hashes are not accepted, use the full 40-character hash"
    return text


class Syncer:
    def __init__(self, cfg: Config, logger: Logger, runner: GitRunner) -> None:
        self._cfg = cfg
        self._log = logger
        self._git = runner
        self.layout = Layout(cfg.root, cfg.link)
        self.published: str | None = None
        self._previous: str | None = None
        self._last_remote: str | None = None
        self._lock_fd: int | None = None
        self._trash = self.layout.meta / "trash"
        self._emptying: threading.Thread | None = None

    # --- startup -------------------------------------------------------------------------
    def prepare(self) -> None:
        """Create the layout, take ownership of --root and drop leftovers of a killed run."""
        lay = self.layout
        lay.trees.mkdir(parents=True, exist_ok=True)
        self._lock_fd = os.open(lay.meta / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise GitError("root_busy", f"another git-sync is using --root {lay.root}") from None
        if self._cfg.publish == "exchange" and not exchange_supported(lay.meta):
            raise GitError("unsupported", "the filesystem under --root cannot swap directories "
                           "(renameat2 RENAME_EXCHANGE); use --publish symlink")
        env = self._git.local_env()  # credentials may appear later; sync reports them
        if not (lay.repo / "HEAD").exists():
            self._git.run(["init", "--bare", "-q", str(lay.repo)], env)
        # A tree built from hard links to the last one differs from it in ctime only (link(2)
        # sets it): git must not take that for a change and read every file again.
        self._git.run(self._git_dir("config", "core.trustctime", "false"), env)
        remove_path(lay.tmp_link)
        remove_path(self._trash)
        self.published = read_published(lay)
        keep = {self.published} if self.published and self._cfg.publish == "symlink" else set()
        for err in prune_trees(lay, {k for k in keep if k}):
            self._log.warn("cleanup_failed", detail=err)
        self._git.run(["--git-dir", str(lay.repo), "worktree", "prune"], env)
        self._log.info("prepared", root=lay.root, published=self.published or "none")

    # --- one sync ------------------------------------------------------------------------
    def published_tree(self) -> Path:
        if self._cfg.publish == "exchange":
            return self.layout.link
        return self.layout.trees / (self.published or "")

    def _tree_intact(self) -> bool:
        return self.published is not None and read_published(self.layout) == self.published

    def _git_dir(self, *args: str) -> list[str]:
        return ["--git-dir", str(self.layout.repo), *args]

    def _depth_args(self) -> list[str]:
        if self._cfg.depth > 0:
            return [f"--depth={self._cfg.depth}"]
        return ["--unshallow"] if (self.layout.repo / "shallow").exists() else []

    def _has_commit(self, env: dict[str, str], sha: str) -> bool:
        try:
            self._git.run(self._git_dir("cat-file", "-e", f"{sha}^{{commit}}"), env)
            return True
        except GitError:
            return False

    def _fetch_hash(self, env: dict[str, str], sha: str) -> str:
        if not self._has_commit(env, sha):
            self._git.run(self._git_dir("fetch", "-q", "--no-tags", *self._depth_args(),
                                        self._cfg.repo, sha), env)
        if not self._has_commit(env, sha):
            raise GitError("ref_not_found", f"commit {sha} is not available from the remote")
        self._git.run(self._git_dir("update-ref", _TARGET_REF, sha), env)
        return sha

    def _fetch_named(self, env: dict[str, str]) -> str | None:
        """Fetch --ref; None when the remote still points where it did last time."""
        ref = self._cfg.ref
        listing = self._git.run(["ls-remote", self._cfg.repo, *ls_remote_patterns(ref)], env)
        refs = parse_ls_remote(listing)
        full = pick_ref(ref, refs)
        if full is None:
            raise GitError("ref_not_found", not_found_message(ref, self.published))
        if refs[full] == self._last_remote and self._tree_intact():
            return None
        self._git.run(self._git_dir("fetch", "-q", "--no-tags", *self._depth_args(),
                                    self._cfg.repo, f"+{full}:{_TARGET_REF}"), env)
        commit = self._git.run(self._git_dir("rev-parse", "--verify", f"{_TARGET_REF}^{{commit}}"),
                               env).strip()
        self._last_remote = refs[full]
        return commit

    def _history(self, env: dict[str, str], new: str) -> str:
        old = self.published
        if old is None:
            return "first"
        if self._has_commit(env, old):
            try:
                self._git.run(self._git_dir("merge-base", "--is-ancestor", old, new), env)
                return "fast_forward"
            except GitError:
                if not (self.layout.repo / "shallow").exists():
                    return "rewritten"
        return "unknown"

    def _reusable_tree(self) -> Path | None:
        """The published tree, when the next one may start from hard links to it."""
        cfg = self._cfg
        if cfg.publish != "symlink" or cfg.sparse_checkout or cfg.submodules != "off":
            return None
        tree = self.layout.trees / (self.published or "")
        if not self.published or not (tree / ".git").is_file():
            return None
        try:
            return tree if (worktree_entry(tree) / "index").is_file() else None
        except OSError:
            return None

    def _build_from(self, env: dict[str, str], base: Path, tree: Path, sha: str) -> None:
        """The new tree as hard links to the published one plus a two-tree merge: git writes
        only the files that differ (a one-file commit writes one file, not the checkout)."""
        self._git.run(self._git_dir("worktree", "add", "-q", "--detach", "-f", "--no-checkout",
                                    str(tree), sha), env)
        entry = worktree_entry(tree)
        point_worktree(entry, tree, tree)
        shutil.copyfile(worktree_entry(base) / "index", entry / "index")
        link_tree(base, tree)
        self._git.run(["read-tree", "-m", "-u", base.name, sha], env, cwd=tree)

    def _build_tree(self, env: dict[str, str], sha: str) -> Path:
        tree = self.layout.trees / sha
        if sha == self._previous and tree.is_dir():
            return tree  # the tree we published last time, complete and untouched since
        remove_path(tree)
        self._git.run(self._git_dir("worktree", "prune"), env)
        base = self._reusable_tree()
        if base is not None:
            try:
                self._build_from(env, base, tree, sha)
                return tree
            except (GitError, OSError) as exc:
                self._log.warn("incremental_checkout_failed", detail=str(exc),
                               note="checking out the whole tree instead")
                remove_path(tree)
                self._git.run(self._git_dir("worktree", "prune"), env)
        cfg = self._cfg
        try:
            sparse = ["--no-checkout"] if cfg.sparse_checkout else []
            self._git.run(self._git_dir("worktree", "add", "-q", "--detach", "-f", *sparse,
                                        str(tree), sha), env)
            point_worktree(worktree_entry(tree), tree, tree)  # exchange re-points it at publish
            if cfg.sparse_checkout:
                self._git.run(["sparse-checkout", "set", "--no-cone", *cfg.sparse_checkout],
                              env, cwd=tree)
                self._git.run(["read-tree", "-mu", "HEAD"], env, cwd=tree)
            if cfg.submodules != "off":
                extra = ["--recursive"] if cfg.submodules == "recursive" else ["--depth", "1"]
                self._git.run(["submodule", "update", "--init", *extra], env, cwd=tree)
        except GitError:
            remove_path(tree)
            raise
        return tree

    def cleanup(self) -> None:
        """Retire trees older than the previous one; run after the status shows the publish.
        A retired tree is renamed into trash/ (one rename) and deleted by a thread, so the
        next sync never waits for thousands of unlinks."""
        env = self._git.local_env()
        keep = {k for k in (self._previous, self.published) if k}
        if self._cfg.publish == "exchange":
            keep.discard(self.published or "")
        try:
            self._trash.mkdir(exist_ok=True)
            for entry in self.layout.trees.iterdir():
                if entry.name not in keep:
                    entry.rename(self._trash / f"{entry.name}-{time.time_ns()}")
            self._git.run(self._git_dir("worktree", "prune"), env)
            self._git.run(self._git_dir("gc", "--auto", "--quiet"), env)
        except (GitError, OSError) as exc:
            # Leftovers cost disk, not correctness: the next cleanup retries.
            self._log.warn("cleanup_failed", detail=str(exc))
        if self._emptying is None or not self._emptying.is_alive():
            self._emptying = threading.Thread(target=self._empty_trash, name="trash",
                                              daemon=True)
            self._emptying.start()

    def _empty_trash(self) -> None:
        try:
            for entry in list(self._trash.iterdir()):
                for err in remove_path(entry):
                    self._log.warn("cleanup_failed", detail=err)
        except OSError as exc:
            self._log.warn("cleanup_failed", detail=str(exc))

    def sync(self) -> SyncOutcome:
        env = self._git.sync_env()
        ref = self._cfg.ref
        if FULL_HASH.match(ref) and ref == self.published and self._tree_intact():
            commit: str | None = None  # a commit hash never moves: nothing to fetch
        elif FULL_HASH.match(ref):
            commit = self._fetch_hash(env, ref)
        else:
            commit = self._fetch_named(env)
        if commit is None or (commit == self.published and self._tree_intact()):
            current = self.published or ""
            return SyncOutcome(current, False, current, self.published_tree(), "unchanged")
        history = self._history(env, commit)
        self._build_tree(env, commit)
        old = self.published
        if self._cfg.publish == "exchange":
            publish_exchange(self.layout, commit, old)
        else:
            publish_symlink(self.layout, commit)
        self._previous, self.published = old, commit
        return SyncOutcome(commit, True, old, self.published_tree(), history)
