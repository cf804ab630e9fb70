"""Readers that check every snapshot of the published tree during 100 syncs never see a mix."""

from __future__ import annotations

import os
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from gitsync_testkit import GitDaemon, Upstream, running_sidecar
from support import free_port, wait_for

FILES = 20
SYNCS = 100


@dataclass
class Reader:
    """Opens the published directory once per snapshot (as an app resolving it would) and reads
    VERSION plus every data file through that handle."""

    link: Path
    snapshots: int = 0
    versions: set[str] = field(default_factory=set)
    mixed: list[str] = field(default_factory=list)
    vanished: int = 0
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def snapshot(self) -> None:
        fd = os.open(self.link, os.O_RDONLY | os.O_DIRECTORY)
        try:
            version = _read(fd, "VERSION")
            data_fd = os.open("data", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            try:
                names = sorted(os.listdir(data_fd))
            finally:
                os.close(data_fd)
            contents = {_read(fd, f"data/{n}").splitlines()[0] for n in names}
        finally:
            os.close(fd)
        if len(names) != FILES or contents != {version.strip()}:
            self.mixed.append(f"{version.strip()}: {len(names)} files, versions {contents}")
        self.versions.add(version.strip())
        self.snapshots += 1

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.snapshot()
            except FileNotFoundError:
                self.vanished += 1  # a tree deleted while still being read
            except OSError as exc:
                self.errors.append(repr(exc))
                return


def _read(dir_fd: int, name: str) -> str:
    fd = os.open(name, os.O_RDONLY, dir_fd=dir_fd)
    try:
        return os.read(fd, 1 << 16).decode()
    finally:
        os.close(fd)


def test_readers_never_see_a_partial_tree_during_100_syncs_in_either_mode(
        tmp_path: Path, daemon: GitDaemon, upstream: Upstream) -> None:
    """Both publish modes at once (one sidecar each, same pushes), which halves the time."""
    token = tmp_path / "token"
    token.write_text("t")
    upstream.commit_and_push(files=FILES)
    with ExitStack() as stack:
        sidecars = {
            mode: stack.enter_context(running_sidecar(
                tmp_path, daemon.url(), free_port(), "--publish", mode,
                "--period", "10m", "--trigger-token-file", str(token),
                root=tmp_path / f"volume-{mode}"))
            for mode in ("symlink", "exchange")
        }
        readers = {mode: Reader(sc.current) for mode, sc in sidecars.items()}
        threads = [threading.Thread(target=r.run, daemon=True) for r in readers.values()]
        for thread in threads:
            thread.start()
        try:
            for _ in range(SYNCS):
                upstream.commit_and_push(files=FILES)
                want = f"v{upstream.version}"
                for sc in sidecars.values():
                    assert sc.request("/sync", "POST", {"Authorization": "Bearer t"})[0] == 202
                for sc in sidecars.values():
                    wait_for("the condition",  # type: ignore[misc]
                             lambda sc=sc, want=want: sc.read_version() == want, 30)
        finally:
            for reader in readers.values():
                reader.stop.set()
            for thread in threads:
                thread.join(5)
        for sc in sidecars.values():
            wait_for("the condition",  # type: ignore[misc]
                     lambda sc=sc: sc.status()["commits_published"] == SYNCS + 1, 30)
        exchanged = sidecars["exchange"].current
        assert exchanged.is_dir() and not exchanged.is_symlink()
    for mode, reader in readers.items():
        assert reader.errors == [], mode
        assert reader.mixed == [], mode
        assert reader.vanished == 0, mode
        assert reader.snapshots > SYNCS * 5, f"{mode}: the reader must have run throughout"
        assert len(reader.versions) > SYNCS // 2, f"{mode}: the reader must have seen most versions"
