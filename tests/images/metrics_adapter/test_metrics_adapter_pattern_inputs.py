"""Bad values for the metrics-adapter pattern are one clear line from `pattern generate`
(exit 1) before anything runs; good ones render what the README promises."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pattern_inputs import documents, one_line_error
from support import CATALOGUE, run_pattern

BASE = ("generate", "--name", "shop", "--app-image", "localhost/busybox:latest",
        "--with", "metrics-adapter")


def generate(*sets: str) -> list[dict[str, Any]]:
    return documents("metrics-adapter", list(sets))


@pytest.mark.parametrize(("sets", "message"), [
    (["adapter=mongo"], "metrics-adapter.adapter: 'mongo' is not one of: mysql, postgres, "
                        "nginx, redis, logs"),
    ([], "metrics-adapter.adapter: is required"),
    (["adapter=mysql", "credentialsSecret=db", "password=hunter2"],
     "metrics-adapter.password: credentials are never inline: put them in a Secret"),
    (["adapter=redis", "url=redis://:pw@localhost:6379"],
     "metrics-adapter.url: the exporter reaches the app on 127.0.0.1; set appPort"),
    (["adapter=mysql"], "adapter mysql needs credentialsSecret"),
    (["adapter=postgres"], "adapter postgres needs credentialsSecret"),
    (["adapter=logs"], "adapter logs needs logDir"),
    (["adapter=redis", "logDir=/var/log/x"], "logDir is for adapter logs"),
    (["adapter=logs", "logDir=var/log"], "metrics-adapter.logDir: 'var/log' is not an "
                                         "absolute path"),
    (["adapter=redis", "exporterArgs=--redis.password=x"],
     "exporterArgs: --redis.password would put a credential on the command line"),
    (["adapter=redis", 'exporterArgs=["--x", "not a flag"]'], "exporterArgs[1]"),
    (["adapter=redis", "programsConfigMap=progs"], "programsConfigMap is for adapter logs"),
    (["adapter=logs", "logDir=/l", "levelCounters=false"],
     "levelCounters false needs programsConfigMap"),
    (["adapter=logs", "logDir=/l", 'files=[{"glob": "../etc/passwd"}]'],
     "must be a file name or glob in logDir"),
    (["adapter=redis", "monitor=PodMonitor", 'monitorLabels={"bad key": "x"}'],
     'monitorLabels: "bad key" is not a label key'),
    (["adapter=redis", 'monitorLabels={"release": "kps"}'],
     "monitorLabels and scrapeInterval are for monitor ServiceMonitor or PodMonitor"),
    (["adapter=redis", "port=80"], "metrics-adapter.port"),
])
def test_bad_values_are_one_clear_line(sets: list[str], message: str) -> None:
    assert message in one_line_error("metrics-adapter", sets)


def test_two_adapters_in_one_pod_name_the_annotation_clash() -> None:
    result = run_pattern(*BASE, "--with", "logs=metrics-adapter", "--set",
                         "metrics-adapter.adapter=redis", "--set", "logs.adapter=logs",
                         "--set", "logs.logDir=/var/log/shop", catalogue=CATALOGUE)
    assert result.code == 1
    assert "needs pod annotation prometheus.io/port='3903', but the pod has '9121'" in \
        result.stderr
    # With the annotations off for one of them, both run; each has its own named port.
    docs = generate_two()
    pod = docs[-1]
    ports = {c["name"]: c["ports"] for c in pod["spec"]["initContainers"]}
    assert ports == {"metrics-adapter": [{"name": "metrics", "containerPort": 9121},
                                         {"name": "health", "containerPort": 9899}],
                     "logs": [{"name": "metrics", "containerPort": 3903},
                              {"name": "health", "containerPort": 9898}]}


def generate_two() -> list[dict[str, Any]]:
    result = run_pattern(*BASE, "--with", "logs=metrics-adapter", "--set",
                         "metrics-adapter.adapter=redis", "--set", "logs.adapter=logs",
                         "--set", "logs.logDir=/var/log/shop", "--set",
                         "logs.scrapeAnnotations=false", "--set", "logs.healthPort=9898",
                         catalogue=CATALOGUE)
    assert result.code == 0, result.stderr
    return list(yaml.safe_load_all(result.stdout))


def test_the_pod_is_annotated_for_scraping_and_names_its_metrics_port() -> None:
    (pod,) = generate("adapter=postgres", "credentialsSecret=pg-monitor", "port=9300")
    annotations = pod["metadata"]["annotations"]
    assert {k: annotations[k] for k in annotations if k.startswith("prometheus.io/")} == {
        "prometheus.io/scrape": "true", "prometheus.io/port": "9300",
        "prometheus.io/path": "/metrics"}
    (sidecar,) = pod["spec"]["initContainers"]
    assert sidecar["ports"] == [{"name": "metrics", "containerPort": 9300},
                                {"name": "health", "containerPort": 9899}]
    assert sidecar["readinessProbe"]["exec"]["command"][-2:] == ["healthcheck", "/readyz"]
    assert sidecar["livenessProbe"]["exec"]["command"][-2:] == ["healthcheck", "/healthz"]
    assert "startupProbe" not in sidecar
    # The Secret is a read-only volume; no value in the manifest holds a credential.
    assert {"name": "metrics-adapter-credentials", "mountPath":
            "/etc/metrics-adapter/credentials", "readOnly": True} in sidecar["volumeMounts"]
    assert {"name": "metrics-adapter-credentials",
            "secret": {"secretName": "pg-monitor", "optional": False}} in pod["spec"]["volumes"]
    # The app gets no log volume: that is for adapter logs only.
    assert "volumeMounts" not in pod["spec"]["containers"][0]


def test_service_monitor_selects_its_service_which_selects_the_pod() -> None:
    service, monitor, pod = generate("adapter=redis", "monitor=ServiceMonitor",
                                     'monitorLabels={"release": "kps"}')
    assert service["kind"] == "Service" and monitor["kind"] == "ServiceMonitor"
    labels = pod["metadata"]["labels"]
    assert all(labels[k] == v for k, v in service["spec"]["selector"].items())
    assert service["spec"]["ports"] == [{"name": "metrics", "port": 9121,
                                         "targetPort": "metrics"}]
    match = monitor["spec"]["selector"]["matchLabels"]
    assert match["sidecar-patterns.io/metrics"] == "metrics-adapter"
    assert all(service["metadata"]["labels"][k] == v for k, v in match.items())
    assert monitor["metadata"]["labels"]["release"] == "kps"
    assert monitor["spec"]["endpoints"] == [{"port": "metrics", "path": "/metrics"}]
