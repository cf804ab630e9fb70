"""The ambassador patterns' images, built once per run (content-hash cached)."""

from __future__ import annotations

import pytest

from generator import images


@pytest.fixture(scope="session")
def ambassador_images() -> None:
    images.build(["tls-proxy", "redis-ambassador"], registry=None, tag=None, push=False,
                 quiet=True, say=lambda _: None)
