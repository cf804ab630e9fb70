"""The log-rotate suite: its image built once, plus the log-collector suite's image and central
servers (rsyslog, the HTTP sink), taken from that suite's conftest so both run one set."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from generator import images

_LC_CONFTEST = Path(__file__).resolve().parents[1] / "log_collector" / "conftest.py"
_spec = importlib.util.spec_from_file_location("log_collector_fixtures", _LC_CONFTEST)
assert _spec is not None and _spec.loader is not None
_lc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_lc)

lc_image = _lc.lc_image
peers_out = _lc.peers_out
docker_compose_file = _lc.docker_compose_file
peers = _lc.peers


@pytest.fixture(scope="session")
def lr_image() -> str:
    """Built from images/log-rotate as `pattern images build` does (no-op when current)."""
    (reference,) = images.build(["log-rotate"], registry=None, tag=None, push=False,
                                quiet=True, say=print)
    return reference
