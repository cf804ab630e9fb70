"""The KRM function image (images/krm, entrypoint `pattern krm`) as users run it: the real
`kubectl kustomize --enable-alpha-plugins` runs it as a container transformer on Docker and
renders what `pattern inject` writes for the same input; a bad functionConfig is an error
result, its line on kustomize's stderr and a non-zero exit.

A `docker` first on PATH records what kustomize asks of Docker (the arguments, the ResourceList
it writes, the function's answer) and hands everything to the real one."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pods import ensure_images, require_runtime
from support import CATALOGUE, run_pattern

from generator.krm import RESOURCE_LISTS
from generator.runner import engines

pytestmark = pytest.mark.integration

KUBECTL = shutil.which("kubectl")
IMAGE_NAME = "krm"
COMMENT = "# the user's comment"

DEPLOYMENT = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: shop  {COMMENT}
spec:
  selector: {{matchLabels: {{app: shop}}}}
  template:
    metadata: {{labels: {{app: shop}}}}
    spec:
      containers:
      - name: web
        image: busybox:1.36
        volumeMounts: [{{name: logs, mountPath: /var/log/app}}]
      volumes: [{{name: logs, emptyDir: {{}}}}]
"""
OTHERS = """\
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers:
      - name: db
        image: busybox:1.36
---
apiVersion: v1
kind: Service
metadata:
  name: shop
spec:
  selector: {app: shop}
  ports: [{port: 80}]
"""
SIDECARS = [{"pattern": "log-collector",
             "values": {"files": [{"glob": "app.log", "level": "info"}]}}]


@pytest.fixture(scope="module")
def image() -> str:
    """The function image, built by `pattern images build` and present in Docker."""
    docker = require_runtime("docker")
    (reference,) = ensure_images([IMAGE_NAME], docker)
    return reference


def function_config(reference: str, spec: dict[str, Any]) -> dict[str, Any]:
    function = f"container:\n  image: {reference}\n  network: false\n"
    return {"apiVersion": "sidecar-patterns.io/v1alpha1", "kind": "Inject",
            "metadata": {"name": "logs",
                         "annotations": {"config.kubernetes.io/function": function}},
            "spec": spec}


def recording_docker(folder: Path) -> Path:
    """A `docker` that keeps its arguments, stdin and stdout in `folder`, then runs the real
    one; returns the folder to put first on PATH."""
    real = shutil.which("docker")
    assert real is not None, "docker is needed (scripts/setup-runtime.sh)"
    shim = folder / "bin"
    shim.mkdir()
    (shim / "docker").write_text(
        "#!/bin/bash\nset -o pipefail\n"
        f"printf '%s\\n' \"$@\" > {folder}/args\n"
        f"tee {folder}/in | {real} \"$@\" | tee {folder}/out\n")
    (shim / "docker").chmod(0o755)
    return shim


def kustomize(folder: Path, config: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """`kubectl kustomize --enable-alpha-plugins` of the user's kustomization with the
    function as its transformer."""
    assert KUBECTL is not None, "kubectl is needed: install kubectl 1.32+"
    (folder / "deployment.yaml").write_text(DEPLOYMENT)
    (folder / "others.yaml").write_text(OTHERS)
    (folder / "inject.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    (folder / "kustomization.yaml").write_text(yaml.safe_dump({
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "resources": ["deployment.yaml", "others.yaml"], "transformers": ["inject.yaml"]}))
    shim = recording_docker(folder)
    return subprocess.run([KUBECTL, "kustomize", "--enable-alpha-plugins", str(folder)],
                          capture_output=True, text=True, timeout=300, check=False,
                          env={"PATH": f"{shim}:/usr/local/bin:/usr/bin:/bin",
                               "HOME": str(folder)})


def by_key(text: str) -> dict[tuple[str, str], Any]:
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(text) if d}


def test_kustomize_with_the_function_renders_what_pattern_inject_writes(
        tmp_path: Path, image: str) -> None:
    target = {"kind": "Deployment", "name": "shop"}
    rendered = kustomize(tmp_path, function_config(image, {"sidecars": SIDECARS,
                                                           "target": target}))
    assert rendered.returncode == 0, rendered.stderr
    injected = run_pattern(
        "inject", "-f", str(tmp_path / "deployment.yaml"), "-f", str(tmp_path / "others.yaml"),
        "--with", "log-collector",
        "--set", 'log-collector.files=[{"glob": "app.log", "level": "info"}]',
        "--target", "Deployment/shop", catalogue=CATALOGUE)
    assert injected.code == 0, injected.stderr
    assert by_key(rendered.stdout) == by_key(injected.stdout)
    shop = by_key(rendered.stdout)[("Deployment", "shop")]["spec"]["template"]["spec"]
    assert "log-collector" in [c["name"] for c in shop.get("initContainers", [])
                               + shop["containers"]]

    # What kustomize asked of Docker: no network (`network: false`), a non-root user.
    args = (tmp_path / "args").read_text().splitlines()
    assert args[args.index("--network") + 1] == "none"
    assert args[args.index("--user") + 1] == "nobody"
    assert args[-1] == image
    # The ResourceList kustomize sent is one the function accepts, answered in kind.
    sent, answered = (yaml.safe_load((tmp_path / name).read_text()) for name in ("in", "out"))
    assert sent["apiVersion"] in RESOURCE_LISTS
    assert answered["apiVersion"] == sent["apiVersion"]
    # inject's notes, as info results (the volume the app already mounts is shared)
    assert {r["severity"] for r in answered["results"]} == {"info"}
    assert answered["results"][-1]["message"] == "injected 1 of 1 pod-bearing object(s)"
    assert "shares volume 'logs'" in answered["results"][0]["message"]
    # kustomize re-serialises its resources before a function sees them: the user's comment
    # is gone from what it sends (the function keeps the comments it gets, below).
    assert COMMENT not in (tmp_path / "in").read_text()


def test_a_bad_function_config_is_an_error_result_and_kustomize_fails(
        tmp_path: Path, image: str) -> None:
    rendered = kustomize(tmp_path, function_config(image, {"sidecars": [{"pattern": "nope"}]}))
    assert rendered.returncode != 0
    assert rendered.stdout == ""
    (result,) = yaml.safe_load((tmp_path / "out").read_text())["results"]
    assert result["severity"] == "error"
    assert result["message"] == "unknown pattern 'nope' (pattern list shows them)"
    assert f"error: {result['message']}" in rendered.stderr.splitlines()
    assert "Traceback" not in rendered.stderr


@pytest.mark.parametrize("api", RESOURCE_LISTS)
def test_the_image_answers_every_resource_list_version_and_keeps_comments(
        api: str, image: str) -> None:
    """The image on its own, as kpt or kustomize run it: no network, any uid, read-only."""
    items = "\n".join("  " + line for line in DEPLOYMENT.splitlines())
    config = function_config(image, {"sidecars": SIDECARS})
    text = (f"apiVersion: {api}\nkind: ResourceList\nitems:\n- {items.lstrip()}\n"
            + yaml.safe_dump({"functionConfig": config}))
    done = subprocess.run(
        [engines.engine("docker").binary(), "run", "--rm", "-i", "--network", "none",
         "--user", "54321:54321", "--read-only", image],
        input=text, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    answer = yaml.safe_load(done.stdout)
    assert answer["apiVersion"] == api
    assert COMMENT in done.stdout
    assert [(i["kind"], i["metadata"]["name"]) for i in answer["items"]] == [
        ("ConfigMap", "shop-log-collector-config"), ("Deployment", "shop")]


def test_the_image_checks_itself_with_pattern_version(image: str) -> None:
    done = subprocess.run([engines.engine("docker").binary(), "run", "--rm", "--network",
                           "none", "--entrypoint", "pattern", image, "--version"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("pattern ")
