"""The backup suite: its image built once, and a real restic REST server (`rclone serve
restic`, Debian 12) on the network `pattern run` pods use, reached by its container name."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import wait_for

from generator import images

PEERS = Path(__file__).resolve().parents[2] / "peers" / "backup"
if str(PEERS) not in sys.path:
    sys.path.insert(0, str(PEERS))

import bk_support as bk  # noqa: E402


@pytest.fixture(scope="session")
def backup_image() -> str:
    """Built from images/backup as `pattern images build` does (no-op when current)."""
    (reference,) = images.build(["backup"], registry=None, tag=None, push=False,
                                quiet=True, say=print)
    return reference


def _answers(container: str) -> bool:
    address = bk.podman("inspect", container, "--format",
                        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                        check=False).stdout.strip()
    try:
        with socket.create_connection((address, 8000), timeout=1):
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
