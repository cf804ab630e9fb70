"""How to start each image staged by images/_common/stage.py and tell it is healthy; shared by
test_staged_images.py and benchmarks/images_bench.py (start-to-ready, idle RSS)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

IMAGES = Path(__file__).resolve().parents[3] / "images"
# A throwaway public key: sshd starts only with a way to log in.
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJZApGzAF77DVzJ5JAAbihZYpAFYa5m/rRPerfazHQXU"


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]  # after the image's entrypoint
    health: tuple[str, ...]  # exec'd in the container; exit 0 = healthy
    options: tuple[str, ...] = ()  # extra `run` options (mounts)


CASES = {
    # /healthz answers 200 while the process serves, whether or not a cloud answers.
    "iaas-metadata": Case(("--provider", "aws", "--aws-endpoint", "http://127.0.0.1:9"),
                          ("python3", "-m", "iaas_metadata.probe", "/healthz")),
    # The image's default config; state on /tmp (the test runs it with a read-only root).
    "log-collector": Case(("--state-dir", "/tmp"), ("log-collector-health", "--state-dir", "/tmp")),
    "ssh": Case(("--data-dir", "/tmp", "--authorized-keys", SSH_KEY),
                ("ssh-sidecar", "healthcheck")),
}


def staged() -> list[str]:
    """Images whose Containerfile stages onto an empty base with stage.py."""
    return sorted(p.parent.name for p in IMAGES.glob("*/Containerfile")
                  if "stage.py" in p.read_text() and "FROM scratch" in p.read_text())
