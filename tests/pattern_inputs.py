"""`pattern generate` with one catalogue sidecar and --set values: what a pattern's input
tests check (one clear error line, or the generated documents)."""

from __future__ import annotations

from typing import Any

import yaml
from support import CATALOGUE, Result, run_pattern


def generate_with(pattern: str, sets: list[str], *extra: str) -> Result:
    args = ["generate", "--name", "shop", "--app-image", "localhost/busybox:latest",
            "--with", pattern, *extra]
    for item in sets:
        args += ["--set", f"{pattern}.{item}"]
    return run_pattern(*args, catalogue=CATALOGUE)


def one_line_error(pattern: str, sets: list[str]) -> str:
    """The error `pattern generate` prints, checked to be one line with exit code 1."""
    result = generate_with(pattern, sets)
    assert result.code == 1, result
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def documents(pattern: str, sets: list[str], *extra: str) -> list[dict[str, Any]]:
    result = generate_with(pattern, sets, *extra)
    assert result.code == 0, result.stderr
    return list(yaml.safe_load_all(result.stdout))
