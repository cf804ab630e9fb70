"""Throughput, CPU seconds and peak RSS of the log-collector sidecar for 1,000,000 lines, beside
a hand-tuned bare syslog-ng config doing the same job, measured in the same run.

Each run pre-writes the lines into error.log, warning.log and info.log (a third each), starts
the image (host network, read-only root, the rendered config mounted as the pod would), and
counts records at a TCP sink on 127.0.0.1 until all arrived; CPU (utime+stime) and peak RSS
(VmHWM) are read from /proc for the container's syslog-ng. Configurations:

- ours: the syslog-ng.conf the pattern renders (generator, default values, syslog to the sink)
- hand-tuned: written by hand for the same output (RFC 5424, octet-counted, same severity and
  SD params pod/namespace/container/app/level/file, same flow-control and buffer), with every
  trick found by hand: static values as literals, one rewrite per file, a 3,000-line window
- bare-raw: the engine's floor: one wildcard source, raw lines, no fields, no buffer

The sink checks that ours and hand-tuned send the same records (timestamps aside).

Usage (as root; build the image first: pattern images build log-collector):
    .venv/bin/python benchmarks/log_collector_bench.py [--lines 1000000] [--runs 3]
        [--configs ours,hand-tuned,bare-raw] [--when-full block|drop] [--buffer-size 64Mi]
        [--port 23010]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from generator.catalogue import Catalogue  # noqa: E402
from generator.compose import compose  # noqa: E402
from generator.sidecars import SidecarRequest  # noqa: E402
from generator.stack import Stack  # noqa: E402

VERSION = (ROOT / "images" / "log-collector" / "VERSION").read_text().strip()
IMAGE = f"ghcr.io/sidecar-patterns/log-collector:{VERSION}"
MARKER = b"~END~"
FILES = {"E": "error.log", "W": "warning.log", "I": "info.log"}
CLK_TCK = os.sysconf("SC_CLK_TCK")
POD = "bench"
# What the kubelet would resolve the downward-API fields to, for this benchmark pod.
FIELD_REFS = {"metadata.name": POD, "metadata.namespace": "default",
              "metadata.labels['app.kubernetes.io/name']": POD}

HAND_TUNED = """@version: 3.38
options {{ stats-level(1); log-fifo-size(10000); keep-hostname(yes); time-reopen(5); }};
{sources}
destination d {{ syslog("127.0.0.1" port({port}) transport("tcp") so-keepalive(yes){buffer}); }};
{paths}
"""
HAND_SOURCE = """source s_{n} {{ wildcard-file(base-dir("/var/log/app") filename-pattern("{name}")
    monitor-method(poll) follow-freq(0.1) max-files(1) log-iw-size(3000) log-fetch-limit(1000)
    flags(no-parse) default-priority({severity}) default-facility(user)); }};"""
HAND_PATH = """log {{ source(s_{n}); rewrite {{
    set("bench" value(".SDATA.logcollector@32473.pod"));
    set("default" value(".SDATA.logcollector@32473.namespace"));
    set("bench" value(".SDATA.logcollector@32473.container"));
    set("bench" value(".SDATA.logcollector@32473.app"));
    set("{level}" value(".SDATA.logcollector@32473.level"));
    set("{name}" value(".SDATA.logcollector@32473.file")); }};
    destination(d); flags(flow-control); }};"""
HAND_BUFFER = """ disk-buffer(reliable(yes) disk-buf-size({size}) mem-buf-size(1048576)
    dir("/var/lib/log-collector/buffer"))"""
BARE_RAW = """@version: 3.38
options {{ stats-level(1); log-fifo-size(30000); }};
source s {{ wildcard-file(base-dir("/var/log/app") filename-pattern("*.log") flags(no-parse)
    monitor-method(poll) follow-freq(0.1) max-files(10) log-iw-size(30000)
    log-fetch-limit(1000)); }};
destination d {{ network("127.0.0.1" port({port}) transport("tcp") template("$MSG\\n")); }};
log {{ source(s); destination(d); flags(flow-control); }};
"""
LEVELS = {"error.log": ("error", "err"), "warning.log": ("warning", "warning"),
          "info.log": ("info", "info")}


@dataclass(frozen=True)
class Result:
    config: str
    lines: int
    seconds: float
    lines_per_s: int
    cpu_s: float
    peak_rss_mb: float


class MarkerSink:
    """TCP sink on 127.0.0.1: counts records by the marker each line ends with, keeps a few."""

    def __init__(self, port: int) -> None:
        self.count = 0
        self.head = b""
        self._server = socket.create_server(("127.0.0.1", port), reuse_port=True)
        self._server.setblocking(False)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        sel = selectors.DefaultSelector()
        sel.register(self._server, selectors.EVENT_READ)
        tails: dict[socket.socket, bytes] = {}
        while not self._stop.is_set():
            for key, _ in sel.select(timeout=0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._server:
                    conn, _ = sock.accept()
                    conn.setblocking(False)
                    sel.register(conn, selectors.EVENT_READ)
                    tails[conn] = b""
                    continue
                data = sock.recv(1 << 20)
                if not data:
                    sel.unregister(sock)
                    sock.close()
                    continue
                if len(self.head) < 4096:
                    self.head += data[:4096]
                # Keep the last bytes so a marker split across two reads is counted once.
                chunk = tails[sock] + data
                self.count += chunk.count(MARKER)
                tails[sock] = chunk[-(len(MARKER) - 1):]
        sel.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._server.close()


def write_backlog(directory: Path, total: int) -> None:
    pad = "lorem ipsum dolor sit amet " * 2
    for i, (letter, name) in enumerate(FILES.items()):
        count = total // len(FILES) + (1 if i < total % len(FILES) else 0)
        with (directory / name).open("w") as out:
            for start in range(0, count, 10_000):
                stop = min(start + 10_000, count)
                out.write("".join(f"{letter}:{n} {pad}~END~\n" for n in range(start, stop)))


def rendered(port: int, when_full: str, buffer_size: str) -> tuple[str, dict[str, str]]:
    """The pattern's config and the sidecar's environment, as the pod would get them."""
    values = {"host": "127.0.0.1", "port": port, "whenFull": when_full, "bufferSize": buffer_size}
    stack = Stack(name=POD, app={"image": "localhost/busybox:latest"},
                  sidecars=(SidecarRequest("log-collector", "log-collector", values=values),))
    docs = compose(stack, Catalogue(ROOT / "patterns"), [])
    config = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["syslog-ng.conf"]
    pod: dict[str, Any] = docs[-1]
    sidecar = next(c for c in pod["spec"]["initContainers"] if c["name"] == "log-collector")
    env = {}
    for item in sidecar.get("env", []):
        ref = item.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
        env[item["name"]] = FIELD_REFS[ref] if ref else item["value"]
    return config, env


def hand_tuned(port: int, when_full: str, buffer_bytes: int) -> str:
    names = list(FILES.values())
    sources = "\n".join(HAND_SOURCE.format(n=i, name=name, severity=LEVELS[name][1])
                        for i, name in enumerate(names))
    paths = "\n".join(HAND_PATH.format(n=i, name=name, level=LEVELS[name][0])
                      for i, name in enumerate(names))
    if when_full == "drop":
        paths = paths.replace(" flags(flow-control);", "")
    buffer = HAND_BUFFER.format(size=buffer_bytes) if buffer_bytes and when_full == "drop" else ""
    return HAND_TUNED.format(sources=sources, paths=paths, port=port, buffer=buffer)


def bytes_of(quantity: str) -> int:
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30}
    return int(quantity[:-2]) * units[quantity[-2:]] if quantity[-2:] in units else int(quantity)


def proc_figures(pid: int) -> tuple[float, float]:
    """CPU seconds (utime+stime) and peak RSS in MB of a host PID."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    hwm_kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    return cpu, hwm_kb / 1024


def wait_for_all(sink: MarkerSink, lines: int, start: float) -> float:
    """Seconds until every line arrived; stops early when nothing arrives for 10 s."""
    last, last_change = -1, time.monotonic()
    while sink.count < lines:
        if sink.count != last:
            last, last_change = sink.count, time.monotonic()
        elif time.monotonic() - last_change > 10:
            break
        time.sleep(0.01)
    return time.monotonic() - start


def run_once(name: str, config: str, env: dict[str, str], lines: int,
             port: int) -> tuple[Result, bytes]:
    with tempfile.TemporaryDirectory(prefix="lc-bench-") as tmp:
        root = Path(tmp)
        for sub in ("logs", "state", "etc"):
            (root / sub).mkdir()
            (root / sub).chmod(0o777)
        (root / "etc" / "syslog-ng.conf").write_text(config)
        write_backlog(root / "logs", lines)
        sink = MarkerSink(port)
        container = f"lc-bench-{os.getpid()}-{name}"
        env_args = [a for k, v in env.items() for a in ("-e", f"{k}={v}")]
        try:
            start = time.monotonic()
            subprocess.run(
                ["podman", "run", "-d", "--name", container, "--network", "host", "--read-only",
                 *env_args, "-v", f"{root / 'logs'}:/var/log/app:ro",
                 "-v", f"{root / 'state'}:/var/lib/log-collector",
                 "-v", f"{root / 'etc'}:/etc/log-collector:ro", IMAGE],
                check=True, capture_output=True)
            pid = int(subprocess.run(["podman", "inspect", "-f", "{{.State.Pid}}", container],
                                     check=True, capture_output=True, text=True).stdout)
            seconds = wait_for_all(sink, lines, start)
            cpu, rss = proc_figures(pid)
        finally:
            logs = subprocess.run(["podman", "logs", container], capture_output=True, text=True)
            subprocess.run(["podman", "rm", "-f", "-t", "0", container], capture_output=True)
            sink.close()
    if sink.count < lines:
        raise RuntimeError(f"{name}: {sink.count} of {lines} lines arrived: {logs.stderr[-2000:]}")
    return Result(name, lines, round(seconds, 2), round(lines / seconds), round(cpu, 2),
                  round(rss, 1)), sink.head


def comparable(head: bytes) -> str:
    """The first record without its octet count, timestamp and which file it came from (the
    first to arrive may be any of the three), to compare two configs' output."""
    text = head.decode(errors="replace")
    first = text.split(MARKER.decode(), 1)[0]
    first = re.sub(r"^\d+ <\d+>1 \S+ ", "<PRI>1 TIMESTAMP ", first)
    first = re.sub(r'level="\w+" file="\w+\.log"', 'level="L" file="F"', first)
    return re.sub(r"\] [EWI]:0 ", "] X:0 ", first)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=23010)
    parser.add_argument("--when-full", choices=["block", "drop"], default="block")
    parser.add_argument("--buffer-size", default="64Mi", help="used with --when-full drop")
    parser.add_argument("--configs", default="ours,hand-tuned,bare-raw")
    args = parser.parse_args()
    ours, env = rendered(args.port, args.when_full, args.buffer_size)
    configs = {
        "ours": (ours, env),
        "hand-tuned": (hand_tuned(args.port, args.when_full, bytes_of(args.buffer_size)), {}),
        "bare-raw": (BARE_RAW.format(port=args.port), {}),
    }
    chosen = args.configs.split(",")
    results: list[Result] = []
    heads: dict[str, str] = {}
    for _ in range(args.runs):
        for name in chosen:
            config, config_env = configs[name]
            result, head = run_once(name, config, config_env, args.lines, args.port)
            heads[name] = comparable(head)
            print(json.dumps(asdict(result)), flush=True)
            results.append(result)
    summary = {name: {key: statistics.median(getattr(r, key) for r in results if r.config == name)
                      for key in ("lines_per_s", "cpu_s", "peak_rss_mb")} for name in chosen}
    print(json.dumps({"median": summary}))
    if "ours" in summary and "hand-tuned" in summary:
        print(json.dumps({
            "ours_vs_hand_tuned_lines_per_s": round(
                summary["ours"]["lines_per_s"] / summary["hand-tuned"]["lines_per_s"], 3),
            "same_records": heads["ours"] == heads["hand-tuned"],
            "first_record": heads["ours"], "hand_tuned_first_record": heads["hand-tuned"]}))


if __name__ == "__main__":
    main()
