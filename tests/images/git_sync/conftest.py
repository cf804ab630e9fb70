"""Fixtures for the git-sync component tests: a real git daemon and the sidecar as a process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gitsync_testkit import GitDaemon, Sidecar, Upstream, running_sidecar
from support import free_port


@pytest.fixture
def port() -> int:
    return free_port()


@pytest.fixture
def upstream(tmp_path: Path) -> Upstream:
    repo = Upstream(tmp_path / "srv")
    repo.base.mkdir()
    repo.create()
    repo.commit_and_push()
    return repo


@pytest.fixture
def daemon(upstream: Upstream) -> Iterator[GitDaemon]:
    server = GitDaemon(upstream.base, free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def sidecar(tmp_path: Path, daemon: GitDaemon, port: int) -> Iterator[Sidecar]:
    with running_sidecar(tmp_path, daemon.url(), port) as running:
        yield running
