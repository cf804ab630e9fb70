"""Finding completed changes under a folder: inotify (through libc), with a fallback to polling
when the kernel refuses a watch (the per-user limit), and a scan that compares the folder with
the last snapshot, used at start (changes made while the sidecar was down) and after an
inotify queue overflow or a new subdirectory (files made before its watch existed)."""

from __future__ import annotations

import ctypes
import errno
import fnmatch
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000
MASK = IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF
HEADER = struct.Struct("iIII")

WRITTEN, DELETED = "written", "deleted"


class WatchLimit(Exception):
    """The kernel refused a watch (ENOSPC: fs.inotify.max_user_watches reached)."""


class Change(NamedTuple):
    kind: str  # written | deleted
    path: str  # relative to the watched folder, '/'-separated


class Filter(NamedTuple):
    include: tuple[str, ...] = ("*",)
    exclude: tuple[str, ...] = ()
    recursive: bool = True

    def wants(self, relative: str) -> bool:
        name = relative.rsplit("/", 1)[-1]
        if name.startswith(".") and not any(g.startswith(".") for g in self.include):
            return False  # dot files: temporaries of uploads and editors, unless asked for
        def match(glob: str) -> bool:
            return fnmatch.fnmatchcase(relative, glob) or fnmatch.fnmatchcase(name, glob)
        return any(match(g) for g in self.include) and not any(match(g) for g in self.exclude)


def scan(root: Path, wanted: Filter) -> dict[str, tuple[int, int]]:
    """Every wanted regular file: relative path -> (size, mtime_ns)."""
    found: dict[str, tuple[int, int]] = {}
    for folder, dirs, files in os.walk(root):
        base = Path(folder)
        if not wanted.recursive:
            dirs.clear()
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            relative = str((base / name).relative_to(root))
            if not wanted.wants(relative):
                continue
            try:
                info = (base / name).lstat()
            except FileNotFoundError:
                continue
            if os.path.isfile(base / name) and not os.path.islink(base / name):
                found[relative] = (info.st_size, info.st_mtime_ns)
    return found


def differences(before: dict[str, tuple[int, int]],
                after: dict[str, tuple[int, int]]) -> list[Change]:
    changes = [Change(WRITTEN, p) for p, meta in sorted(after.items()) if before.get(p) != meta]
    return changes + [Change(DELETED, p) for p in sorted(set(before) - set(after))]


class Inotify:
    """Recursive inotify watches on a folder; events as Changes, plus rescan requests."""

    def __init__(self, root: Path, wanted: Filter) -> None:
        self.root, self.wanted = root, wanted
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        self._add = libc.inotify_add_watch
        self._add.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self.fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if self.fd < 0:
            error = ctypes.get_errno()
            if error in (errno.EMFILE, errno.ENOSPC):
                raise WatchLimit(f"inotify_init1: {os.strerror(error)}")
            raise OSError(error, os.strerror(error))
        self.dirs: dict[int, Path] = {}
        self.add_tree(root)

    def add(self, folder: Path) -> None:
        wd = self._add(self.fd, os.fsencode(folder), MASK)
        if wd < 0:
            error = ctypes.get_errno()
            if error == errno.ENOSPC:
                raise WatchLimit(f"inotify watch on {folder}: the per-user limit "
                                 "(fs.inotify.max_user_watches) is reached")
            if error in (errno.ENOENT, errno.ENOTDIR):
                return  # gone already
            raise OSError(error, f"inotify watch on {folder}: {os.strerror(error)}")
        self.dirs[wd] = folder

    def add_tree(self, folder: Path) -> None:
        self.add(folder)
        if not self.wanted.recursive:
            return
        for base, dirs, _ in os.walk(folder):
            dirs[:] = [d for d in dirs if not d.startswith(".")]
            for name in dirs:
                self.add(Path(base) / name)

    def read(self) -> Iterator[Change | str]:
        """Changes, or "rescan" when events may have been missed (overflow, a new folder)."""
        try:
            data = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return
        offset = 0
        while offset < len(data):
            wd, mask, _, size = HEADER.unpack_from(data, offset)
            raw = data[offset + HEADER.size:offset + HEADER.size + size].rstrip(b"\0")
            offset += HEADER.size + size
            if mask & IN_Q_OVERFLOW:
                yield "rescan"
                continue
            folder = self.dirs.get(wd)
            if mask & IN_IGNORED:
                self.dirs.pop(wd, None)
                continue
            if folder is None or not raw:
                continue
            path = folder / os.fsdecode(raw)
            relative = str(path.relative_to(self.root))
            if mask & IN_ISDIR:
                if mask & (IN_CREATE | IN_MOVED_TO) and self.wanted.recursive \
                        and not path.name.startswith("."):
                    # Files made in it before its watch existed are found by the rescan.
                    self.add_tree(path)
                    yield "rescan"
                elif mask & (IN_DELETE | IN_MOVED_FROM):
                    yield "rescan"
                continue
            if not self.wanted.wants(relative):
                continue
            if mask & (IN_CLOSE_WRITE | IN_MOVED_TO):
                yield Change(WRITTEN, relative)
            elif mask & (IN_DELETE | IN_MOVED_FROM):
                yield Change(DELETED, relative)

    def close(self) -> None:
        os.close(self.fd)
