"""Helpers for the git-sync pod tests: test images, a git server in a pod of its own, and the
example node.js app's stack pointed at it."""

from __future__ import annotations

import copy
import json
import socket
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from gitsync_testkit import Upstream, git
from pods import RunningPod
from support import CATALOGUE, free_port, wait_for

HERE = Path(__file__).resolve().parent
PATTERN = CATALOGUE / "git-sync"
EXAMPLE_STACK = PATTERN / "examples" / "node-app.stack.yaml"
EXAMPLE_APP = PATTERN / "examples" / "node-app"
NODE_IMAGE = "localhost/sidecar-patterns-test/gitsync-node:1"
GITD_IMAGE = "localhost/sidecar-patterns-test/gitsync-gitd:1"
GIT_PORT = 9418


def host_port() -> int:
    return free_port()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@dataclass
class GitServer:
    """`git daemon` in its own pod, serving a bare repository the test pushes to from the host."""

    upstream: Upstream
    pod: RunningPod

    @property
    def url(self) -> str:
        return f"git://{self.pod.ip}:{GIT_PORT}/{self.upstream.name}"

    def push_page(self, text: str) -> str:
        """Commit a new public/index.html and push it; the commit hash."""
        work = self.upstream.work
        (work / "public" / "index.html").write_text(text)
        git("add", "-A", cwd=work)
        git("commit", "-q", "-m", f"page: {text.strip()}", cwd=work)
        self.upstream.push()
        return git("rev-parse", "HEAD", cwd=work)

    def stop(self) -> None:
        self.pod.runtime.stop([self.pod.container("gitd")], 0)

    def start(self) -> None:
        self.pod.runtime.start(self.pod.container("gitd"))
        wait_for("the git server", self.listening, 60)

    def listening(self) -> bool:
        with socket.socket() as probe:
            probe.settimeout(0.5)
            return probe.connect_ex((self.pod.ip, GIT_PORT)) == 0


def git_server_pod(name: str, base: Path) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
        "containers": [{
            "name": "gitd", "image": GITD_IMAGE, "imagePullPolicy": "Never",
            "command": ["git", "daemon", "--reuseaddr", "--export-all", "--base-path=/srv/git",
                        "--listen=0.0.0.0", f"--port={GIT_PORT}", "/srv/git"],
            "volumeMounts": [{"name": "repos", "mountPath": "/srv/git", "readOnly": True}],
            "readinessProbe": {"tcpSocket": {"port": GIT_PORT}, "periodSeconds": 1},
        }, {
            # podman 4.3 stops a pod's infra container (and drops its IP) when the last other
            # container stops; this one keeps the address while the server is "down".
            "name": "keeper", "image": GITD_IMAGE, "imagePullPolicy": "Never",
            "command": ["sleep", "infinity"],
        }],
        "volumes": [{"name": "repos", "hostPath": {"path": str(base), "type": "Directory"}}],
    }}


def node_app_stack(name: str, repo: str, **values: Any) -> dict[str, Any]:
    """The example stack, as one pod running the test's Node image against the test server."""
    stack: dict[str, Any] = yaml.safe_load(EXAMPLE_STACK.read_text())
    stack = copy.deepcopy(stack)
    stack["metadata"]["name"] = name
    spec = stack["spec"]
    spec["kind"] = "Pod"
    spec.pop("replicas")
    spec["app"]["image"] = NODE_IMAGE
    spec["app"]["imagePullPolicy"] = "Never"
    spec["sidecars"][0]["values"].update(repo=repo, **values)
    return stack


def token_secret(name: str, token: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "stringData": {"token": token}}


def http(url: str, method: str = "GET", headers: dict[str, str] | None = None
         ) -> tuple[int, str]:
    """Status and body; never raises for an HTTP error status."""
    request = urllib.request.Request(url, method=method, headers=headers or {},
                                     data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError as error:
        return 0, str(error)


def http_json(url: str) -> Any:
    status, body = http(url)
    assert status == 200, f"GET {url}: {status} {body}"
    return json.loads(body)
