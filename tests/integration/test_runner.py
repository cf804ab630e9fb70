"""`pattern run` honours what neither podman 4.3 nor Docker knows: native sidecar order,
readiness probes, postStart and preStop hooks; and it leaves nothing behind. Each test that
takes `runtime` runs on podman and on Docker."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from pods import assert_nothing_left, cli, running, stack_documents
from support import FIXTURE_CATALOGUE, run_pattern, unique_name, wait_for

from generator.runner.run import NotReady
from generator.runner.runtime import Runtime

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


def test_native_sidecar_probes_and_hooks_are_honoured(tmp_path: Path, runtime: Runtime) -> None:
    name = unique_name("hooks")
    documents = stack_documents(hooks_stack(tmp_path, name), FIXTURE_CATALOGUE)
    assert documents[-1]["spec"]["initContainers"][0]["restartPolicy"] == "Always"
    started = time.monotonic()
    with running(documents, runtime=runtime) as (pod,):
        waited = time.monotonic() - started
        # Readiness became true only after the app's 2 s delay, and up() waited for it.
        assert waited >= 2
        assert pod.exec(name, "test", "-f", "/tmp/ready").returncode == 0
        # The native sidecar started (and ran its postStart) before the app started.
        assert (tmp_path / "order").read_text() == "sidecar-was-first\n"
        assert (tmp_path / "poststart").read_text() == "hi\n"
        assert any("file-server: postStart ran" in line for line in pod.log)
    # preStop hooks ran on down: the app's first, the sidecar's after (sidecars stop last).
    assert (tmp_path / "sidecar-saw").read_text() == "app\n"
    assert_nothing_left(runtime, name)


def test_a_pod_that_never_gets_ready_is_reported_and_removed(tmp_path: Path,
                                                            runtime: Runtime) -> None:
    name = unique_name("never")
    stack = hooks_stack(tmp_path, name)
    stack["spec"]["app"]["readinessProbe"]["exec"]["command"] = ["test", "-f", "/nope"]
    documents = stack_documents(stack, FIXTURE_CATALOGUE)
    with (pytest.raises(NotReady, match=rf"{name}/{name}: readinessProbe timed out: "
                                        r"exec \['test'"),
          # Room for a loaded machine to start the pod: a deadline that passes before the
          # first probe says "not probed yet", not the probe's own failure.
          running(documents, timeout=45, runtime=runtime)):
        pass
    assert_nothing_left(runtime, name)


def test_cli_run_status_logs_down(tmp_path: Path, runtime: Runtime) -> None:
    manifest = tmp_path / "shop.yaml"
    name = unique_name("clirun")
    generated = run_pattern("generate", "--name", name, "--app-image", BUSYBOX,
                            "--app-command", "sh -c 'echo app-says-hi; exec sleep 600'",
                            "--with", "file-server", "--set", "file-server.banner=served",
                            "--output-file", str(manifest))
    assert generated.code == 0, generated.stderr
    port = _free_port()
    try:
        started = run_pattern("run", str(manifest), "--wait", "-p", f"127.0.0.1:{port}:8080",
                              "--verbose", env={"SIDECAR_PATTERNS_RUNTIME": runtime.name})
        assert started.code == 0, started.stderr
        assert f"runtime: {runtime.name}" in started.stderr
        assert f"translate: {name}: file-server: native sidecar" in started.stderr
        rows = [line.split()[:5] for line in started.stdout.splitlines()]
        assert rows[0] == ["POD", "CONTAINER", "ROLE", "STATE", "READY"]
        assert [name, "file-server", "sidecar", "running", "yes"] in rows
        status = json.loads(run_pattern("status", name, "-o", "json").stdout)
        sidecar = next(r for r in status if r["container"] == "file-server")
        assert sidecar["live"] == "yes" and sidecar["readiness_probe"].startswith("exec ")
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert response.read() == b"served\n"
        assert f"{name}  file-server" in run_pattern("status", name).stdout
        assert run_pattern("logs", "--pod", name).stdout == "app-says-hi\n"
        taken = run_pattern("run", str(manifest), "--wait", "-p", f"{port}:8080",
                            "--runtime", runtime.name)
        assert taken.code == 1 and "already exists" in taken.stderr
    finally:
        stopped = run_pattern("down", str(manifest), "--grace-period", "0")
    assert stopped.code == 0, stopped.stderr
    assert_nothing_left(runtime, name)


def test_bad_inputs_are_one_line_and_leave_nothing(tmp_path: Path, runtime: Runtime) -> None:
    engine = ("--runtime", runtime.name)
    config_map = tmp_path / "cm.yaml"
    config_map.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    result = run_pattern("run", str(config_map), *engine)
    assert result.code == 1 and result.stderr.startswith("error: no pod-bearing workload")
    # Names of this run: a pod another run (or a killed one) left would answer "exists".
    names = {n: unique_name(n) for n in ("missing-image", "busy", "never-ready")}
    missing = tmp_path / "missing.yaml"
    missing.write_text(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {names['missing-image']}}}\n"
                       "spec: {containers: [{name: a, image: 'localhost/nope:1.0'}]}\n")
    result = run_pattern("run", str(missing), *engine)
    assert result.code == 1 and "image localhost/nope:1.0" in result.stderr
    assert result.stderr.count("\n") == 1
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        busy = tmp_path / "busy.yaml"
        busy.write_text(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {names['busy']}}}\n"
                        "spec: {containers: "
                        f"[{{name: a, image: '{BUSYBOX}', ports: [{{containerPort: 80, "
                        f"hostPort: {port}}}]}}]}}\n")
        result = run_pattern("run", str(busy), *engine)
        assert result.code == 1 and \
            f"host port 127.0.0.1:{port} (pod {names['busy']}) is already taken" in result.stderr
    never = tmp_path / "never.yaml"
    never.write_text(f"apiVersion: v1\nkind: Pod\nmetadata: {{name: {names['never-ready']}}}\n"
                     "spec: "
                     f"{{containers: [{{name: a, image: '{BUSYBOX}', command: [sleep, '600'], "
                     "readinessProbe: {exec: {command: [test, -f, /nope]}, periodSeconds: 1}}]}\n")
    result = run_pattern("run", str(never), "--wait", "--timeout", "10", *engine)
    assert result.code == 1 and result.stderr.count("\n") == 1
    assert f"{names['never-ready']}/a: readinessProbe timed out" in result.stderr
    for name in names.values():
        assert_nothing_left(runtime, name)


def test_secrets_are_decoded_as_on_kubernetes(tmp_path: Path, runtime: Runtime) -> None:
    name = unique_name("secrets")
    documents: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"},
         "data": {"password": "czNjcjN0"}},
        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
            "containers": [{
                "name": "app", "image": BUSYBOX, "command": ["sleep", "600"],
                "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds",
                                                                      "key": "password"}}}],
                "volumeMounts": [{"name": "creds", "mountPath": "/creds"}]}],
            "volumes": [{"name": "creds", "secret": {"secretName": "creds",
                                                    "defaultMode": 0o400}}]}},
    ]
    with running(documents, runtime=runtime) as (pod,):
        assert pod.exec("app", "sh", "-c", "echo $PW").stdout == "s3cr3t\n"
        assert pod.exec("app", "cat", "/creds/password").stdout == "s3cr3t"
        # The kubelet's layout: the name is a link through ..data to a file with the mode.
        assert pod.exec("app", "readlink", "/creds/password").stdout == "..data/password\n"
        assert pod.exec("app", "stat", "-L", "-c", "%a", "/creds/password").stdout == "400\n"
    assert_nothing_left(runtime, name)


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


def test_empty_dirs_are_shared_by_containers_with_different_uids(runtime: Runtime) -> None:
    name = unique_name("uids")
    writer = {"image": BUSYBOX, "volumeMounts": [{"name": "shared", "mountPath": "/shared"}]}
    documents: list[dict[str, Any]] = [{
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
            "containers": [
                {**writer, "name": "a", "securityContext": {"runAsUser": 1000},
                 "command": ["sh", "-c", "touch /shared/a; exec sleep 600"]},
                {**writer, "name": "b", "securityContext": {"runAsUser": 2000},
                 "command": ["sh", "-c", "touch /shared/b; exec sleep 600"]}],
            "volumes": [{"name": "shared", "emptyDir": {}}]}}]
    with running(documents, runtime=runtime) as (pod,):
        listing = wait_for("both files",
                           lambda: (out := pod.exec("a", "ls", "-n", "/shared").stdout)
                             .count("\n") >= 2 and out, 60)
        assert " 1000 " in listing and " 2000 " in listing
    assert_nothing_left(runtime, name)


def test_security_context_and_limits_are_applied(runtime: Runtime) -> None:
    name = unique_name("locked")
    documents: list[dict[str, Any]] = [{
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
            "securityContext": {"fsGroup": 2000, "supplementalGroups": [3000]},
            "containers": [{
                "name": "app", "image": BUSYBOX, "command": ["sleep", "600"],
                "securityContext": {
                    "runAsUser": 1000, "runAsGroup": 1000, "readOnlyRootFilesystem": True,
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}},
                "resources": {"limits": {"memory": "64Mi", "cpu": "500m"}},
                "env": [{"name": "MEM", "valueFrom": {"resourceFieldRef": {
                    "resource": "limits.memory", "divisor": "1Mi"}}},
                        {"name": "POD", "valueFrom": {"fieldRef": {
                            "fieldPath": "metadata.name"}}}]}]}}]
    with running(documents, runtime=runtime) as (pod,):
        ids = pod.exec("app", "id").stdout
        assert "uid=1000" in ids and "gid=1000" in ids
        assert "2000" in ids and "3000" in ids, ids  # fsGroup and supplementalGroups
        assert pod.exec("app", "touch", "/x", check=False).returncode != 0  # read-only root
        status = pod.exec("app", "cat", "/proc/self/status").stdout
        # NET_BIND_SERVICE only. (Effective for a non-root uid on podman, which raises ambient
        # capabilities; on Docker, as with the kubelet's runc, only bounded.)
        assert "CapBnd:\t0000000000000400" in status
        assert "NoNewPrivs:\t1" in status
        limit = pod.exec("app", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes",
                         check=False).stdout.strip() or \
            pod.exec("app", "cat", "/sys/fs/cgroup/memory.max").stdout.strip()
        assert limit == str(64 * 2**20)
        assert pod.exec("app", "sh", "-c", "echo $MEM $POD").stdout == f"64 {name}\n"
    assert_nothing_left(runtime, name)


def test_init_containers_run_in_order_before_the_app(tmp_path: Path, runtime: Runtime) -> None:
    tmp_path.chmod(0o777)
    step = {"image": BUSYBOX, "volumeMounts": [{"name": "out", "mountPath": "/out"}]}
    documents: list[dict[str, Any]] = [{
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": unique_name("inits")}, "spec": {
            "initContainers": [
                {**step, "name": "first", "command": ["sh", "-c", "sleep 1; echo 1 >> /out/log"]},
                {**step, "name": "second", "command": ["sh", "-c", "echo 2 >> /out/log"]}],
            "containers": [{**step, "name": "app",
                            "command": ["sh", "-c", "echo app >> /out/log; exec sleep 600"]}],
            "volumes": [{"name": "out", "hostPath": {"path": str(tmp_path)}}]}}]
    with running(documents, runtime=runtime):
        wait_for("the app", lambda: (tmp_path / "log").read_text() == "1\n2\napp\n", 60)


def test_a_lost_infra_container_is_reported(runtime: Runtime) -> None:
    name = unique_name("orphan")
    documents: list[dict[str, Any]] = [{
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
            "containers": [{"name": "app", "image": BUSYBOX, "command": ["sleep", "600"]}]}}]
    with running(documents, runtime=runtime) as (pod,):
        cli("kill", runtime.infra(name), runtime=runtime.name, check=True)
        wait_for("the infra container's end", lambda: not runtime.infra_running(name), 60)
        status = run_pattern("status", name, "-o", "json")
        assert "infra container is gone" in status.stdout, status
    assert_nothing_left(runtime, name)
    assert pod.name == name


# A `sh -c` script as a `|` block gives it (its first line on the line after the quote), and
# arguments and an env value whose edges are whitespace: podman 4.3's `kube play` re-encodes
# its file with go-yaml v3 and failed on the first, lost the indentation of others.
SCRIPT = "\nfor word in \"$@\"; do printf '[%s]\\n' \"$word\"; done\nprintf '[%s]\\n' \"$EDGE\"\n" \
         "echo end\nexec sleep 600\n"
WORDS = ["\nleading newline", "  two\n  indented lines\n", " a\nb", "\n", "tab\tand #: -"]
ENV_VALUE = "\n  indented after a newline\n"


def test_commands_and_values_starting_with_newlines_or_spaces_run_exactly(
        runtime: Runtime) -> None:
    name = unique_name("argv")
    documents: list[dict[str, Any]] = [{
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {
            "containers": [{"name": "app", "image": BUSYBOX,
                            "command": ["sh", "-c", SCRIPT, "sh"], "args": WORDS,
                            "env": [{"name": "EDGE", "value": ENV_VALUE}]}]}}]
    with running(documents, runtime=runtime) as (pod,):
        printed = wait_for("the script's output",
                           lambda: (out := pod.logs("app")).endswith("end\n") and out, 60)
    assert printed == "".join(f"[{word}]\n" for word in [*WORDS, ENV_VALUE]) + "end\n"
    assert_nothing_left(runtime, name)
