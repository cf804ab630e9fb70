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
