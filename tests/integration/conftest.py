"""Integration fixtures: a working podman (or a failure), the `runtime` fixture, and peers
started with pytest-docker through podman-compose.

Tests that run pods on both engines take the `runtime` fixture: pytest runs them once per
engine (`[podman]`, `[docker]`), grouped by engine. An engine that cannot run containers makes
those tests fail, never skip (CI must not silently drop a runtime). To make a test run on both:

    def test_it(runtime: Runtime) -> None:
        ensure_images(["my-pattern"], runtime)          # companion images present there
        with running(documents, runtime=runtime) as (pod,):
            pod.exec(...)                                # exec/logs/state go to that engine

and `run_pattern("run", ..., "--runtime", runtime.name)` for the CLI. Peers the tests start
(compose, their own pods) stay on podman; a Docker pod reaches them by IP, not by podman's DNS
names (tests/README.md says more).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from log_peers import docker_compose_file, lc_image, peers, peers_out
from pods import require_runtime

from generator.runner import engines
from generator.runner.runtime import Runtime

# The log peers (tests/peers/logs/log_peers.py), registered here once for every suite below:
# the log-collector and log-rotate suites share one session instance of them.
LOG_PEERS = (docker_compose_file, lc_image, peers, peers_out)


@pytest.fixture(scope="session", autouse=True)
def _runtime() -> None:
    require_runtime()  # peers and test images run on podman whatever engine a test uses


@pytest.fixture(scope="session", params=engines.AUTO_ORDER)
def runtime(request: pytest.FixtureRequest) -> Runtime:
    """Each engine in turn: podman, docker."""
    return require_runtime(str(request.param))


# pytest-docker, adapted to podman 4.3 (see ../shared notes): `up --wait` hangs there, and a
# zero stop timeout keeps teardown under a second.
@pytest.fixture(scope="session")
def docker_compose_command() -> str:
    # The one installed beside this interpreter: the test command does not activate the venv.
    beside = Path(sys.executable).parent / "podman-compose"
    return str(beside) if beside.is_file() else "podman-compose"


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    return ["up --build -d"]


@pytest.fixture(scope="session")
def docker_cleanup() -> list[str]:
    return ["down -v -t 0"]
