"""Tell the app something, for the sidecars that do (log-rotate's reopen, config-reloader's
reload): find its processes by name in a shared process namespace (`shareProcessNamespace:
true`) to signal them, or call its HTTP endpoint. Stdlib only."""

from __future__ import annotations

import os
from pathlib import Path


def _mount_namespace(pid: str) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/mnt")
    except OSError:
        return None


def find_processes(name: str) -> list[int]:
    """The top-most processes named `name` (a master, not its workers) in other containers:
    with a shared process namespace this container's own processes are visible too (and may
    have the same name, python3 say), but they have this container's mount namespace."""
    ours = _mount_namespace("self")
    found: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or _mount_namespace(entry.name) == ours:
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if comm == name[:15]:
            found[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    return sorted(pid for pid, parent in found.items() if parent not in found)


def call(method: str, url: str, timeout: float) -> tuple[int | None, str]:
    """One HTTP call with an empty body (POST, PUT) or none: (status, '') or (None, why)."""
    # Only here: http.client, email and ssl would be a third of an idle sidecar's memory.
    import urllib.error
    import urllib.request

    request = urllib.request.Request(url, method=method,
                                     data=b"" if method in ("POST", "PUT") else None)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:
            return int(reply.status), ""
    except urllib.error.HTTPError as exc:
        return int(exc.code), ""
    except (urllib.error.URLError, OSError) as exc:
        return None, str(exc)
