"""The change-notifier suite: its image built once, and a CloudEvents receiver on the host's
address on the pods' network."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from generator import images

PEERS = Path(__file__).resolve().parents[2] / "peers" / "events"
if str(PEERS) not in sys.path:
    sys.path.insert(0, str(PEERS))

from receiver import Receiver, gateway  # noqa: E402


@pytest.fixture(scope="session")
def notifier_image() -> str:
    (reference,) = images.build(["change-notifier"], registry=None, tag=None, push=False,
                                quiet=True, say=print)
    return reference


@pytest.fixture
def receiver(notifier_image: str) -> Iterator[Receiver]:
    server = Receiver(gateway())
    server.start()
    try:
        yield server
    finally:
        server.stop()
