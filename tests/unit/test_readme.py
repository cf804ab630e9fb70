"""The README's tour is copy-paste ready: its `pattern` commands run as written."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from support import CATALOGUE, ROOT, run_pattern


def tour_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    tour = text.split("## A five-minute tour", 1)[1].split("```console", 1)[1].split("```", 1)[0]
    joined = re.sub(r"\\\n\s*", " ", tour)
    commands = []
    for line in joined.splitlines():
        line = line.strip()
        if not line.startswith("$ pattern "):
            continue
        words = shlex.split(line[2:], comments=True)
        if "|" in words or any(w.endswith("stack.yaml") for w in words):
            continue  # needs a cluster or the reader's own stack file
        commands.append(words[1:])
    return commands


def test_the_tour_runs_in_order(tmp_path: Path) -> None:
    commands = tour_commands()
    assert [c[0] for c in commands] == ["list", "show", "generate", "validate"]
    for args in commands:
        result = run_pattern(*args, catalogue=CATALOGUE, cwd=tmp_path)
        assert result.code == 0, f"pattern {' '.join(args)}: {result.stderr}"
    assert (tmp_path / "shop.yaml").is_file()
