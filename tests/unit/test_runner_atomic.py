"""The kubelet's layout of ConfigMap/Secret volumes, and its update by one `..data` swap."""

from __future__ import annotations

import os
from pathlib import Path

from generator.runner import atomic


def test_first_write_is_the_kubelets_layout(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    assert atomic.write(folder, {"app.conf": (b"x=1\n", 0o644), "sub/a.txt": (b"a", 0o600)})
    version = os.readlink(folder / "..data")
    assert version.startswith("..") and (folder / version).is_dir()
    assert os.readlink(folder / "app.conf") == "..data/app.conf"
    assert os.readlink(folder / "sub") == "..data/sub"
    assert (folder / "app.conf").read_bytes() == b"x=1\n"
    assert (folder / "sub" / "a.txt").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["..data", version, "app.conf", "sub"])


def test_an_update_swaps_data_and_drops_the_old_version(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    atomic.write(folder, {"app.conf": (b"x=1\n", 0o644), "gone.conf": (b"", 0o644)})
    first = os.readlink(folder / "..data")
    assert not atomic.write(folder, {"app.conf": (b"x=1\n", 0o644), "gone.conf": (b"", 0o644)})
    assert os.readlink(folder / "..data") == first  # unchanged: nothing written
    assert atomic.write(folder, {"app.conf": (b"x=2\n", 0o644), "new.conf": (b"n", 0o644)})
    second = os.readlink(folder / "..data")
    assert second != first and not (folder / first).exists()
    assert (folder / "app.conf").read_bytes() == b"x=2\n"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["..data", second, "app.conf", "new.conf"])
    assert atomic.current(folder) == {"app.conf": (b"x=2\n", 0o644), "new.conf": (b"n", 0o644)}
