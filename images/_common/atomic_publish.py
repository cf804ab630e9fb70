"""Publish a new version of a directory tree atomically: one link swap, never a half tree.

Used by git-sync (a commit per version) and data-loader (a dataset per version). Each version
is a complete directory of its own, written next to the link on the same filesystem (a rename
across filesystems fails with EXDEV); then

  swap_symlink(link, version, scratch)   points `link` at `version` in one rename(2)
  exchange(a, b)                         swaps two directories in one renameat2(2)
  prune(folder, keep)                    deletes the versions no reader may still be in

The link is relative, so the app may mount the volume at any path and still follow it.
Stdlib only.
"""

from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def exchange(first: Path, second: Path) -> None:
    """Swap two existing paths in one step (Linux renameat2 RENAME_EXCHANGE)."""
    import ctypes  # only an exchange-mode publish needs it (half a MB of RSS otherwise)

    libc = ctypes.CDLL(None, use_errno=True)
    rc = libc.renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second),
                         _RENAME_EXCHANGE)
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), str(first), None, str(second))


def exchange_supported(scratch: Path) -> bool:
    a, b = scratch / "xchg-a", scratch / "xchg-b"
    for p in (a, b):
        p.mkdir(exist_ok=True)
    try:
        exchange(a, b)
        return True
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            return False
        raise
    finally:
        for p in (a, b):
            p.rmdir()


def remove_path(path: Path) -> list[str]:
    """Delete a file, symlink or tree; return the errors instead of stopping at the first."""
    errors: list[str] = []
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, onerror=lambda _f, p, e: errors.append(f"{p}: {e[1]}"))
    return errors


def swap_symlink(link: Path, version: Path, tmp_link: Path) -> None:
    """Point `link` at the directory `version` in one step. `tmp_link` is a scratch name on
    the same filesystem. A real directory at `link` (an exchange-mode publish) is swapped out
    and left at `tmp_link` for the caller to delete."""
    remove_path(tmp_link)
    os.symlink(os.path.relpath(version, link.parent), tmp_link)
    if link.is_dir() and not link.is_symlink():
        exchange(tmp_link, link)
    else:
        os.replace(tmp_link, link)


def write_state(path: Path, text: str) -> None:
    """Replace a small state file in one step (readers see the old or the new text)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text + "\n")
    os.replace(tmp, path)


def prune(folder: Path, keep: set[str]) -> list[str]:
    """Delete every entry of `folder` not named in `keep`; return the errors."""
    errors: list[str] = []
    for entry in folder.iterdir():
        if entry.name not in keep:
            errors += remove_path(entry)
    return errors
