"""The backup suite: its image built once, a real restic REST server (`rclone serve restic`,
Debian 12) on the network `pattern run` pods use, and a real OpenSSH server for sftp
repositories: a pod of the ssh pattern (its image, as the access_pods suite runs it), both on
podman for the whole session; Docker pods reach them by IP."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import bk_support as bk
import pytest
from access_support import keygen
from pods import build_test_image, running, stack_documents
from support import wait_for

from generator import images

PEERS = Path(__file__).resolve().parents[2] / "peers" / "backup"  # the REST server's image


@pytest.fixture(scope="session")
def backup_image() -> str:
    """Built from images/backup as `pattern images build` does (no-op when current)."""
    (reference,) = images.build(["backup"], registry=None, tag=None, push=False,
                                quiet=True, say=print)
    return reference


@pytest.fixture(scope="session")
def mariadb_image() -> str:
    """The ssh example's MariaDB (Debian 12), built on podman (content-cached)."""
    build_test_image(bk.MARIADB_IMAGE, bk.CATALOGUE / "ssh" / "examples" / "mariadb")
    return bk.MARIADB_IMAGE


def _answers(container: str, port: int = 8000) -> bool:
    try:
        with socket.create_connection((bk.address_of(container), port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def rest_server() -> Iterator[str]:
    """The REST server's host name; its repositories live as long as the session."""
    bk.podman("build", "-q", "-t", bk.REST_IMAGE, str(PEERS))
    if bk.podman("network", "exists", bk.KUBE_NETWORK, check=False).returncode != 0:
        bk.podman("network", "create", bk.KUBE_NETWORK)
    name = bk.unique("restic-rest")
    bk.podman("run", "-d", "--rm", "--name", name, "--network", bk.KUBE_NETWORK, bk.REST_IMAGE)
    try:
        wait_for("the REST server", lambda: _answers(name), 60)
        yield name
    finally:
        bk.podman("rm", "-f", "-t", "0", name, check=False)


@pytest.fixture(scope="session")
def sftp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[bk.SftpServer]:
    images.build(["ssh"], registry=None, tag=None, push=False, quiet=True, say=print)
    work = tmp_path_factory.mktemp("bk-sftp")
    client, host = keygen(work / "id_backup"), keygen(work / "ssh_host_ed25519_key")
    name = bk.unique("bk-sftp")
    stack = {
        "apiVersion": "sidecar-patterns.io/v1alpha1", "kind": "Stack",
        "metadata": {"name": name},
        "spec": {
            "app": {"image": bk.BUSYBOX_IMAGE, "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", "mkdir -p /srv/repos; trap 'exit 0' TERM;"
                                " while true; do sleep 3600 & wait; done"],
                    "securityContext": {"runAsUser": 23456, "runAsGroup": 23456}},
            "sidecars": [{"pattern": "ssh", "values": {
                "user": "backup", "uid": 23456, "gid": 23456, "dataPath": "/srv/repos",
                "authorizedKeysSecret": f"{name}-keys", "hostKeysSecret": f"{name}-host"}}],
        },
    }
    docs = [bk.secret(f"{name}-keys", {"authorized_keys": client.with_suffix(".pub").read_text()}),
            bk.secret(f"{name}-host", {"ssh_host_ed25519_key": host.read_text()}),
            *stack_documents(stack, bk.CATALOGUE)]
    with running(docs) as (pod,):
        server = bk.SftpServer(pod.ip, 2222, "backup", client.read_text(),
                            host.with_suffix(".pub").read_text())
        yield server
