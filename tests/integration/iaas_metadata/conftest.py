"""The iaas-metadata suite: its image built once, the six metadata peers as a pod, and the
EC2 clients' image (cloud-init, cloud-utils, AWS CLI, boto3 from Debian)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import imds_pod
import pytest
from imds_pod import PEER_PORTS, Peers, peers_pod
from pods import build_test_image, running

from generator import images

EC2_CLIENTS_IMAGE = "localhost/sidecar-patterns-tests/ec2-clients:bookworm"


@pytest.fixture(scope="session")
def adapter_image() -> str:
    """Built from images/iaas-metadata as `pattern images build` does (no-op when current)."""
    (reference,) = images.build(["iaas-metadata"], registry=None, tag=None, push=False,
                                quiet=True, say=print)
    return reference


@pytest.fixture(scope="session")
def peers(adapter_image: str) -> Iterator[Peers]:
    with running([peers_pod()]) as (pod,):
        yield Peers(pod.ip)


@pytest.fixture
def calm(peers: Peers) -> Iterator[Peers]:
    """The peers with no faults and empty request logs, restored after the test."""
    for cloud in PEER_PORTS:
        peers.reset(cloud)
    yield peers
    for cloud in PEER_PORTS:
        peers.reset(cloud)


@pytest.fixture(scope="session")
def ec2_clients_image() -> str:
    """Built from tests/peers/imds/clients on the local Debian base (cached by podman)."""
    build_test_image(EC2_CLIENTS_IMAGE, Path(imds_pod.__file__).with_name("clients"))
    return EC2_CLIENTS_IMAGE
