"""Podman 4.3 behind the runtime seam: the only module that runs the podman command line.

A pod is podman's own: `kube play --start=false` of the translated pod creates it with its
infra container, and the runner starts each container itself, in Kubernetes order.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from ..errors import RuntimeUnavailable
from ..yamlio import dump_documents
from .cli_engine import EngineCommandLine
from .plan import PodPlan
from .runtime import POD_LABEL, Build, Completed, Say

# No systemd here: without this podman prints a healthcheck timer error on every play.
_ENV = {**os.environ, "DISABLE_HC_SYSTEMD": "true"}


class Podman(EngineCommandLine):
    name = "podman"
    env = _ENV

    def __init__(self) -> None:
        self._infra_ids: dict[str, str] = {}  # pod -> infra container id (one pod inspect)

    def binary(self) -> str:
        found = shutil.which("podman")
        if found is None:
            raise RuntimeUnavailable(
                "podman is not installed: run scripts/setup.sh (Debian 12, as root)")
        return found

    # ------------------------------------------------------------ the engine

    def problem(self) -> str | None:
        if shutil.which("podman") is None:
            return "not installed"
        info = self.run("info", "--format", "{{.Host.OCIRuntime.Name}}", timeout=30)
        return None if info.code == 0 else info.error_line

    # ------------------------------------------------------------ images

    def image_present(self, reference: str) -> bool:
        return self.run("image", "exists", reference).code == 0

    def build_image(self, build: Build) -> Completed:
        command = [self.binary(), "build", "--pull=never"]  # no registry here; bases are local
        for name, folder in build.contexts.items():
            command += ["--build-context", f"{name}={folder}"]
        for key, value in build.build_args.items():
            command += ["--build-arg", f"{key}={value}"]
        for key, value in build.labels.items():
            command += ["--label", f"{key}={value}"]
        command += ["-t", build.tag, str(build.context)]
        proc = subprocess.run(command, capture_output=build.quiet, text=True, check=False,
                              env=_ENV)
        return Completed(proc.returncode, proc.stdout or "", proc.stderr or "")

    # ------------------------------------------------------------ pods

    def create_pod(self, plan: PodPlan, folder: Path, say: Say) -> None:
        self._infra_ids.pop(plan.name, None)
        play = {**plan.play, "metadata": {**plan.play["metadata"]}}
        play["metadata"]["labels"] = {**(play["metadata"].get("labels") or {}),
                                      POD_LABEL: plan.name}
        play_file = folder / "play.yaml"
        play_file.write_text(dump_documents([play]))
        play_file.chmod(0o600)
        self.check("kube", "play", "--start=false", str(play_file))

    def infra(self, pod: str) -> str:
        if pod not in self._infra_ids:
            self._infra_ids[pod] = self.check("pod", "inspect", pod, "--format",
                                              "{{.InfraContainerID}}").strip()
        return self._infra_ids[pod]

    def start_infra(self, pod: str) -> None:
        self.check("start", self.infra(pod))

    def pod_exists(self, pod: str) -> bool:
        return self.run("pod", "exists", pod).code == 0

    def infra_running(self, pod: str) -> bool:
        return self.pod_exists(pod) and self.is_running(self.infra(pod))

    def remove_pod(self, pod: str) -> None:
        self._infra_ids.pop(pod, None)
        # Stopping first makes removal fast (the cgroup teardown otherwise waits ~3 s).
        if self.run("pod", "stop", "-t", "0", pod).code == 0:
            self.run("pod", "rm", "-f", pod)

    def pods(self) -> list[str]:
        result = self.run("pod", "ps", "--filter", f"label={POD_LABEL}", "--format",
                          "{{.Name}}")
        return sorted(result.stdout.split()) if result.code == 0 else []
