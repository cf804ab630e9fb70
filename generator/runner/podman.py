"""The podman command line, as the runner uses it: one place that runs it and reads errors."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass

from ..errors import RuntimeUnavailable

# No systemd here: without this podman prints a healthcheck timer error on every play.
_ENV = {**os.environ, "DISABLE_HC_SYSTEMD": "true"}


@dataclass(frozen=True)
class Completed:
    code: int
    stdout: str
    stderr: str

    @property
    def error_line(self) -> str:
        """podman's own one-line reason, without its noise (syslog warnings, level=...)."""
        lines = [ln.strip() for ln in self.stderr.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("Error:")]
        useful = errors or [ln for ln in lines if "syslog" not in ln] or ["no output"]
        return useful[-1]


def binary() -> str:
    found = shutil.which("podman")
    if found is None:
        raise RuntimeUnavailable(
            "podman is not installed: run scripts/setup.sh (Debian 12, as root)")
    return found


def run(*args: str, input_text: str | None = None, timeout: float = 120) -> Completed:
    try:
        proc = subprocess.run([binary(), *args], input=input_text, capture_output=True, text=True,
                              env=_ENV, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Completed(124, "", f"Error: podman {args[0]} timed out after {timeout:.0f}s")
    return Completed(proc.returncode, proc.stdout, proc.stderr)


def check(*args: str, input_text: str | None = None, timeout: float = 120) -> str:
    """Run podman; on failure raise with podman's reason in one line."""
    result = run(*args, input_text=input_text, timeout=timeout)
    if result.code != 0:
        raise RuntimeUnavailable(f"podman {args[0]} failed: {result.error_line}")
    return result.stdout


def image_exists(reference: str) -> bool:
    return run("image", "exists", reference).code == 0


def container_name(pod: str, container: str) -> str:
    return f"{pod}-{container}"
