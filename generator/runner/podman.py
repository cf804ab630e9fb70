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
from .plan import PodPlan
from .runtime import POD_LABEL, Build, Completed, Say

# No systemd here: without this podman prints a healthcheck timer error on every play.
_ENV = {**os.environ, "DISABLE_HC_SYSTEMD": "true"}


class Podman:
    name = "podman"

    def binary(self) -> str:
        found = shutil.which("podman")
        if found is None:
            raise RuntimeUnavailable(
                "podman is not installed: run scripts/setup.sh (Debian 12, as root)")
        return found

    def run(self, *args: str, input_text: str | None = None, timeout: float = 120) -> Completed:
        try:
            proc = subprocess.run([self.binary(), *args], input=input_text, capture_output=True,
                                  text=True, env=_ENV, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Completed(124, "", f"Error: podman {args[0]} timed out after {timeout:.0f}s")
        return Completed(proc.returncode, proc.stdout, proc.stderr)

    def check(self, *args: str, input_text: str | None = None, timeout: float = 120) -> str:
        """Run podman; on failure raise with podman's reason in one line."""
        result = self.run(*args, input_text=input_text, timeout=timeout)
        if result.code != 0:
            raise RuntimeUnavailable(f"podman {args[0]} failed: {result.error_line}")
        return result.stdout

    # ------------------------------------------------------------ the engine

    def problem(self) -> str | None:
        if shutil.which("podman") is None:
            return "not installed"
        info = self.run("info", "--format", "{{.Host.OCIRuntime.Name}}", timeout=30)
        return None if info.code == 0 else info.error_line

    # ------------------------------------------------------------ images

    def image_present(self, reference: str) -> bool:
        return self.run("image", "exists", reference).code == 0

    def image_user(self, reference: str) -> str:
        return self.check("image", "inspect", "--format", "{{.Config.User}}", reference).strip()

    def image_label(self, reference: str, key: str) -> str | None:
        result = self.run("image", "inspect", "--format",
                          f"{{{{index .Config.Labels \"{key}\"}}}}", reference)
        return result.stdout.strip() or None if result.code == 0 else None

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

    def tag_image(self, source: str, target: str) -> None:
        self.check("tag", source, target)

    def push_image(self, reference: str) -> bool:
        return subprocess.run([self.binary(), "push", reference], check=False).returncode == 0

    def save_images(self, references: list[str], archive: Path) -> None:
        self.check("save", "-o", str(archive), *references, timeout=600)

    def load_images(self, archive: Path) -> None:
        self.check("load", "-i", str(archive), timeout=600)

    # ------------------------------------------------------------ pods

    def container_name(self, pod: str, container: str) -> str:
        return f"{pod}-{container}"

    def create_volume(self, name: str, pod: str) -> Path:
        self.run("volume", "rm", "-f", name)  # a leftover of an earlier run
        self.check("volume", "create", "--label", f"{POD_LABEL}={pod}", name)
        return Path(self.check("volume", "inspect", name, "--format", "{{.Mountpoint}}").strip())

    def remove_volumes(self, names: list[str]) -> None:
        if names:
            self.run("volume", "rm", "-f", *names)

    def create_pod(self, plan: PodPlan, folder: Path, say: Say) -> None:
        play = {**plan.play, "metadata": {**plan.play["metadata"]}}
        play["metadata"]["labels"] = {**(play["metadata"].get("labels") or {}),
                                      POD_LABEL: plan.name}
        play_file = folder / "play.yaml"
        play_file.write_text(dump_documents([play]))
        play_file.chmod(0o600)
        self.check("kube", "play", "--start=false", str(play_file))

    def _infra(self, pod: str) -> str:
        return self.check("pod", "inspect", pod, "--format", "{{.InfraContainerID}}").strip()

    def start_infra(self, pod: str) -> None:
        self.check("start", self._infra(pod))

    def pod_exists(self, pod: str) -> bool:
        return self.run("pod", "exists", pod).code == 0

    def infra_running(self, pod: str) -> bool:
        infra = self.run("pod", "inspect", pod, "--format", "{{.InfraContainerID}}")
        return infra.code == 0 and self.is_running(infra.stdout.strip())

    def pod_ip(self, pod: str, host_network: bool) -> str:
        if host_network:
            return "127.0.0.1"
        return self.check("inspect", self._infra(pod), "--format",
                          "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}").strip()

    def remove_pod(self, pod: str) -> None:
        if self.pod_exists(pod):
            # Stopping first makes removal fast (the cgroup teardown otherwise waits ~3 s).
            self.run("pod", "stop", "-t", "0", pod)
            self.run("pod", "rm", "-f", pod)

    def pods(self) -> list[str]:
        result = self.run("pod", "ps", "--filter", f"label={POD_LABEL}", "--format",
                          "{{.Name}}")
        return sorted(result.stdout.split()) if result.code == 0 else []

    # ------------------------------------------------------------ containers

    def start(self, name: str) -> None:
        self.check("start", name)

    def wait(self, name: str, timeout: float) -> str:
        return self.check("wait", name, timeout=timeout).strip()

    def stop(self, names: list[str], seconds: int) -> None:
        if names:
            self.run("stop", "-t", str(seconds), *names, timeout=seconds + 30)

    def is_running(self, name: str) -> bool:
        result = self.run("inspect", name, "--format", "{{.State.Running}}")
        return result.stdout.strip() == "true"

    def state(self, name: str) -> tuple[str, str] | None:
        result = self.run("inspect", name, "--format", "{{.State.Status}} {{.State.ExitCode}}")
        if result.code != 0:
            return None
        word, code = result.stdout.split()
        return word, code

    def exec(self, name: str, command: list[str], timeout: float) -> Completed:
        return self.run("exec", name, *command, timeout=timeout)

    def logs(self, name: str, tail: int | None = None) -> Completed:
        return self.run("logs", *(["--tail", str(tail)] if tail else []), name)

    def stream_logs(self, name: str, *, follow: bool, tail: int | None) -> int:
        args = ["logs", *(["-f"] if follow else []), *(["--tail", str(tail)] if tail else []),
                name]
        return subprocess.run([self.binary(), *args], check=False, env=_ENV).returncode
