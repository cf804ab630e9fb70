"""The config-reloader suite: its image and the apps' images (nginx, Prometheus from Debian),
built once per engine."""

from __future__ import annotations

import pytest
import reload_peers
from pods import ensure_images

from generator.runner.runtime import Runtime


@pytest.fixture(scope="session")
def reloader_images(runtime: Runtime) -> Runtime:
    """The config-reloader image and the apps' images, present in `runtime`."""
    ensure_images(["config-reloader"], runtime)
    reload_peers.build_images(runtime.name)
    return runtime
