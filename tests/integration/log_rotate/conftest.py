"""The log-rotate suite: its image built once (per engine for the tests that take `runtime`).
The log-collector image and the central servers (rsyslog, the HTTP sink) come from
tests/peers/logs/log_peers.py, the one set the log-collector suite uses too."""

from __future__ import annotations

import lc_support as lc
import pytest
from pods import ensure_images, present_in

from generator import images
from generator.runner.runtime import Runtime


@pytest.fixture(scope="session")
def lr_image() -> str:
    """Built from images/log-rotate as `pattern images build` does (no-op when current)."""
    (reference,) = images.build(["log-rotate"], registry=None, tag=None, push=False,
                                quiet=True, say=print)
    return reference


@pytest.fixture(scope="session")
def lr_runtime(runtime: Runtime) -> Runtime:
    """`runtime` with the log-rotate image and the writer app's image present in it."""
    ensure_images(["log-rotate"], runtime)
    present_in(runtime, lc.PYTHON_IMAGE)
    return runtime
