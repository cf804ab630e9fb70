"""Benchmark (not a test): commit-to-visible latency for polling and triggered syncs, idle RSS.

Runs a local `git daemon` on 127.0.0.1, the sidecar from this folder as a process, and pushes
commits. Latency is measured from the end of `git push` until <root>/current/VERSION shows the
new version (polled every 5 ms). Stdlib only.

    python3 images/git-sync/bench.py [--iterations 20] [--period 1s] [--port-base 21900]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="b@example.invalid",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="b@example.invalid",
               GIT_CONFIG_NOSYSTEM="1")


def git(*args: str, cwd: Path | None = None) -> None:
    subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, check=True, capture_output=True)


def wait_port(port: int, timeout_s: float = 10) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise SystemExit(f"nothing listens on 127.0.0.1:{port}")


def wait_version(path: Path, want: str, timeout_s: float = 30) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        try:
            if path.read_text() == want:
                return time.monotonic() - start
        except OSError:
            pass
        time.sleep(0.005)
    raise SystemExit(f"{path} never showed {want!r}")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise SystemExit("no VmRSS")


class Bench:
    def __init__(self, tmp: Path, port_base: int) -> None:
        self.tmp = tmp
        self.work = tmp / "work"
        self.daemon_port, self.http_port = port_base, port_base + 1
        self.version = 0
        git("init", "-q", "--bare", "-b", "main", str(tmp / "app.git"))
        git("init", "-q", "-b", "main", str(self.work))
        git("remote", "add", "origin", str(tmp / "app.git"), cwd=self.work)
        for i in range(200):  # the size used by the earlier engine measurement: 200 x 2 KB
            (self.work / f"file{i:03d}.txt").write_text("x" * 2048)
        self.push()

    def push(self) -> str:
        self.version += 1
        text = f"v{self.version}\n"
        (self.work / "VERSION").write_text(text)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", text, cwd=self.work)
        git("push", "-q", "origin", "HEAD:refs/heads/main", cwd=self.work)
        return text

    def start_daemon(self) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(["git", "daemon", "--reuseaddr", "--export-all",
                                 f"--base-path={self.tmp}", "--listen=127.0.0.1",
                                 f"--port={self.daemon_port}", str(self.tmp)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.daemon_port)
        return proc

    def start_sidecar(self, root: Path, period: str, token: Path) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gitsync", "--repo",
             f"git://127.0.0.1:{self.daemon_port}/app.git", "--root", str(root),
             "--period", period, "--http-bind", f"127.0.0.1:{self.http_port}",
             "--trigger-token-file", str(token)],
            env=dict(os.environ, PYTHONPATH=f"{HERE}{os.pathsep}{HERE.parent / '_common'}"),
            stderr=subprocess.DEVNULL)
        wait_port(self.http_port)
        wait_version(root / "current" / "VERSION", f"v{self.version}\n")
        return proc

    def trigger(self) -> None:
        req = urllib.request.Request(f"http://127.0.0.1:{self.http_port}/sync", method="POST",
                                     headers={"Authorization": "Bearer bench"})
        urllib.request.urlopen(req, timeout=5).close()


def summary(name: str, samples: list[float]) -> str:
    ms = sorted(s * 1000 for s in samples)
    p95 = ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]
    return (f"{name:<10} n={len(ms):<3} median={statistics.median(ms):7.1f} ms  "
            f"p95={p95:7.1f} ms  max={ms[-1]:7.1f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--period", default="1s")
    parser.add_argument("--port-base", type=int, default=21900)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gitsync-bench-") as raw:
        tmp = Path(raw)
        bench = Bench(tmp, args.port_base)
        token = tmp / "token"
        token.write_text("bench")
        daemon = bench.start_daemon()
        results: dict[str, list[float]] = {"polling": [], "triggered": []}
        try:
            for mode, period in (("polling", args.period), ("triggered", "10m")):
                root = tmp / f"root-{mode}"
                sidecar = bench.start_sidecar(root, period, token)
                try:
                    for _ in range(args.iterations):
                        want = bench.push()
                        pushed = time.monotonic()
                        if mode == "triggered":
                            bench.trigger()
                        wait_version(root / "current" / "VERSION", want)
                        results[mode].append(time.monotonic() - pushed)
                    if mode == "triggered":
                        time.sleep(3)  # idle: no sync in flight, hooks thread parked
                        idle = rss_mb(sidecar.pid)
                finally:
                    sidecar.terminate()
                    sidecar.wait(10)
        finally:
            daemon.terminate()
            daemon.wait(10)
    print(f"commit-to-visible latency, git daemon on 127.0.0.1, polling period {args.period}:")
    for mode, samples in results.items():
        print(summary(mode, samples))
    print(f"idle RSS of the sidecar process: {idle:.1f} MB (goal < 30 MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
