"""The pod semantics the generator must get right, seen in what it emits."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from support import FIXTURE_CATALOGUE

from generator.catalogue import Catalogue
from generator.compose import compose, compose_with_notes
from generator.errors import ComposeError, UsageError
from generator.kinds import pod_spec_of, pod_template_of
from generator.sidecars import SidecarRequest
from generator.stack import Stack
from generator.values import parse_assignment

CATALOGUE = Catalogue(FIXTURE_CATALOGUE)
APP = {"image": "nginx:1.27", "ports": [{"containerPort": 80}],
       "env": [{"name": "DB", "valueFrom": {"secretKeyRef": {"name": "db", "key": "pw"}}}],
       "resources": {"limits": {"memory": "1Gi"}},
       "livenessProbe": {"httpGet": {"path": "/", "port": 80}}}
SEED = SidecarRequest("seed-loader", "seed-loader", values={"seed": "x"})
SERVER = SidecarRequest("file-server", "file-server")


def build(*sidecars: SidecarRequest, sets: tuple[str, ...] = (),
          **fields: Any) -> list[dict[str, Any]]:
    stack = Stack(name="shop", app=dict(APP), sidecars=tuple(sidecars), **fields)
    return compose(stack, CATALOGUE, [parse_assignment(s) for s in sets])


def names(containers: list[dict[str, Any]] | None) -> list[str]:
    return [c["name"] for c in containers or []]


def test_native_sidecars_are_restartable_init_containers() -> None:
    spec = pod_spec_of(build(SERVER, SEED, k8s_version="1.33")[-1])
    assert spec is not None
    assert names(spec["initContainers"]) == ["file-server", "seed-loader"]
    assert all(c["restartPolicy"] == "Always" for c in spec["initContainers"])
    assert names(spec["containers"]) == ["shop"]


def test_classic_sidecars_are_containers_and_start_before_app_gets_an_init() -> None:
    workload = build(SERVER, SEED, k8s_version="1.28")[-1]
    spec = pod_spec_of(workload)
    assert spec is not None
    assert names(spec["containers"]) == ["shop", "file-server", "seed-loader"]
    assert names(spec["initContainers"]) == ["seed-loader-init"]
    annotations = workload["metadata"]["annotations"]
    assert annotations["sidecar-patterns.io/sidecars"] == "file-server,seed-loader"


def test_forcing_a_mode() -> None:
    spec = pod_spec_of(build(SERVER, k8s_version="1.33", sidecar_mode="classic")[-1]) or {}
    assert names(spec["containers"]) == ["shop", "file-server"]
    with pytest.raises(UsageError, match=r"1\.28 or later"):
        build(SERVER, k8s_version="1.27", sidecar_mode="native")


def test_the_app_keeps_its_own_settings() -> None:
    app = pod_spec_of(build(SERVER, SEED)[-1])["containers"][0]  # type: ignore[index]
    assert {k: app[k] for k in APP} == APP
    assert app["volumeMounts"] == [
        {"name": "file-server-share", "mountPath": "/srv/share"},
        {"name": "seed-loader-data", "mountPath": "/seed", "readOnly": True},
    ]


def test_shared_volume_is_mounted_in_app_and_sidecar() -> None:
    spec = pod_spec_of(build(SERVER, sets=("file-server.dir=/var/www",))[-1]) or {}
    sidecar = spec["initContainers"][0]
    assert {"name": "file-server-share", "emptyDir": {}} in spec["volumes"]
    assert sidecar["volumeMounts"] == [{"name": "file-server-share", "mountPath": "/share"}]
    assert spec["containers"][0]["volumeMounts"][0]["mountPath"] == "/var/www"


def test_port_clash_names_both_containers_and_the_port() -> None:
    with pytest.raises(ComposeError,
                       match="port 8080/TCP is used by both 'file-server' and 'shop'"):
        compose(Stack(name="shop", app={**APP, "ports": [{"containerPort": 8080}]},
                      sidecars=(SERVER,)), CATALOGUE, [])


def test_port_clash_between_two_sidecars() -> None:
    other = SidecarRequest("file-server", "mirror", values={"dir": "/srv/mirror"})
    with pytest.raises(ComposeError, match="'file-server' and 'mirror'"):
        build(SERVER, other)


def test_a_volume_the_app_mounts_at_the_path_is_shared() -> None:
    stack_app = {**APP, "volumeMounts": [{"name": "data", "mountPath": "/srv/share"}]}
    stack = Stack(name="shop", app=stack_app, sidecars=(SERVER,),
                  volumes=({"name": "data", "emptyDir": {}},))
    documents, notes = compose_with_notes(stack, CATALOGUE, [])
    spec = pod_spec_of(documents[-1]) or {}
    assert [v["name"] for v in spec["volumes"]] == ["data"]
    assert {"name": "data", "mountPath": "/share"} in spec["initContainers"][0]["volumeMounts"]
    assert notes == ["file-server: shares volume 'data', which the app already mounts at "
                     "/srv/share (choose another with --volume file-server.share=VOLUME)"]


def test_a_bound_volume_the_app_mounts_elsewhere_clashes_with_a_clear_fix() -> None:
    stack_app = {**APP, "volumeMounts": [{"name": "data", "mountPath": "/srv/share"},
                                         {"name": "other", "mountPath": "/other"}]}
    request = replace(SERVER, volumes={"share": {"volume": "other"}})
    stack = Stack(name="shop", app=stack_app, sidecars=(request,),
                  volumes=({"name": "data", "emptyDir": {}}, {"name": "other", "emptyDir": {}}))
    documents = compose(stack, CATALOGUE, [])  # the app already mounts 'other': no new mount
    assert (pod_spec_of(documents[-1]) or {})["containers"][0]["volumeMounts"] == \
        stack_app["volumeMounts"]
    fresh = replace(request, volumes={"share": {"emptyDir": {}}})
    with pytest.raises(ComposeError, match=r"the app mounts volume 'data' at /srv/share, and "
                       "file-server.share is volume 'file-server-share': share the app's with "
                       "--volume file-server.share=data"):
        compose(replace(stack, sidecars=(fresh,)), CATALOGUE, [])


def test_sharing_a_user_volume() -> None:
    stack_app = {**APP, "volumeMounts": [{"name": "data", "mountPath": "/var/lib/data"}]}
    request = replace(SERVER, volumes={"share": {"volume": "data"}})
    stack = Stack(name="shop", app=stack_app, sidecars=(request,),
                  volumes=({"name": "data", "persistentVolumeClaim": {"claimName": "d"}},))
    spec = pod_spec_of(compose(stack, CATALOGUE, [])[-1]) or {}
    assert spec["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "d"}}]
    assert spec["containers"][0]["volumeMounts"] == stack_app["volumeMounts"]
    assert spec["initContainers"][0]["volumeMounts"][0]["name"] == "data"


def test_sidecar_named_like_the_app() -> None:
    with pytest.raises(ComposeError, match="app container's name"):
        build(SidecarRequest("file-server", "shop"))


def test_sidecars_get_a_secure_context_by_default_and_templates_add_to_it() -> None:
    sidecar = pod_spec_of(build(SEED)[-1])["initContainers"][0]  # type: ignore[index]
    assert sidecar["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"},
        "runAsUser": 65532, "runAsGroup": 65532}


def test_hooks_and_resources_can_be_set_on_a_sidecar() -> None:
    hook = {"preStop": {"exec": {"command": ["sync"]}}}
    request = replace(SERVER, lifecycle=hook, resources={"limits": {"cpu": "1", "memory": "1Gi"},
                                                         "requests": {"cpu": "1", "memory": "1Gi"}})
    sidecar = pod_spec_of(build(request)[-1])["initContainers"][0]  # type: ignore[index]
    assert sidecar["lifecycle"] == hook and sidecar["resources"]["limits"]["cpu"] == "1"


@pytest.mark.parametrize("kind", ["Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob"])
def test_workload_kinds_select_their_own_pods(kind: str) -> None:
    docs = build(SERVER, kind=kind, schedule="*/5 * * * *" if kind == "CronJob" else None)
    workload = docs[-1]
    template = pod_template_of(workload)
    assert template is not None and template["spec"]["initContainers"]
    labels = template["metadata"]["labels"]
    if kind in {"Deployment", "StatefulSet", "DaemonSet"}:
        assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()
    if kind in {"Job", "CronJob"}:
        assert template["spec"]["restartPolicy"] == "Never"
    if kind == "StatefulSet":
        assert docs[0]["kind"] == "Service" and docs[0]["spec"]["clusterIP"] == "None"
        assert workload["spec"]["serviceName"] == docs[0]["metadata"]["name"]


def test_classic_sidecars_in_a_job_are_refused() -> None:
    with pytest.raises(ComposeError, match="Job would never complete"):
        build(SERVER, kind="Job", k8s_version="1.28")


def test_cronjob_needs_a_schedule() -> None:
    with pytest.raises(UsageError, match="needs --schedule"):
        build(SERVER, kind="CronJob")


def test_supporting_objects_come_first_and_follow_the_namespace() -> None:
    docs = build(SEED, namespace="shop-ns")
    assert [d["kind"] for d in docs] == ["ConfigMap", "Pod"]
    assert docs[0]["metadata"] == {"name": "shop-seed-loader-config", "namespace": "shop-ns",
                                   "labels": {"app.kubernetes.io/managed-by": "sidecar-patterns"}}


def test_output_is_deterministic() -> None:
    assert build(SERVER, SEED) == build(SERVER, SEED)
