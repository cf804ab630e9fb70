"""The ambassador patterns' READMEs are copy-paste ready: every `pattern generate` line runs
as written, and each error shown below a command is the one line that command prints."""

from __future__ import annotations

import re
import shlex

import pytest
from support import CATALOGUE, ROOT, run_pattern

READMES = [CATALOGUE / "tls-proxy" / "README.md", CATALOGUE / "redis-ambassador" / "README.md"]


def commands() -> list[tuple[str, list[str], str | None]]:
    found: list[tuple[str, list[str], str | None]] = []
    for readme in (r for r in READMES if r.is_file()):
        for block in re.findall(r"```console\n(.*?)```", readme.read_text(), re.S):
            lines = re.sub(r"\\\n\s*", " ", block).splitlines()
            for index, line in enumerate(lines):
                if not line.startswith("$ pattern generate"):
                    continue
                words = shlex.split(line[2:].split(" | ")[0], comments=True)
                following = lines[index + 1] if index + 1 < len(lines) else ""
                error = following if following.startswith("error: ") else None
                found.append((readme.parent.name, words[1:], error))
    return found


@pytest.mark.parametrize(("pattern", "args", "error"), commands(),
                         ids=lambda v: v if isinstance(v, str) and len(v) < 30 else None)
def test_readme_command_runs_as_shown(pattern: str, args: list[str], error: str | None) -> None:
    result = run_pattern(*args, catalogue=CATALOGUE, cwd=ROOT)
    if error is None:
        assert result.code == 0, result.stderr
    else:
        assert result.code != 0 and result.stderr.strip() == error


def test_each_readme_shows_the_bad_input_errors() -> None:
    shown = [(p, e) for p, _, e in commands() if e]
    assert {p for p, _ in shown} == {r.parent.name for r in READMES if r.is_file()}
