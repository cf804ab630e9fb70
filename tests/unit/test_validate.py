"""`pattern validate` semantics: the official schema, strict, plus the pod rules."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from generator.errors import PatternError
from generator.validate import _definitions, _kind_schema, check_object, schema_problems

POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
    "spec": {"containers": [{"name": "web", "image": "nginx:1.27",
                             "ports": [{"containerPort": 80}]}]},
}
SIDECAR: dict[str, Any] = {
    "name": "logs", "image": "ghcr.io/sidecar-patterns/log-collector:0.1.0",
    "restartPolicy": "Always",
    "readinessProbe": {"exec": {"command": ["true"]}},
    "livenessProbe": {"exec": {"command": ["true"]}},
    "resources": {"requests": {"cpu": "10m", "memory": "16Mi"},
                  "limits": {"cpu": "100m", "memory": "32Mi"}},
    "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                        "seccompProfile": {"type": "RuntimeDefault"}},
}


def pod_with(**spec: Any) -> dict[str, Any]:
    pod = copy.deepcopy(POD)
    pod["spec"].update(spec)
    return pod


def test_a_plain_pod_is_valid() -> None:
    assert check_object(POD, "1.33") == []


def test_unknown_fields_are_errors() -> None:
    pod = copy.deepcopy(POD)
    pod["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    assert check_object(pod, "1.33") == [
        "Pod web: spec.containers[0].imagePullPolicyy: unknown key (did you mean imagePullPolicy?)"]


def test_wrong_types_and_missing_fields() -> None:
    pod = copy.deepcopy(POD)
    pod["spec"]["containers"][0]["ports"][0]["containerPort"] = "eighty"
    pod["spec"]["containers"].append({"image": "nginx:1.27"})
    assert check_object(pod, "1.33") == [
        "Pod web: spec.containers[0].ports[0].containerPort: 'eighty' is not of type integer",
        "Pod web: spec.containers[1].name: is required",
    ]


def test_native_sidecar_needs_a_recent_kubernetes() -> None:
    pod = pod_with(initContainers=[SIDECAR])
    assert check_object(pod, "1.33") == []
    problems = check_object(pod, "1.27")
    assert problems and "restartPolicy" in problems[0]  # the 1.27 schema has no such field


def test_sidecar_rules_apply_to_native_sidecars() -> None:
    bare = {"name": "logs", "image": "busybox", "restartPolicy": "Always"}
    problems = check_object(pod_with(initContainers=[bare]), "1.33")
    assert "Pod web: sidecar 'logs': image 'busybox' must have a pinned tag" in problems
    assert "Pod web: sidecar 'logs': has no readinessProbe" in problems
    assert "Pod web: sidecar 'logs': must drop ALL capabilities" in problems
    assert "Pod web: sidecar 'logs': has no memory limit" in problems


def test_annotated_classic_sidecars_are_checked_and_jobs_refuse_them() -> None:
    classic = {k: v for k, v in SIDECAR.items() if k != "restartPolicy"}
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
           "spec": {"template": {
               "metadata": {"annotations": {"sidecar-patterns.io/sidecars": "logs"}},
               "spec": {"restartPolicy": "Never",
                        "containers": [POD["spec"]["containers"][0], classic]}}}}
    assert check_object(job, "1.33") == [
        "Job j: classic sidecars logs never exit, so the Job would never complete: "
        "use native sidecars (Kubernetes 1.29+)"]


def test_port_clash_and_undeclared_volume() -> None:
    second = {"name": "other", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
              "volumeMounts": [{"name": "nope", "mountPath": "/x"}]}
    problems = check_object(pod_with(containers=[POD["spec"]["containers"][0], second]), "1.33")
    assert problems == [
        "Pod web: port 80/TCP is used by both 'web' and 'other' (containers in a pod share one "
        "network namespace)",
        "Pod web: container 'other' mounts volume 'nope', which the pod does not declare",
    ]


def test_unknown_kind() -> None:
    assert check_object({"apiVersion": "example.com/v1", "kind": "Widget",
                         "metadata": {"name": "w"}}, "1.33") == [
        "Widget w: Kubernetes 1.33 has no Widget in example.com/v1"]


@pytest.mark.parametrize("obj", [
    POD,
    pod_with(initContainers=[SIDECAR]),
    pod_with(restartPolicy="Sometimes"),
    pod_with(hostNetwork="yes"),
    pod_with(containers=[{"name": "x", "image": "i:1", "ports": [{"containerPort": "http"}]}]),
    pod_with(containers=[{"name": "x", "image": "i:1", "resources": {"limits": {"cpu": 1}}}]),
    pod_with(containers=[{"image": "i:1"}]),
])
def test_agrees_with_the_jsonschema_library(obj: dict[str, Any]) -> None:
    """Our fast validator and the reference implementation accept and refuse the same objects."""
    version = (1, 33)
    kind_schema = _kind_schema(version, obj["kind"], obj["apiVersion"])
    assert kind_schema is not None
    # The reference library resolves the definitions file's refs once they point inside.
    combined = json.loads(json.dumps({**kind_schema, "$defs": _definitions(version)["$defs"]})
                          .replace("/api/_definitions.json#", "#"))
    reference = jsonschema.validators.validator_for(combined)(combined)
    assert (schema_problems(obj, version) == []) == reference.is_valid(obj)


def test_statefulset_claim_templates_are_declared_volumes() -> None:
    statefulset = {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db"},
        "spec": {"serviceName": "db", "selector": {"matchLabels": {"a": "db"}},
                 "template": {"metadata": {"labels": {"a": "db"}}, "spec": {"containers": [
                     {"name": "db", "image": "mariadb:11.4",
                      "volumeMounts": [{"name": "data", "mountPath": "/var/lib/mysql"}]}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                     "accessModes": ["ReadWriteOnce"],
                     "resources": {"requests": {"storage": "1Gi"}}}}]}}
    assert check_object(statefulset, "1.33") == []


@pytest.fixture
def schemas_as_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """kubernetes-validate as the images carry it: each version's schemas one zip (1.33 only
    here, written by generator.images), no folders."""
    from generator import images, validate

    strict = validate._schema_root() / "v1.33.0-local-strict"
    package = tmp_path / "kubernetes_validate"
    (package / validate.SCHEMA_FOLDER).mkdir(parents=True)
    (package / "__init__.py").write_text("")
    images.write_archive(package / validate.SCHEMA_FOLDER / (strict.name + validate.ARCHIVE),
                         [(p.name, p) for p in strict.iterdir()])
    caches = [validate._schema_root, validate.supported_versions, validate._folder,
              _definitions, _kind_schema]
    monkeypatch.syspath_prepend(str(tmp_path))
    for cached in caches:
        cached.cache_clear()
    yield
    for cached in caches:
        cached.cache_clear()


def test_the_schemas_read_from_the_archive_say_the_same(schemas_as_archive: None) -> None:
    from generator import validate

    assert validate.supported_versions() == [(1, 33)]
    assert type(validate._folder((1, 33))).__module__ == "zipfile"
    bad = copy.deepcopy(POD)
    bad["spec"]["containers"][0]["bogus"] = 1
    assert check_object(bad, "1.33") == ["Pod web: spec.containers[0].bogus: unknown key"]
    assert check_object(POD, "1.33") == []
    with pytest.raises(PatternError, match=r"no Kubernetes schema for 1\.30"):
        check_object(POD, "1.30")


def test_the_archive_is_the_same_bytes_from_the_same_files(tmp_path: Path) -> None:
    from generator import images

    (tmp_path / "b.json").write_text("{}")
    (tmp_path / "a.json").write_text("[]")
    files = [("x/b.json", tmp_path / "b.json"), ("x/a.json", tmp_path / "a.json")]
    images.write_archive(tmp_path / "one.zip", files)
    (tmp_path / "a.json").touch()
    images.write_archive(tmp_path / "two.zip", files[::-1])
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
