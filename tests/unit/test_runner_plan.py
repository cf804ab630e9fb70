"""What `pattern run` hands podman, and what it keeps to do itself (pure translation)."""

from __future__ import annotations

from typing import Any

import pytest

from generator.errors import ManifestError
from generator.runner.plan import plan_documents

SIDECAR = {"name": "logs", "image": "i:1", "restartPolicy": "Always",
           "startupProbe": {"exec": {"command": ["true"]}},
           "readinessProbe": {"tcpSocket": {"port": "http"}},
           "lifecycle": {"preStop": {"exec": {"command": ["flush"]}}},
           "ports": [{"name": "http", "containerPort": 8080}],
           "volumeMounts": [{"name": "shared", "mountPath": "/logs"}]}
APP = {"name": "app", "image": "a:1", "imagePullPolicy": "Always",
       "ports": [{"containerPort": 3000}, {"containerPort": 22, "hostPort": 2222}],
       "env": [{"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
               {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
               {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
       "envFrom": [{"configMapRef": {"name": "cm"}, "prefix": "CFG_"}],
       "volumeMounts": [{"name": "shared", "mountPath": "/var/log/app"},
                        {"name": "conf", "mountPath": "/etc/app"}]}
DOCS: list[dict[str, Any]] = [
    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"pw": "czNjcjN0"}},
    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cm"},
     "data": {"mode": "fast", "app.conf": "x=1\n"}},
    {"apiVersion": "apps/v1", "kind": "Deployment",
     "metadata": {"name": "web", "namespace": "shop"},
     "spec": {"replicas": 3, "selector": {"matchLabels": {"a": "b"}}, "template": {
         "metadata": {"labels": {"a": "b"}},
         "spec": {"terminationGracePeriodSeconds": 5, "initContainers": [SIDECAR],
                  "containers": [APP],
                  "volumes": [{"name": "shared", "emptyDir": {}},
                              {"name": "conf", "configMap": {"name": "cm", "items": [
                                  {"key": "app.conf", "path": "app.conf", "mode": 0o600}]}}]}}}},
]


@pytest.fixture
def plan() -> Any:
    (only,) = plan_documents(DOCS, {3000: 18080}, "/run/files")
    return only


def test_native_sidecar_becomes_a_container_started_first(plan: Any) -> None:
    assert [c["name"] for c in plan.play["spec"]["containers"]] == ["logs", "app"]
    assert [(c.name, c.role, c.native) for c in plan.containers] == [
        ("logs", "sidecar", True), ("app", "app", False)]
    assert "initContainers" not in plan.play["spec"]
    assert plan.play["spec"]["restartPolicy"] == "Never"


def test_probes_and_hooks_are_kept_for_the_runner_not_podman(plan: Any) -> None:
    logs = plan.play["spec"]["containers"][0]
    assert not {"startupProbe", "readinessProbe", "lifecycle", "restartPolicy"} & logs.keys()
    assert plan.containers[0].startup == SIDECAR["startupProbe"]
    assert plan.containers[0].pre_stop == {"exec": {"command": ["flush"]}}
    assert plan.containers[0].named_ports == {"http": 8080}


def test_ports_are_published_only_when_asked_and_on_loopback(plan: Any) -> None:
    app = plan.play["spec"]["containers"][1]
    assert app["ports"] == [{"containerPort": 3000, "hostPort": 18080, "hostIP": "127.0.0.1"},
                            {"containerPort": 22, "hostPort": 2222, "hostIP": "127.0.0.1"}]
    assert "ports" not in plan.play["spec"]["containers"][0]
    assert plan.host_ports == [("127.0.0.1", 18080), ("127.0.0.1", 2222)]


def test_secrets_config_maps_and_field_refs_are_resolved(plan: Any) -> None:
    env = {e["name"]: e for e in plan.play["spec"]["containers"][1]["env"]}
    assert env["PW"] == {"name": "PW", "value": "s3cr3t"}
    assert env["NS"] == {"name": "NS", "value": "shop"}
    assert env["POD"]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.name"}}
    assert env["CFG_mode"] == {"name": "CFG_mode", "value": "fast"}
    assert plan.files == {"conf/app.conf": (b"x=1\n", 0o600)}
    conf = next(v for v in plan.play["spec"]["volumes"] if v["name"] == "conf")
    assert conf == {"name": "conf", "hostPath": {"path": "/run/files/web/conf",
                                                 "type": "Directory"}}


def test_empty_dirs_get_pod_unique_names(plan: Any) -> None:
    assert plan.pod_volumes == ["web-shared"]
    mounts = [m["name"] for c in plan.play["spec"]["containers"] for m in c["volumeMounts"]]
    assert mounts == ["web-shared", "web-shared", "conf"]


def test_workload_settings_and_notes(plan: Any) -> None:
    assert plan.name == "web" and plan.grace_seconds == 5
    assert plan.play["spec"]["containers"][1]["imagePullPolicy"] == "IfNotPresent"
    assert "replicas: 3 -> 1 (one local pod per workload)" in plan.notes
    assert any("native sidecar" in note for note in plan.notes)


def test_missing_references_are_errors() -> None:
    with pytest.raises(ManifestError, match="needs secret 's' key 'pw', not in the input"):
        plan_documents(DOCS[1:], {}, "/run/files")
    with pytest.raises(ManifestError, match="volume conf needs configMap 'cm', which is not"):
        plan_documents([DOCS[0], DOCS[2]], {}, "/run/files")
    with pytest.raises(ManifestError, match="no pod-bearing workload"):
        plan_documents(DOCS[:2], {}, "/run/files")
    with pytest.raises(ManifestError,
                       match=r"--publish 127\.0\.0\.1:1:9: no container in web declares port 9"):
        plan_documents(DOCS, {9: 1}, "/run/files")


def test_statefulset_claim_templates_become_named_volumes_of_the_first_pod() -> None:
    db = {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
          "spec": {"serviceName": "db", "selector": {"matchLabels": {"a": "db"}},
                   "template": {"metadata": {"labels": {"a": "db"}}, "spec": {"containers": [
                       {"name": "db", "image": "d:1",
                        "volumeMounts": [{"name": "data", "mountPath": "/var/lib/mysql"}]}]}},
                   "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                       "accessModes": ["ReadWriteOnce"],
                       "resources": {"requests": {"storage": "1Gi"}}}}]}}
    (plan,) = plan_documents([db], {}, "/files")
    assert plan.name == "db-0"
    assert plan.play["spec"]["volumes"] == [
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-db-0"}}]
    assert any("data-db-0" in note for note in plan.notes)


def test_a_plan_records_its_projections_and_a_template_hash_for_apply() -> None:
    (first,) = plan_documents(DOCS, {3000: 18080}, "/run/files")
    assert first.projections == {"conf": {"kind": "configMap", "name": "cm", "mode": 0o644,
                                          "optional": False, "items": [
                                              {"key": "app.conf", "path": "app.conf",
                                               "mode": 0o600}]}}
    # --publish and the ConfigMap's values are not the pod template: apply may update them.
    changed_map = [DOCS[0], {**DOCS[1], "data": {"mode": "slow", "app.conf": "x=2\n"}}, DOCS[2]]
    (again,) = plan_documents(changed_map, {}, "/run/files")
    assert again.spec_hash == first.spec_hash and again.files["conf/app.conf"][0] == b"x=2\n"
    template = DOCS[2]["spec"]["template"]
    other = {**DOCS[2], "spec": {**DOCS[2]["spec"], "template": {
        **template, "metadata": {"labels": {"a": "b"}, "annotations": {"x": "y"}}}}}
    (changed,) = plan_documents([DOCS[0], DOCS[1], other], {}, "/run/files")
    assert changed.spec_hash != first.spec_hash


@pytest.mark.parametrize(("text", "seen"), [
    ("$(A)-$(B)", "x-$(B)"),           # a variable the container does not define stays
    ("$$(A)", "$(A)"),                 # $$ is the escape for $
    ("$$$(A)", "$x"),
    ("cost: 5$", "cost: 5$"),          # a lone or trailing $ stays
    ("$A $(A", "$A $(A"),              # shell syntax and an unclosed reference stay
    ("$()", "$()"),
])
def test_references_expand_as_the_kubelet_expands_them(text: str, seen: str) -> None:
    from generator.runner.plan import expand_references
    assert expand_references(text, {"A": "x"}) == seen


def test_env_values_see_earlier_variables_and_command_sees_all() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "c", "image": "i:1", "command": ["echo", "$(B)", "$$(B)"],
         "env": [{"name": "B", "value": "$(A)-b"}, {"name": "A", "value": "a"},
                 {"name": "C", "value": "$(A)-c"}]}]}}
    (only,) = plan_documents([pod], {}, "/run/files")
    container = only.play["spec"]["containers"][0]
    assert [e["value"] for e in container["env"]] == ["$(A)-b", "a", "a-c"]
    assert container["command"] == ["echo", "$(A)-b", "$(B)"]
