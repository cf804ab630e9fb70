"""Print what git-sync costs per commit for a large repository, before and after a change of
its code, in one run (a measurement, not a test).

Builds a repository of --files files of random bytes (--mib MiB in all, so the pack is about
that size: nothing compresses), serves it with `git daemon` from Debian on 127.0.0.1 (the
server the tests' gitd image runs), and for each variant of the sidecar's code runs it as a
process with --period 1s: the first clone, then --commits commits of one changed file each.
Every git command the sidecar runs goes through GNU time (/usr/bin/time), so each one's peak
RSS is known. Printed per variant:

- first clone: seconds to the first publish, git's peak RSS
- per commit: publish time (the sidecar's own `published ... ms`: ls-remote to link swap) and
  visible latency (push done to the new content read through <root>/current), median and max;
  git's peak RSS over the commits, and which git command peaked
- the volume: bytes under --root at the end (hard links counted once), against the checkout
  and the repository

"before" is the git-sync code at --before (default: the commit before the last VERSION bump of
images/git-sync), extracted with git archive; "after" is this working tree.

    python benchmarks/gitsync_bench.py [--files 20000 --mib 200 --commits 10 --before REV]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="b@example.invalid",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="b@example.invalid",
               GIT_CONFIG_NOSYSTEM="1")
WRAPPER = """#!/bin/sh
exec /usr/bin/time -a -o {log} -f '%M %e git %C' /usr/bin/git "$@"
"""
PUBLISHED = re.compile(r"published .*?ms=([0-9.]+)")


def git(*args: str, cwd: Path | None = None) -> str:
    return subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True,
                          capture_output=True, text=True).stdout.strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait(what: str, predicate: object, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():  # type: ignore[operator]
            return time.monotonic() - start
        time.sleep(0.005)
    raise SystemExit(f"timed out waiting for {what}")


def build_repository(tmp: Path, files: int, mib: int) -> Path:
    work, bare = tmp / "work", tmp / "app.git"
    git("init", "-q", "--bare", "-b", "main", str(bare))
    git("init", "-q", "-b", "main", str(work))
    size = mib * 1024 * 1024 // files
    for i in range(files):
        folder = work / f"d{i % 100:02d}" / f"e{i // 100 % 20:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:05d}.bin").write_bytes(os.urandom(size))
    (work / "VERSION").write_text("v0\n")
    git("add", "-A", cwd=work)
    git("commit", "-q", "-m", "big", cwd=work)
    git("push", "-q", str(bare), "HEAD:refs/heads/main", cwd=work)
    return work


def code_at(rev: str, into: Path) -> Path:
    """images/git-sync and images/_common as they were at rev."""
    into.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "images/git-sync",
                              "images/_common"], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "images"


def command_of(words: list[str]) -> list[str]:
    """The git subcommand and its arguments in a time log line: `KiB seconds git /usr/bin/git
    [--git-dir DIR] SUBCOMMAND ...`."""
    argv = words[4:]
    return argv[2:] if argv[:1] == ["--git-dir"] else argv


def default_before() -> str:
    bumps = git("-C", str(ROOT), "log", "--format=%H", "-2", "--", "images/git-sync/VERSION")
    return bumps.split()[0] + "~1"


def du(path: Path) -> int:
    return int(subprocess.run(["du", "-sb", str(path)], capture_output=True, text=True,
                              check=True).stdout.split()[0])


def run_variant(name: str, images: Path, tmp: Path, work: Path, port: int,
                commits: int) -> dict[str, object]:
    log = tmp / f"time-{name}.log"
    wrapper = tmp / f"bin-{name}"
    wrapper.mkdir()
    (wrapper / "git").write_text(WRAPPER.format(log=log))
    (wrapper / "git").chmod(0o755)
    root = tmp / f"root-{name}"
    env = dict(os.environ, PATH=f"{wrapper}{os.pathsep}{os.environ['PATH']}",
               PYTHONPATH=f"{images / 'git-sync'}{os.pathsep}{images / '_common'}")
    stderr = tmp / f"sidecar-{name}.log"
    started = time.monotonic()
    with stderr.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gitsync", "--repo", f"git://127.0.0.1:{port}/app.git",
             "--root", str(root), "--period", "1s", "--http-bind", f"127.0.0.1:{free_port()}"],
            env=env, stderr=err, stdout=subprocess.DEVNULL)
    try:
        version = root / "current" / "VERSION"
        wait("the first clone", lambda: version.is_file(), 900)
        first = time.monotonic() - started
        first_lines = len(log.read_text().splitlines())
        visible = []
        for n in range(1, commits + 1):
            (work / "VERSION").write_text(f"v{name}{n}\n")
            changed = work / "d00" / "e00" / "f00000.bin"
            changed.write_bytes(os.urandom(changed.stat().st_size))
            git("add", "-A", cwd=work)
            git("commit", "-q", "-m", f"{name} {n}", cwd=work)
            git("push", "-q", str(tmp / "app.git"), "HEAD:refs/heads/main", cwd=work)
            want = f"v{name}{n}\n"
            visible.append(wait("a commit", lambda w=want: version.is_file()  # type: ignore[misc]
                                and version.read_text() == w, 120))
        time.sleep(2)  # let the last cleanup finish before the volume is measured
    finally:
        proc.terminate()
        try:
            proc.wait(120)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    lines = log.read_text().splitlines()

    def peak(rows: list[str]) -> tuple[float, str]:
        parsed = [(int(r.split()[0]), " ".join(command_of(r.split())[:2])) for r in rows
                  if len(r.split()) > 4 and r.split()[0].isdigit()]
        kib, command = max(parsed) if parsed else (0, "")
        return kib / 1024, command

    steps: dict[str, list[float]] = {}
    for row in lines[first_lines:]:
        words = row.split()
        if len(words) < 4 or not words[0].isdigit():
            continue
        argv = command_of(words)
        steps.setdefault(argv[0], []).append(float(words[1]))
    publish = [float(m.group(1)) / 1000 for m in PUBLISHED.finditer(stderr.read_text())][1:]
    return {"first": first, "first_rss": peak(lines[:first_lines]),
            "publish": publish, "visible": visible, "steps": steps,
            "commit_rss": peak(lines[first_lines:]),
            "volume": du(root), "checkout": du(Path(os.path.realpath(root / "current"))),
            "repository": du(root / ".git-sync" / "repo.git")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--mib", type=int, default=200)
    parser.add_argument("--commits", type=int, default=10)
    parser.add_argument("--before", default=None, help="git revision of the 'before' code")
    parser.add_argument("--only", choices=["before", "after"], default=None)
    args = parser.parse_args()
    if not Path("/usr/bin/time").exists():
        print("needs GNU time (/usr/bin/time, Debian package time)", file=sys.stderr)
        return 1
    before = args.before or default_before()
    tmp = Path(tempfile.mkdtemp(prefix="gitsync-bench-", dir="/var/tmp"))
    port = free_port()
    try:
        made = time.monotonic()
        work = build_repository(tmp, args.files, args.mib)
        pack = sum(p.stat().st_size for p in (tmp / "app.git").rglob("*.pack"))
        print(f"repository: {args.files} files, pack {pack / 2**20:.0f} MiB "
              f"(built in {time.monotonic() - made:.0f}s); before = {before}")
        daemon = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all",
                                   f"--base-path={tmp}", "--listen=127.0.0.1", f"--port={port}",
                                   str(tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait("git daemon", lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 30)
            variants = {"before": code_at(before, tmp / "code-before"),
                        "after": ROOT / "images"}
            results = {}
            for name, images in variants.items():
                if args.only in (None, name):
                    results[name] = run_variant(name, images, tmp, work, port, args.commits)
                    print(f"{name}: done", flush=True)
        finally:
            daemon.terminate()
            daemon.wait()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    mib = 2**20
    print(f"{'':28}" + "".join(f"{n:>24}" for n in results))
    rows = {
        "first clone s": lambda r: f"{r['first']:.1f}",
        "first clone git peak MiB": lambda r: f"{r['first_rss'][0]:.0f}",
        "publish s median / max": lambda r: f"{statistics.median(r['publish']):.2f} / "
                                            f"{max(r['publish']):.2f}",
        "visible s median / max": lambda r: f"{statistics.median(r['visible']):.2f} / "
                                            f"{max(r['visible']):.2f}",
        "per-commit git peak MiB": lambda r: f"{r['commit_rss'][0]:.0f}",
        "volume MiB": lambda r: f"{r['volume'] / mib:.0f}",
        "checkout / repository MiB": lambda r: f"{r['checkout'] / mib:.0f} / "
                                               f"{r['repository'] / mib:.0f}",
    }
    for label, show in rows.items():
        print(f"{label:28}" + "".join(f"{show(r):>24}" for r in results.values()))
    for name, r in results.items():
        steps = r["steps"]
        assert isinstance(steps, dict)
        print(f"{name}: git seconds per commit by command: " + ", ".join(
            f"{k} {sum(v) / len(r['visible']):.2f}" for k, v in sorted(steps.items())))
        print(f"{name}: per-commit peak from `{r['commit_rss'][1]}`; first clone peak from "
              f"`{r['first_rss'][1]}`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
