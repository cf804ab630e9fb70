"""Where `pattern run` keeps what it started, so status, logs and down can find it."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .. import schema
from ..errors import PatternError, UsageError
from . import atomic
from .plan import ContainerPlan, PodPlan

STATE_ENV = "SIDECAR_PATTERNS_STATE"


def root() -> Path:
    configured = os.environ.get(STATE_ENV)
    if configured:
        return Path(configured)
    if os.geteuid() == 0:
        return Path("/run/sidecar-patterns")  # tmpfs, like podman's own runtime state
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    return Path(runtime, "sidecar-patterns") if runtime else Path.home() / ".cache/sidecar-patterns"


def check_pod_name(pod: str) -> str:
    """A pod name becomes a folder name here: it must be a DNS label (never `..`, a `/` or
    longer than a file name may be)."""
    if not schema.validate(pod, {"type": "string", "format": "dns-label"}, "pod"):
        return pod
    raise UsageError(f"pod name {pod[:80]!r}: not a DNS label (lowercase letters, digits and "
                     "'-', at most 63)")


def pod_dir(pod: str) -> Path:
    return root() / "pods" / check_pod_name(pod)


def save(plan: PodPlan) -> None:
    folder = pod_dir(plan.name)
    folder.mkdir(parents=True, exist_ok=True)
    record = {k: v for k, v in asdict(plan).items() if k != "files"}
    (folder / "plan.json").write_text(json.dumps(record, indent=1))


def write_files(plan: PodPlan, files_root: Path) -> list[str]:
    """ConfigMap/Secret volumes as host folders in the kubelet's layout (`..data` and a
    timestamped folder), with the modes Kubernetes would give; the volumes whose files changed
    (all of them on a first write)."""
    payloads = {}
    for volume in plan.projections:
        prefix = volume + "/"
        payloads[volume] = {k[len(prefix):]: v for k, v in plan.files.items()
                            if k.startswith(prefix)}
    return write_volumes(files_root / plan.name, payloads)


def write_volumes(base: Path, payloads: dict[str, atomic.Payload]) -> list[str]:
    """Each volume's folder under `base` made to show its payload (a new timestamped folder
    and one `..data` swap, as the kubelet updates a mounted ConfigMap); the changed ones."""
    return [volume for volume in sorted(payloads) if atomic.write(base / volume, payloads[volume])]


def load(pod: str) -> PodPlan | None:
    path = pod_dir(pod) / "plan.json"
    try:
        if not path.is_file():
            return None
        data: dict[str, Any] = json.loads(path.read_text())
        containers = [ContainerPlan(**c) for c in data.pop("containers")]
        data["host_ports"] = [tuple(p) for p in data["host_ports"]]
        return PodPlan(containers=containers, **data)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        raise PatternError(f"{path}: unreadable (written by another version of pattern?); "
                           f"remove the pod with podman and that folder") from None


def known_pods() -> list[str]:
    folder = root() / "pods"
    try:
        return sorted(p.name for p in folder.iterdir()
                      if not schema.validate(p.name, {"type": "string", "format": "dns-label"},
                                             "pod") and (p / "plan.json").is_file()) \
            if folder.is_dir() else []
    except OSError as error:
        raise PatternError(f"{folder}: {error.strerror or error}") from None


def forget(pod: str) -> None:
    """Remove the pod's folder, which is always one entry of the state directory's pods/."""
    folder = pod_dir(pod)
    pods = (root() / "pods").resolve()
    if folder.is_symlink() or folder.resolve().parent != pods:
        raise PatternError(f"{folder}: not a folder of {pods}; left as it is")
    shutil.rmtree(folder, ignore_errors=True)
