#!/usr/bin/env python3
"""Benchmark the adapter: cached-request latency (p50/p99) and idle RSS.

Starts a metadata peer (tests/peers/imds) and the adapter as local processes, waits until the
first snapshot is cached, then times N GETs of /v1/instance, over one keep-alive connection
and with a new connection per request. Goals from issue 7: p99 < 2 ms, RSS < 30 MB.

Usage: python3 images/iaas-metadata/bench.py [--cloud gcp] [-n 5000] [--port 22990]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PEER = HERE.parents[1] / "tests" / "peers" / "imds" / "imds_peer.py"


def wait_ready(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError("adapter not ready")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def time_requests(port: int, n: int, keep_alive: bool) -> list[float]:
    samples: list[float] = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    for _ in range(n):
        if not keep_alive:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        start = time.perf_counter()
        conn.request("GET", "/v1/instance")
        response = conn.getresponse()
        response.read()
        samples.append((time.perf_counter() - start) * 1000)
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        if not keep_alive:
            conn.close()
    return samples


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cloud", default="gcp")
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--port", type=int, default=22990, help="adapter port; peer uses +1")
    args = parser.parse_args()
    peer_port = args.port + 1
    procs = [subprocess.Popen([sys.executable, str(PEER), "--cloud", args.cloud,
                               "--port", str(peer_port)], stdout=subprocess.DEVNULL)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join((str(HERE), str(HERE.parent / "_common")))}
    extra = ["--qingcloud-instance-id", "i-abcd1234"] if args.cloud == "qingcloud" else []
    procs.append(subprocess.Popen(
        [sys.executable, "-m", "iaas_metadata", "--listen", f"127.0.0.1:{args.port}",
         "--provider", args.cloud, f"--{args.cloud}-endpoint", f"http://127.0.0.1:{peer_port}",
         *extra], env=env, stderr=subprocess.DEVNULL))
    try:
        wait_ready(args.port)
        time.sleep(1.0)
        idle = rss_kib(procs[1].pid)
        time_requests(args.port, 200, keep_alive=True)  # warm-up
        report: dict[str, object] = {"cloud": args.cloud, "requests": args.n,
                                     "python": sys.version.split()[0],
                                     "idle_rss_mib": round(idle / 1024, 1)}
        for label, keep in (("keep_alive", True), ("new_connection", False)):
            samples = time_requests(args.port, args.n, keep)
            report[label] = {"p50_ms": round(statistics.median(samples), 3),
                             "p99_ms": round(percentile(samples, 0.99), 3),
                             "max_ms": round(max(samples), 3)}
        report["rss_after_mib"] = round(rss_kib(procs[1].pid) / 1024, 1)
        p99 = report["keep_alive"]["p99_ms"]  # type: ignore[index]
        report["goals_met"] = bool(p99 < 2.0 and idle / 1024 < 30)
        print(json.dumps(report, indent=2))
        return 0
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(5)


if __name__ == "__main__":
    raise SystemExit(main())
