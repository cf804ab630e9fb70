"""The integration harness: generate pods from a catalogue, run them with the same code as
`pattern run` on a chosen engine, look inside them, and always clean up.

This is the one runtime wrapper the tests use: `RunningPod` (exec, logs, state, kill and
start of a pod's containers through the runtime seam), `cli` (an engine's own command line,
for what the seam does not cover: peers, image inspection) and `build_test_image`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from generator import images
from generator.catalogue import Catalogue
from generator.compose import compose
from generator.runner import engines, state
from generator.runner.plan import PodPlan, Publish
from generator.runner.run import documents_to_plans, down, up
from generator.runner.runtime import Runtime, copy_images
from generator.stack import stack_from_dict
from generator.values import parse_assignment


def require_runtime(name: str = "podman") -> Runtime:
    """Integration tests fail, never skip, when the runtime is missing."""
    runtime = engines.engine(name)
    problem = runtime.problem()
    if problem is not None:
        pytest.fail(f"{name} cannot run containers ({problem}): run `bash scripts/setup.sh` "
                    "(the test command does)")
    return runtime


@dataclass
class RunningPod:
    plan: PodPlan
    runtime: Runtime
    log: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.plan.name

    @property
    def ip(self) -> str:
        return self.runtime.pod_ip(self.plan.name, self.plan.host_network)

    def container(self, name: str) -> str:
        return self.runtime.container_name(self.plan.name, name)

    def exec(self, container: str, *command: str, check: bool = True,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
        done = self.runtime.exec(self.container(container), list(command), timeout=timeout)
        if check and done.code != 0:
            raise AssertionError(f"exec {command} in {container} failed ({done.code}): "
                                 f"{done.stdout}{done.stderr}")
        return subprocess.CompletedProcess(command, done.code, done.stdout, done.stderr)

    def logs(self, container: str) -> str:
        done = self.runtime.logs(self.container(container))
        return done.stdout + done.stderr

    def running(self, container: str) -> bool:
        return self.runtime.is_running(self.container(container))

    def kill(self, container: str, signal: str = "KILL") -> None:
        """Signal one container (KILL: it dies as in a crash or an OOM kill)."""
        self.runtime.kill(self.container(container), signal)

    def start(self, container: str) -> None:
        """Start one stopped container of the running pod again (a kubelet restart)."""
        self.runtime.start(self.container(container))


def cli(*args: str, runtime: str = "podman", check: bool = False,
        timeout: float = 120, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The engine's own command line (`runtime` is podman or docker), `stdin` its input."""
    proc = subprocess.run([engines.engine(runtime).binary(), *args], capture_output=True,
                          text=True, timeout=timeout, check=False, input=stdin)
    if check and proc.returncode != 0:
        raise AssertionError(f"{runtime} {' '.join(args)} failed ({proc.returncode}): "
                             f"{proc.stderr[-2000:]}")
    return proc


def remove_container(name: str, runtime: str = "podman") -> None:
    """Remove a container at once, running or not: podman's `rm -f` stops it with the stop
    timeout unless `-t 0`; docker's kills it and knows no `-t` (with one, it removes nothing)."""
    cli("rm", "-f", *(["-t", "0"] if runtime == "podman" else []), name, runtime=runtime)


def build_test_image(tag: str, folder: Path, runtime: str = "podman") -> None:
    """A test-only image (peers, app stand-ins), built with podman and, for docker, copied
    there (the project's images move between engines the same way)."""
    cli("build", "--pull=never", "-q", "-t", tag, str(folder), check=True, timeout=900)
    if runtime != "podman":
        copy_images([tag], engines.engine("podman"), engines.engine(runtime))


def ensure_images(names: list[str], runtime: Runtime) -> list[str]:
    """The project's images (`pattern images build` for that engine; cached)."""
    return images.build(names, registry=None, tag=None, push=False, quiet=True,
                        say=lambda _: None, runtime=runtime.name)


def present_in(runtime: Runtime, *tags: str) -> None:
    """Test images built on podman (`build_test_image`), copied to `runtime` when missing."""
    missing = [t for t in tags if not runtime.image_present(t)]
    if missing:
        copy_images(missing, engines.engine("podman"), runtime)


def assert_nothing_left(runtime: Runtime, pod: str) -> None:
    """No container or volume of the pod is left on its engine."""
    assert not runtime.pod_exists(pod), f"pod {pod} still exists on {runtime.name}"
    names = cli("ps", "-a", "--format", "{{.Names}}", runtime=runtime.name).stdout.split()
    volumes = cli("volume", "ls", "-q", runtime=runtime.name).stdout.split()
    left = [n for n in names + volumes if n.startswith((f"{pod}-", f"{pod}_"))]
    assert not left, f"left on {runtime.name}: {left}"


def stack_documents(stack: dict[str, Any], catalogue: Path,
                    sets: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return compose(stack_from_dict(stack, "test stack"), Catalogue(catalogue),
                   [parse_assignment(s) for s in sets])


@contextmanager
def running(documents: list[dict[str, Any]], *, publish: Publish | None = None,
            timeout: float = 120, grace: int | None = 0,
            runtime: Runtime | None = None) -> Iterator[list[RunningPod]]:
    """Run the documents' pods until the block ends; they are removed even if it fails."""
    plans = documents_to_plans(documents, publish or {})
    log: list[str] = []
    engine = up(plans, wait=True, timeout=timeout, replace=True, say=log.append,
                runtime=runtime or engines.engine("podman"))
    pods = [RunningPod(plan, engine, log) for plan in plans]
    try:
        yield pods
    finally:
        for plan in plans:
            if state.load(plan.name) is not None:
                down(plan.name, grace=grace)
