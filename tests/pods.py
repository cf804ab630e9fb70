"""The integration harness: generate pods from a catalogue, run them with the same code as
`pattern run`, look inside them, and always clean up."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from generator.catalogue import Catalogue
from generator.compose import compose
from generator.runner import podman, state
from generator.runner.plan import PodPlan
from generator.runner.run import documents_to_plans, down, pod_ip, up
from generator.stack import stack_from_dict
from generator.values import parse_assignment


def require_runtime() -> None:
    """Integration tests fail, never skip, when the runtime is missing."""
    if shutil.which("podman") is None:
        pytest.fail("podman is missing: run `bash scripts/setup.sh` (the test command does)")
    info = podman.run("info", "--format", "{{.Host.OCIRuntime.Name}}", timeout=60)
    if info.code != 0:
        pytest.fail(f"podman cannot run containers: {info.error_line}")


@dataclass
class RunningPod:
    plan: PodPlan
    log: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def ip(self) -> str:
        return pod_ip(self.plan.name, self.plan.host_network)

    def container(self, name: str) -> str:
        return podman.container_name(self.plan.name, name)

    def exec(self, container: str, *command: str, check: bool = True,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(["podman", "exec", self.container(container), *command],
                              capture_output=True, text=True, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise AssertionError(f"exec {command} in {container} failed ({proc.returncode}): "
                                 f"{proc.stdout}{proc.stderr}")
        return proc

    def logs(self, container: str) -> str:
        proc = subprocess.run(["podman", "logs", self.container(container)], capture_output=True,
                              text=True, check=False)
        return proc.stdout + proc.stderr

    def running(self, container: str) -> bool:
        proc = subprocess.run(["podman", "inspect", self.container(container), "--format",
                               "{{.State.Running}}"], capture_output=True, text=True, check=False)
        return proc.stdout.strip() == "true"


def stack_documents(stack: dict[str, Any], catalogue: Path,
                    sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return compose(stack_from_dict(stack, "test stack"), Catalogue(catalogue),
                   [parse_assignment(s) for s in sets])


@contextmanager
def running(documents: list[dict[str, Any]], *, publish: dict[int, int] | None = None,
            timeout: float = 120, grace: int | None = 0) -> Iterator[list[RunningPod]]:
    """Run the documents' pods until the block ends; they are removed even if it fails."""
    plans = documents_to_plans(documents, publish or {})
    log: list[str] = []
    up(plans, wait=True, timeout=timeout, replace=True, say=log.append)
    pods = [RunningPod(plan, log) for plan in plans]
    try:
        yield pods
    finally:
        for plan in plans:
            if state.load(plan.name) is not None:
                down(plan.name, grace=grace)
