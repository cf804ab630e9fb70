"""Helpers for the data-loader tests: a dataset the test writes on the host (every file names
its version; SHA256SUMS lists them), the peer pod that serves it three ways (nginx, OpenSSH
sftp, `rclone serve webdav`), the app that reads it, and calls to the sidecar."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PEER_DIR = Path(__file__).resolve().parent
SOURCES_IMAGE = "localhost/sidecar-patterns-test/data-sources:1"
PYTHON_IMAGE = "localhost/python3-debian:3.11-bookworm"
HTTP_PORT, SFTP_PORT, DAV_PORT = 8080, 2222, 8081
DAV_USER, DAV_PASSWORD = "loader", "dav s3cret"
FILES = 12

# The app: a reader that, as fast as it can, resolves <data>/current once, reads SHA256SUMS
# there and checks every file against it and against the manifest's version. A file from
# another version is a "mix"; a file gone under it (a pruned version) "vanished". Its counts
# are in /tmp/reader.json, rewritten after every pass.
READER = """\
import hashlib, json, os, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
root = '/srv/dataset/current'
stats = {'passes': 0, 'mixes': 0, 'vanished': 0, 'versions': [], 'waiting': 0}
while True:
    try:
        here = os.path.realpath(root)
        listed = open(os.path.join(here, 'SHA256SUMS')).read().splitlines()
        version = None
        for line in listed:
            digest, name = line.split('  ', 1)
            data = open(os.path.join(here, name), 'rb').read()
            tag = data.split(b' ', 2)[1].decode()
            version = version or tag
            if hashlib.sha256(data).hexdigest() != digest or tag != version:
                stats['mixes'] += 1
        if version not in stats['versions']:
            stats['versions'].append(version)
        stats['passes'] += 1
    except FileNotFoundError:
        if os.path.exists(root):
            stats['vanished'] += 1
        else:
            stats['waiting'] += 1
    with open('/tmp/reader.tmp', 'w') as out:
        json.dump(stats, out)
    os.replace('/tmp/reader.tmp', '/tmp/reader.json')
    time.sleep(0.002)
"""
CALL = """\
import sys, urllib.request, urllib.error
req = urllib.request.Request('http://127.0.0.1:8736' + sys.argv[2], method=sys.argv[1],
                             data=b'' if sys.argv[1] == 'POST' else None)
try:
    with urllib.request.urlopen(req, timeout=300) as r:
        print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
"""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def write_dataset(folder: Path, version: int, corrupt: str | None = None) -> None:
    """FILES files (nested, up to ~40 kB) of `version` and their SHA256SUMS, each replaced by
    rename so the source itself never serves a half-written file; `corrupt` names a file
    whose bytes then differ from what SHA256SUMS says."""
    lines = []
    for i in range(FILES):
        name = f"part{i % 3}/file{i:02d}.dat"
        data = f"version {version} file {i} ".encode() + bytes([65 + i]) * (i * 3500)
        lines.append(f"{hashlib.sha256(data).hexdigest()}  {name}")
        _replace(folder / name, data + (b"!" if name == corrupt else b""))
    _replace(folder / "SHA256SUMS", ("\n".join(lines) + "\n").encode())


def _replace(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o755)
    tmp = path.parent / f".{path.name}.tmp"
    tmp.write_bytes(data)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


def sources_pod(name: str, dataset: Path) -> dict[str, Any]:
    def server(cname: str, command: list[str], port: int) -> dict[str, Any]:
        return {"name": cname, "image": SOURCES_IMAGE, "imagePullPolicy": "Never",
                "command": command,
                "volumeMounts": [{"name": "dataset", "mountPath": "/srv/data",
                                  "readOnly": True}],
                "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1}}

    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
        "containers": [
            server("nginx", ["nginx", "-c", "/srv/peer/nginx.conf"], HTTP_PORT),
            server("sshd", ["/usr/sbin/sshd", "-D", "-e", "-f", "/srv/peer/sshd_config"],
                   SFTP_PORT),
            # No directory cache: the default (5m) would serve the old listing after a change.
            server("webdav", ["rclone", "serve", "webdav", "--read-only", "--dir-cache-time",
                              "0s", "--addr",
                              f"0.0.0.0:{DAV_PORT}", "--user", DAV_USER, "--pass",
                              DAV_PASSWORD, "/srv/data"], DAV_PORT),
        ],
        "volumes": [{"name": "dataset", "hostPath": {"path": str(dataset),
                                                     "type": "Directory"}}],
    }}


def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "stringData": data}


def stack(name: str, values: dict[str, Any], k8s: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "kind": "Pod",
        "app": {"image": PYTHON_IMAGE, "imagePullPolicy": "IfNotPresent",
                "command": ["python3", "-c", READER],
                "securityContext": {"runAsUser": 12345, "runAsGroup": 12345}},
        "sidecars": [{"pattern": "data-loader",
                      "values": {"path": "/srv/dataset", **values}}],
    }
    if k8s:
        spec["k8sVersion"] = k8s
    return {"apiVersion": "sidecar-patterns.io/v1alpha1", "kind": "Stack",
            "metadata": {"name": name}, "spec": spec}


def reader_stats(pod: Any, app: str) -> dict[str, Any]:
    done = pod.exec(app, "cat", "/tmp/reader.json", check=False)
    return json.loads(done.stdout) if done.returncode == 0 and done.stdout else {}


def call(pod: Any, app: str, method: str, path: str) -> tuple[int, Any]:
    """The sidecar's endpoint, from the app's container (same pod, same localhost): the
    sidecar's image has only the Python modules its own loop imports."""
    out = pod.exec(app, "python3", "-c", CALL, method, path, timeout=300).stdout
    code, _, body = out.partition(" ")
    try:
        return int(code), json.loads(body)
    except json.JSONDecodeError:
        return int(code), body.strip()


@dataclass
class Sources:
    """The peer pod serving a dataset folder of the host."""

    pod: Any
    dataset: Path

    @property
    def ip(self) -> str:
        ip: str = self.pod.ip
        return ip

    def sftp_secret(self, name: str) -> dict[str, Any]:
        key = self.pod.exec("sshd", "cat", "/srv/peer/client").stdout
        host_key = self.pod.exec("sshd", "cat", "/srv/peer/host_ed25519.pub").stdout.split()
        known = f"[{self.ip}]:{SFTP_PORT} {host_key[0]} {host_key[1]}\n"
        return secret(name, {"username": "data", "ssh-privatekey": key, "known_hosts": known})
