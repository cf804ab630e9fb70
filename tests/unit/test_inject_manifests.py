"""`pattern inject` / `uninject` on realistic manifests: where things land, exact undo, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import FIXTURE_CATALOGUE, ROOT, with_requests

from generator.catalogue import Catalogue
from generator.compose import compose
from generator.errors import PatternError, UsageError
from generator.inject import RECORD_ANNOTATION, InjectError, inject, uninject
from generator.manifests import StreamError, parse_stream
from generator.rules import SIDECARS_ANNOTATION
from generator.sidecars import SidecarOptions, SidecarRequest, add_requests, bind_volumes
from generator.stack import Stack
from generator.validate import check_documents
from generator.values import parse_assignment
from generator.yamlio import dump_documents

CATALOGUE = Catalogue(FIXTURE_CATALOGUE)
MANIFESTS = ROOT / "tests" / "fixtures" / "manifests"
FIXTURES = sorted(MANIFESTS.glob("*.yaml"))
SEED = ("seed-loader.seed=first line",)


def run(text: str, *patterns: str, sets: tuple[str, ...] = (), volumes: tuple[str, ...] = (),
        **options: Any) -> tuple[str, list[str]]:
    opts = SidecarOptions(requests=bind_volumes(with_requests(list(patterns)), list(volumes)),
                          assignments=tuple(parse_assignment(s) for s in sets), **options)
    result = inject([parse_stream(text, "in.yaml")], opts, CATALOGUE)
    return result.text, result.notes


def injected(text: str, *patterns: str, sets: tuple[str, ...] = (), **options: Any) -> str:
    return run(text, *patterns, sets=sets, **options)[0]


def undo(text: str) -> str:
    return uninject([parse_stream(text, "out.yaml")]).text


def objects(text: str) -> list[dict[str, Any]]:
    found = []
    for doc in yaml.safe_load_all(text):
        if doc is None:
            continue
        found += doc["items"] if doc.get("kind") == "List" else [doc]
    return found


def named(text: str, kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects(text) if o["kind"] == kind and o["metadata"]["name"] == name)


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "Pod":
        return obj["spec"]  # type: ignore[no-any-return]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]  # type: ignore[no-any-return]
    return obj["spec"]["template"]["spec"]  # type: ignore[no-any-return]


def names(containers: list[dict[str, Any]] | None) -> list[str]:
    return [c["name"] for c in containers or []]


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
@pytest.mark.parametrize(("patterns", "sets", "version"), [
    (("file-server",), (), "1.33"),
    (("file-server", "seed-loader"), SEED, "1.33"),
    (("seed-loader",), SEED, "1.29"),
], ids=["one", "two", "1.29"])
def test_uninject_restores_every_fixture_byte_for_byte(path: Path, patterns: tuple[str, ...],
                                                        sets: tuple[str, ...],
                                                        version: str) -> None:
    original = path.read_text()
    once = injected(original, *patterns, sets=sets, k8s_version=version)
    assert once != original
    assert injected(once, *patterns, sets=sets, k8s_version=version) == once  # idempotent
    assert undo(once) == original


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_injection_adds_no_kubernetes_schema_or_pod_rule_problem(path: Path) -> None:
    out = injected(path.read_text(), "file-server", "seed-loader", sets=SEED)
    # (the pod rules miss a StatefulSet's volumeClaimTemplates: that one is the input's "fault")
    assert check_documents(objects(out), "1.33") == check_documents(
        objects(path.read_text()), "1.33")


def test_other_documents_pass_through_byte_identical() -> None:
    original = (MANIFESTS / "shop.yaml").read_text()
    out = injected(original, "file-server", "seed-loader", sets=SEED)
    chunks = original.split("---\n")
    configmap, service, hpa = chunks[0], chunks[1], chunks[3]
    assert out.startswith(configmap)  # the file's leading comments included
    assert f"---\n{service}---\n" in out
    assert out.endswith(f"---\n{hpa}")


def test_sidecars_land_around_the_app_like_generate_places_them() -> None:
    out = injected((MANIFESTS / "shop.yaml").read_text(), "file-server", "seed-loader",
                   sets=(*SEED, "file-server.dir=/srv/public"))
    deployment = named(out, "Deployment", "shop")
    spec = pod_spec(deployment)
    # native sidecars start before the user's init containers, so those can rely on them
    assert names(spec["initContainers"]) == ["file-server", "seed-loader", "migrate",
                                             "warm-cache"]
    assert spec["initContainers"][0]["restartPolicy"] == "Always"
    assert names(spec["containers"]) == ["web", "metrics"]
    web, metrics = spec["containers"]
    assert web["volumeMounts"][2:] == [
        {"name": "file-server-share", "mountPath": "/srv/public"},
        {"name": "seed-loader-data", "mountPath": "/seed", "readOnly": True}]
    assert "volumeMounts" not in metrics
    assert names(spec["volumes"]) == ["cache", "uploads", "file-server-share",
                                      "seed-loader-data", "seed-loader-config"]
    # the ConfigMap the seed-loader needs is written just before its workload, in its namespace
    kinds = [(o["kind"], o["metadata"]["name"]) for o in objects(out)]
    assert kinds[2:4] == [("ConfigMap", "shop-seed-loader-config"), ("Deployment", "shop")]
    config = named(out, "ConfigMap", "shop-seed-loader-config")
    assert config["metadata"]["namespace"] == "shop"
    assert config["data"] == {"seed.txt": "first line\n"}
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == "9102"  # the user's stay
    assert annotations["sidecar-patterns.io/patterns"] == \
        "file-server=file-server@0.1.0,seed-loader=seed-loader@0.2.0"
    record = json.loads(annotations[RECORD_ANNOTATION])
    assert record["initContainers"] == ["file-server", "seed-loader"]
    assert record["mounts"] == ["file-server-share", "seed-loader-data"]
    assert record["app"] == "web"
    assert record["objects"] == [{"kind": "ConfigMap", "name": "shop-seed-loader-config"}]
    assert record["sidecars"][0]["values"] == {"dir": "/srv/public"}


def test_comments_and_key_order_of_an_injected_document_are_kept() -> None:
    original = (MANIFESTS / "shop.yaml").read_text()
    out = injected(original, "file-server")
    for line in ["        - name: web   # the app: listens on 3000",
                 "        # Schema migrations must finish before any replica serves traffic.",
                 "    rollingUpdate: {maxSurge: 1, maxUnavailable: 0}",
                 '        prometheus.io/scrape: "true"']:
        assert line + "\n" in out
    keys = list(named(out, "Deployment", "shop")["spec"])
    assert keys == ["replicas", "revisionHistoryLimit", "selector", "strategy", "template"]


def test_the_app_is_chosen_by_flag_or_by_annotation() -> None:
    shop = (MANIFESTS / "shop.yaml").read_text()
    by_flag = pod_spec(named(injected(shop, "file-server", container="metrics"), "Deployment",
                             "shop"))
    assert by_flag["containers"][1]["volumeMounts"] == [
        {"name": "file-server-share", "mountPath": "/srv/share"}]
    marked = shop.replace('        prometheus.io/scrape: "true"\n',
                          '        prometheus.io/scrape: "true"\n'
                          "        sidecar-patterns.io/app-container: metrics\n")
    by_annotation = pod_spec(named(injected(marked, "file-server"), "Deployment", "shop"))
    assert "volumeMounts" in by_annotation["containers"][1]
    with pytest.raises(InjectError, match=r"in.yaml: document 3 \(Deployment/shop\): the pod has "
                                          r"no container 'api' \(it has: web, metrics\)"):
        injected(shop, "file-server", container="api")


def test_skipped_and_host_network_objects_are_reported() -> None:
    original = (MANIFESTS / "workers.yaml").read_text()
    out, notes = run(original, "file-server")
    assert named(out, "ReplicaSet", "legacy-frontend") == \
        named(original, "ReplicaSet", "legacy-frontend")
    assert "hostNetwork" not in "".join(n for n in notes if "legacy" in n)
    assert notes == [
        "in.yaml: document 2 (DaemonSet/node-agent): warning: hostNetwork is true, so the "
        "sidecars' ports (8080) are ports of the node",
        'in.yaml: document 3 (ReplicaSet/legacy-frontend): skipped '
        '(sidecar-patterns.io/inject: "false")',
        "injected 2 of 3 pod-bearing object(s)",
    ]


def test_lists_are_injected_item_by_item() -> None:
    original = (MANIFESTS / "list.yaml").read_text()
    out = injected(original, "seed-loader", sets=SEED)
    listing = yaml.safe_load(out)
    kinds = [(i["kind"], i["metadata"]["name"]) for i in listing["items"]]
    assert kinds == [("ConfigMap", "debug-shell-seed-loader-config"), ("Pod", "debug-shell"),
                     ("Service", "debug-shell"), ("ConfigMap", "api-7d9f8-seed-loader-config"),
                     ("ReplicaSet", "api-7d9f8")]
    assert names(listing["items"][1]["spec"]["initContainers"]) == ["seed-loader"]
    assert undo(out) == original


def test_jobs_get_native_sidecars_or_a_refusal_that_says_why() -> None:
    batch = (MANIFESTS / "batch.yaml").read_text()
    out = injected(batch, "file-server", k8s_version="1.29")
    assert names(pod_spec(named(out, "CronJob", "nightly-report"))["initContainers"]) == \
        ["file-server"]
    with pytest.raises(InjectError) as caught:
        injected(batch, "file-server", k8s_version="1.27")
    message = str(caught.value)
    assert message.startswith("in.yaml: document 1 (Job/rebuild-index): a classic sidecar never "
                              "exits, so the Job would never complete")
    assert "1.29+" in message and "\n" not in message


def test_classic_sidecars_for_old_clusters_are_marked_for_the_pod_rules() -> None:
    original = (MANIFESTS / "shop.yaml").read_text()
    out = injected(original, "file-server", "seed-loader", sets=SEED, k8s_version="1.27")
    deployment = named(out, "Deployment", "shop")
    spec = pod_spec(deployment)
    assert names(spec["containers"]) == ["web", "metrics", "file-server", "seed-loader"]
    assert names(spec["initContainers"]) == ["seed-loader-init", "migrate", "warm-cache"]
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations[SIDECARS_ANNOTATION] == "file-server,seed-loader"
    assert check_documents(objects(out), "1.27") == []
    assert undo(out) == original


def test_new_values_update_in_place_and_other_sidecars_stay() -> None:
    original = (MANIFESTS / "shop.yaml").read_text()
    first = injected(original, "file-server", sets=("file-server.port=8081",))
    both = injected(first, "seed-loader", sets=SEED)
    spec = pod_spec(named(both, "Deployment", "shop"))
    assert names(spec["initContainers"])[:2] == ["file-server", "seed-loader"]
    assert spec["initContainers"][0]["ports"][0]["containerPort"] == 8081  # kept its value
    changed = injected(both, "file-server", sets=("file-server.port=9000",))
    spec = pod_spec(named(changed, "Deployment", "shop"))
    assert names(spec["initContainers"]) == ["file-server", "seed-loader", "migrate",
                                             "warm-cache"]
    assert spec["initContainers"][0]["ports"][0]["containerPort"] == 9000
    assert injected(changed, "file-server", sets=("file-server.port=9000",)) == changed
    assert undo(changed) == original


def pod(*containers: dict[str, Any], volumes: list[dict[str, Any]] | None = None,
        annotations: dict[str, str] | None = None) -> str:
    meta: dict[str, Any] = {"name": "web"}
    if annotations:
        meta["annotations"] = annotations
    spec: dict[str, Any] = {"containers": list(containers)}
    if volumes:
        spec["volumes"] = volumes
    return dump_documents([{"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec}])


APP = {"name": "app", "image": "nginx:1.27"}


@pytest.mark.parametrize(("text", "message"), [
    (pod(APP, {"name": "file-server", "image": "example.org/fs:1"}),
     "document 1 (Pod/web): spec.containers[1].name: the pod already has a container named "
     "'file-server' that pattern inject did not add (name the sidecar otherwise with --with "
     "OTHER=file-server)"),
    (pod(APP, volumes=[{"name": "file-server-share", "emptyDir": {}}]),
     "document 1 (Pod/web): volume name 'file-server-share' is already used by the pod: bind "
     "it with --volume file-server.share=VOLUME or rename the sidecar"),
    (pod({**APP, "ports": [{"containerPort": 8080}]}),
     "document 1 (Pod/web): spec.containers[0].ports[0].containerPort: port 8080 is also the "
     "port of sidecar 'file-server'"),
    (pod(APP, {"name": "files", "image": "localhost/busybox:1.36"}),
     "document 1 (Pod/web): spec.containers[1].image: container 'files' already runs "
     "file-server's image; pattern inject did not add it"),
    (pod(APP, annotations={"sidecar-patterns.io/patterns": "file-server=file-server@0.1.0"}),
     "document 1 (Pod/web): metadata.annotations[sidecar-patterns.io/patterns]: the pod "
     "already has a file-server sidecar that pattern inject did not add"),
])
def test_conflicts_name_the_document_object_and_field(text: str, message: str) -> None:
    with pytest.raises(InjectError) as caught:
        injected(text, "file-server")
    assert str(caught.value).startswith(f"in.yaml: {message}")


def test_a_volume_the_app_mounts_at_the_path_is_shared_and_left_alone_by_uninject() -> None:
    text = pod({**APP, "volumeMounts": [{"name": "d", "mountPath": "/srv/share", "subPath": "s"}]},
               volumes=[{"name": "d", "emptyDir": {}}])
    out, notes = run(text, "file-server")
    spec = pod_spec(objects(out)[0])
    assert [v["name"] for v in spec["volumes"]] == ["d"]
    mounts = spec["initContainers"][0]["volumeMounts"]
    assert {"name": "d", "mountPath": "/share", "subPath": "s"} in mounts
    assert spec["containers"][0]["volumeMounts"] == [
        {"name": "d", "mountPath": "/srv/share", "subPath": "s"}]
    assert any("shares volume 'd', which the app already mounts at /srv/share" in n
               for n in notes)
    assert undo(out) == text


def test_a_volume_bound_by_flag_is_shared() -> None:
    text = pod({**APP, "volumeMounts": [{"name": "d", "mountPath": "/var/lib/data"}]},
               volumes=[{"name": "d", "emptyDir": {}}])
    out = injected(text, "file-server", volumes=("file-server.share=d",))
    spec = pod_spec(objects(out)[0])
    assert [v["name"] for v in spec["volumes"]] == ["d"]
    assert {"name": "d", "mountPath": "/share"} in spec["initContainers"][0]["volumeMounts"]
    assert spec["containers"][0]["volumeMounts"] == [{"name": "d", "mountPath": "/var/lib/data"}]
    again = injected(out, "seed-loader", sets=SEED)  # the binding is kept on re-injection
    assert next(v["name"] for v in pod_spec(objects(again)[-1])["volumes"]) == "d"
    assert undo(out) == text


def test_a_renamed_sidecar_avoids_a_name_conflict() -> None:
    text = pod(APP, {"name": "file-server", "image": "example.org/fs:1"})
    out = injected(text, "files=file-server", sets=("files.port=8090",))
    assert names(pod_spec(objects(out)[0])["initContainers"]) == ["files"]
    assert undo(out) == text


def test_an_object_of_the_same_name_is_a_conflict() -> None:
    config = dump_documents([{"apiVersion": "v1", "kind": "ConfigMap",
                              "metadata": {"name": "web-seed-loader-config"}}])
    with pytest.raises(InjectError, match="already has a ConfigMap named "
                                          "'web-seed-loader-config' that pattern inject did "
                                          "not add"):
        injected(config + "---\n" + pod(APP), "seed-loader", sets=SEED)


def test_a_generated_manifest_takes_another_pattern_and_gives_it_back() -> None:
    stack = Stack(name="shop", app={"image": "nginx:1.27"}, kind="Deployment",
                  sidecars=(SidecarRequest("file-server", "file-server"),))
    original = dump_documents(compose(stack, CATALOGUE, []))
    out = injected(original, "seed-loader", sets=SEED)
    annotations = named(out, "Deployment", "shop")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["sidecar-patterns.io/patterns"] == \
        "file-server=file-server@0.1.0,seed-loader=seed-loader@0.2.0"
    assert undo(out) == original


@pytest.mark.parametrize(("text", "message"), [
    ("kind: ConfigMap\n---\nkind: Pod\nspec: a: b\n",
     "in.yaml: document 2 (line 4): not valid YAML: mapping values are not allowed here"),
    ("kind: ConfigMap\n---\n# note\nmetadata: {}\n",
     "in.yaml: document 2 (line 2): not a Kubernetes object (it has no kind)"),
    ("---\n- 1\n", "in.yaml: document 1 (line 1): not a Kubernetes object"),
    ("kind: List\nitems:\n- {kind: Pod}\n- {a: 1}\n",
     "in.yaml: document 1 (line 1): items[1] has no kind"),
    ("a: 1\na: 2\n", "in.yaml: document 1 (line 2): not valid YAML"),
])
def test_unreadable_input_names_the_document_and_line(text: str, message: str) -> None:
    with pytest.raises(StreamError) as caught:
        injected(text, "file-server")
    assert str(caught.value).startswith(message)


def test_a_hand_edited_record_is_refused_not_guessed_at() -> None:
    out = injected(pod(APP), "file-server")
    broken = out.replace('{"sidecars"', '{"sidecar')
    with pytest.raises(InjectError, match=r"document 1 \(Pod/web\): annotation "
                                          r"sidecar-patterns.io/injected is not a record"):
        undo(broken)


def test_uninject_leaves_what_inject_did_not_touch() -> None:
    for path in FIXTURES:
        assert undo(path.read_text()) == path.read_text()


def test_kinds_of_other_api_groups_pass_through() -> None:
    text = "apiVersion: example.com/v1\nkind: Deployment\nmetadata: {name: x}\n" \
           "spec:\n  template:\n    spec:\n      containers: [{name: a, image: b}]\n"
    assert injected(text + "---\n" + pod(APP), "file-server").startswith(text + "---\n")
    with pytest.raises(PatternError, match=r"no pod-bearing object .* only: Deployment"):
        injected(text, "file-server")  # nothing to inject is an error, not "0 of 0"


def test_usage_mistakes_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="--with"):
        injected(pod(APP))
    with pytest.raises(UsageError, match="no sidecar named 'seed-loader'"):
        injected(pod(APP), "file-server", sets=("seed-loader.seed=x",))
    with pytest.raises(PatternError, match="unknown pattern 'nope'"):
        injected(pod(APP), "nope")


@pytest.mark.parametrize("text", [
    "apiVersion: v1\r\nkind: Pod\r\nmetadata:\r\n  name: c\r\nspec:\r\n  containers:\r\n"
    "  - name: a\r\n    image: x:1\r\n",
    "apiVersion: v1\nkind: Pod\nmetadata: {name: c}\nspec:\n  containers: [{name: a, image: x:1}]",
    "kind: Pod\napiVersion: v1\nmetadata: {name: c}\nspec:\n  containers:\n"
    "  - {name: a, image: x:1}\n...\n# after the end marker\n",
], ids=["crlf", "no-final-newline", "end-marker"])
def test_line_endings_and_end_markers_come_back_as_they_were(text: str) -> None:
    out = injected(text, "seed-loader", sets=SEED)
    assert undo(out) == text
    assert injected(out, "seed-loader", sets=SEED) == out


def test_two_workloads_that_would_share_an_object_name_are_refused() -> None:
    job = dump_documents([{"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "web"},
                           "spec": {"template": {"spec": {"restartPolicy": "Never",
                                                          "containers": [APP]}}}}])
    with pytest.raises(InjectError) as caught:
        injected(pod(APP) + "---\n" + job, "seed-loader", sets=SEED)
    assert str(caught.value) == (
        "in.yaml: document 2 (Job/web): its sidecars need a ConfigMap named "
        "'web-seed-loader-config', as do those of in.yaml: document 1 (Pod/web): name the "
        "sidecar otherwise for one of them (--with NAME=PATTERN, one run each)")
    with pytest.raises(UsageError, match="already named 'file-server'"):
        add_requests((), ["file-server", "file-server=seed-loader"])
