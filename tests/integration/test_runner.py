"""`pattern run` honours what podman 4.3 ignores: native sidecar order, readiness probes,
postStart and preStop hooks; and it leaves nothing behind."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from pods import running, stack_documents
from support import FIXTURE_CATALOGUE, run_pattern

from generator.errors import PatternError
from generator.runner.run import NotReady

BUSYBOX = "localhost/busybox:1.35-static"


def hooks_stack(out: Path, name: str) -> dict[str, Any]:
    out.chmod(0o777)  # the sidecar runs as uid 1000
    app_script = (
        "test -f /out/poststart && echo sidecar-was-first > /out/order; "
        "sleep 2; touch /tmp/ready; exec sleep 600")
    return {
        "apiVersion": "sidecar-patterns.io/v1alpha1", "kind": "Stack",
        "metadata": {"name": name},
        "spec": {
            "k8sVersion": "1.33",
            "app": {
                "image": BUSYBOX, "command": ["sh", "-c", app_script],
                "volumeMounts": [{"name": "out", "mountPath": "/out"}],
                "readinessProbe": {"exec": {"command": ["test", "-f", "/tmp/ready"]},
                                   "periodSeconds": 1},
                "lifecycle": {"preStop": {"exec": {"command": [
                    "sh", "-c", "echo app > /out/app-stopped"]}}},
            },
            "volumes": [{"name": "out", "hostPath": {"path": str(out), "type": "Directory"}}],
            "sidecars": [{
                "pattern": "file-server",
                "volumes": {"share": {"volume": "out"}},
                "lifecycle": {
                    "postStart": {"exec": {"command": ["sh", "-c", "echo hi > /share/poststart"]}},
                    "preStop": {"exec": {"command": [
                        "sh", "-c", "cat /share/app-stopped > /share/sidecar-saw"]}},
                },
            }],
        },
    }


def test_native_sidecar_probes_and_hooks_are_honoured(tmp_path: Path) -> None:
    documents = stack_documents(hooks_stack(tmp_path, "hooks"), FIXTURE_CATALOGUE)
    assert documents[-1]["spec"]["initContainers"][0]["restartPolicy"] == "Always"
    started = time.monotonic()
    with running(documents) as (pod,):
        waited = time.monotonic() - started
        # Readiness became true only after the app's 2 s delay, and up() waited for it.
        assert waited >= 2
        assert pod.exec("hooks", "test", "-f", "/tmp/ready").returncode == 0
        # The native sidecar started (and ran its postStart) before the app started.
        assert (tmp_path / "order").read_text() == "sidecar-was-first\n"
        assert (tmp_path / "poststart").read_text() == "hi\n"
        assert any("file-server: postStart ran" in line for line in pod.log)
    # preStop hooks ran on down: the app's first, the sidecar's after (sidecars stop last).
    assert (tmp_path / "sidecar-saw").read_text() == "app\n"
    assert subprocess.run(["podman", "pod", "exists", "hooks"]).returncode == 1


def test_a_pod_that_never_gets_ready_is_reported_and_removed(tmp_path: Path) -> None:
    stack = hooks_stack(tmp_path, "never")
    stack["spec"]["app"]["readinessProbe"]["exec"]["command"] = ["test", "-f", "/nope"]
    documents = stack_documents(stack, FIXTURE_CATALOGUE)
    with (pytest.raises(NotReady, match=r"never/never: readinessProbe timed out: exec \['test'"),
          running(documents, timeout=4)):
        pass
    assert subprocess.run(["podman", "pod", "exists", "never"]).returncode == 1


def test_cli_run_status_logs_down(tmp_path: Path) -> None:
    manifest = tmp_path / "shop.yaml"
    generated = run_pattern("generate", "--name", "clirun", "--app-image", BUSYBOX,
                            "--app-command", "sh -c 'echo app-says-hi; exec sleep 600'",
                            "--with", "file-server", "--set", "file-server.banner=served",
                            "-o", str(manifest))
    assert generated.code == 0, generated.stderr
    port = _free_port()
    try:
        started = run_pattern("run", str(manifest), "--wait", "-p", f"{port}:8080", "--verbose")
        assert started.code == 0, started.stderr
        assert "translate: clirun: file-server: native sidecar" in started.stderr
        rows = [line.split()[:5] for line in started.stdout.splitlines()]
        assert rows[0] == ["POD", "CONTAINER", "ROLE", "STATE", "READY"]
        assert ["clirun", "file-server", "sidecar", "running", "yes"] in rows
        status = json.loads(run_pattern("status", "clirun", "-o", "json").stdout)
        sidecar = next(r for r in status if r["container"] == "file-server")
        assert sidecar["live"] == "yes" and sidecar["readiness_probe"].startswith("exec ")
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert response.read() == b"served\n"
        assert "clirun  file-server" in run_pattern("status", "clirun").stdout
        assert run_pattern("logs", "--pod", "clirun").stdout == "app-says-hi\n"
        taken = run_pattern("run", str(manifest), "--wait", "-p", f"{port}:8080")
        assert taken.code == 1 and "already exists" in taken.stderr
    finally:
        stopped = run_pattern("down", str(manifest), "--grace-period", "0")
    assert stopped.code == 0, stopped.stderr
    leftovers = subprocess.run(["podman", "ps", "-a", "--filter", "pod=clirun", "-q"],
                               capture_output=True, text=True).stdout
    volumes = subprocess.run(["podman", "volume", "ls", "-q"], capture_output=True,
                             text=True).stdout.split()
    assert leftovers == "" and not [v for v in volumes if v.startswith("clirun-")]


def test_bad_inputs_are_one_line_and_leave_nothing(tmp_path: Path) -> None:
    config_map = tmp_path / "cm.yaml"
    config_map.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    result = run_pattern("run", str(config_map))
    assert result.code == 1 and result.stderr.startswith("error: no pod-bearing workload")
    missing = tmp_path / "missing.yaml"
    missing.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: missing-image}\n"
                       "spec: {containers: [{name: a, image: 'localhost/nope:1.0'}]}\n")
    result = run_pattern("run", str(missing))
    assert result.code == 1 and "image localhost/nope:1.0" in result.stderr
    assert result.stderr.count("\n") == 1
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        busy = tmp_path / "busy.yaml"
        busy.write_text("apiVersion: v1\nkind: Pod\nmetadata: {name: busy}\nspec: {containers: "
                        f"[{{name: a, image: '{BUSYBOX}', ports: [{{containerPort: 80, "
                        f"hostPort: {port}}}]}}]}}\n")
        result = run_pattern("run", str(busy))
        assert result.code == 1 and f"host port 127.0.0.1:{port} (pod busy) is already taken" \
            in result.stderr
    for name in ("missing-image", "busy"):
        assert subprocess.run(["podman", "pod", "exists", name]).returncode == 1


def test_secrets_are_decoded_as_on_kubernetes(tmp_path: Path) -> None:
    documents: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
         "data": {"password": "czNjcjN0"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "secrets"}, "spec": {
            "containers": [{
                "name": "app", "image": BUSYBOX, "command": ["sleep", "600"],
                "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds",
                                                                      "key": "password"}}}],
                "volumeMounts": [{"name": "creds", "mountPath": "/creds"}]}],
            "volumes": [{"name": "creds", "secret": {"secretName": "creds",
                                                    "defaultMode": 0o400}}]}},
    ]
    with running(documents) as (pod,):
        assert pod.exec("app", "sh", "-c", "echo $PW").stdout == "s3cr3t\n"
        assert pod.exec("app", "cat", "/creds/password").stdout == "s3cr3t"
        assert pod.exec("app", "stat", "-c", "%a", "/creds/password").stdout == "400\n"
    secrets = subprocess.run(["podman", "secret", "ls", "-q"], capture_output=True, text=True)
    assert "creds" not in secrets.stdout


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_missing_runtime_is_one_line(tmp_path: Path) -> None:
    result = run_pattern("run", "-", stdin="apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n"
                         "spec: {containers: [{name: a, image: 'b:1'}]}\n",
                         env={"PATH": str(tmp_path)})
    assert result.code == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(
        "error: no container engine answers (tried podman: not installed")
    assert "scripts/setup-runtime.sh" in result.stderr
    assert PatternError


def test_empty_dirs_are_shared_by_containers_with_different_uids() -> None:
    writer = {"image": BUSYBOX, "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]}
    documents: list[dict[str, Any]] = [{
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "uids"}, "spec": {
            "containers": [
                {**writer, "name": "a", "securityContext": {"runAsUser": 1000},
                 "command": ["sh", "-c", "touch /shared/a; exec sleep 600"]},
                {**writer, "name": "b", "securityContext": {"runAsUser": 2000},
                 "command": ["sh", "-c", "touch /shared/b; exec sleep 600"]}],
            "volumes": [{"name": "shared", "emptyDir": {}}]}}]
    with running(documents) as (pod,):
        time.sleep(0.5)
        listing = pod.exec("a", "ls", "-n", "/shared").stdout
        assert " 1000 " in listing and " 2000 " in listing
    volumes = subprocess.run(["podman", "volume", "ls", "-q"], capture_output=True, text=True)
    assert "uids-shared" not in volumes.stdout.split()
