"""Directory layout under --root and the atomic publish step.

    <root>/<link>                 what the app reads (symlink or, with exchange, a directory)
    <root>/.git-sync/repo.git     bare repository (objects only)
    <root>/.git-sync/trees/<sha>  one checked-out tree per commit (git worktree)
    <root>/.git-sync/published    hash of the published commit

Each tree's `.git` file names its worktree entry in repo.git by a path relative to where the
tree is published, so git run by the app works wherever the app mounts the volume; the entry's
own `gitdir` file names the tree as this sidecar sees it, so `git worktree prune` keeps it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from atomic_publish import (
    exchange,
    exchange_supported,
    prune,
    remove_path,
    swap_symlink,
    write_state,
)

from gitsync.config import FULL_HASH

__all__ = ["Layout", "exchange", "exchange_supported", "point_worktree", "prune_trees",
           "publish_exchange", "publish_symlink", "read_published", "remove_path",
           "worktree_entry"]


@dataclass(frozen=True)
class Layout:
    root: Path
    link_name: str

    @property
    def meta(self) -> Path:
        return self.root / ".git-sync"

    @property
    def repo(self) -> Path:
        return self.meta / "repo.git"

    @property
    def trees(self) -> Path:
        return self.meta / "trees"

    @property
    def link(self) -> Path:
        return self.root / self.link_name

    @property
    def state(self) -> Path:
        return self.meta / "published"

    @property
    def tmp_link(self) -> Path:
        return self.meta / "link.tmp"


def worktree_entry(tree: Path) -> Path:
    """The worktree entry (under repo.git/worktrees) that `tree/.git` points to."""
    pointer = (tree / ".git").read_text().strip().removeprefix("gitdir:").strip()
    return Path(os.path.normpath(tree / pointer))


def point_worktree(entry: Path, tree: Path, published_at: Path) -> None:
    """Make the tree now at `tree`, published at `published_at`, and its entry agree."""
    (tree / ".git").write_text(f"gitdir: {os.path.relpath(entry, published_at)}\n")
    (entry / "gitdir").write_text(f"{published_at / '.git'}\n")


def read_published(layout: Layout) -> str | None:
    """The commit the app currently sees, or None when nothing valid is published."""
    link = layout.link
    if link.is_symlink():
        name = os.path.basename(os.readlink(link))
        return name if FULL_HASH.match(name) and link.is_dir() else None
    if link.is_dir() and layout.state.is_file():
        name = layout.state.read_text().strip()
        return name if FULL_HASH.match(name) else None
    return None


def _write_state(layout: Layout, sha: str) -> None:
    write_state(layout.state, sha)


def publish_symlink(layout: Layout, sha: str) -> None:
    swap_symlink(layout.link, layout.trees / sha, layout.tmp_link)
    remove_path(layout.tmp_link)  # the directory an exchange-mode publish had left there
    _write_state(layout, sha)


def publish_exchange(layout: Layout, sha: str, previous: str | None) -> None:
    """Swap the new tree into place as a real directory; the old one moves to trees/<previous>."""
    tree = layout.trees / sha
    point_worktree(worktree_entry(tree), tree, layout.link)
    if not layout.link.exists() and not layout.link.is_symlink():
        os.rename(tree, layout.link)
    else:
        old_entry = None if layout.link.is_symlink() else worktree_entry(layout.link)
        exchange(tree, layout.link)
        if tree.is_symlink():
            tree.unlink()  # switching from symlink mode
        else:
            retired = layout.trees / (previous or f"retired-{time.time_ns()}")
            remove_path(retired)
            tree.rename(retired)
            if old_entry is not None and old_entry.is_dir():
                # So that prune drops the entry once the retired tree is deleted.
                point_worktree(old_entry, retired, retired)
    _write_state(layout, sha)


def prune_trees(layout: Layout, keep: set[str]) -> list[str]:
    return prune(layout.trees, keep)
