"""ConfigMap and Secret volumes laid out as the kubelet lays them out, and updated as it does.

The kubelet's atomic writer keeps a volume's files in a hidden folder `..<timestamp>`, points
the symlink `..data` at it, and shows each top-level name as a symlink through `..data`
(`app.conf -> ..data/app.conf`). An update writes a new timestamped folder, swaps `..data`
with one rename (so a reader sees the old set or the new one, never a mix), adjusts the
top-level links and removes the old folder. Apps and sidecars that watch such a volume react
to that swap; writing plain files would never exercise them. Host files only: the folder is
bind-mounted into the pod's containers, so both engines see a change at once.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

DATA = "..data"
Payload = dict[str, tuple[bytes, int]]  # relative path -> content, mode


def current(folder: Path) -> Payload | None:
    """What the volume shows now (None when it was never written in this layout)."""
    data = folder / DATA
    if not data.is_symlink():
        return None
    payload: Payload = {}
    root = data.resolve()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            payload[str(path.relative_to(root))] = (path.read_bytes(), path.stat().st_mode & 0o777)
    return payload


def write(folder: Path, payload: Payload) -> bool:
    """Make `folder` show `payload` the kubelet's way; False when it already did (nothing
    is written then, as the kubelet skips an unchanged payload)."""
    folder.mkdir(parents=True, exist_ok=True)
    if current(folder) == payload:
        return False
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    version = Path(tempfile.mkdtemp(prefix=stamp, dir=folder))
    version.chmod(0o755)
    for relative, (content, mode) in payload.items():
        path = version / relative
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
    old = folder / DATA
    previous = os.readlink(old) if old.is_symlink() else None
    staged = folder / "..data_tmp"
    staged.unlink(missing_ok=True)
    staged.symlink_to(version.name)
    os.replace(staged, old)  # the swap: one rename
    visible = {relative.split("/", 1)[0] for relative in payload}
    for name in visible:
        link = folder / name
        if not link.is_symlink():
            if link.exists():  # a plain file or folder of an older layout
                shutil.rmtree(link) if link.is_dir() else link.unlink()
            link.symlink_to(f"{DATA}/{name}")
    for entry in folder.iterdir():
        if not entry.name.startswith("..") and entry.name not in visible:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    if previous is not None and previous != version.name and "/" not in previous:
        shutil.rmtree(folder / previous, ignore_errors=True)
    return True
