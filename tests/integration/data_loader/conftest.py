"""Fixtures for the data-loader pod tests: the test-only sources image built once, and per
test a dataset folder on the host served by a peer pod (nginx, OpenSSH sftp, rclone webdav)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import dl_support as dl
import pytest
from dl_support import Sources
from pods import build_test_image, running


@pytest.fixture(scope="session")
def sources_image() -> None:
    build_test_image(dl.SOURCES_IMAGE, dl.PEER_DIR)


@pytest.fixture
def sources(sources_image: None) -> Iterator[Sources]:
    """Version 1 of the dataset, served three ways from a pod of its own (on podman)."""
    # Not under pytest's tmp_path: its 0700 parents keep the servers' non-root uid out.
    folder = Path(tempfile.mkdtemp(prefix="dl-dataset-", dir="/tmp"))
    os.chmod(folder, 0o755)
    dl.write_dataset(folder, 1)
    try:
        with running([dl.sources_pod(dl.unique("dlsrc"), folder)]) as (pod,):
            yield Sources(pod, folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
