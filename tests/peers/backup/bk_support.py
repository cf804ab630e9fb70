"""Helpers for the backup tests: stacks with a data-writing app and the backup sidecar, the
REST server peer, and what the sidecar and the volume say."""

from __future__ import annotations

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
HASH_SCRIPT = """
import hashlib, json, os, pathlib
root = pathlib.Path('/data')
out = {}
for p in sorted(root.rglob('*')):
    if p.is_file():
        out[str(p.relative_to(root))] = [hashlib.sha256(p.read_bytes()).hexdigest(),
                                         oct(p.stat().st_mode & 0o7777)]
print(json.dumps(out))
"""
STATUS_SCRIPT = """
import json, sys, urllib.request
method = sys.argv[1]
req = urllib.request.Request('http://127.0.0.1:8735' + sys.argv[2], method=method,
                             data=b'' if method == 'POST' else None)
try:
    with urllib.request.urlopen(req, timeout=600) as r:
        print(r.status, r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
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
    result: dict[str, list[str]] = json.loads(exec_in(container, "python3", "-c", HASH_SCRIPT))
    return result


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
