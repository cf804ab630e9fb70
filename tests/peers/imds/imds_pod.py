"""The six metadata peers as one pod (run by the integration harness), and their controls."""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PYTHON_IMAGE = "localhost/python3-debian:3.11-bookworm"
# One per test process: two suites on one machine (worktrees share the engines) must not
# replace each other's session-long peers.
PEER_POD = f"imds-peers-{os.getpid()}"
# Inside the peers' own pod; never published on the host (pods reach it by its IP).
PEER_PORTS = {"aws": 22901, "aliyun": 22902, "gcp": 22903, "azure": 22904, "openstack": 22905,
              "qingcloud": 22906}
CALM = {"down": False, "slow": 0, "token_ttl_cap": 21600}


@dataclass(frozen=True)
class Peers:
    ip: str

    def url(self, cloud: str) -> str:
        return f"http://{self.ip}:{PEER_PORTS[cloud]}"

    def _call(self, cloud: str, path: str, method: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url(cloud) + path, data=data, method=method)
        with urllib.request.urlopen(request, timeout=5) as response:
            return json.load(response)

    def faults(self, cloud: str, **change: Any) -> None:
        self._call(cloud, "/__peer__/faults", "POST", change)

    def requests(self, cloud: str) -> list[dict[str, Any]]:
        seen: list[dict[str, Any]] = self._call(cloud, "/__peer__/requests", "GET")
        return seen

    def reset(self, cloud: str) -> None:
        self.faults(cloud, **CALM)
        self._call(cloud, "/__peer__/requests", "DELETE")


def peers_pod() -> dict[str, Any]:
    containers = [{
        "name": cloud, "image": PYTHON_IMAGE, "imagePullPolicy": "Never",
        "command": ["python3", "/peer/imds_peer.py", "--cloud", cloud, "--listen", "0.0.0.0",
                    "--port", str(port)],
        "volumeMounts": [{"name": "peer", "mountPath": "/peer", "readOnly": True}],
        "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 1},
    } for cloud, port in PEER_PORTS.items()]
    volume = {"name": "peer", "hostPath": {"path": str(HERE),
                                           "type": "Directory"}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": PEER_POD},
            "spec": {"containers": containers, "volumes": [volume]}}
