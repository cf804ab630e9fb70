"""The config-reloader suite: its image and the apps' images (nginx, Prometheus from Debian),
built once per engine."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

PEERS = Path(__file__).resolve().parents[2] / "peers" / "reload"
if str(PEERS) not in sys.path:
    sys.path.insert(0, str(PEERS))

import reload_peers  # noqa: E402
from pods import ensure_images  # noqa: E402

from generator.runner.runtime import Runtime  # noqa: E402


@pytest.fixture(scope="session")
def reloader_images(runtime: Runtime) -> Runtime:
    """The config-reloader image and the apps' images, present in `runtime`."""
    ensure_images(["config-reloader"], runtime)
    reload_peers.build_images(runtime.name)
    return runtime
