"""redis ops/s straight to one redis-server and through the redis-ambassador's nutcracker in
front of three, in one run, with redis-benchmark (all Debian bookworm, on 127.0.0.1).

The ambassador is the image's own entrypoint (images/redis-ambassador/redis_ambassador.py,
the pattern's defaults: ketama, fnv1a_64, timeout 400 ms, one connection per server) run as
a process; the shards are redis-server without persistence. Each line is one
`redis-benchmark -t set,get -n N -c C [-P pipeline]` figure; RSS is nutcracker's at the end.

Usage (apt-get install redis-server redis-tools nutcracker):
    .venv/bin/python benchmarks/redis_ambassador_bench.py [--requests 100000] [--clients 50]
        [--pipeline 1,16]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENTRYPOINT = ROOT / "images" / "redis-ambassador" / "redis_ambassador.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_pong(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True,
                              text=True, check=False)
        if done.stdout.strip() == "PONG":
            return
        time.sleep(0.05)
    raise SystemExit(f"no PONG on {port}")


def bench(port: int, args: argparse.Namespace, pipeline: int) -> dict[str, float]:
    out = subprocess.run(["redis-benchmark", "-p", str(port), "-t", "set,get", "-n",
                          str(args.requests), "-c", str(args.clients), "-P", str(pipeline),
                          "--csv"], capture_output=True, text=True, check=True).stdout
    rows = list(csv.reader(io.StringIO(out)))
    return {row[0]: float(row[1]) for row in rows[1:]}


def rss_mib(pid: int) -> float:
    found = re.search(r"^VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text(), re.M)
    return int(found.group(1)) / 1024 if found else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--pipeline", default="1,16")
    args = parser.parse_args()
    for tool in ("redis-server", "redis-benchmark", "nutcracker"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: apt-get install redis-server redis-tools "
                             "nutcracker")
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="redis-bench-") as tmp:
        try:
            shards = [free_port() for _ in range(3)]
            for port in shards:
                procs.append(subprocess.Popen(["redis-server", "--port", str(port), "--bind",
                                               "127.0.0.1", "--save", "", "--appendonly", "no"],
                                              stdout=subprocess.DEVNULL))
                wait_pong(port)
            listen = free_port()
            env = {**os.environ, "PYTHONPATH": str(ROOT / "images" / "_common")}
            ambassador = subprocess.Popen(
                [sys.executable, str(ENTRYPOINT), "--listen", f"127.0.0.1:{listen}",
                 "--servers", ",".join(f"127.0.0.1:{p}:1" for p in shards),
                 "--health-bind", f"127.0.0.1:{free_port()}", "--stats-port", str(free_port()),
                 "--state-dir", f"{tmp}/state", "--log-level", "2"], env=env)
            procs.append(ambassador)
            wait_pong(listen)
            print(f"redis-benchmark -n {args.requests} -c {args.clients}, {os.cpu_count()} CPUs")
            print(f"{'target':<34} {'pipeline':>8} {'SET ops/s':>11} {'GET ops/s':>11}")
            for pipeline in (int(p) for p in args.pipeline.split(",")):
                for label, port in (("redis-server direct (1 of 3)", shards[0]),
                                    ("ambassador (nutcracker) -> 3", listen)):
                    figures = bench(port, args, pipeline)
                    print(f"{label:<34} {pipeline:>8} {figures['SET']:>11,.0f} "
                          f"{figures['GET']:>11,.0f}", flush=True)
            nutcracker = subprocess.run(["pgrep", "-P", str(ambassador.pid), "nutcracker"],
                                        capture_output=True, text=True, check=False).stdout
            if nutcracker.strip():
                print(f"nutcracker RSS: {rss_mib(int(nutcracker.split()[0])):.1f} MiB")
        finally:
            for proc in reversed(procs):
                proc.terminate()
                proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
