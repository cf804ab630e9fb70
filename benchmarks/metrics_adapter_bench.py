"""Idle memory and scrape latency of the metrics-adapter, one pod per adapter beside its real
app (the test peers' images: redis, nginx, PostgreSQL from Debian; a busybox app writing logs).

For each adapter it runs the pod the pattern generates with the project's runner, lets it
idle, reads VmRSS of the exporter and of the supervisor (PID 1) from /proc in the container,
then times GET /metrics from the host to the pod IP (as Prometheus scrapes): p50 and p99 over
--scrapes requests, and the size of one answer. A measurement, not a test.

Usage (as root; build first: pattern images build metrics-adapter, and the peers' images, e.g.
by running tests/integration/metrics_adapter once):
    .venv/bin/python benchmarks/metrics_adapter_bench.py [--scrapes 200] [--adapters redis,nginx]
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.catalogue import Catalogue  # noqa: E402
from generator.compose import compose  # noqa: E402
from generator.runner import engines, state  # noqa: E402
from generator.runner.run import documents_to_plans, down, up  # noqa: E402
from generator.stack import stack_from_dict  # noqa: E402

PEER = "localhost/sidecar-patterns-tests/metrics-{}:1"
LOG_WRITER = ("for l in error warning info; do i=0; while [ $i -lt 1000 ]; do "
              "echo \"$l line $i\" >> /var/log/app/$l.log; i=$((i+1)); done; done; "
              "exec sleep 3600")
PG_COMMAND = ("initdb -D /tmp/pg -U postgres --pwfile=/etc/pg-auth/password "
              "--auth-host=scram-sha-256 --auth-local=trust > /dev/null && exec postgres "
              "-D /tmp/pg -k /tmp -c listen_addresses=127.0.0.1")


def case(adapter: str) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """The app, the adapter's values and the documents besides the pod (a Secret)."""
    if adapter == "redis":
        return {"image": PEER.format("redis")}, {"adapter": "redis"}, []
    if adapter == "nginx":
        return {"image": PEER.format("nginx")}, {"adapter": "nginx"}, []
    if adapter == "logs":
        return ({"image": "localhost/busybox:latest", "command": ["sh", "-c", LOG_WRITER]},
                {"adapter": "logs", "logDir": "/var/log/app"}, [])
    password = base64.b64encode(b"bench-Pw1").decode()
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bench-pg"},
              "data": {"username": base64.b64encode(b"postgres").decode(),
                       "password": password}}
    app = {"image": PEER.format("postgres"), "command": ["sh", "-c", PG_COMMAND],
           "volumeMounts": [{"name": "auth", "mountPath": "/etc/pg-auth", "readOnly": True}]}
    return app, {"adapter": "postgres", "credentialsSecret": "bench-pg"}, [secret]


def rss_kib(container: str) -> dict[str, int]:
    """VmRSS by process name of the container's processes, read from the host's /proc (the
    image has no shell): PID 1 (the supervisor) and its descendants."""
    top = int(subprocess.run(["podman", "inspect", "--format", "{{.State.Pid}}", container],
                             capture_output=True, text=True, check=True).stdout)
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found: dict[str, int] = {}
    todo = [top]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            fields = dict(line.split(":", 1) for line in
                          Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if "VmRSS" in fields:
            name = fields["Name"].strip()
            found[name] = found.get(name, 0) + int(fields["VmRSS"].split()[0])
    return found


def scrape_ms(url: str, count: int) -> tuple[list[float], int]:
    times, size = [], 0
    for _ in range(count):
        start = time.perf_counter()
        with urllib.request.urlopen(url, timeout=10) as response:
            size = len(response.read())
        times.append((time.perf_counter() - start) * 1000)
    return times, size


def measure(adapter: str, scrapes: int, idle: float) -> dict[str, Any]:
    app, values, extra = case(adapter)
    name = f"bench-ma-{adapter}"
    stack = {"apiVersion": "sidecar-patterns.io/v1alpha1", "kind": "Stack",
             "metadata": {"name": name},
             "spec": {"app": app, "sidecars": [{"pattern": "metrics-adapter",
                                                "values": values}]}}
    if adapter == "postgres":
        stack["spec"]["volumes"] = [{"name": "auth", "secret": {"secretName": "bench-pg"}}]
    docs = [*extra, *compose(stack_from_dict(stack, "bench"), Catalogue(ROOT / "patterns"), [])]
    pod = next(d for d in docs if d["kind"] == "Pod")
    sidecar = pod["spec"]["initContainers"][0]
    port = sidecar["ports"][0]["containerPort"]
    plans = documents_to_plans(docs, {})
    engine = up(plans, wait=True, timeout=180, replace=True, say=lambda _: None,
                runtime=engines.engine("podman"))
    try:
        url = f"http://{engine.pod_ip(name, False)}:{port}/metrics"
        deadline = time.monotonic() + 60
        while True:  # the first good answer (nginx's exporter waits for stub_status)
            try:
                scrape_ms(url, 1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        time.sleep(idle)
        memory = rss_kib(engine.container_name(name, "metrics-adapter"))
        times, size = scrape_ms(url, scrapes)
    finally:
        if state.load(name) is not None:
            down(name, grace=0)
    times.sort()
    return {"adapter": adapter, "memory": memory, "p50": statistics.median(times),
            "p99": times[min(len(times) - 1, int(len(times) * 0.99))], "bytes": size}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--adapters", default="redis,nginx,postgres,logs")
    parser.add_argument("--scrapes", type=int, default=200)
    parser.add_argument("--idle", type=float, default=5.0, help="seconds before measuring")
    args = parser.parse_args()
    os.environ.setdefault("SIDECAR_PATTERNS_STATE", "/tmp/state-metrics-adapter-bench")
    print(f"{'adapter':9} {'exporter RSS':>13} {'supervisor RSS':>15} {'scrape p50':>11} "
          f"{'p99':>8} {'bytes':>7}")
    for adapter in args.adapters.split(","):
        row = measure(adapter, args.scrapes, args.idle)
        memory = row["memory"]
        supervisor = memory.pop("python3", 0)
        exporter = max(memory.values()) if memory else 0
        print(f"{adapter:9} {exporter / 1024:10.1f} MB {supervisor / 1024:12.1f} MB "
              f"{row['p50']:8.2f} ms {row['p99']:5.2f} ms {row['bytes']:7d}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
