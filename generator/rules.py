"""The pod rules: what the source document says a pod must get right, checked on any pod spec.

They hold for what we generate and are checked by `pattern validate` on hand-written manifests:
one port space, declared volumes, unique names, and safe, observable, bounded sidecars.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

SIDECARS_ANNOTATION = "sidecar-patterns.io/sidecars"
NATIVE_SIDECARS_SINCE = (1, 28)  # alpha behind a gate in 1.28, on by default from 1.29

Container = dict[str, Any]


def _containers(spec: dict[str, Any]) -> Iterator[tuple[str, Container]]:
    for field in ("initContainers", "containers"):
        for container in spec.get(field) or []:
            if isinstance(container, dict):
                yield field, container


def is_native_sidecar(field: str, container: Container) -> bool:
    return field == "initContainers" and container.get("restartPolicy") == "Always"


def classic_sidecar_names(annotations: dict[str, Any] | None) -> set[str]:
    text = (annotations or {}).get(SIDECARS_ANNOTATION, "")
    return {name.strip() for name in str(text).split(",") if name.strip()}


def sidecars_of(spec: dict[str, Any], annotations: dict[str, Any] | None) -> list[Container]:
    """Long-running helpers: native sidecars, and containers our annotation names."""
    classic = classic_sidecar_names(annotations)
    return [
        c for field, c in _containers(spec)
        if is_native_sidecar(field, c) or (field == "containers" and c.get("name") in classic)
    ]


def check_pod(
    spec: dict[str, Any],
    annotations: dict[str, Any] | None,
    *,
    k8s_version: tuple[int, int],
    in_job: bool,
    claim_templates: tuple[str, ...] = (),
) -> list[str]:
    """Every rule the pod spec breaks, as `field: problem` lines. `claim_templates` are the
    volumes a StatefulSet's volumeClaimTemplates add to each pod."""
    return [
        *_unique_names(spec),
        *_port_clashes(spec),
        *_volume_problems(spec, claim_templates),
        *_sidecar_problems(spec, annotations, k8s_version, in_job),
    ]


def _unique_names(spec: dict[str, Any]) -> list[str]:
    seen: set[str] = set()
    problems = []
    for _, container in _containers(spec):
        name = container.get("name")
        if name in seen:
            problems.append(f"container name {name!r} is used twice")
        seen.add(str(name))
    return problems


def _port_clashes(spec: dict[str, Any]) -> list[str]:
    """Containers that run at the same time share one port space (the pod's localhost)."""
    owners: dict[tuple[int, str], str] = {}
    problems = []
    for field, container in _containers(spec):
        if field == "initContainers" and not is_native_sidecar(field, container):
            continue  # runs alone, before the others
        for port in container.get("ports") or []:
            number = port.get("containerPort")
            key = (number, port.get("protocol", "TCP"))
            name = container.get("name")
            if key in owners and owners[key] != name:
                problems.append(
                    f"port {number}/{key[1]} is used by both {owners[key]!r} and {name!r} "
                    "(containers in a pod share one network namespace)"
                )
            owners.setdefault(key, str(name))
    return problems


def _volume_problems(spec: dict[str, Any], claim_templates: tuple[str, ...]) -> list[str]:
    declared: set[str] = set(claim_templates)
    problems = []
    for volume in spec.get("volumes") or []:
        name = volume.get("name")
        if name in declared:
            problems.append(f"volume name {name!r} is declared twice")
        declared.add(str(name))
    for _, container in _containers(spec):
        paths: dict[str, str] = {}
        for mount in container.get("volumeMounts") or []:
            name, path = mount.get("name"), mount.get("mountPath")
            if name not in declared:
                problems.append(
                    f"container {container.get('name')!r} mounts volume {name!r}, "
                    "which the pod does not declare"
                )
            if path in paths:
                problems.append(
                    f"container {container.get('name')!r} mounts both {paths[path]!r} and "
                    f"{name!r} at {path}"
                )
            paths[str(path)] = str(name)
    return problems


def _pinned(image: str) -> bool:
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    return ":" in last and not last.endswith(":latest")


def _sidecar_problems(
    spec: dict[str, Any],
    annotations: dict[str, Any] | None,
    k8s_version: tuple[int, int],
    in_job: bool,
) -> list[str]:
    problems = []
    pod_seccomp = (spec.get("securityContext") or {}).get("seccompProfile", {}).get("type")
    for field, container in _containers(spec):
        name = container.get("name")
        if is_native_sidecar(field, container) and k8s_version < NATIVE_SIDECARS_SINCE:
            problems.append(
                f"sidecar {name!r} is a native sidecar (initContainer with restartPolicy: Always), "
                f"which Kubernetes {k8s_version[0]}.{k8s_version[1]} does not support (1.28+)"
            )
    classic = classic_sidecar_names(annotations)
    if in_job and classic & {c.get("name") for c in spec.get("containers") or []}:
        problems.append(
            "classic sidecars " + ", ".join(sorted(classic)) + " never exit, so the Job would "
            "never complete: use native sidecars (Kubernetes 1.29+)"
        )
    for container in sidecars_of(spec, annotations):
        problems += _one_sidecar(container, pod_seccomp)
    return problems


def _one_sidecar(container: Container, pod_seccomp: str | None) -> list[str]:
    name = container.get("name")
    where = f"sidecar {name!r}"
    problems = []
    if not _pinned(str(container.get("image", ""))):
        problems.append(f"{where}: image {container.get('image')!r} must have a pinned tag")
    for probe in ("readinessProbe", "livenessProbe"):
        if probe not in container:
            problems.append(f"{where}: has no {probe}")
    resources = container.get("resources") or {}
    for kind in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in (resources.get(kind) or {}):
                problems.append(f"{where}: has no {resource} {kind[:-1]}")
    ctx = container.get("securityContext") or {}
    if ctx.get("allowPrivilegeEscalation") is not False:
        problems.append(f"{where}: must set allowPrivilegeEscalation: false")
    if ctx.get("readOnlyRootFilesystem") is not True:
        problems.append(f"{where}: must set readOnlyRootFilesystem: true")
    if "ALL" not in ((ctx.get("capabilities") or {}).get("drop") or []):
        problems.append(f"{where}: must drop ALL capabilities")
    seccomp = (ctx.get("seccompProfile") or {}).get("type", pod_seccomp)
    if seccomp not in {"RuntimeDefault", "Localhost"}:
        problems.append(f"{where}: must use the RuntimeDefault seccomp profile")
    if ctx.get("privileged"):
        problems.append(f"{where}: must not be privileged")
    return problems
