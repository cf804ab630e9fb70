"""Which container engine: `--runtime auto|podman|docker`, or SIDECAR_PATTERNS_RUNTIME.

`auto` takes the first engine that answers, podman before docker: podman is the engine this
project's images are built with first (Docker 20.10's classic builder lacks named build
contexts), so on a machine with both nothing needs copying. A pod started by `pattern run`
records its engine; status, logs and down use that one whatever is chosen now.
"""

from __future__ import annotations

import os

from ..errors import RuntimeUnavailable, UsageError
from .docker import Docker
from .podman import Podman
from .runtime import Runtime

RUNTIME_ENV = "SIDECAR_PATTERNS_RUNTIME"
CHOICES = ("auto", "podman", "docker")
AUTO_ORDER = ("podman", "docker")
HOW_TO_START = ("install and start one: `bash scripts/setup-runtime.sh` (as root on Debian 12: "
                "podman, and Docker Engine with dockerd started in the background)")


def engine(name: str) -> Runtime:
    """The engine called `name`, whether or not it answers."""
    if name == "podman":
        return Podman()
    if name == "docker":
        return Docker()
    raise UsageError(f"--runtime {name!r}: choose one of {', '.join(CHOICES)}")


def chosen_name(requested: str | None = None) -> str:
    name = requested or os.environ.get(RUNTIME_ENV) or "auto"
    if name not in CHOICES:
        source = "--runtime" if requested else RUNTIME_ENV
        raise UsageError(f"{source} {name!r}: choose one of {', '.join(CHOICES)}")
    return name


def choose(requested: str | None = None) -> Runtime:
    """The engine to use now; raises one line naming what was tried when none answers."""
    name = chosen_name(requested)
    tried = []
    for candidate in AUTO_ORDER if name == "auto" else (name,):
        runtime = engine(candidate)
        problem = runtime.problem()
        if problem is None:
            return runtime
        tried.append(f"{candidate}: {problem}")
    raise RuntimeUnavailable(f"no container engine answers (tried {'; '.join(tried)}); "
                             + HOW_TO_START)


def for_pod(recorded: str) -> Runtime:
    """The engine a recorded pod runs on (records from before engines were chosen: podman)."""
    return engine(recorded or "podman")

