"""Fixtures for the iaas-metadata adapter: peers and adapter processes, always stopped."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import imds_harness as harness
import pytest

CLOUDS = ("aws", "aliyun", "gcp", "azure", "openstack", "qingcloud")


@pytest.fixture
def start_peer() -> Iterator[Callable[..., harness.Peer]]:
    started: list[harness.Peer] = []

    def start(cloud: str, *extra: str, **kw: Any) -> harness.Peer:
        peer = harness.start_peer(cloud, *extra, **kw)
        started.append(peer)
        return peer

    yield start
    for peer in started:
        harness.stop(peer.proc)


@pytest.fixture
def start_adapter() -> Iterator[Callable[..., harness.Adapter]]:
    started: list[harness.Adapter] = []

    def start(*args: str, peer: harness.Peer | None = None) -> harness.Adapter:
        adapter = harness.adapter_for(peer, *args) if peer else harness.start_adapter(*args)
        started.append(adapter)
        return adapter

    yield start
    for adapter in started:
        harness.stop(adapter.proc)
