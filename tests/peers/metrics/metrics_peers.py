"""Real peers of the metrics-adapter tests: the apps (redis, nginx, PostgreSQL, MariaDB from
Debian) as images, and a real Prometheus server that scrapes pods and answers PromQL."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pods import RunningPod
from support import unique_name, wait_for

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
KUBE_NETWORK = "podman-default-kube-network"
APPS = ("redis", "nginx", "postgres")
MARIADB_IMAGE = "localhost/sidecar-patterns-examples/mariadb:10.11-bookworm"


def image(app: str) -> str:
    return f"localhost/sidecar-patterns-tests/metrics-{app}:1"


def podman(*args: str, check: bool = True,
           timeout: float = 900) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout,
                          check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"podman {' '.join(args[:3])}... failed: {proc.stderr.strip()}")
    return proc


def build_images() -> None:
    """The peers' images from their Containerfiles (podman's layer cache makes a rebuild
    a no-op), and the MariaDB example app of the ssh pattern."""
    for app in (*APPS, "prometheus"):
        podman("build", "--pull=never", "-q", "-t", image(app), str(HERE / app))
    podman("build", "--pull=never", "-q", "-t", MARIADB_IMAGE,
           str(ROOT / "patterns" / "ssh" / "examples" / "mariadb"))


def _get(url: str, timeout: float = 2) -> bytes | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body: bytes = response.read()
            return body
    except (urllib.error.URLError, OSError):
        return None


@dataclass
class Prometheus:
    """One Prometheus 2.42 container on the pods' network; targets are file_sd files."""

    container: str
    targets: Path
    address: str

    @classmethod
    def start(cls, workdir: Path) -> Prometheus:
        targets = workdir / "targets"
        targets.mkdir(parents=True)
        targets.chmod(0o755)
        name = unique_name("metrics-prometheus")
        if podman("network", "exists", KUBE_NETWORK, check=False).returncode != 0:
            podman("network", "create", KUBE_NETWORK)
        podman("run", "-d", "--name", name, "--network", KUBE_NETWORK,
               "-v", f"{targets}:/etc/prometheus-test/targets:ro", image("prometheus"))
        ip = podman("inspect", name, "--format",
                    "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}").stdout.strip()
        return cls(name, targets, f"http://{ip}:9090")

    def stop(self) -> None:
        podman("rm", "-f", "-t", "0", self.container, check=False)

    def ready(self) -> bool:
        return _get(f"{self.address}/-/ready") is not None

    def scrape(self, pod: str, ip: str, port: int) -> None:
        """Add a target: the pod's IP and metrics port, labelled pod=<name>."""
        part = self.targets / f".{pod}.json.tmp"
        part.write_text(json.dumps([{"targets": [f"{ip}:{port}"], "labels": {"pod": pod}}]))
        part.chmod(0o644)
        part.rename(self.targets / f"{pod}.json")  # file_sd never reads half a file

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant PromQL query through the HTTP API: the result vector."""
        body = _get(f"{self.address}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if body is None:
            return []
        answer: dict[str, Any] = json.loads(body)
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        """The single sample of an instant query, or None while there is none."""
        result = self.query(expr)
        if len(result) != 1:
            return None
        return float(result[0]["value"][1])

    def target_health(self, pod: str) -> str | None:
        body = _get(f"{self.address}/api/v1/targets")
        if body is None:
            return None
        for target in json.loads(body)["data"]["activeTargets"]:
            if target["labels"].get("pod") == pod:
                health: str = target["health"]
                return health
        return None


unique = unique_name  # the one helper (tests/support.py)


def secret(name: str, files: dict[str, str]) -> dict[str, Any]:
    """A Secret as `kubectl create secret generic --from-literal` makes it."""
    data = {key: base64.b64encode(text.encode()).decode() for key, text in files.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque",
            "data": data}


def scraped(prometheus: Prometheus, pod: RunningPod, port: int) -> None:
    """Point Prometheus at the pod's metrics port and wait for its first good scrape."""
    prometheus.scrape(pod.name, pod.ip, port)
    wait_for(f"Prometheus to scrape {pod.name}",
             lambda: prometheus.target_health(pod.name) == "up", 60)
