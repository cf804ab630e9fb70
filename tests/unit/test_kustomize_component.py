"""`pattern inject -o kustomize-component`, proven with the real `kubectl kustomize` (offline):
a user's kustomization that lists the component renders the very documents `pattern inject`
writes for the same input, `pattern validate` accepts them and `pattern uninject` gives back
the user's workloads. Plus the one-line errors and the folder's output rules."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from support import CATALOGUE, FIXTURE_CATALOGUE, run_pattern

from generator.catalogue import Catalogue
from generator.commands import InjectRequest, inject_component, inject_manifests
from generator.component import MARKER, json_patch
from generator.errors import PatternError, UsageError
from generator.inject import Target, uninject
from generator.manifests import parse_stream
from generator.sidecars import SidecarFlags
from generator.validate import check_documents
from generator.yamlio import dump_documents, load_documents

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl missing (the proof needs its "
                                "kustomize): install kubectl 1.32+")

BASE = """\
# the user's workloads, as kept in git
apiVersion: apps/v1
kind: Deployment
metadata:
  name: files
  labels: {app: files}
spec:
  replicas: 2
  selector:
    matchLabels: {app: files}
  template:
    metadata:
      labels: {app: files}
      annotations: {team: storage}
    spec:
      initContainers:
      - name: prepare
        image: busybox:1.36
        command: [sh, -c, "true"]
      containers:
      - name: web
        image: busybox:1.36
        command: [sh, -c, "sleep 3600"]
        volumeMounts:
        - {name: cache, mountPath: /cache}
      - name: metrics
        image: busybox:1.36
      volumes:
      - {name: cache, emptyDir: {}}
---
apiVersion: v1
kind: Service
metadata: {name: files}
spec:
  selector: {app: files}
  ports: [{port: 80}]
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly, namespace: jobs}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - {name: report, image: busybox:1.36}
"""


def kustomize(directory: Path) -> list[dict[str, Any]]:
    assert KUBECTL is not None
    done = subprocess.run([KUBECTL, "kustomize", str(directory)], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    # As `pattern` reads it: kubectl writes YAML 1.2 (a plain `=` is a string, not 1.1's tag).
    loaded: list[dict[str, Any]] = load_documents(done.stdout, "kubectl kustomize")
    return loaded


def by_key(documents: list[dict[str, Any]]) -> dict[tuple[str, str, str], dict[str, Any]]:
    keyed = {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d
             for d in documents}
    assert len(keyed) == len(documents)
    return keyed


def user_kustomization(root: Path, base: str) -> Path:
    """A user's repo: base/ with their manifests, overlay/ listing base and the component."""
    (root / "base").mkdir()
    (root / "base" / "app.yaml").write_text(base, encoding="utf-8")
    (root / "base" / "kustomization.yaml").write_text("resources: [app.yaml]\n")
    (root / "overlay").mkdir()
    (root / "overlay" / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: [../base]\ncomponents: [../component]\n")
    return root / "overlay"


def request(files: list[str], with_: list[str], sets: list[str], target: str | None,
            catalogue: Path = CATALOGUE, **flags: Any) -> InjectRequest:
    return InjectRequest(files=files, sidecars=SidecarFlags(with_=tuple(with_),
                                                           set_=tuple(sets), **flags),
                         catalogue=catalogue, target=target)


CASES = [
    pytest.param(["ssh"], ["ssh.authorizedKeysSecret=keys", "ssh.dataPath=/cache"],
                 "Deployment/files", {}, id="ssh-shares-an-existing-volume"),
    pytest.param(["log-collector"], [], "Deployment/files", {"container": "metrics"},
                 id="log-collector-with-its-configmap"),
    pytest.param(["ssh"], ["ssh.authorizedKeysSecret=keys"], "Deployment/files",
                 {"k8s_version": "1.28"}, id="classic-sidecars"),
    pytest.param(["log-collector"], [], "CronJob/jobs/nightly", {}, id="namespaced-cronjob"),
]


@pytest.mark.parametrize(("with_", "sets", "target", "flags"), CASES)
def test_the_rendered_component_is_what_inject_writes(tmp_path: Path, with_: list[str],
                                                      sets: list[str], target: str,
                                                      flags: dict[str, Any]) -> None:
    overlay = user_kustomization(tmp_path, BASE)
    base = str(tmp_path / "base" / "app.yaml")
    inject_component(request([base], with_, sets, target, **flags), tmp_path / "component",
                     force=False)
    rendered = kustomize(overlay)
    text, _ = inject_manifests(request([base], with_, sets, target, **flags))
    assert by_key(rendered) == by_key([d for d in yaml.safe_load_all(text) if d])
    assert check_documents(rendered, flags.get("k8s_version", "1.33")) == []
    back = uninject([parse_stream(yaml.safe_dump_all(rendered), "rendered.yaml")]).text
    assert by_key([d for d in yaml.safe_load_all(back) if d]) == \
        by_key(kustomize(tmp_path / "base"))


def test_the_cli_writes_a_component_kubectl_renders_and_pattern_validates(
        tmp_path: Path) -> None:
    overlay = user_kustomization(tmp_path, BASE)
    done = run_pattern("inject", "-f", str(tmp_path / "base" / "app.yaml"), "--with",
                       "log-collector", "--target", "Deployment/files", "-o",
                       "kustomize-component", "--output-dir", str(tmp_path / "component"),
                       catalogue=CATALOGUE)
    assert done.code == 0, done.stderr
    assert done.stdout == ""
    head = yaml.safe_load((tmp_path / "component" / "kustomization.yaml").read_text())
    assert head["apiVersion"] == "kustomize.config.k8s.io/v1alpha1"
    assert head["kind"] == "Component"
    assert head["resources"] == ["configmap-files-log-collector-config.yaml"]
    assert head["patches"][0]["target"] == {"group": "apps", "version": "v1",
                                            "kind": "Deployment", "name": "files"}
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(yaml.safe_dump_all(kustomize(overlay)))
    checked = run_pattern("validate", str(rendered))
    assert checked.code == 0, checked.stdout + checked.stderr
    assert "4 object(s) valid" in checked.stderr


def test_a_base_that_changed_under_the_component_fails_to_build(tmp_path: Path) -> None:
    """The patch's inserts rely on the app container's place: a `test` op guards it."""
    overlay = user_kustomization(tmp_path, BASE)
    inject_component(request([str(tmp_path / "base" / "app.yaml")], ["ssh"],
                             ["ssh.authorizedKeysSecret=keys"], "Deployment/files"),
                     tmp_path / "component", force=False)
    (tmp_path / "base" / "app.yaml").write_text(BASE.replace("name: web", "name: site"))
    assert KUBECTL is not None
    done = subprocess.run([KUBECTL, "kustomize", str(overlay)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode != 0
    assert "/spec/template/spec/containers/0/name" in done.stderr


# ---------------------------------------------------------------- any workload

NAMES = st.sampled_from(["app", "web", "worker"])
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=10)


@st.composite
def workloads(draw: st.DrawFn) -> dict[str, Any]:
    kind = draw(st.sampled_from(["Pod", "Deployment", "StatefulSet", "DaemonSet", "Job"]))
    volumes = draw(st.lists(st.sampled_from(["data", "conf"]), unique=True))
    spec: dict[str, Any] = {"containers": [
        {"name": n, "image": "busybox:1.36",
         **({"volumeMounts": [{"name": v, "mountPath": f"/mnt/{v}"} for v in volumes]}
            if volumes and draw(st.booleans()) else {})}
        for n in draw(st.lists(NAMES, min_size=1, max_size=3, unique=True))]}
    if draw(st.booleans()):
        spec["initContainers"] = [{"name": "setup", "image": "busybox:1.36"}]
    if volumes:
        spec["volumes"] = [{"name": v, "emptyDir": {}} for v in volumes]
    if kind == "Job":
        spec["restartPolicy"] = "Never"
    meta: dict[str, Any] = {"name": "w"}
    if draw(st.booleans()):
        meta["namespace"] = "team"
    annotations = draw(st.dictionaries(st.sampled_from(["note", "owner"]), TEXT, max_size=2))
    template: dict[str, Any] = {"spec": spec}
    if annotations or draw(st.booleans()):
        template["metadata"] = {"labels": {"app": "w"},
                                **({"annotations": annotations} if annotations else {})}
    if kind == "Pod":
        return {"apiVersion": "v1", "kind": kind,
                "metadata": {**meta, **template.get("metadata", {})}, "spec": spec}
    api = "batch/v1" if kind == "Job" else "apps/v1"
    outer: dict[str, Any] = {"template": template}
    if kind == "StatefulSet":
        outer["serviceName"] = "w"
    if kind != "Job":
        outer["selector"] = {"matchLabels": {"app": "w"}}
        template.setdefault("metadata", {})["labels"] = {"app": "w"}
    return {"apiVersion": api, "kind": kind, "metadata": meta, "spec": outer}


# Each example runs kubectl: no shrinking (minutes on a busy machine), the example is printed.
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])
@given(workload=workloads(), seed=st.booleans(), port=st.integers(8000, 8999), banner=TEXT,
       version=st.sampled_from(["1.28", "1.33"]))
def test_for_any_workload_kustomize_renders_what_inject_writes(
        workload: dict[str, Any], seed: bool, port: int, banner: str, version: str) -> None:
    with_ = ["file-server", *(["seed-loader"] if seed else [])]
    sets = [f"file-server.port={port}", f"file-server.banner={banner}",
            *([f"seed-loader.seed={banner}!"] if seed else [])]
    if workload["kind"] == "Job":
        version = "1.33"  # classic sidecars would keep a Job from completing: refused
    namespace = workload["metadata"].get("namespace")
    target = "/".join([workload["kind"], *([namespace] if namespace else []), "w"])
    with tempfile.TemporaryDirectory() as work:
        root = Path(work)
        # Written as pattern writes YAML: PyYAML leaves a text such as 1e100 unquoted, which
        # YAML 1.2 readers (kubectl's kyaml, pattern) read as a number.
        overlay = user_kustomization(root, dump_documents([workload]))
        base = str(root / "base" / "app.yaml")
        flags = {"k8s_version": version}
        inject_component(request([base], with_, sets, target, FIXTURE_CATALOGUE, **flags),
                         root / "component", force=False)
        rendered = kustomize(overlay)
        text, _ = inject_manifests(request([base], with_, sets, target, FIXTURE_CATALOGUE,
                                           **flags))
        assert by_key(rendered) == by_key([d for d in yaml.safe_load_all(text) if d])
        back = uninject([parse_stream(yaml.safe_dump_all(rendered), "r.yaml")]).text
        assert [d for d in yaml.safe_load_all(back) if d] == [workload]


@given(before=st.recursive(st.none() | st.integers() | TEXT,
                           lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(TEXT, inner, max_size=3), max_leaves=10),
       after=st.recursive(st.none() | st.integers() | TEXT,
                          lambda inner: st.lists(inner, max_size=3)
                          | st.dictionaries(TEXT, inner, max_size=3), max_leaves=10))
def test_json_patch_paths_are_pointers_into_the_document(before: Any, after: Any) -> None:
    """Every operation's path starts at the root and escapes '~' and '/' in keys."""
    for op in json_patch({"x": before}, {"x": after}):
        assert op["path"].startswith("/x")
        assert op["op"] in {"add", "remove", "replace", "test"}
        parts = op["path"].split("/")[1:]
        assert all("/" not in p for p in parts)
        assert all(p.replace("~0", "").replace("~1", "").count("~") == 0 for p in parts)


# ---------------------------------------------------------------- errors, one line each

@given(st.text(max_size=40))
def test_any_target_text_parses_or_is_one_usage_error(text: str) -> None:
    try:
        target = Target.parse(text)
    except UsageError as error:
        assert "\n" not in str(error).replace(repr(text), "")
        assert str(error).startswith(f"--target {text!r}: ")
    else:
        assert str(target) == text


@pytest.mark.parametrize(("target", "message"), [
    ("files", "expected KIND/NAME or KIND/NAMESPACE/NAME"),
    ("Service/files", "'Service' is not a pod-bearing kind"),
    ("Deployment/Files", "'Files' is not a valid name"),
    ("Deployment/x/y/z", "expected KIND/NAME"),
    ("Deployment/shop", "--target Deployment/shop: not in the input (its pod-bearing objects: "
     "Deployment/files, CronJob/jobs/nightly)"),
    ("CronJob/other/nightly", "not in the input"),
])
def test_a_bad_target_is_one_line(tmp_path: Path, target: str, message: str) -> None:
    (tmp_path / "app.yaml").write_text(BASE)
    for mode in (["-o", "kustomize-component", "--output-dir", str(tmp_path / "c")], []):
        done = run_pattern("inject", "-f", str(tmp_path / "app.yaml"), "--with", "ssh",
                           "--target", target, *mode, catalogue=CATALOGUE)
        assert done.code != 0
        assert message in done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
    assert not (tmp_path / "c").exists()


def test_two_namespaces_need_the_namespace_in_the_target(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(BASE + "---\n" + BASE.split("---\n")[2].replace(
        "namespace: jobs", "namespace: ops"))
    with pytest.raises(PatternError, match=r"matches 2 objects \(CronJob/jobs/nightly, "
                       r"CronJob/ops/nightly\); name the namespace"):
        inject_manifests(request([str(tmp_path / "app.yaml")], ["log-collector"], [],
                                 "CronJob/nightly"))


def cli(tmp_path: Path, *extra: str) -> Any:
    return run_pattern("inject", "-f", str(tmp_path / "app.yaml"), "--with", "log-collector",
                       "--target", "Deployment/files", *extra, catalogue=CATALOGUE)


@pytest.mark.parametrize(("args", "message"), [
    (["-o", "kustomize-component"], "name the component's folder with --output-dir DIR"),
    (["-o", "kustomize-component", "--output-file", "x.yaml"],
     "-o kustomize-component writes a folder: give it with --output-dir"),
    (["--output-dir", "c"], "--output-dir is the folder of -o kustomize-component"),
])
def test_component_usage_errors(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "app.yaml").write_text(BASE)
    done = cli(tmp_path, *args)
    assert done.code == 2
    assert message in done.stderr
    assert done.stderr.count("\n") == 1


def test_the_component_needs_a_target(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(BASE)
    done = run_pattern("inject", "-f", str(tmp_path / "app.yaml"), "--with", "ssh", "-o",
                       "kustomize-component", "--output-dir", str(tmp_path / "c"),
                       catalogue=CATALOGUE)
    assert done.code == 2
    assert "name the workload with --target KIND/NAME" in done.stderr


def test_an_injected_base_is_refused(tmp_path: Path) -> None:
    (tmp_path / "base.yaml").write_text(BASE)
    injected, _ = inject_manifests(request([str(tmp_path / "base.yaml")], ["log-collector"], [],
                                           None))
    (tmp_path / "app.yaml").write_text(injected)
    done = cli(tmp_path, "-o", "kustomize-component", "--output-dir", str(tmp_path / "c"))
    assert done.code == 1
    assert "already injected; a component adds to the workload of the base" in done.stderr


# ---------------------------------------------------------------- the folder

def component(tmp_path: Path, *extra: str) -> Any:
    return cli(tmp_path, "-o", "kustomize-component", "--output-dir", str(tmp_path / "c"), *extra)


def test_a_folder_with_other_files_is_kept_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(BASE)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "kustomization.yaml").write_text("resources: [mine.yaml]\n")
    done = component(tmp_path)
    assert done.code == 1
    assert "exists and holds files pattern did not write; pass --force" in done.stderr
    assert (tmp_path / "c" / "kustomization.yaml").read_text() == "resources: [mine.yaml]\n"
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["kustomization.yaml"]
    forced = component(tmp_path, "--force")
    assert forced.code == 0, forced.stderr
    assert (tmp_path / "c" / "kustomization.yaml").read_text().startswith(MARKER + "\n")


def test_our_own_folder_is_rewritten_and_stale_files_removed(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(BASE)
    assert component(tmp_path).code == 0
    (tmp_path / "c" / "notes.txt").write_text("mine\n")
    assert (tmp_path / "c" / "configmap-files-log-collector-config.yaml").exists()
    done = run_pattern("inject", "-f", str(tmp_path / "app.yaml"), "--with", "ssh", "--set",
                       "ssh.authorizedKeysSecret=keys", "--target", "Deployment/files", "-o",
                       "kustomize-component", "--output-dir", str(tmp_path / "c"),
                       catalogue=CATALOGUE)
    assert done.code == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == [
        "kustomization.yaml", "notes.txt", "patch-deployment-files.yaml"]


def test_a_foreign_file_of_the_same_name_is_kept_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "app.yaml").write_text(BASE)
    assert component(tmp_path).code == 0
    patch = tmp_path / "c" / "patch-deployment-files.yaml"
    patch.write_text("# hand-made\n[]\n")
    done = component(tmp_path)
    assert done.code == 1
    assert "patch-deployment-files.yaml exists and was not written by pattern" in done.stderr
    assert patch.read_text() == "# hand-made\n[]\n"


@pytest.mark.parametrize("make", ["file", "symlink", "fifo", "symlink-inside"])
def test_non_regular_targets_are_refused_even_with_force(tmp_path: Path, make: str) -> None:
    (tmp_path / "app.yaml").write_text(BASE)
    out = tmp_path / "c"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    if make == "file":
        out.write_text("keep\n")
    elif make == "symlink":
        out.symlink_to(elsewhere)
    elif make == "fifo":
        os.mkfifo(out)
    else:
        assert component(tmp_path).code == 0
        (out / "kustomization.yaml").unlink()
        (out / "kustomization.yaml").symlink_to(elsewhere / "k.yaml")
    done = component(tmp_path, "--force")
    assert done.code == 2
    assert "never written through or replaced" in done.stderr
    assert list(elsewhere.iterdir()) == []


def test_the_input_folder_is_never_the_output(tmp_path: Path) -> None:
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "app.yaml").write_text(BASE)
    done = run_pattern("inject", "-f", str(tmp_path / "c"), "--with", "ssh", "--target",
                       "Deployment/files", "-o", "kustomize-component", "--output-dir",
                       str(tmp_path / "c"), "--force", catalogue=CATALOGUE)
    assert done.code == 2
    assert "holds the input" in done.stderr
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["app.yaml"]


def test_inject_target_injects_only_that_workload() -> None:
    sources = [parse_stream(BASE, "app.yaml")]
    from generator.inject import inject
    from generator.stack import options_from_flags

    options = options_from_flags(SidecarFlags(with_=("log-collector",)))
    result = inject(sources, options, Catalogue(CATALOGUE), Target.parse("CronJob/nightly"))
    kinds = [d["kind"] for d in yaml.safe_load_all(result.text) if d]
    assert kinds == ["Deployment", "Service", "ConfigMap", "CronJob"]
    assert "sidecar-patterns.io/injected" not in result.text.split("---\n")[0]
    assert result.notes[-1] == "injected 1 of 1 pod-bearing object(s)"
