"""Integration fixtures: a working runtime (or a failure), and peers started with
pytest-docker through podman-compose."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from pods import require_runtime


@pytest.fixture(scope="session", autouse=True)
def _runtime() -> None:
    require_runtime()


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
