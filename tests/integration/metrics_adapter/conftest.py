"""The metrics-adapter suite: its image and the peers' images built once, and one real
Prometheus server on the network `pattern run` pods use."""

from __future__ import annotations

from collections.abc import Iterator

import metrics_peers as mp
import pytest
from support import wait_for

from generator import images


@pytest.fixture(scope="session")
def adapter_image() -> str:
    """Built from images/metrics-adapter as `pattern images build` does (no-op when current)."""
    (reference,) = images.build(["metrics-adapter"], registry=None, tag=None, push=False,
                                quiet=True, say=print)
    mp.build_images()
    return reference


@pytest.fixture(scope="session")
def prometheus(adapter_image: str,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[mp.Prometheus]:
    server = mp.Prometheus.start(tmp_path_factory.mktemp("prometheus"))
    try:
        wait_for("Prometheus to be ready", server.ready, 60)
        yield server
    finally:
        server.stop()
