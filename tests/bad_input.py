"""One check for every bad input the tests try (issue 17): no traceback, an answer within
10 s, an error as one line, and no file changed that the command was not asked to write.

Every case goes through `try_bad`, which counts it; the test run's summary prints the count.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from support import FIXTURE_CATALOGUE, InProcess, run_in_process

TRIED: list[str] = []
SECONDS = 10.0


def snapshot(*folders: Path) -> dict[Path, str]:
    """Every file under the folders, by content hash (symlinks and FIFOs by what they are)."""
    found: dict[Path, str] = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")) if folder.is_dir() else []:
            if path.is_symlink():
                found[path] = "link:" + str(path.readlink())
            elif path.is_file():
                found[path] = hashlib.sha256(path.read_bytes()).hexdigest()
            elif not path.is_dir():
                found[path] = "special"
    return found


def try_bad(*args: str, stdin: bytes | None = b"", watch: tuple[Path, ...] = (),
            may_write: Path | None = None, catalogue: Path | None = FIXTURE_CATALOGUE,
            env: dict[str, str] | None = None, fails: bool = True) -> InProcess:
    """Run one bad input and check the rules; returns the result for more specific checks."""
    TRIED.append(" ".join(args)[:80])
    before = snapshot(*watch)
    result = run_in_process(*args, stdin=stdin, catalogue=catalogue, env=env)
    after = snapshot(*watch)
    assert result.traceback is None, f"{args}: {result.traceback}"
    assert result.seconds < SECONDS, f"{args}: took {result.seconds:.1f}s"
    changed = {p for p in set(before) | set(after) if before.get(p) != after.get(p)}
    assert changed <= ({may_write} if may_write else set()), f"{args}: changed {changed}"
    if fails:
        assert result.code in (1, 2), f"{args}: exit {result.code}, {result.stderr!r}"
        assert result.stderr.count("\n") == 1 and result.stderr.startswith("error: "), \
            f"{args}: {result.stderr!r}"
    return result
