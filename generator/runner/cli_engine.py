"""What podman's and Docker's command lines have in common, written once: running the engine,
its one-line errors, and the container, image and volume commands both spell the same way.
`podman.py` and `docker.py` add what differs (pods above all)."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ..errors import RuntimeUnavailable
from .runtime import POD_LABEL, Completed


class EngineCommandLine:
    name = ""
    env: dict[str, str] | None = None  # None: this process's environment

    def binary(self) -> str:
        raise NotImplementedError

    def run(self, *args: str, input_text: str | None = None, timeout: float = 120) -> Completed:
        try:
            proc = subprocess.run([self.binary(), *args], input=input_text, capture_output=True,
                                  text=True, env=self.env, timeout=timeout)
        except subprocess.TimeoutExpired:
            return Completed(124, "", f"Error: {self.name} {args[0]} timed out after "
                             f"{timeout:.0f}s")
        return Completed(proc.returncode, proc.stdout, proc.stderr)

    def check(self, *args: str, input_text: str | None = None, timeout: float = 120) -> str:
        """Run the engine; on failure raise with its reason in one line."""
        result = self.run(*args, input_text=input_text, timeout=timeout)
        if result.code != 0:
            raise RuntimeUnavailable(f"{self.name} {args[0]} failed: {result.error_line}")
        return result.stdout

    # ------------------------------------------------------------ images

    def image_user(self, reference: str) -> str:
        return self.check("image", "inspect", "--format", "{{.Config.User}}", reference).strip()

    def image_label(self, reference: str, key: str) -> str | None:
        result = self.run("image", "inspect", "--format",
                          f"{{{{index .Config.Labels \"{key}\"}}}}", reference)
        value = result.stdout.strip()
        return value if result.code == 0 and value and value != "<no value>" else None

    def tag_image(self, source: str, target: str) -> None:
        self.check("tag", source, target)

    def push_image(self, reference: str) -> bool:
        return subprocess.run([self.binary(), "push", reference], check=False,
                              env=self.env).returncode == 0

    def save_images(self, references: list[str], archive: Path) -> None:
        self.check("save", "-o", str(archive), *references, timeout=600)

    def load_images(self, archive: Path) -> None:
        self.check("load", "-i", str(archive), timeout=600)

    # ------------------------------------------------------------ volumes

    def create_volume(self, name: str, pod: str) -> Path:
        self.run("volume", "rm", "-f", name)  # a leftover of an earlier run
        self.check("volume", "create", "--label", f"{POD_LABEL}={pod}", name)
        return Path(self.check("volume", "inspect", name, "--format", "{{.Mountpoint}}").strip())

    def remove_volumes(self, names: list[str]) -> None:
        if names:
            self.run("volume", "rm", "-f", *names)

    # ------------------------------------------------------------ pods

    def infra(self, pod: str) -> str:
        raise NotImplementedError

    def pod_ip(self, pod: str, host_network: bool) -> str:
        if host_network:
            return "127.0.0.1"
        return self.check("inspect", self.infra(pod), "--format",
                          "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}").strip()

    # ------------------------------------------------------------ containers

    def container_name(self, pod: str, container: str) -> str:
        return f"{pod}-{container}"

    def start(self, name: str) -> None:
        self.check("start", name)

    def wait(self, name: str, timeout: float) -> str:
        return self.check("wait", name, timeout=timeout).strip()

    def stop(self, names: list[str], seconds: int) -> None:
        if names:
            self.run("stop", "-t", str(seconds), *names, timeout=seconds + 30)

    def kill(self, name: str, signal: str) -> None:
        self.check("kill", "--signal", signal, name)

    def is_running(self, name: str) -> bool:
        result = self.run("inspect", name, "--format", "{{.State.Running}}")
        return result.stdout.strip() == "true"

    def running(self, names: list[str]) -> set[str]:
        if not names:
            return set()
        result = self.run("inspect", *names, "--format", "{{.State.Running}}")
        states = result.stdout.split()
        # inspect prints one line per container it found, in order; a missing one fails it all.
        if len(states) != len(names):
            return {n for n in names if self.is_running(n)}
        return {n for n, word in zip(names, states, strict=True) if word == "true"}

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
        return subprocess.run([self.binary(), *args], check=False, env=self.env).returncode
