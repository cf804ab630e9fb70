"""The iaas-metadata suite: its image built once, and the six metadata peers as a pod."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from imds_pod import PEER_PORTS, Peers, peers_pod
from pods import running

from generator import images


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
