"""Test helpers shared by every suite: the catalogues and running the real `pattern` command."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from generator.sidecars import SidecarRequest, parse_with

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_CATALOGUE = ROOT / "tests" / "fixtures" / "patterns"
CATALOGUE = ROOT / "patterns"


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
