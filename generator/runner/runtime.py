"""The runtime seam: what `pattern run/status/logs/down` and `pattern images build` need from a
container engine, and nothing more.

The orchestration (run.py), the probes and the image builder speak only to this interface;
`podman.py` and `docker.py` implement it, and they alone run an engine's command line. A pod
here is what Kubernetes means by one: containers sharing a network namespace (one IP,
`localhost` between them), IPC, optionally PIDs, and the pod's volumes.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .plan import PodPlan

POD_LABEL = "io.sidecar-patterns.pod"  # on every container and volume of a pod we started


@dataclass(frozen=True)
class Completed:
    """One engine command: exit code and both streams."""

    code: int
    stdout: str
    stderr: str

    @property
    def error_line(self) -> str:
        """The engine's own one-line reason, without its noise (syslog warnings, level=...)."""
        lines = [ln.strip() for ln in self.stderr.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith(("Error:", "Error response", "docker:"))]
        useful = errors or [ln for ln in lines if "syslog" not in ln] or ["no output"]
        return useful[-1]


@dataclass(frozen=True)
class Build:
    """One image build: a context folder with a Containerfile, and what to stamp on it."""

    context: Path
    tag: str
    build_args: dict[str, str]
    labels: dict[str, str]
    contexts: dict[str, Path]  # named build contexts (`COPY --from=NAME`)
    quiet: bool


class Runtime(Protocol):
    """A container engine as the runner uses it. Container names come from `container_name`;
    every call that can fail for a user-visible reason raises `RuntimeUnavailable` or
    `PatternError` with one line."""

    name: str

    # -- the engine itself
    def binary(self) -> str:
        """The engine's command (raises when it is not installed)."""
        ...
    def problem(self) -> str | None:
        """Why this engine cannot run containers here (None when it can)."""
        ...

    # -- images
    def image_present(self, reference: str) -> bool: ...
    def image_user(self, reference: str) -> str: ...
    def image_label(self, reference: str, key: str) -> str | None: ...
    def build_image(self, build: Build) -> Completed: ...
    def tag_image(self, source: str, target: str) -> None: ...
    def push_image(self, reference: str) -> bool: ...
    def save_images(self, references: list[str], archive: Path) -> None: ...
    def load_images(self, archive: Path) -> None: ...

    # -- pods
    def container_name(self, pod: str, container: str) -> str: ...
    def create_volume(self, name: str, pod: str) -> Path:
        """A fresh named volume of the pod (a leftover of that name is replaced); its path."""
        ...
    def remove_volumes(self, names: list[str]) -> None: ...
    def create_pod(self, plan: PodPlan, folder: Path, say: Say) -> None:
        """Create the pod and its containers from `plan.play`, nothing started."""
        ...
    def infra(self, pod: str) -> str:
        """The pod's infra container (name or id), which holds its namespaces."""
        ...
    def start_infra(self, pod: str) -> None: ...
    def pod_exists(self, pod: str) -> bool: ...
    def infra_running(self, pod: str) -> bool: ...
    def pod_ip(self, pod: str, host_network: bool) -> str: ...
    def remove_pod(self, pod: str) -> None:
        """Remove the pod and every container of it, at once (no grace). Safe to repeat."""
        ...
    def pods(self) -> list[str]:
        """Names of the pods of ours this engine has (found by label)."""
        ...

    # -- containers
    def start(self, name: str) -> None: ...
    def wait(self, name: str, timeout: float) -> str: ...
    def stop(self, names: list[str], seconds: int) -> None: ...
    def kill(self, name: str, signal: str) -> None:
        """Send a signal (a name: KILL, TERM, HUP) to a container's main process."""
        ...
    def is_running(self, name: str) -> bool: ...
    def running(self, names: list[str]) -> set[str]:
        """Which of these containers run now (one engine call)."""
        ...
    def state(self, name: str) -> tuple[str, str] | None:
        """(status word, exit code), or None when there is no such container."""
        ...
    def exec(self, name: str, command: list[str], timeout: float) -> Completed: ...
    def logs(self, name: str, tail: int | None = None) -> Completed: ...
    def stream_logs(self, name: str, *, follow: bool, tail: int | None) -> int:
        """Logs to this process's stdout/stderr; the engine's exit code."""
        ...


class Say(Protocol):
    def __call__(self, line: str, /) -> None: ...


def copy_images(references: list[str], source: Runtime, target: Runtime) -> None:
    """Make images of one engine present in another (`save | load`, through a file).

    One image per archive: podman 4.3 writes a multi-image docker-archive that docker loads
    with every tag on the last image."""
    with tempfile.TemporaryDirectory(prefix="sidecar-patterns-images.") as folder:
        archive = Path(folder) / "image.tar"
        for reference in references:
            source.save_images([reference], archive)
            target.load_images(archive)
            archive.unlink()
