"""The log peers' fixtures, one definition for every suite that ships or rotates logs (the
log-collector and log-rotate suites): the log-collector image built once, and the central
servers (rsyslog and an HTTP/_bulk sink, compose.yaml here) started by pytest-docker with
podman-compose on the network pods use. One session instance of each, whichever suite asks
first.

Registered once by tests/integration/conftest.py, which imports these fixtures (pytest takes
`pytest_plugins` only from a top-level conftest, and tests/conftest.py is also copied into
checkouts that have no tests/peers: tests/unit/test_new_pattern.py).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import lc_support as lc
import pytest

from generator import images

KUBE_NETWORK = "podman-default-kube-network"


@pytest.fixture(scope="session")
def lc_image() -> str:
    """Built from images/log-collector as `pattern images build` does (no-op when current)."""
    (reference,) = images.build(["log-collector"], registry=None, tag=None, push=False,
                                quiet=True, say=print)
    return reference


@pytest.fixture(scope="session")
def peers_out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lc-peers")
    out.chmod(0o777)  # the servers run as their own users
    return out


@pytest.fixture(scope="session")
def docker_compose_file(peers_out: Path) -> str:
    # compose.yaml reads the output folder from here, and joins the network `pattern run` pods
    # are on (created by the first pod ever played; made here on a machine that played none).
    os.environ["LC_PEERS_OUT"] = str(peers_out)
    os.environ["LC_PEERS_ID"] = lc.PEERS_ID
    if lc.podman("network", "exists", KUBE_NETWORK, check=False).returncode != 0:
        lc.podman("network", "create", KUBE_NETWORK)
    return str(Path(lc.__file__).with_name("compose.yaml"))


def _container(project: str, service: str) -> str:
    names = lc.podman("ps", "-a", "--format", "{{.Names}}",
                      "--filter", f"label=com.docker.compose.project={project}",
                      "--filter", f"label=com.docker.compose.service={service}").stdout.split()
    assert len(names) == 1, f"compose service {service}: containers {names}"
    return names[0]


def _listening(container: str, port: int) -> bool:
    address = lc.podman("inspect", container, "--format",
                        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                        check=False).stdout.strip()
    if not address:
        return False
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def peers(docker_services: Any, docker_compose_project_name: str, peers_out: Path,
          lc_image: str) -> lc.Peers:
    containers = {s: _container(docker_compose_project_name, s) for s in ("rsyslog", "http-sink")}
    for service, port in (("rsyslog", lc.SYSLOG_PORT), ("http-sink", 23002)):
        docker_services.wait_until_responsive(
            check=lambda c=containers[service], p=port: _listening(c, p), timeout=60, pause=0.5)
    return lc.Peers(peers_out, containers)
