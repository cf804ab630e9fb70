"""Compose one pod from the app container and its sidecars, then wrap it in a workload.

Data flows one way: resolve every sidecar's values (all errors at once), render its fragments,
wire shared volumes, place sidecars (native or classic), check the pod rules, wrap.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from . import rules, workloads
from .catalogue import (
    TEMPLATE_CONTAINER,
    TEMPLATE_INIT,
    TEMPLATE_OBJECTS,
    Catalogue,
    Pattern,
    VolumeNeed,
)
from .errors import CatalogueError, ComposeError, InvalidValues, UsageError
from .render import RenderContext, render_yaml
from .shipped import DEFAULT_REGISTRY
from .stack import SidecarRequest, Stack, parse_k8s_version
from .values import Assignment, resolve

PATTERNS_ANNOTATION = "sidecar-patterns.io/patterns"
NATIVE_BY_DEFAULT_SINCE = (1, 29)

SIDECAR_SECURITY_DEFAULTS: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


@dataclass(frozen=True)
class Sidecar:
    """A sidecar instance with its pattern and final values."""

    request: SidecarRequest
    pattern: Pattern
    values: dict[str, Any]


def use_native_sidecars(stack: Stack) -> bool:
    version = parse_k8s_version(stack.k8s_version)
    if stack.sidecar_mode == "native":
        if version < rules.NATIVE_SIDECARS_SINCE:
            raise UsageError(
                f"native sidecars need Kubernetes 1.28 or later (1.29+ without a feature gate); "
                f"the target is {stack.k8s_version}: use --sidecar-mode classic"
            )
        return True
    if stack.sidecar_mode == "classic":
        return False
    return version >= NATIVE_BY_DEFAULT_SINCE


def _resolve_sidecars(
    stack: Stack, catalogue: Catalogue, assignments: list[Assignment]
) -> list[Sidecar]:
    names = [s.name for s in stack.sidecars]
    for name in names:
        if names.count(name) > 1:
            raise ComposeError(f"two sidecars are named {name!r}: give one a different name")
    unknown = sorted({a.instance for a in assignments} - set(names))
    if unknown:
        raise UsageError(
            f"--set {unknown[0]}.…: no sidecar named {unknown[0]!r} "
            f"(add it with --with {unknown[0]}; sidecars: {', '.join(names) or 'none'})"
        )
    problems: list[str] = []
    resolved = []
    for request in stack.sidecars:
        pattern = catalogue.get(request.pattern)
        mine = [a for a in assignments if a.instance == request.name]
        try:
            values = resolve(pattern, request.name, request.values, mine)
        except InvalidValues as error:
            problems += error.problems
            continue
        resolved.append(Sidecar(request, pattern, values))
    if problems:
        raise InvalidValues(problems)
    return resolved


def _image_map(pattern: Pattern, registry: str | None) -> dict[str, str]:
    if not registry:
        return dict(pattern.images)
    prefix = DEFAULT_REGISTRY + "/"
    return {
        key: registry.rstrip("/") + "/" + ref[len(prefix):] if ref.startswith(prefix) else ref
        for key, ref in pattern.images.items()
    }


def _merge_security(template_ctx: dict[str, Any] | None) -> dict[str, Any]:
    merged = copy.deepcopy(SIDECAR_SECURITY_DEFAULTS)
    for key, value in (template_ctx or {}).items():
        merged[key] = value
    return merged


def _container(name: str, rendered: Any, source: str) -> dict[str, Any]:
    if not isinstance(rendered, dict):
        raise CatalogueError(f"{source} must render a mapping (one container)")
    if rendered.get("name", name) != name:
        raise CatalogueError(f"{source} must not set the container name")
    body = {k: v for k, v in rendered.items() if k != "name"}
    container = {"name": name, **body}
    container["securityContext"] = _merge_security(body.get("securityContext"))
    return container


@dataclass
class PodParts:
    """The pod under construction: the app and what the sidecars add around it."""

    app: dict[str, Any]
    sidecars: list[dict[str, Any]]
    one_shot: list[dict[str, Any]]
    volumes: list[dict[str, Any]]
    objects: list[dict[str, Any]]
    native: bool = True
    annotations: dict[str, str] = field(default_factory=dict)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)  # final, by sidecar name


def _default_source(need: VolumeNeed, sidecar: Sidecar, prefix: str) -> dict[str, Any]:
    if need.config_map is not None:
        return {"configMap": {"name": f"{prefix}-{need.config_map}"}}
    if need.secret_parameter is not None:
        # `optional: false` is the Kubernetes default, spelled out: podman needs it.
        return {"secret": {"secretName": sidecar.values[need.secret_parameter], "optional": False}}
    return {"emptyDir": {}}


def _wire_volumes(pod: PodParts, sidecar: Sidecar, prefix: str) -> dict[str, str]:
    """Pod volume names for each of the sidecar's needs; app mounts added where declared."""
    request, pattern = sidecar.request, sidecar.pattern
    unknown = sorted(set(request.volumes) - {v.name for v in pattern.volumes})
    if unknown:
        raise ComposeError(
            f"{request.name}.volumes.{unknown[0]}: {pattern.name} has no volume {unknown[0]!r} "
            f"(it has: {', '.join(v.name for v in pattern.volumes) or 'none'})"
        )
    names: dict[str, str] = {}
    declared = {v["name"] for v in pod.volumes}
    for need in pattern.volumes:
        binding = request.volumes.get(need.name, {})
        if need.secret_parameter is not None and not sidecar.values.get(need.secret_parameter):
            continue  # an optional Secret the user did not name: no volume, the template skips it
        if "volume" in binding:
            volume_name = str(binding["volume"])
            if volume_name not in declared:
                raise ComposeError(
                    f"{request.name}.volumes.{need.name}: the pod has no volume {volume_name!r}"
                )
        else:
            volume_name = f"{request.name}-{need.name}"
            if volume_name in declared:
                raise ComposeError(f"volume name {volume_name!r} is already used by the pod")
            pod.volumes.append({"name": volume_name, **(copy.deepcopy(binding) or
                                                        _default_source(need, sidecar, prefix))})
            declared.add(volume_name)
        names[need.name] = volume_name
        if need.app_mount_parameter is not None:
            _mount_in_app(pod.app, volume_name, sidecar.values[need.app_mount_parameter],
                          need.app_read_only, f"{request.name}.{need.app_mount_parameter}")
    return names


def _mount_in_app(
    app: dict[str, Any], volume: str, path: str, read_only: bool, where: str
) -> None:
    mounts = app.setdefault("volumeMounts", [])
    for mount in mounts:
        if mount.get("name") == volume:
            return  # the app already mounts this volume where it wants it
        if mount.get("mountPath") == path:
            raise ComposeError(
                f"{where}: the app already mounts volume {mount.get('name')!r} at {path}"
            )
    entry: dict[str, Any] = {"name": volume, "mountPath": path}
    if read_only:
        entry["readOnly"] = True
    mounts.append(entry)


def _add_sidecar(pod: PodParts, sidecar: Sidecar, stack: Stack, native: bool) -> None:
    request, pattern = sidecar.request, sidecar.pattern
    volumes = _wire_volumes(pod, sidecar, f"{stack.name}-{request.name}")
    context = RenderContext(
        instance=request.name,
        workload=stack.name,
        values=sidecar.values,
        images=_image_map(pattern, stack.image_registry),
        volumes=volumes,
        native=native,
        pattern_name=pattern.name,
        pattern_version=pattern.version,
        app=str(pod.app.get("name", stack.name)),
        labels={workloads.NAME_LABEL: stack.name, **stack.labels},
        selector={workloads.NAME_LABEL: stack.name},
    )
    source = f"{pattern.name}/templates/{TEMPLATE_CONTAINER}"
    container = _container(request.name, render_yaml(pattern, TEMPLATE_CONTAINER, context), source)
    if request.resources is not None:
        container["resources"] = copy.deepcopy(request.resources)
    if request.lifecycle is not None:
        container["lifecycle"] = copy.deepcopy(request.lifecycle)
    if native:  # right after the image, where a reader looks for what kind of container it is
        container = {"name": container["name"], "image": container["image"],
                     "restartPolicy": "Always", **container}
    pod.sidecars.append(container)
    if pattern.start_before_app and not native:
        rendered = render_yaml(pattern, TEMPLATE_INIT, context)
        init_name = f"{request.name}-init"
        source = f"{pattern.name}/templates/{TEMPLATE_INIT}"
        pod.one_shot.append(_container(init_name, rendered, source))
    if pattern.template(TEMPLATE_OBJECTS) is not None:
        objects = render_yaml(pattern, TEMPLATE_OBJECTS, context)
        if not isinstance(objects, list) or not all(isinstance(o, dict) for o in objects):
            raise CatalogueError(f"{pattern.name}/templates/{TEMPLATE_OBJECTS} must render a list")
        for obj in objects:
            if stack.namespace and obj.get("kind") != "Namespace":
                obj.setdefault("metadata", {})["namespace"] = stack.namespace
        pod.objects += objects


def build_pod_spec(pod: PodParts, stack: Stack, native: bool) -> dict[str, Any]:
    spec: dict[str, Any] = {}
    extra = copy.deepcopy(stack.pod)
    for reserved in ("containers", "volumes"):
        if reserved in extra:
            raise ComposeError(f"spec.pod.{reserved}: set it through app, sidecars or volumes")
    user_init = extra.pop("initContainers", [])
    if native:
        init = pod.sidecars + user_init
        containers = [pod.app]
    else:
        init = pod.one_shot + user_init
        containers = [pod.app, *pod.sidecars]
    if init:
        spec["initContainers"] = init
    spec["containers"] = containers
    spec.update(extra)
    if pod.volumes:
        spec["volumes"] = pod.volumes
    return spec


def add_sidecars(
    stack: Stack,
    catalogue: Catalogue,
    assignments: list[Assignment],
    app: dict[str, Any],
    volumes: list[dict[str, Any]],
) -> PodParts:
    """The stack's sidecars added around an app container and the pod's existing volumes.

    `app` and `volumes` are copied, never changed: `pattern generate` builds a new pod from the
    result, `pattern inject` takes from it what to add to an existing one.
    """
    native = use_native_sidecars(stack)
    sidecars = _resolve_sidecars(stack, catalogue, assignments)
    for sidecar in sidecars:
        if sidecar.request.name == app.get("name"):
            raise ComposeError(
                f"sidecar {sidecar.request.name!r} has the app container's name: rename one"
            )
    pod = PodParts(app=copy.deepcopy(app), sidecars=[], one_shot=[],
                   volumes=copy.deepcopy(volumes), objects=[], native=native)
    for sidecar in sidecars:
        _add_sidecar(pod, sidecar, stack, native)
        pod.values[sidecar.request.name] = sidecar.values
    if sidecars:
        pod.annotations[PATTERNS_ANNOTATION] = ",".join(
            f"{s.request.name}={s.pattern.name}@{s.pattern.version}" for s in sidecars
        )
        if not native:
            pod.annotations[rules.SIDECARS_ANNOTATION] = ",".join(
                s.request.name for s in sidecars)
    return pod


def compose(
    stack: Stack, catalogue: Catalogue, assignments: list[Assignment]
) -> list[dict[str, Any]]:
    """The documents to emit: supporting objects first, then the workload."""
    app = copy.deepcopy(stack.app)
    app = {"name": app.pop("name", stack.name), **app}
    pod = add_sidecars(stack, catalogue, assignments, app, list(stack.volumes))
    spec = build_pod_spec(pod, stack, pod.native)
    annotations = {**stack.annotations, **pod.annotations}
    workload = workloads.wrap(stack, spec, annotations)
    problems = rules.check_pod(
        workloads.pod_spec_of(workload) or {},
        annotations,
        k8s_version=parse_k8s_version(stack.k8s_version),
        in_job=stack.kind in {"Job", "CronJob"},
    )
    if problems:
        raise ComposeError("; ".join(problems))
    return [*pod.objects, *workloads.companions(stack, spec), workload]
