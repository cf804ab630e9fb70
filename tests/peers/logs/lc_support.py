"""Helpers for the log-collector tests: stacks that use the pattern, the app stand-in, and what
the central servers (tests/peers/logs/compose.yaml) stored, per pod.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pods import cli
from support import unique_name

from generator.catalogue import Catalogue
from generator.compose import compose
from generator.sidecars import SidecarRequest
from generator.stack import Stack

REPO = Path(__file__).resolve().parents[3]
PEERS_DIR = Path(__file__).resolve().parent
CATALOGUE = REPO / "patterns"
PYTHON_IMAGE = "localhost/python3-debian:3.11-bookworm"
# The servers' names for this session (compose.yaml's aliases): another suite on the machine
# has servers called rsyslog and http-sink on the same network.
PEERS_ID = str(os.getpid())
SYSLOG_HOST, SYSLOG_PORT = f"rsyslog-{PEERS_ID}", 23001
HTTP_URL = f"http://http-sink-{PEERS_ID}:23002"
SD_ID = "logcollector@32473"
LEVELS = {"E": "error", "W": "warning", "I": "info"}
SEVERITIES = {"error": "err", "warning": "warning", "info": "info"}
APP_UID = 12345
# Text that tries to break out of a syslog-ng string, comment or backtick reference.
HOSTILE = [
    'x"); }; destination d_pwn { file("/tmp/pwn"); }; log { source(s_1); #',
    "x'); }; destination d_pwn { file('/tmp/pwn'); }; #",
    "line1\nline2\r\t};",
    "`HOME` and a trailing backslash \\",
    "$HOST ${MSG} $(env HOME) @include \"/etc/passwd\"",
]
# A config that uses every string parameter.
BASE: dict[str, Any] = {
    "destination": "http", "url": "http://sink/ingest", "levelFrom": "line",
    "multilineStart": "^20", "headersSecret": "hdrs", "fields": {"team": "payments"},
    "files": [{"glob": "app.log", "level": "error"}, {"glob": "*.txt"}],
}


@dataclass(frozen=True)
class Peers:
    """The central servers of compose.yaml: where they store, and their containers."""

    out: Path
    containers: dict[str, str]  # compose service -> container name

    def stop(self, service: str) -> None:
        podman("stop", "-t", "0", self.containers[service])

    def start(self, service: str) -> None:
        podman("start", self.containers[service])

    def address(self, service: str) -> str:
        """A server's IP. Pods use it rather than the compose name: Docker pods do not know
        podman's DNS, and a second test suite on the machine (worktrees share podman's
        network) would answer to the same name."""
        return podman("inspect", self.containers[service], "--format",
                      "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}").stdout.strip()

    def http_url(self) -> str:
        return f"http://{self.address('http-sink')}:23002"


unique = unique_name  # the one helper (tests/support.py)


def stack(name: str, values: dict[str, Any], *, lines_per_file: int, rotate: str = "rename",
          batch: int = 500, pause: float = 0.05, quiet: float = 0.0,
          volumes: dict[str, Any] | None = None) -> dict[str, Any]:
    """A stack: the writer app (its container is named like the stack, runs as its own uid)
    plus the log-collector sidecar."""
    env = {"WRITER_LINES_PER_FILE": lines_per_file, "WRITER_ROTATE": rotate,
           "WRITER_BATCH": batch, "WRITER_PAUSE": pause, "WRITER_QUIET": quiet}
    # The sidecar runs as the app's uid: podman 4.3 gives an emptyDir to the first container's
    # uid with mode 0755 (Kubernetes makes it 0777), so another uid could not write it.
    sidecar: dict[str, Any] = {"pattern": "log-collector",
                               "values": {"uid": APP_UID, "gid": APP_UID, **values}}
    if volumes:
        sidecar["volumes"] = volumes
    return {
        "apiVersion": "sidecar-patterns.io/v1alpha1", "kind": "Stack",
        "metadata": {"name": name},
        "spec": {
            "app": {
                "image": PYTHON_IMAGE, "imagePullPolicy": "IfNotPresent",
                "command": ["python3", "-c", (PEERS_DIR / "writer.py").read_text()],
                "env": [{"name": k, "value": str(v)} for k, v in env.items()],
                "securityContext": {"runAsUser": APP_UID, "runAsGroup": APP_UID},
            },
            "sidecars": [sidecar],
        },
    }


def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "stringData": data}


@dataclass(frozen=True)
class Record:
    level: str
    message: str
    fields: dict[str, str]


_SD_PARAM = re.compile(r'([A-Za-z0-9_.]+)="((?:[^"\\]|\\.)*)"')
_SD_ELEMENT = re.compile(r"\[" + re.escape(SD_ID) + r'((?:[^\]"]|"(?:[^"\\]|\\.)*")*)\]')


def read_syslog(out: Path, host: str) -> list[Record]:
    """What rsyslog stored from one pod (its hostname): severity, our SD params, message."""
    path = out / "syslog.tsv"
    if not path.exists():
        return []
    records = []
    text = path.read_text(encoding="utf-8")
    # rsyslog may be mid-write: only whole lines count (the next read sees the rest).
    for line in text[: text.rfind("\n") + 1].splitlines():
        severity, hostname, sd, msg = line.split("\t", 3)
        if hostname != host:
            continue
        element = _SD_ELEMENT.search(sd)
        params = _SD_PARAM.findall(element.group(1)) if element else []
        fields = {k: re.sub(r"\\(.)", r"\1", v) for k, v in params}
        records.append(Record(level=severity, message=msg, fields=fields))
    return records


def read_http(out: Path, pod: str) -> list[Record]:
    """What the HTTP sink stored from one pod (stored before it answered 200)."""
    path = out / "http.jsonl"
    if not path.exists():
        return []
    records = []
    text = path.read_text(encoding="utf-8")
    # The sink may be mid-write: only whole lines count (the next read sees the rest).
    for line in text[: text.rfind("\n") + 1].splitlines():
        entry = json.loads(line)
        rec = entry["record"]
        if rec.get("pod") != pod:
            continue
        fields = {k: str(v) for k, v in rec.items() if k not in ("message", "level")}
        fields["auth"] = str(entry["auth"])
        fields["path"] = str(entry.get("path"))
        records.append(Record(level=rec.get("level", ""), message=rec["message"], fields=fields))
    return records


def wait_for(read: Callable[[], list[Record]], count: int, timeout: float,
             stall: float = 30.0) -> list[Record]:
    """Poll until `count` records arrived, nothing new came for `stall` s, or `timeout`."""
    deadline = time.monotonic() + timeout
    last_change, last_len = time.monotonic(), -1
    records: list[Record] = []
    while time.monotonic() < deadline:
        records = read()
        if len(records) >= count:
            time.sleep(1.0)  # a duplicate that would follow arrives now, so the check sees it
            return read()
        if len(records) != last_len:
            last_change, last_len = time.monotonic(), len(records)
        elif time.monotonic() - last_change > stall:
            break
        time.sleep(0.5)
    return records


def missing_ranges(seen: set[int], lines_per_file: int, most: int = 5) -> str:
    """The first `most` runs of line numbers that never arrived, as "a-b" (for a failure's
    message: where a loss sits tells a rotation from a stop)."""
    runs: list[str] = []
    start = None
    for n in range(lines_per_file + 1):
        if n < lines_per_file and n not in seen:
            start = n if start is None else start
        elif start is not None:
            runs.append(f"{start}-{n - 1}")
            start = None
    return " ".join(runs[:most]) + (" ..." if len(runs) > most else "")


def loss_report(records: list[Record], lines_per_file: int) -> dict[str, dict[str, int | str]]:
    """Per file: lines received, lost (and where), duplicated and out of order."""
    seqs: dict[str, list[int]] = {letter: [] for letter in LEVELS}
    for rec in records:
        letter, _, rest = rec.message.partition(":")
        seqs[letter].append(int(rest.split(" ", 1)[0]))
    report = {}
    for letter, seq in seqs.items():
        seen = set(seq)
        report[LEVELS[letter]] = {
            "received": len(seq),
            "lost": lines_per_file - len(seen & set(range(lines_per_file))),
            "missing": missing_ranges(seen, lines_per_file),
            "duplicated": len(seq) - len(seen),
            "out_of_order": sum(1 for a, b in itertools.pairwise(seq) if b < a),
        }
    return report


def assert_exact(records: list[Record], lines_per_file: int) -> None:
    """Every file's sequence arrived exactly once and in order."""
    report = loss_report(records, lines_per_file)
    zero = {"lost": 0, "duplicated": 0, "out_of_order": 0}
    assert all({k: r[k] for k in zero} == zero for r in report.values()), report


def assert_no_loss(records: list[Record], lines_per_file: int, max_duplicated: int) -> None:
    """Nothing lost; delivery is at-least-once, so a SIGKILL may repeat at most the batch that
    was in flight (which then also arrives once out of order)."""
    report = loss_report(records, lines_per_file)
    assert all(r["lost"] == 0 for r in report.values()), report
    assert sum(r["duplicated"] for r in report.values()) <= max_duplicated, report
    assert all(r["out_of_order"] <= (1 if r["duplicated"] else 0) for r in report.values()), report


def health_line(container: str) -> str:
    """What the image's own health command prints, as a probe runs it."""
    return subprocess.run(["podman", "exec", container, "log-collector-health"],
                          capture_output=True, text=True, check=False).stdout.strip()


def health(container: str) -> dict[str, int]:
    """The sidecar's counters while it reports ok; empty otherwise. stalled_seconds is left
    out: it is a clock (it grows while a receiver is down), not a counter of lines or files."""
    words = health_line(container).split()
    if not words or words[0] != "ok":
        return {}
    pairs = (w.split("=") for w in words[1:] if "=" in w)
    return {k: int(v) for k, v in pairs if k != "stalled_seconds"}


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return cli(*args, check=check)


def render(values: dict[str, Any]) -> tuple[str, dict[str, str]]:
    """The rendered syslog-ng.conf and the sidecar's literal environment."""
    stack = Stack(name="demo", app={"image": "localhost/busybox:latest"},
                  sidecars=(SidecarRequest("log-collector", "log-collector", values=values),))
    docs = compose(stack, Catalogue(CATALOGUE), [])
    conf = next(d for d in docs if d["kind"] == "ConfigMap")["data"]["syslog-ng.conf"]
    sidecar = docs[-1]["spec"]["initContainers"][0]
    return conf, {e["name"]: e["value"] for e in sidecar["env"] if "value" in e}
