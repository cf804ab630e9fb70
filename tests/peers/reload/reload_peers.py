"""The apps of the config-reloader tests: nginx (the example's image) and Prometheus from
Debian, whose configuration the tests change through `pattern apply`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import yaml
from pods import RunningPod, build_test_image, cli

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
EXAMPLE = ROOT / "patterns" / "config-reloader" / "examples"
NGINX_IMAGE = "localhost/sidecar-patterns-examples/nginx:1.22-bookworm"
PROMETHEUS_IMAGE = "localhost/sidecar-patterns-tests/reload-prometheus:1"
NGINX_CONF = (EXAMPLE / "nginx" / "nginx.conf").read_text()


def build_images(runtime: str) -> None:
    build_test_image(NGINX_IMAGE, EXAMPLE / "nginx", runtime)
    build_test_image(PROMETHEUS_IMAGE, HERE / "prometheus", runtime)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def config_map(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def example_stack(name: str) -> dict[str, Any]:
    """The nginx example's stack, its workload and ConfigMap named `name`."""
    stack: dict[str, Any] = yaml.safe_load((EXAMPLE / "nginx.stack.yaml").read_text())
    stack["metadata"]["name"] = name
    stack["spec"]["volumes"][0]["configMap"]["name"] = name
    return stack


def write(path: Path, documents: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    return path


def started_at(pod: RunningPod, container: str) -> str:
    """When the container last started (a restart changes it)."""
    return cli("inspect", "--format", "{{.State.StartedAt}}", pod.container(container),
               runtime=pod.runtime.name, check=True).stdout.strip()


def sidecar_status(pod: RunningPod, port: int = 8742) -> dict[str, Any]:
    done = pod.exec("config-reloader", "python3", "-c",
                    "import urllib.request, sys; sys.stdout.write(urllib.request.urlopen("
                    f"'http://127.0.0.1:{port}/status', timeout=5).read().decode())")
    status: dict[str, Any] = json.loads(done.stdout)
    return status
