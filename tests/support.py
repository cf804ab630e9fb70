"""Test helpers shared by every suite: the catalogues and running the real `pattern` command."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from generator.sidecars import SidecarRequest, parse_with

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_CATALOGUE = ROOT / "tests" / "fixtures" / "patterns"
CATALOGUE = ROOT / "patterns"
T = TypeVar("T")


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


def unique_name(prefix: str) -> str:
    """A pod (or peer) name no other test run on this machine uses: `prefix-<6 hex>`. Tests
    that run at the same time (two suites, two worktrees) never replace each other's pods."""
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def free_port() -> int:
    """A TCP port nothing on this host listens on now (the kernel picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(what: str, predicate: Callable[[], T | bool | None], timeout: float = 30,
             interval: float = 0.05) -> T:
    """The one wait helper: poll until predicate() is truthy and return that value; a timeout
    fails with `what` in the message."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def kubelet_update(directory: Path, files: dict[str, bytes]) -> None:
    """Publish files into a Secret/ConfigMap volume dir as the kubelet's AtomicWriter does: a
    new hidden timestamped dir, `..data` swapped to it by one rename, visible names symlinked
    through `..data`, the old dir removed (`pattern apply` does the same from a manifest).
    Plain files are replaced by such symlinks, each by one rename."""
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


def seconds_until(what: str, predicate: Callable[[], object], timeout: float = 30) -> float:
    """`wait_for`, returning how long the wait took (for tests that bound a latency)."""
    started = time.monotonic()
    wait_for(what, predicate, timeout, interval=0.02)
    return time.monotonic() - started


SETUP_RUNTIME = ROOT / "scripts" / "setup-runtime.sh"


def run_setup_runtime(*prefix: str, env: dict[str, str] | None = None,
                      timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """scripts/setup-runtime.sh, run (after `prefix`, e.g. setpriv) with extra environment."""
    return subprocess.run([*prefix, "bash", str(SETUP_RUNTIME)],
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout, check=False)


@dataclass
class InProcess:
    """What one in-process run of `pattern` did: its exit code, streams and any traceback."""

    code: int
    stdout: str
    stderr: str
    traceback: str | None
    seconds: float


def run_in_process(*args: str, stdin: bytes | None = b"",
                   catalogue: Path | None = FIXTURE_CATALOGUE,
                   env: dict[str, str] | None = None) -> InProcess:
    """Run the `pattern` entry point in this process (fast enough for property tests): stdin
    is these bytes, or closed for None; an exception other than SystemExit is a traceback."""
    import contextlib
    import io
    import time
    import traceback

    from generator import cli

    saved = (sys.argv, sys.stdin, dict(os.environ))
    out, err = io.StringIO(), io.StringIO()
    sys.argv = ["pattern", *args]
    sys.stdin = None if stdin is None else io.TextIOWrapper(io.BytesIO(stdin))  # type: ignore[assignment]
    os.environ.pop("SIDECAR_PATTERNS_CATALOGUE", None)
    if catalogue is not None:
        os.environ["SIDECAR_PATTERNS_CATALOGUE"] = str(catalogue)
    os.environ.update(env or {})
    code, failure = 0, None
    started = time.monotonic()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.main()
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException:  # a traceback is what the caller looks for
        failure = traceback.format_exc()
        code = -1
    finally:
        sys.argv, sys.stdin = saved[0], saved[1]
        os.environ.clear()
        os.environ.update(saved[2])
    return InProcess(code, out.getvalue(), err.getvalue(), failure, time.monotonic() - started)


def sidecar_env(stack: Path, sidecar: str, *sets: str) -> dict[str, str]:
    """The environment of one sidecar as `pattern generate -f STACK --set ...` renders it."""
    import yaml

    result = run_pattern("generate", "-f", str(stack), *(a for s in sets for a in ("--set", s)),
                         catalogue=CATALOGUE)
    assert result.code == 0, result.stderr
    for doc in yaml.safe_load_all(result.stdout):
        spec = doc.get("spec", {}).get("template", doc).get("spec", {})
        for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
            if container["name"] == sidecar:
                return {e["name"]: e["value"] for e in container.get("env", [])}
    raise AssertionError(f"no container {sidecar} in the output of {stack}")


def one_error(result: Result) -> str:
    """A command that failed as a user error: exit 1, nothing on stdout, one line on stderr."""
    assert result.code == 1 and result.stdout == "", result
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr
