"""Helpers for the log-rotate tests: stacks with the steady writer app, the log-rotate sidecar
and (optionally) log-collector, and what ended up in the log volume and at the receiver."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import lc_support as lc
from lc_support import APP_UID, LEVELS
from pods import RunningPod

PEERS_DIR = Path(__file__).resolve().parent
STATUS_SCRIPT = ("import json, sys, urllib.request; print(urllib.request.urlopen("
                 "'http://127.0.0.1:8734/status', timeout=5).read().decode())")
# Prints the HTTP status of /healthz (a probe's view).
HEALTH_SCRIPT = """
import urllib.error, urllib.request
try:
    print(urllib.request.urlopen('http://127.0.0.1:8734/healthz', timeout=5).status)
except urllib.error.HTTPError as exc:
    print(exc.code)
"""
# Prints every line of every file in the log directory, rotated and gzipped ones too, each
# prefixed with the file's name, so a test sees exactly what is on the volume.
# (zlib, not gzip: the staged image holds only the modules the sidecar imports.)
DUMP_SCRIPT = """
import pathlib, zlib
for p in sorted(pathlib.Path('/var/log/app').iterdir()):
    data = zlib.decompress(p.read_bytes(), 31) if p.name.endswith('.gz') else p.read_bytes()
    for line in data.decode(errors='replace').splitlines():
        print(p.name + '\\t' + line)
"""


def stack(name: str, rotate: dict[str, Any], *, lines: int, rate: float,
          collector: dict[str, Any] | None = None, reopen_port: int | None = None,
          volumes: dict[str, Any] | None = None) -> dict[str, Any]:
    """The log-collector tests' stack with the steady writer as the app and log-rotate first;
    log-collector stays only when `collector` values are given. Sidecars run as the app's uid."""
    result = lc.stack(name, collector or {}, lines_per_file=lines)
    env: dict[str, Any] = {"WRITER_LINES_PER_FILE": lines, "WRITER_RATE": rate}
    if reopen_port:
        env["WRITER_REOPEN_PORT"] = reopen_port
    app = result["spec"]["app"]
    app["command"] = ["python3", "-c", (PEERS_DIR / "steady_writer.py").read_text()]
    app["env"] = [{"name": k, "value": str(v)} for k, v in env.items()]
    rotator: dict[str, Any] = {"pattern": "log-rotate",
                               "values": {"uid": APP_UID, "gid": APP_UID, **rotate}}
    if volumes:
        rotator["volumes"] = volumes
    others = result["spec"]["sidecars"] if collector is not None else []
    result["spec"]["sidecars"] = [rotator, *others]
    return result


def receiver_address(peers: lc.Peers) -> str:
    """The central rsyslog's IP address. Not the compose service name `rsyslog`: that is an
    alias on a network other test sessions' receivers may share (and container names hold
    `_`, which no host name may)."""
    return lc.podman("inspect", peers.containers["rsyslog"], "--format",
                     "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}").stdout.strip()


def exec_in(pod: RunningPod, *command: str) -> str:
    """A command's output in the pod's log-rotate sidecar, on the pod's engine."""
    return pod.exec("log-rotate", *command, timeout=120).stdout


def read_file(pod: RunningPod, path: str) -> str:
    """A file's text, read in the sidecar (its image has no cat)."""
    return exec_in(pod, "python3", "-c",
                   "import sys; print(open(sys.argv[1]).read(), end='')", path)


def status(pod: RunningPod) -> dict[str, Any]:
    """GET /status of the log-rotate sidecar, from inside it (as a probe would reach it)."""
    result: dict[str, Any] = json.loads(exec_in(pod, "python3", "-c", STATUS_SCRIPT))
    return result


def volume_lines(pod: RunningPod) -> dict[str, list[str]]:
    """file name -> its lines, for every file in the log volume (gzipped ones decompressed)."""
    files: dict[str, list[str]] = {}
    for row in exec_in(pod, "python3", "-c", DUMP_SCRIPT).splitlines():
        name, _, line = row.partition("\t")
        files.setdefault(name, []).append(line)
    return files


def sequence_report(lines: list[str], count: int) -> dict[str, dict[str, int]]:
    """Per level: lines seen, lost, duplicated, out of order (in the order given), and lines
    that are not whole records (NUL bytes, a torn line)."""
    seqs: dict[str, list[int]] = {letter: [] for letter in LEVELS}
    broken = 0
    for line in lines:
        letter, _, rest = line.partition(":")
        number = rest.split(" ", 1)[0]
        if letter not in seqs or not number.isdigit() or "\0" in line:
            broken += 1
            continue
        seqs[letter].append(int(number))
    report = {}
    for letter, seq in seqs.items():
        seen = set(seq)
        report[LEVELS[letter]] = {
            "received": len(seq), "lost": count - len(seen & set(range(count))),
            "duplicated": len(seq) - len(seen),
            "out_of_order": sum(1 for a, b in itertools.pairwise(seq) if b < a),
            "broken": broken,
        }
    return report


def in_rotation_order(files: dict[str, list[str]], level_file: str) -> list[str]:
    """The lines of one log in the order they were written: its rotated files oldest first
    (their date suffixes sort so), then the current file."""
    rotated = sorted(n for n in files if n.startswith(level_file + "-"))
    return [line for name in [*rotated, level_file] for line in files.get(name, [])]
