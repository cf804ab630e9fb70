"""Events/s and event latency of the change-notifier on a burst of files, with the test
receiver (an HTTP server that parses every event with the CNCF `cloudevents` SDK).

It runs the pod the pattern generates with the project's runner (a busybox app beside the
sidecar), writes --files files into the watched folder from the app container in one burst,
and waits until the receiver holds an event for each. Figures:
- notifier events/s: files / (last event received - first file written);
- latency of each event, from the file's last write (its mtime, in the event) to the
  receiver's parse: p50 and p99;
- duplicates and drops (the sidecar's /healthz).
The baseline beside it: the same number of CloudEvents POSTed from the host to the same
receiver one after another on one connection (no files, no queue, no fsync), the ceiling the
receiver sets. A measurement, not a test.

Usage (as root; build first: pattern images build change-notifier):
    .venv/bin/python benchmarks/change_notifier_bench.py [--files 10000] [--debounce 200ms]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "peers" / "events")]

from pods import running, stack_documents  # noqa: E402
from receiver import Receiver, gateway, latencies  # noqa: E402

from generator.runner import engines  # noqa: E402


def notifier(files: int, debounce: str) -> dict[str, Any]:
    receiver = Receiver(gateway())
    receiver.start()
    name = f"bench-cn-{uuid.uuid4().hex[:6]}"
    source = f"/sidecar-patterns/{name}/change-notifier"
    stack = {"apiVersion": "sidecar-patterns.io/v1alpha1", "kind": "Stack",
             "metadata": {"name": name},
             "spec": {"app": {"image": "localhost/busybox:latest",
                              "command": ["sh", "-c", "exec sleep 3600"]},
                      "sidecars": [{"pattern": "change-notifier",
                                    "values": {"url": receiver.url, "path": "/srv/data",
                                               "debounce": debounce}}]}}
    try:
        with running(stack_documents(stack, ROOT / "patterns"), timeout=180,
                     runtime=engines.engine("podman")) as (pod,):
            started = time.time()
            pod.exec(pod.name, "sh", "-c", f"cd /srv/data && i=0; while [ $i -lt {files} ]; "
                     "do echo $i > f$i; i=$((i+1)); done", timeout=600)
            written = time.time()
            deadline = time.monotonic() + 900
            while len(receiver.by_subject(source)) < files:
                if time.monotonic() > deadline:
                    raise SystemExit(f"only {len(receiver.by_subject(source))} of {files} "
                                     "events arrived in 15 minutes")
                time.sleep(0.2)
            health = json.loads(pod.exec("change-notifier", "python3", "-m", "change_notifier",
                                         "healthcheck", "/healthz").stdout)
    finally:
        receiver.stop()
    events = receiver.by_subject(source)
    last = max(e.at for v in events.values() for e in v)
    return {"write": written - started, "rate": files / (last - started),
            "latency": latencies(events), "duplicates": sum(len(v) - 1 for v in events.values()),
            "dropped": health["dropped"]}


def baseline(files: int) -> dict[str, Any]:
    """The same number of structured CloudEvents straight to the receiver, one connection."""
    receiver = Receiver("127.0.0.1")
    receiver.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=30)
        started = time.time()
        sent: list[float] = []
        for i in range(files):
            body = json.dumps({"specversion": "1.0", "id": f"b{i}", "source": "/baseline",
                               "type": "io.sidecar-patterns.change-notifier.file.written",
                               "subject": f"f{i}", "datacontenttype": "application/json",
                               "data": {"path": f"f{i}", "size": 2}})
            sent.append(time.time())
            connection.request("POST", "/events", body=body, headers={
                "Content-Type": "application/cloudevents+json; charset=utf-8"})
            connection.getresponse().read()
        connection.close()
        got = receiver.got()
    finally:
        receiver.stop()
    delays = sorted(e.at - sent[int(e.id[1:])] for e in got)
    return {"rate": files / (max(e.at for e in got) - started), "latency": delays}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--debounce", default="200ms")
    args = parser.parse_args()
    os.environ.setdefault("SIDECAR_PATTERNS_STATE", "/tmp/state-change-notifier-bench")
    ours = notifier(args.files, args.debounce)
    bare = baseline(args.files)

    def p(values: list[float], q: float) -> float:
        return values[min(len(values) - 1, int(len(values) * q))]
    print(f"{args.files} files (written in {ours['write']:.1f} s), debounce {args.debounce}")
    print(f"{'':34} {'events/s':>9} {'latency p50':>12} {'p99':>9}")
    print(f"{'change-notifier (file -> receiver)':34} {ours['rate']:9.0f} "
          f"{statistics.median(ours['latency']):10.2f} s {p(ours['latency'], 0.99):7.2f} s")
    print(f"{'baseline: bare POST loop':34} {bare['rate']:9.0f} "
          f"{statistics.median(bare['latency']) * 1000:9.2f} ms "
          f"{p(bare['latency'], 0.99) * 1000:6.2f} ms")
    print(f"duplicates {ours['duplicates']}, dropped {ours['dropped']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
