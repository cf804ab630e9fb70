"""Helpers for the backup tests: stacks with a data-writing app and the backup sidecar, the
REST server peer, and what the sidecar and the volume say."""

from __future__ import annotations

import binascii
import hashlib
import json
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pods import RunningPod

# Where a command runs: a podman container's name, or (pod, container) on the pod's engine.
Target = str | tuple[RunningPod, str]

PEER_DIR = Path(__file__).resolve().parent
CATALOGUE = PEER_DIR.parents[2] / "patterns"
PYTHON_IMAGE = "localhost/python3-debian:3.11-bookworm"
REST_IMAGE = "localhost/sidecar-patterns-test/rclone-restic:1"
MARIADB_IMAGE = "localhost/sidecar-patterns-examples/mariadb:10.11-bookworm"
BUSYBOX_IMAGE = "localhost/busybox:1.35-static"
KUBE_NETWORK = "podman-default-kube-network"
APP_UID = 12345
PASSWORD = "correct horse battery staple"
# The app: on an empty data dir it writes files of random bytes (nested, one large, one
# empty, one executable), then serves nothing and stays up, as a database would.
APP = """\
import os, pathlib, signal, sys, time
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
root = pathlib.Path('/srv/data')
if not (root / 'MARKER').exists():
    for i in range(40):
        d = root / f'dir{i % 4}' / f'sub{i % 3}'
        d.mkdir(parents=True, exist_ok=True)
        (d / f'file{i}.bin').write_bytes(os.urandom(1000 * (i + 1)))
    (root / 'big.bin').write_bytes(os.urandom(3_000_000))
    (root / 'empty').write_bytes(b'')
    (root / 'run.sh').write_text('#!/bin/sh\\necho hi\\n')
    (root / 'run.sh').chmod(0o750)
    (root / 'MARKER').write_text('written\\n')
print('app ready', flush=True)
while True:
    time.sleep(3600)
"""
# Each file's bytes (base64: binascii is built in) and mode; `hashes` digests them here, so
# the sidecar needs no hashlib (its staged image holds only the modules it imports).
HASH_SCRIPT = """
import binascii, json, pathlib
root = pathlib.Path('/data')
out = {}
for p in sorted(root.rglob('*')):
    if p.is_file():
        out[str(p.relative_to(root))] = [binascii.b2a_base64(p.read_bytes()).decode(),
                                         oct(p.stat().st_mode & 0o7777)]
print(json.dumps(out))
"""
# Prints the answer's status code and body. Plain HTTP/1.0 over a socket: the sidecar's image
# has no urllib.
STATUS_SCRIPT = """
import socket, sys
method, path = sys.argv[1], sys.argv[2]
with socket.create_connection(('127.0.0.1', 8735), timeout=600) as conn:
    conn.sendall(f'{method} {path} HTTP/1.0\\r\\nContent-Length: 0\\r\\n\\r\\n'.encode())
    data = b''
    while chunk := conn.recv(65536):
        data += chunk
head, _, body = data.partition(b'\\r\\n\\r\\n')
print(head.split()[1].decode(), body.decode())
"""


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "stringData": data}


def stack(name: str, values: dict[str, Any], volumes: dict[str, Any] | None = None,
          ) -> dict[str, Any]:
    sidecar: dict[str, Any] = {"pattern": "backup", "values": {
        "dataPath": "/srv/data", "passwordSecret": f"{name}-password",
        "uid": APP_UID, "gid": APP_UID, **values}}
    if volumes:
        sidecar["volumes"] = volumes
    return {
        "apiVersion": "sidecar-patterns.io/v1alpha1", "kind": "Stack",
        "metadata": {"name": name},
        "spec": {
            "app": {"image": PYTHON_IMAGE, "imagePullPolicy": "IfNotPresent",
                    "command": ["python3", "-c", APP],
                    "securityContext": {"runAsUser": APP_UID, "runAsGroup": APP_UID}},
            "sidecars": [sidecar],
        },
    }


def exec_in(target: Target, *command: str, check: bool = True) -> str:
    if isinstance(target, tuple):
        pod, name = target
        done = pod.exec(name, *command, check=False, timeout=900)
    else:
        done = subprocess.run(["podman", "exec", target, *command], capture_output=True,
                              text=True, check=False, timeout=900)
    if check and done.returncode != 0:
        raise AssertionError(f"exec {command[:2]} in {target}: {done.stdout}{done.stderr}")
    return done.stdout


def call(container: Target, method: str, path: str) -> tuple[int, dict[str, Any] | str]:
    """An HTTP call to the sidecar from inside it: (code, JSON body or text)."""
    code, _, body = exec_in(container, "python3", "-c", STATUS_SCRIPT, method,
                            path).partition(" ")
    try:
        return int(code), json.loads(body)
    except json.JSONDecodeError:
        return int(code), body.strip()


def status(container: Target) -> dict[str, Any]:
    code, body = call(container, "GET", "/status")
    assert code == 200 and isinstance(body, dict), (code, body)
    return body


def hashes(container: Target) -> dict[str, list[str]]:
    found: dict[str, list[str]] = json.loads(exec_in(container, "python3", "-c", HASH_SCRIPT))
    return {name: [hashlib.sha256(binascii.a2b_base64(data)).hexdigest(), mode]
            for name, (data, mode) in found.items()}


def hashes_of_text(text: str) -> list[str]:
    """What `hashes` says of a file holding `text` with mode 0644."""
    return [hashlib.sha256(text.encode()).hexdigest(), "0o644"]


def snapshots(container: Target) -> list[dict[str, Any]]:
    """restic's own list, run in the sidecar with its environment."""
    listed: list[dict[str, Any]] = json.loads(exec_in(container, "restic", "snapshots",
                                                      "--json", "--no-lock"))
    return listed


def podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["podman", *args], capture_output=True, text=True, check=check,
                          timeout=300)


def address_of(container: str) -> str:
    """A podman peer's address on the kube network (what a Docker pod reaches it by)."""
    return podman("inspect", container, "--format",
                  "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                  check=False).stdout.strip()


@dataclass(frozen=True)
class SftpServer:
    """An OpenSSH server (the ssh pattern's sidecar) whose login `user` owns /srv/repos."""

    ip: str
    port: int
    user: str
    client_key: str
    host_public_key: str

    def repository(self, name: str) -> str:
        return f"sftp://{self.user}@{self.ip}:{self.port}//srv/repos/{name}"

    def known_hosts(self, public_key: str | None = None) -> str:
        kind, key = (public_key or self.host_public_key).split()[:2]
        return f"[{self.ip}]:{self.port} {kind} {key}\n"

    def secret(self, name: str, public_key: str | None = None) -> dict[str, Any]:
        """The sidecar's sshSecret: its client key and this server's host key."""
        return secret(name, {"ssh-privatekey": self.client_key,
                                "known_hosts": self.known_hosts(public_key)})
