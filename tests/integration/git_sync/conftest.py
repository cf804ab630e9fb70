"""Fixtures for the git-sync pod tests: images built once, a git server pod per test."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from gitsync_podkit import (
    EXAMPLE_APP,
    GITD_IMAGE,
    HERE,
    NODE_IMAGE,
    GitServer,
    git_server_pod,
    unique,
)
from gitsync_testkit import Upstream, git
from pods import build_test_image, running

from generator import images


@pytest.fixture(scope="session")
def gitsync_images() -> None:
    """The companion image (skipped when up to date) and the test-only node and git images."""
    images.build(["git-sync"], registry=None, tag=None, push=False, quiet=True, say=print)
    build_test_image(NODE_IMAGE, HERE / "node")
    build_test_image(GITD_IMAGE, HERE / "gitd")


@pytest.fixture
def git_server(tmp_path: Path, gitsync_images: None) -> Iterator[GitServer]:
    """A repository holding the example node.js app (page "version 1"), served from a pod."""
    upstream = Upstream(tmp_path / "srv")
    upstream.base.mkdir()
    upstream.create()
    shutil.copytree(EXAMPLE_APP, upstream.work, dirs_exist_ok=True)
    git("add", "-A", cwd=upstream.work)
    git("commit", "-q", "-m", "the example app", cwd=upstream.work)
    upstream.push()
    with running([git_server_pod(unique("gitd"), upstream.base)]) as (pod,):
        yield GitServer(upstream, pod)

