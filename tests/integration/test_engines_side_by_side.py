"""podman keeps working beside Docker: Docker's bridge and iptables chains (FORWARD, NAT) are
in place while podman pods publish ports, answer on their pod IP, and are reached from a
Docker pod, which is how Docker pods in these tests reach the peers that run on podman."""

from __future__ import annotations

import subprocess
import urllib.request
from typing import Any

from pods import present_in, require_runtime, running
from support import free_port, unique_name

PYTHON = "localhost/python3-debian:3.11-bookworm"


def web(name: str, text: str) -> dict[str, Any]:
    serve = f"mkdir -p /tmp/w && echo {text} > /tmp/w/index.html && exec python3 -m http.server" \
        " 8080 -d /tmp/w"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
        "containers": [{"name": "web", "image": PYTHON, "command": ["sh", "-c", serve],
                        "ports": [{"containerPort": 8080}],
                        "readinessProbe": {"httpGet": {"port": 8080}, "periodSeconds": 1}}]}}


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as response:
        return str(response.read().decode().strip())


def test_podman_pods_work_beside_dockers_chains() -> None:
    podman, docker = require_runtime("podman"), require_runtime("docker")
    chains = subprocess.run(["iptables", "-S", "DOCKER"], capture_output=True, text=True)
    assert chains.returncode == 0, "Docker's iptables chain is missing: is dockerd running?"
    present_in(docker, PYTHON)
    p_port, d_port = free_port(), free_port()
    with running([web(unique_name("side-podman"), "from-podman")], publish={8080: p_port},
                 runtime=podman) as (p_pod,), \
            running([web(unique_name("side-docker"), "from-docker")], publish={8080: d_port},
                    runtime=docker) as (d_pod,):
        assert fetch(f"http://127.0.0.1:{p_port}/") == "from-podman"
        assert fetch(f"http://127.0.0.1:{d_port}/") == "from-docker"
        assert fetch(f"http://{p_pod.ip}:8080/") == "from-podman"
        assert fetch(f"http://{d_pod.ip}:8080/") == "from-docker"
        ask = f"import urllib.request as u; print(u.urlopen('http://{p_pod.ip}:8080/').read())"
        across = d_pod.exec("web", "python3", "-c", ask)
        assert across.stdout.strip() == "b'from-podman\\n'"
