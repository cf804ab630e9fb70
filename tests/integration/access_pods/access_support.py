"""Shared by the ssh and ftp pod suites: images, Secrets as Kubernetes documents, pods made
by the generator from the shipped patterns."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from pods import build_test_image, cli, stack_documents
from support import CATALOGUE

from generator import images

MARIADB_IMAGE = "localhost/sidecar-patterns-examples/mariadb:10.11-bookworm"


def build_images() -> None:
    """The companion images (content-hash cached) and the MariaDB example's app image."""
    images.build(["ssh", "ftp"], registry=None, tag=None, push=False, quiet=True,
                 say=lambda _: None)
    build_test_image(MARIADB_IMAGE, CATALOGUE / "ssh" / "examples" / "mariadb")


def secret(name: str, files: dict[str, str]) -> dict[str, Any]:
    """A Secret as `kubectl create secret generic --from-file` makes it (base64 data)."""
    data = {key: base64.b64encode(text.encode()).decode() for key, text in files.items()}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque",
            "data": data}


def example_stack(pattern: str, example: str) -> dict[str, Any]:
    path = CATALOGUE / pattern / "examples" / f"{example}.stack.yaml"
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def documents(stack: dict[str, Any], secrets: list[dict[str, Any]],
              sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """What a user applies: their Secrets next to the generated documents."""
    return [*secrets, *stack_documents(stack, CATALOGUE, sets)]


def keygen(path: Path, kind: str = "ed25519") -> Path:
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", "", "-f", str(path)],
                   check=True)
    return path


def podman_volume_rm(name: str) -> None:
    cli("volume", "rm", "-f", name)


@pytest.fixture(scope="session")
def access_images() -> None:
    build_images()


__all__ = ["access_images", "documents", "example_stack", "keygen", "podman_volume_rm",
           "secret"]
