"""Test helpers shared by every suite: the catalogues, running the real `pattern` command, and
the one way to wait for something (`wait_until`; tests wait on events, never on fixed sleeps)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from generator.sidecars import SidecarRequest, parse_with

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_CATALOGUE = ROOT / "tests" / "fixtures" / "patterns"
CATALOGUE = ROOT / "patterns"
SETUP_RUNTIME = ROOT / "scripts" / "setup-runtime.sh"
T = TypeVar("T")


def wait_until(condition: Callable[[], T], timeout: float, what: str = "the condition",
               interval: float = 0.05) -> T:
    """Poll `condition` until it returns something truthy, and return that; after `timeout`
    seconds fail the test, naming `what` and the last value seen. Deadlines are generous
    (the machine may be loaded); the wait ends as soon as the event is seen."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what} "
                                 f"(last: {value!r})")
        time.sleep(interval)


def seconds_until(condition: Callable[[], object], timeout: float,
                  what: str = "the condition") -> float:
    """`wait_until`, returning how long the wait took."""
    started = time.monotonic()
    wait_until(condition, timeout, what, interval=0.02)
    return time.monotonic() - started


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def run_pattern(*args: str, stdin: str | None = None, catalogue: Path | None = FIXTURE_CATALOGUE,
                cwd: Path | None = None, env: dict[str, str] | None = None) -> Result:
    """Run `pattern` as a user would: a new process, its exit code and both streams."""
    full_env = {**os.environ, **(env or {})}
    full_env.pop("SIDECAR_PATTERNS_CATALOGUE", None)
    if catalogue is not None:
        full_env["SIDECAR_PATTERNS_CATALOGUE"] = str(catalogue)
    proc = subprocess.run(
        [sys.executable, "-m", "generator", *args],
        input=stdin, capture_output=True, text=True, cwd=cwd, env=full_env, timeout=60,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def with_requests(items: list[str]) -> tuple[SidecarRequest, ...]:
    """`--with` items as the sidecar requests they stand for."""
    return tuple(parse_with(item) for item in items)


def run_setup_runtime(*prefix: str, env: dict[str, str] | None = None,
                      timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """scripts/setup-runtime.sh, run (after `prefix`, e.g. setpriv) with extra environment."""
    return subprocess.run([*prefix, "bash", str(SETUP_RUNTIME)], env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout, check=False)
def free_port() -> int:
    """A TCP port nothing on this host listens on now (the kernel picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def kubelet_update(directory: Path, files: dict[str, bytes]) -> None:
    """Publish files into a Secret/ConfigMap volume dir as the kubelet's AtomicWriter does: a
    new hidden timestamped dir, `..data` swapped to it by one rename, visible names symlinked
    through `..data`, the old dir removed. Plain files (as `pattern run` writes them at start)
    are replaced by such symlinks, each by one rename."""
    version = directory / f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
    version.mkdir()
    for name, content in files.items():
        (version / name).write_bytes(content)
        (version / name).chmod(0o644)
    data = directory / "..data"
    old = os.readlink(data) if data.is_symlink() else None
    staged = directory / "..data_tmp"
    staged.symlink_to(version.name)
    staged.rename(data)
    for name in files:
        link = directory / name
        if not link.is_symlink():
            temporary = directory / f"..{name}.link"
            temporary.symlink_to(f"..data/{name}")
            temporary.rename(link)
    if old is not None:
        for leftover in (directory / old).iterdir():
            leftover.unlink()
        (directory / old).rmdir()
