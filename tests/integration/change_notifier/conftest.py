"""The change-notifier suite: its image built once, and a CloudEvents receiver on the host's
address on the pods' network."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from receiver import Receiver, gateway

from generator import images


@pytest.fixture(scope="session")
def notifier_image() -> str:
    (reference,) = images.build(["change-notifier"], registry=None, tag=None, push=False,
                                quiet=True, say=print)
    return reference


@pytest.fixture
def receiver(notifier_image: str, request: pytest.FixtureRequest) -> Iterator[Receiver]:
    """On the host's address on the network of the test's engine (podman unless the test
    takes `runtime`)."""
    engine = request.getfixturevalue("runtime").name if "runtime" in request.fixturenames \
        else "podman"
    server = Receiver(gateway(engine))
    server.start()
    try:
        yield server
    finally:
        server.stop()
