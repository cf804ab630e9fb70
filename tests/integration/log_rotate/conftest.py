"""The log-rotate suite: its image built once. The log-collector image and the central
servers (rsyslog, the HTTP sink) come from tests/peers/logs/log_peers.py, the one set the
log-collector suite uses too."""

from __future__ import annotations

import pytest

from generator import images


@pytest.fixture(scope="session")
def lr_image() -> str:
    """Built from images/log-rotate as `pattern images build` does (no-op when current)."""
    (reference,) = images.build(["log-rotate"], registry=None, tag=None, push=False,
                                quiet=True, say=print)
    return reference
