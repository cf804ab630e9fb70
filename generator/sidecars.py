"""The one sidecar pipeline behind `generate` and `inject`: resolve, render, place.

Both commands describe the pod the sidecars join (`PodContext`: its real labels and selector,
its app container, the volumes it already has) and get back one value, a `PodPatch`: the
containers, init containers, volumes, app mounts, annotations, pod fields and companion objects
to add. `compose` applies it to a new workload, `inject` to an existing pod template, which it
records so `uninject` can take it away again. Nothing here reads files or prints.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from typing import Any

from . import rules, schema
from .catalogue import (
    TEMPLATE_CONTAINER,
    TEMPLATE_INIT,
    TEMPLATE_OBJECTS,
    TEMPLATE_POD,
    Catalogue,
    Pattern,
    VolumeNeed,
)
from .errors import CatalogueError, ComposeError, InvalidValues, UsageError
from .kinds import is_job
from .render import RenderContext, render_yaml
from .shipped import DEFAULT_REGISTRY
from .values import Assignment, parse_assignment, resolve
from .versions import DEFAULT_K8S_VERSION, parse_k8s_version

PATTERNS_ANNOTATION = "sidecar-patterns.io/patterns"
# Annotations that list several sidecars: inject appends to them instead of replacing them.
LIST_ANNOTATIONS = frozenset({PATTERNS_ANNOTATION, rules.SIDECARS_ANNOTATION})
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGER = "sidecar-patterns"
NATIVE_BY_DEFAULT_SINCE = (1, 29)
# Pod spec fields a pattern may ask for in templates/pod.yaml.j2, with the value it may ask.
POD_FIELDS: dict[str, Any] = {"shareProcessNamespace": True}

SIDECAR_SECURITY_DEFAULTS: dict[str, Any] = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


# ---------------------------------------------------------------- what the user asks for

@dataclass(frozen=True)
class SidecarRequest:
    """One sidecar: its pattern, its name in the pod, and what the stack file says of it."""

    pattern: str
    name: str
    values: dict[str, Any] = field(default_factory=dict)
    resources: dict[str, Any] | None = None
    lifecycle: dict[str, Any] | None = None
    volumes: dict[str, dict[str, Any]] = field(default_factory=dict)  # need -> binding


@dataclass(frozen=True)
class SidecarOptions:
    """The sidecar flags, the same for `generate` and `inject` (and a stack file's spec)."""

    requests: tuple[SidecarRequest, ...] = ()
    assignments: tuple[Assignment, ...] = ()
    container: str | None = None
    k8s_version: str = DEFAULT_K8S_VERSION
    sidecar_mode: str = "auto"
    image_registry: str | None = None


def _dns_label(text: str) -> bool:
    return not schema.validate(text, {"type": "string", "format": "dns-label"}, "name")


def parse_with(item: str) -> SidecarRequest:
    """`--with PATTERN` or `--with NAME=PATTERN` (a sidecar named otherwise than its pattern)."""
    name, sep, pattern = item.partition("=")
    if not sep:
        name = pattern = item
    if not _dns_label(name):
        raise UsageError(f"--with {item!r}: the sidecar name must be a DNS label")
    if not _dns_label(pattern):
        raise UsageError(f"--with {item!r}: {pattern!r} is not a pattern name")
    return SidecarRequest(pattern=pattern, name=name)


def parse_volume(item: str) -> tuple[str, str, str]:
    """`--volume SIDECAR.VOLUME=EXISTING`: (sidecar, the pattern's volume, the pod's volume)."""
    key, sep, existing = item.partition("=")
    sidecar, dot, need = key.partition(".")
    if not sep or not dot or not all(_dns_label(p) for p in (sidecar, need, existing)):
        raise UsageError(f"--volume {item!r}: expected SIDECAR.VOLUME=EXISTING, DNS labels "
                         "(e.g. ssh.data=mysql-data)")
    return sidecar, need, existing


def add_requests(present: tuple[SidecarRequest, ...],
                 with_: list[str]) -> tuple[SidecarRequest, ...]:
    """`--with` sidecars added to those already there (a stack file's); a name given again
    refers to the same sidecar, and must be of the same pattern."""
    requests = list(present)
    for item in with_:
        new = parse_with(item)
        same = next((r for r in requests if r.name == new.name), None)
        if same is None:
            requests.append(new)
        elif same.pattern != new.pattern:
            raise UsageError(f"--with {item!r}: a sidecar is already named {new.name!r} (a "
                             f"{same.pattern}); name one otherwise with --with NAME=PATTERN")
    return tuple(requests)


def bind_volumes(requests: tuple[SidecarRequest, ...],
                 volume: list[str]) -> tuple[SidecarRequest, ...]:
    """Apply `--volume` flags to the requests they name."""
    bound = list(requests)
    for item in volume:
        sidecar, need, existing = parse_volume(item)
        position = next((i for i, r in enumerate(bound) if r.name == sidecar), None)
        if position is None:
            names = ", ".join(r.name for r in bound) or "none"
            raise UsageError(f"--volume {item!r}: no sidecar named {sidecar!r} (add it with "
                             f"--with; sidecars: {names})")
        request = bound[position]
        bound[position] = replace(request, volumes={**request.volumes,
                                                    need: {"volume": existing}})
    return tuple(bound)


@dataclass(frozen=True)
class SidecarFlags:
    """The sidecar flags as typed, shared by `generate` and `inject` (one meaning each)."""

    with_: tuple[str, ...] = ()
    set_: tuple[str, ...] = ()
    volume: tuple[str, ...] = ()
    container: str | None = None
    k8s_version: str | None = None
    sidecar_mode: str | None = None
    image_registry: str | None = None

    def given(self) -> list[tuple[str, Any]]:
        """Each flag with the value the stack file's field of the same meaning would hold;
        `stack.options_from_flags` checks them with the stack schema."""
        given: list[tuple[str, Any]] = [
            ("--container", self.container), ("--k8s-version", self.k8s_version),
            ("--sidecar-mode", self.sidecar_mode), ("--image-registry", self.image_registry)]
        for item in self.with_:
            name, sep, pattern = item.partition("=")
            given += [("--with", name if sep else item), ("--with PATTERN", pattern or item)]
        given += [("--volume", item.partition("=")[2]) for item in self.volume if "=" in item]
        return given

    def combine(self, defaults: SidecarOptions | None = None) -> SidecarOptions:
        """The flags combined on top of `defaults` (a stack file's spec); they are checked
        first by `stack.options_from_flags`, the one caller."""
        base = defaults or SidecarOptions()
        mode = base.sidecar_mode if self.sidecar_mode is None else self.sidecar_mode
        version = base.k8s_version if self.k8s_version is None else self.k8s_version
        parse_k8s_version(version)
        return SidecarOptions(
            requests=bind_volumes(add_requests(base.requests, list(self.with_)),
                                  list(self.volume)),
            assignments=(*base.assignments, *(parse_assignment(t) for t in self.set_)),
            container=base.container if self.container is None else self.container,
            k8s_version=version,
            sidecar_mode=mode,
            image_registry=base.image_registry if self.image_registry is None
            else self.image_registry,
        )


# ---------------------------------------------------------------- the pod the sidecars join

@dataclass(frozen=True)
class PodContext:
    """What the pipeline needs to know of the pod: its identity, its app, what it has."""

    workload: str
    app: dict[str, Any]  # the app container (plain data; never changed here)
    labels: dict[str, str]
    selector: dict[str, str]
    volumes: tuple[str, ...] = ()  # names of the pod's volumes (claim templates included)
    volume_sources: dict[str, str] = field(default_factory=dict)  # volume -> configMap, secret...
    pod_fields: dict[str, Any] = field(default_factory=dict)  # spec fields as the pod has them
    annotations: dict[str, str] = field(default_factory=dict)
    namespace: str | None = None
    kind: str = "Pod"


@dataclass
class PodPatch:
    """What the sidecars add to a pod; `generate` and `inject` apply it."""

    native: bool
    sidecars: list[dict[str, Any]] = field(default_factory=list)
    one_shot: list[dict[str, Any]] = field(default_factory=list)  # classic start-before-app
    volumes: list[dict[str, Any]] = field(default_factory=list)  # new pod volumes
    app_mounts: list[dict[str, Any]] = field(default_factory=list)  # new mounts of the app
    annotations: dict[str, str] = field(default_factory=dict)
    pod_fields: dict[str, Any] = field(default_factory=dict)
    objects: list[dict[str, Any]] = field(default_factory=list)
    values: dict[str, dict[str, Any]] = field(default_factory=dict)  # final, by sidecar name
    notes: list[str] = field(default_factory=list)  # for stderr

    @property
    def init_containers(self) -> list[dict[str, Any]]:
        """What goes in front of the pod's initContainers."""
        return self.sidecars if self.native else self.one_shot

    @property
    def classic_containers(self) -> list[dict[str, Any]]:
        """What goes after the pod's containers."""
        return [] if self.native else self.sidecars


def app_mounts(pod: PodContext) -> dict[str, dict[str, Any]]:
    """The app container's mounts by mountPath: the volume, its source kind (configMap, secret,
    projected, emptyDir...; '' when unknown), subPath and readOnly, for templates to check."""
    mounts = {}
    for mount in pod.app.get("volumeMounts") or []:
        if isinstance(mount, dict) and isinstance(mount.get("mountPath"), str):
            volume = str(mount.get("name"))
            mounts[str(mount["mountPath"]).rstrip("/") or "/"] = {
                "volume": volume, "source": pod.volume_sources.get(volume, ""),
                "subPath": str(mount.get("subPath") or mount.get("subPathExpr") or ""),
                "readOnly": bool(mount.get("readOnly"))}
    return mounts


def volume_sources(volumes: list[Any]) -> dict[str, str]:
    """Pod volume definitions -> name: the source kind (the key beside `name`)."""
    return {str(v["name"]): next((str(k) for k in v if k != "name"), "")
            for v in volumes if isinstance(v, dict) and "name" in v}


def use_native_sidecars(options: SidecarOptions) -> bool:
    version = parse_k8s_version(options.k8s_version)
    if options.sidecar_mode == "native":
        if version < rules.NATIVE_SIDECARS_SINCE:
            raise UsageError(
                f"native sidecars need Kubernetes 1.28 or later (1.29+ without a feature gate); "
                f"the target is {options.k8s_version}: use --sidecar-mode classic"
            )
        return True
    if options.sidecar_mode == "classic":
        return False
    return version >= NATIVE_BY_DEFAULT_SINCE


# ---------------------------------------------------------------- resolving values

@dataclass(frozen=True)
class _Sidecar:
    request: SidecarRequest
    pattern: Pattern
    values: dict[str, Any]


def _resolve(options: SidecarOptions, catalogue: Catalogue) -> list[_Sidecar]:
    names = [s.name for s in options.requests]
    for name in names:
        if names.count(name) > 1:
            raise ComposeError(f"two sidecars are named {name!r}: give one a different name")
    unknown = sorted({a.instance for a in options.assignments} - set(names))
    if unknown:
        raise UsageError(
            f"--set {unknown[0]}.…: no sidecar named {unknown[0]!r} "
            f"(add it with --with {unknown[0]}; sidecars: {', '.join(names) or 'none'})"
        )
    problems: list[str] = []
    resolved = []
    for request in options.requests:
        pattern = catalogue.get(request.pattern)
        mine = [a for a in options.assignments if a.instance == request.name]
        try:
            values = resolve(pattern, request.name, request.values, mine)
        except InvalidValues as error:
            problems += error.problems
            continue
        resolved.append(_Sidecar(request, pattern, values))
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


# ---------------------------------------------------------------- volumes

@dataclass
class _Volumes:
    """The pod's volumes and the app's mounts as the patch grows."""

    names: set[str]
    app_mounts: list[dict[str, Any]]  # the app's own, then those the patch adds
    patch: PodPatch
    shared: dict[str, dict[str, Any]] = field(default_factory=dict)  # volume -> the app's mount

    def mount_at(self, path: str) -> dict[str, Any] | None:
        return next((m for m in self.app_mounts if m.get("mountPath") == path), None)

    def mounts_volume(self, volume: str) -> bool:
        return any(m.get("name") == volume for m in self.app_mounts)

    def add_volume(self, volume: dict[str, Any]) -> None:
        self.patch.volumes.append(volume)
        self.names.add(volume["name"])

    def add_app_mount(self, mount: dict[str, Any]) -> None:
        self.patch.app_mounts.append(mount)
        self.app_mounts.append(mount)


def _default_source(need: VolumeNeed, sidecar: _Sidecar, prefix: str) -> dict[str, Any]:
    if need.config_map is not None:
        return {"configMap": {"name": f"{prefix}-{need.config_map}"}}
    # `optional: false` is the Kubernetes default, spelled out: podman needs it.
    if need.secret_parameter is not None:
        return {"secret": {"secretName": sidecar.values[need.secret_parameter], "optional": False}}
    if need.config_map_parameter is not None:
        return {"configMap": {"name": sidecar.values[need.config_map_parameter],
                              "optional": False}}
    return {"emptyDir": {}}


def _wire_volumes(pod: _Volumes, sidecar: _Sidecar, prefix: str) -> dict[str, str]:
    """The pod volume behind each of the sidecar's needs: bound (`--volume`), reused (the app
    already mounts one at the path), or new; the app gets the mounts the pattern declares."""
    request, pattern = sidecar.request, sidecar.pattern
    unknown = sorted(set(request.volumes) - {v.name for v in pattern.volumes})
    if unknown:
        raise ComposeError(
            f"{request.name}.volumes.{unknown[0]}: {pattern.name} has no volume {unknown[0]!r} "
            f"(it has: {', '.join(v.name for v in pattern.volumes) or 'none'})"
        )
    names: dict[str, str] = {}
    for need in pattern.volumes:
        binding = request.volumes.get(need.name, {})
        named = need.user_object_parameter
        if named is not None and not sidecar.values.get(named):
            continue  # an optional Secret/ConfigMap the user did not name: the template skips it
        if need.app_mount_parameter and need.app_mount_parameter not in sidecar.values:
            continue  # an optional path the user did not set: nothing to share
        flag = f"--volume {request.name}.{need.name}=VOLUME"
        path = sidecar.values[need.app_mount_parameter] if need.app_mount_parameter else None
        there = pod.mount_at(path) if path is not None else None
        if "volume" in binding:
            volume_name = str(binding["volume"])
            if volume_name not in pod.names:
                raise ComposeError(f"{request.name}.volumes.{need.name}: the pod has no volume "
                                   f"{volume_name!r} (it has: {', '.join(sorted(pod.names))})")
        elif there is not None and not binding:
            volume_name = str(there.get("name"))
            pod.shared[volume_name] = there
            pod.patch.notes.append(
                f"{request.name}: shares volume {volume_name!r}, which the app already mounts at "
                f"{path} (choose another with {flag})")
        else:
            volume_name = f"{request.name}-{need.name}"
            if volume_name in pod.names:
                raise ComposeError(f"volume name {volume_name!r} is already used by the pod: "
                                   f"bind it with {flag} or rename the sidecar")
            source = copy.deepcopy(binding) or _default_source(need, sidecar, prefix)
            pod.add_volume({"name": volume_name, **source})
        names[need.name] = volume_name
        if path is None or pod.mounts_volume(volume_name):
            continue  # the app already mounts this volume (where it wants it)
        if there is not None:
            raise ComposeError(
                f"{request.name}.{need.app_mount_parameter}: the app mounts volume "
                f"{there.get('name')!r} at {path}, and {request.name}.{need.name} is volume "
                f"{volume_name!r}: share the app's with --volume {request.name}.{need.name}="
                f"{there.get('name')}, or choose another {request.name}.{need.app_mount_parameter}")
        mount: dict[str, Any] = {"name": volume_name, "mountPath": path}
        if need.app_read_only:
            mount["readOnly"] = True
        pod.add_app_mount(mount)
    return names


def _same_view(container: dict[str, Any], shared: dict[str, dict[str, Any]]) -> None:
    """A sidecar sharing the app's mount of a volume sees what the app sees there: the same
    subPath (a database's data volume is often mounted with one)."""
    for mount in container.get("volumeMounts") or []:
        app_mount = shared.get(mount.get("name", ""))
        for key in ("subPath", "subPathExpr"):
            if app_mount is not None and key in app_mount and key not in mount:
                mount[key] = app_mount[key]


# ---------------------------------------------------------------- rendering and placing

def _merge_security(template_ctx: dict[str, Any] | None) -> dict[str, Any]:
    merged = copy.deepcopy(SIDECAR_SECURITY_DEFAULTS)
    merged.update(template_ctx or {})
    return merged


def _container(name: str, rendered: Any, source: str) -> dict[str, Any]:
    if not isinstance(rendered, dict):
        raise CatalogueError(f"{source} must render a mapping (one container)")
    if rendered.get("name", name) != name:
        raise CatalogueError(f"{source} must not set the container name")
    body = {k: v for k, v in rendered.items() if k != "name"}
    container = {"name": name, **body}
    container["securityContext"] = _merge_security(body.get("securityContext"))
    _escape_references(container)
    return container


def _escape_references(container: dict[str, Any]) -> None:
    """The kubelet expands `$(NAME)` in command, args and env values; a sidecar's strings are
    meant literally (no template relies on expansion), so a user value such as `$(TOKEN)`
    must not read another variable. `$$` is the kubelet's escape for `$`."""
    for key in ("command", "args"):
        if isinstance(container.get(key), list):
            container[key] = [a.replace("$", "$$") if isinstance(a, str) else a
                              for a in container[key]]
    for item in container.get("env") or []:
        if isinstance(item, dict) and isinstance(item.get("value"), str):
            item["value"] = item["value"].replace("$", "$$")


def _pod_additions(patch: PodPatch, pod: PodContext, rendered: Any, source: str,
                   sidecar: str) -> None:
    """templates/pod.yaml.j2: pod fields (from POD_FIELDS) and annotations the sidecar needs."""
    if not isinstance(rendered, dict):
        raise CatalogueError(f"{source} must render a mapping")
    for key, value in rendered.items():
        if key == "annotations":
            if not isinstance(value, dict):
                raise CatalogueError(f"{source}: annotations must be a mapping")
            for name, text in value.items():
                text = str(text)
                had = patch.annotations.get(name, pod.annotations.get(name))
                if had is not None and had != text:
                    raise ComposeError(f"{sidecar}: needs pod annotation {name}={text!r}, but "
                                       f"the pod has {had!r}")
                patch.annotations[name] = text
        elif key in POD_FIELDS and value == POD_FIELDS[key]:
            if pod.pod_fields.get(key, value) != value:
                raise ComposeError(f"{sidecar}: needs {key}: {value} (see its README), but the "
                                   f"pod sets {key}: {pod.pod_fields[key]}")
            if pod.pod_fields.get(key) != value:
                patch.pod_fields[key] = value
        else:
            raise CatalogueError(f"{source}: {key}: {value!r} is not a pod field a pattern may "
                                 f"set (it may set: annotations, "
                                 f"{', '.join(f'{k}: {v}' for k, v in POD_FIELDS.items())})")


def _add_sidecar(patch: PodPatch, volumes: _Volumes, sidecar: _Sidecar, pod: PodContext,
                 options: SidecarOptions) -> None:
    request, pattern = sidecar.request, sidecar.pattern
    prefix = f"{pod.workload}-{request.name}"
    context = RenderContext(
        instance=request.name,
        workload=pod.workload,
        values=sidecar.values,
        images=_image_map(pattern, options.image_registry),
        volumes=_wire_volumes(volumes, sidecar, prefix),
        native=patch.native,
        pattern_name=pattern.name,
        pattern_version=pattern.version,
        app=str(pod.app.get("name")),
        app_mounts=app_mounts(pod),
        labels=pod.labels,
        selector=pod.selector,
    )

    def render(template: str) -> Any:
        return render_yaml(pattern, template, context)

    def where(template: str) -> str:
        return f"{pattern.name}/templates/{template}"

    container = _container(request.name, render(TEMPLATE_CONTAINER), where(TEMPLATE_CONTAINER))
    if request.resources is not None:
        container["resources"] = copy.deepcopy(request.resources)
    if request.lifecycle is not None:
        container["lifecycle"] = copy.deepcopy(request.lifecycle)
    _same_view(container, volumes.shared)
    if patch.native:  # right after the image, where a reader looks for what kind of container
        container = {"name": container["name"], "image": container["image"],
                     "restartPolicy": "Always", **container}
    patch.sidecars.append(container)
    if pattern.start_before_app and not patch.native:
        one_shot = _container(f"{request.name}-init", render(TEMPLATE_INIT), where(TEMPLATE_INIT))
        _same_view(one_shot, volumes.shared)
        patch.one_shot.append(one_shot)
    if pattern.template(TEMPLATE_POD) is not None:
        _pod_additions(patch, pod, render(TEMPLATE_POD), where(TEMPLATE_POD), request.name)
    if pattern.template(TEMPLATE_OBJECTS) is not None:
        objects = render(TEMPLATE_OBJECTS)
        if not isinstance(objects, list) or not all(isinstance(o, dict) for o in objects):
            raise CatalogueError(f"{where(TEMPLATE_OBJECTS)} must render a list")
        for obj in objects:
            if obj.get("kind") == "Service" and "selector" in (obj.get("spec") or {}) \
                    and not obj["spec"]["selector"]:
                raise ComposeError(f"{request.name}: its Service {prefix} would select no pod: "
                                   "the pod template has no labels (add some)")
            meta = obj.setdefault("metadata", {})
            if pod.namespace and obj.get("kind") != "Namespace":
                meta["namespace"] = pod.namespace
            meta.setdefault("labels", {}).setdefault(MANAGED_BY_LABEL, MANAGER)
        patch.objects += objects


def build_patch(options: SidecarOptions, catalogue: Catalogue, pod: PodContext) -> PodPatch:
    """Everything the sidecars add to the pod; raises a PatternError naming what is wrong."""
    native = use_native_sidecars(options)
    sidecars = _resolve(options, catalogue)
    if sidecars and not native and is_job(pod.kind):
        raise ComposeError(
            f"a classic sidecar never exits, so the {pod.kind} would never complete; target "
            "Kubernetes 1.29+ (--k8s-version) to get native sidecars (initContainers with "
            "restartPolicy: Always), which a Job's pods stop by themselves")
    app_name = pod.app.get("name")
    for sidecar in sidecars:
        if sidecar.request.name == app_name:
            raise ComposeError(
                f"sidecar {sidecar.request.name!r} has the app container's name: rename one")
    patch = PodPatch(native=native)
    volumes = _Volumes(set(pod.volumes), copy.deepcopy(pod.app.get("volumeMounts") or []), patch)
    for sidecar in sidecars:
        _add_sidecar(patch, volumes, sidecar, pod, options)
        patch.values[sidecar.request.name] = sidecar.values
    if sidecars:
        patch.annotations[PATTERNS_ANNOTATION] = ",".join(
            f"{s.request.name}={s.pattern.name}@{s.pattern.version}" for s in sidecars)
        if not native:
            patch.annotations[rules.SIDECARS_ANNOTATION] = ",".join(
                s.request.name for s in sidecars)
    return patch
