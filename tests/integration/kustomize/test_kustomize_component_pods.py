"""A kustomize Component from `pattern inject -o kustomize-component`, end to end: the user's
kustomization (their Deployment and Secrets) plus the component renders with the real
`kubectl kustomize`, the rendered manifests run on podman with `pattern run`'s code, real
OpenSSH `ssh` and `sftp` clients reach the app's data through the injected ssh sidecar, and
`pattern uninject` of the rendered result gives back the user's workload."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pods import running
from support import CATALOGUE, free_port, run_pattern

from generator import images

pytestmark = pytest.mark.integration

KUBECTL = shutil.which("kubectl")
BUSYBOX = "localhost/busybox:1.35-static"
UID, GID = 2345, 2346
APP_TEXT = "written by the app\n"
NAME = "kustomize-files"  # the branch in the pod name: no clash with other suites' pods


def keygen(path: Path) -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", str(path)],
                   check=True)
    return path


def secret(name: str, key: str, text: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque",
            "data": {key: base64.b64encode(text.encode()).decode()}}


def user_base(client_key: Path, host_key: Path) -> list[dict[str, Any]]:
    """The user's manifests: a Deployment whose app writes into its data volume, and the
    Secrets the ssh sidecar will read (kept next to the workload, as users do)."""
    app = {
        "name": "app", "image": BUSYBOX,
        "command": ["sh", "-c", f"printf '{APP_TEXT}' > /data/from-app.txt; "
                    "trap 'exit 0' TERM; sleep 3600 & wait"],
        "securityContext": {"runAsUser": UID, "runAsGroup": GID},
        "volumeMounts": [{"name": "data", "mountPath": "/data"}],
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": NAME},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": NAME}},
                 "template": {"metadata": {"labels": {"app": NAME}},
                              "spec": {"containers": [app],
                                       "volumes": [{"name": "data", "emptyDir": {}}]}}},
    }
    return [
        deployment,
        secret(f"{NAME}-keys", "authorized_keys", client_key.with_suffix(".pub").read_text()),
        secret(f"{NAME}-hostkeys", "ssh_host_ed25519_key", host_key.read_text()),
    ]


def kustomize(directory: Path) -> str:
    assert KUBECTL is not None, "kubectl is needed: install kubectl 1.32+"
    done = subprocess.run([KUBECTL, "kustomize", str(directory)], capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def test_a_rendered_component_runs_and_serves_ssh_and_sftp(tmp_path: Path) -> None:
    images.build(["ssh"], registry=None, tag=None, push=False, quiet=True, say=lambda _: None)
    client, host = keygen(tmp_path / "id_client"), keygen(tmp_path / "host_key")
    base = tmp_path / "repo" / "base"
    base.mkdir(parents=True)
    (base / "app.yaml").write_text(yaml.safe_dump_all(user_base(client, host)))
    (base / "kustomization.yaml").write_text("resources: [app.yaml]\n")
    overlay = tmp_path / "repo" / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        "resources: [../base]\ncomponents: [../components/ssh]\n")
    made = run_pattern(
        "inject", "-f", str(base / "app.yaml"), "--target", f"Deployment/{NAME}",
        "--with", "ssh", "--set", f"ssh.uid={UID}", "--set", f"ssh.gid={GID}",
        "--set", f"ssh.authorizedKeysSecret={NAME}-keys",
        "--set", f"ssh.hostKeysSecret={NAME}-hostkeys",
        "-o", "kustomize-component", "--output-dir", str(tmp_path / "repo" / "components" / "ssh"),
        catalogue=CATALOGUE)
    assert made.code == 0, made.stderr
    assert "shares volume 'data'" in made.stderr  # the app's own volume, not a new one

    rendered_text = kustomize(overlay)
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(rendered_text)
    checked = run_pattern("validate", str(rendered))
    assert checked.code == 0, checked.stdout + checked.stderr
    documents = [d for d in yaml.safe_load_all(rendered_text) if d]

    port = free_port()
    host_line = host.with_suffix(".pub").read_text().split()
    known_hosts = tmp_path / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_line[0]} {host_line[1]}\n")
    options = ["-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes",
               "-o", "StrictHostKeyChecking=yes", "-o", f"UserKnownHostsFile={known_hosts}",
               "-o", "LogLevel=ERROR", "-i", str(client)]
    with running(documents, publish={2222: port}, timeout=180) as (pod,):
        shell = subprocess.run(["ssh", *options, "-p", str(port), "app@127.0.0.1",
                                "id -u; id -g; cat /data/from-app.txt"],
                               capture_output=True, text=True, timeout=60, check=False)
        assert shell.returncode == 0, shell.stderr
        assert shell.stdout == f"{UID}\n{GID}\n{APP_TEXT}"
        upload = tmp_path / "upload.txt"
        upload.write_text("sent over sftp\n")
        batch = tmp_path / "batch"
        batch.write_text(f"put {upload} uploaded.txt\nget from-app.txt {tmp_path / 'got.txt'}\n")
        sftp = subprocess.run(["sftp", *options, "-P", str(port), "-b", str(batch),
                               "app@127.0.0.1"], capture_output=True, text=True, timeout=60,
                              check=False)
        assert sftp.returncode == 0, sftp.stderr
        assert (tmp_path / "got.txt").read_text() == APP_TEXT
        seen = pod.exec("app", "sh", "-c", "cat /data/uploaded.txt; stat -c %u:%g "
                        "/data/uploaded.txt")
        assert seen.stdout == f"sent over sftp\n{UID}:{GID}\n"

    back = run_pattern("uninject", "-f", str(rendered))
    assert back.code == 0, back.stderr
    restored = {key(d): d for d in yaml.safe_load_all(back.stdout) if d}
    assert restored == {key(d): d for d in yaml.safe_load_all(kustomize(base)) if d}
