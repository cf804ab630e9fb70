"""Choosing an engine and publishing ports: the flags both engines share."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import run_pattern

from generator.commands import _parse_publish
from generator.errors import UsageError
from generator.runner.docker import quantity
from generator.runner.plan import plan_documents

POD = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}, "spec": {
    "containers": [{"name": "web", "image": "b:1", "ports": [{"containerPort": 3000}]}]}}]


def test_publish_takes_an_optional_bind_address_as_docker_run_does() -> None:
    assert _parse_publish(["8080:3000"]) == {3000: ("127.0.0.1", 8080)}
    assert _parse_publish(["0.0.0.0:8080:3000"]) == {3000: ("0.0.0.0", 8080)}
    (plan,) = plan_documents(POD, _parse_publish(["127.0.0.2:9000:3000"]), "/run/files")
    assert plan.host_ports == [("127.0.0.2", 9000)]
    assert plan.play["spec"]["containers"][0]["ports"][0]["hostIP"] == "127.0.0.2"
    for bad in ("3000", "x:8080:3000", "8080:http", "1.2.3:8080:3000", "70000:3000"):
        with pytest.raises(UsageError, match=r"expected \[IP:\]HOST:CONTAINER"):
            _parse_publish([bad])


def test_an_unknown_runtime_is_a_usage_error(tmp_path: Path) -> None:
    by_flag = run_pattern("status", "--runtime", "lxc")
    assert by_flag.code == 2 and "--runtime 'lxc': choose one of auto, podman, docker" \
        in by_flag.stderr
    by_env = run_pattern("status", env={"SIDECAR_PATTERNS_RUNTIME": "lxc",
                                        "SIDECAR_PATTERNS_STATE": str(tmp_path)})
    assert by_env.code == 2 and "SIDECAR_PATTERNS_RUNTIME 'lxc'" in by_env.stderr


def test_no_engine_names_what_was_tried_and_how_to_start_one(tmp_path: Path) -> None:
    result = run_pattern("images", "build", "--runtime", "docker", env={"PATH": str(tmp_path)})
    assert result.code == 1 and result.stderr.count("\n") == 1
    assert "no container engine answers (tried docker: not installed)" in result.stderr
    assert "scripts/setup-runtime.sh" in result.stderr


def test_kubernetes_quantities() -> None:
    assert quantity("64Mi") == 64 * 2**20
    assert quantity("500m") == 0.5
    assert quantity("1.5") == 1.5
    assert quantity("2G") == 2e9
    with pytest.raises(Exception, match="not a Kubernetes quantity"):
        quantity("12 parsecs")
