"""config-reloader in real pods on podman and Docker: a ConfigMap changed through `pattern
apply` reaches the running app without a restart (nginx by SIGHUP after `nginx -t`,
Prometheus by POST /-/reload); a change that fails validation is not applied and is counted.
The nginx test runs the copy-paste example (examples/nginx.stack.yaml with the ConfigMap of
examples/nginx/nginx.conf, as its comment says to create) under a unique name."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

import pytest
import reload_peers as rp
from pods import RunningPod, assert_nothing_left, running, stack_documents
from support import CATALOGUE, free_port, run_pattern, wait_for

from generator.runner import state
from generator.runner.runtime import Runtime

pytestmark = pytest.mark.integration


def get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=3) as reply:
            return str(reply.read().decode())
    except (urllib.error.URLError, OSError):
        return None


def apply(path: Path, runtime: Runtime) -> str:
    done = run_pattern("apply", str(path), "--runtime", runtime.name, catalogue=None)
    assert done.code == 0, done.stderr
    return done.stdout


def test_nginx_reloads_a_changed_configmap_and_refuses_a_broken_one(
        tmp_path: Path, reloader_images: Runtime) -> None:
    runtime = reloader_images
    name = rp.unique("cr-nginx")
    workload = stack_documents(rp.example_stack(name), CATALOGUE)
    first = rp.config_map(name, {"nginx.conf": rp.NGINX_CONF})
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    with running([first, *workload], publish={8080: port}, runtime=runtime) as (pod,):
        assert get(url) == "version 1\n"
        # The app sees the kubelet's layout: a timestamped folder behind ..data.
        listing = pod.exec(name, "ls", "-a", "/etc/nginx/conf").stdout.split()
        assert "..data" in listing and any(n.startswith("..20") for n in listing)
        app_started, sidecar_started = rp.started_at(pod, name), rp.started_at(
            pod, "config-reloader")

        second = rp.config_map(name, {"nginx.conf": rp.NGINX_CONF.replace("version 1",
                                                                          "version 2")})
        assert apply(rp.write(tmp_path / "v2.yaml", [second, *workload]), runtime) == \
            f"configmap/{name} configured (pod {name}, volume nginx-conf)\n"
        wait_for("nginx to serve version 2", lambda: get(url) == "version 2\n", 30)
        # The reloader counts the reload, then logs it, just after nginx has it.
        status = wait_for("the reload counted", lambda: (
            s := rp.sidecar_status(pod))["reloads"] >= 1 and s, 30)
        assert status["reloads"] == 1 and status["validationFailures"] == 0
        assert status["lastHash"] == status["lastSeenHash"]
        wait_for("the reload in the log", lambda: "SIGHUP to nginx" in pod.logs("config-reloader"),
                 30)

        broken = rp.config_map(name, {"nginx.conf": rp.NGINX_CONF.replace(
            "version 1", "version 3").replace("listen 8080;", "listen 8080; no_such_directive;")})
        apply(rp.write(tmp_path / "broken.yaml", [broken]), runtime)  # the ConfigMap alone
        status = wait_for("the broken config to be refused",
                          lambda: (s := rp.sidecar_status(pod))["validationFailures"] == 1 and s,
                          30)
        assert status["reloads"] == 1 and status["lastHash"] != status["lastSeenHash"]
        assert "no_such_directive" in status["lastError"]
        assert get(url) == "version 2\n"  # still the old configuration
        assert "version 3" in pod.exec(name, "cat", "/etc/nginx/conf/nginx.conf").stdout

        fixed = rp.config_map(name, {"nginx.conf": rp.NGINX_CONF.replace("version 1",
                                                                         "version 4")})
        apply(rp.write(tmp_path / "v4.yaml", [fixed]), runtime)
        wait_for("nginx to serve version 4", lambda: get(url) == "version 4\n", 30)
        reloads = wait_for("the reload counted", lambda: (
            n := rp.sidecar_status(pod)["reloads"]) >= 2 and n, 30)
        assert reloads == 2
        assert apply(rp.write(tmp_path / "again.yaml", [fixed]), runtime) == \
            f"configmap/{name} unchanged (pod {name}, volume nginx-conf)\n"
        # Nothing restarted.
        assert rp.started_at(pod, name) == app_started
        assert rp.started_at(pod, "config-reloader") == sidecar_started

        # A changed pod template is not an apply: a cluster would replace the pod.
        changed = [dict(obj) for obj in workload]
        changed[-1] = {**changed[-1], "spec": {**changed[-1]["spec"], "replicas": 2}}
        changed[-1]["spec"]["template"] = {**changed[-1]["spec"]["template"]}
        changed[-1]["spec"]["template"]["metadata"] = {
            **changed[-1]["spec"]["template"]["metadata"], "annotations": {"x": "y"}}
        refused = run_pattern("apply", str(rp.write(tmp_path / "changed.yaml",
                                                    [fixed, *changed])),
                              "--runtime", runtime.name, catalogue=None)
        assert refused.code == 1 and "its pod template changed" in \
            refused.stderr and refused.stderr.count("\n") == 1
    assert_nothing_left(runtime, name)


PROMETHEUS_YML = """global: {scrape_interval: 1m}
scrape_configs:
  - job_name: JOB
    static_configs: [{targets: ["127.0.0.1:9090"]}]
"""


def test_prometheus_reloads_over_http(tmp_path: Path, reloader_images: Runtime) -> None:
    runtime = reloader_images
    name = rp.unique("cr-prom")
    stack = {
        "apiVersion": "sidecar-patterns.io/v1alpha1", "kind": "Stack",
        "metadata": {"name": name},
        "spec": {
            "app": {"image": rp.PROMETHEUS_IMAGE, "ports": [{"containerPort": 9090}],
                    "volumeMounts": [{"name": "conf", "mountPath": "/etc/prometheus/conf"},
                                     {"name": "data", "mountPath": "/tmp"}],
                    "readinessProbe": {"httpGet": {"path": "/-/ready", "port": 9090}}},
            "volumes": [{"name": "conf", "configMap": {"name": name}},
                        {"name": "data", "emptyDir": {}}],
            "sidecars": [{"pattern": "config-reloader", "values": {
                "watch": ["/etc/prometheus/conf"], "notify": "http",
                "url": "http://127.0.0.1:9090/-/reload"}}],
        },
    }
    workload = stack_documents(stack, CATALOGUE)
    pod_spec = workload[-1]["spec"]  # a Pod
    assert "shareProcessNamespace" not in pod_spec  # only the signal mode needs it
    port = free_port()
    config = f"http://127.0.0.1:{port}/api/v1/status/config"
    first = rp.config_map(name, {"prometheus.yml": PROMETHEUS_YML.replace("JOB", "first")})
    # `pattern apply` starts a workload that is not running, as kubectl apply creates it.
    started = run_pattern("apply", str(rp.write(tmp_path / "first.yaml", [first, *workload])),
                          "--wait", "-p", f"{port}:9090", "--runtime", runtime.name,
                          catalogue=None)
    try:
        assert started.code == 0, started.stderr
        assert started.stdout == f"pod/{name} created\n"
        plan = state.load(name)
        assert plan is not None
        pod = RunningPod(plan, runtime)
        assert "job_name: first" in (get(config) or "")
        app_started = rp.started_at(pod, name)
        second = rp.config_map(name, {"prometheus.yml": PROMETHEUS_YML.replace("JOB", "second")})
        apply(rp.write(tmp_path / "second.yaml", [second]), runtime)
        wait_for("Prometheus to load job second", lambda: "job_name: second" in (get(config)
                                                                                 or ""), 30)
        # Prometheus answers the reload call once it has the new configuration: the reloader
        # counts the reload, then logs it, a moment after the test may see the new job.
        status = wait_for("the reload counted", lambda: (
            s := rp.sidecar_status(pod))["reloads"] >= 1 and s, 30)
        assert status["reloads"] == 1 and status["notifyFailures"] == 0
        wait_for("the reload in the log", lambda: "POST http://127.0.0.1:9090/-/reload -> 200"
                 in pod.logs("config-reloader"), 30)
        assert rp.started_at(pod, name) == app_started
    finally:
        run_pattern("down", name, "--grace-period", "0", catalogue=None)
    assert_nothing_left(runtime, name)
