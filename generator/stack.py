"""The stack: one app container plus the sidecars around it, from a file and/or the CLI."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from . import kinds, schema
from .errors import InvalidValues, ManifestError, UsageError
from .shipped import package_file
from .sidecars import SidecarFlags, SidecarOptions, SidecarRequest
from .values import Assignment
from .versions import DEFAULT_K8S_VERSION
from .yamlio import STACK_FILE_LIMIT, load_documents, read_text

API_VERSION = "sidecar-patterns.io/v1alpha1"


@dataclass(frozen=True)
class Stack:
    name: str
    app: dict[str, Any]
    sidecars: tuple[SidecarRequest, ...] = ()
    kind: str = "Pod"
    namespace: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    annotations: dict[str, str] = field(default_factory=dict)
    replicas: int | None = None
    schedule: str | None = None
    k8s_version: str = DEFAULT_K8S_VERSION
    sidecar_mode: str = "auto"
    volumes: tuple[dict[str, Any], ...] = ()
    pod: dict[str, Any] = field(default_factory=dict)
    image_registry: str | None = None

    def sidecar_options(self, assignments: tuple[Assignment, ...] = ()) -> SidecarOptions:
        """What the stack asks of the sidecar pipeline (the app container is named by it)."""
        return SidecarOptions(requests=self.sidecars, assignments=assignments,
                              container=self.app.get("name", self.name),
                              k8s_version=self.k8s_version, sidecar_mode=self.sidecar_mode,
                              image_registry=self.image_registry)


@cache
def stack_schema() -> dict[str, Any]:
    text, source = read_text(str(package_file("schemas", "stack.schema.yaml")))
    loaded: dict[str, Any] = load_documents(text, source)[0]
    # The kinds come from the registry, so a new kind needs no schema edit.
    loaded["properties"]["spec"]["properties"]["kind"]["enum"] = list(kinds.GENERATED)
    return loaded


# Each flag is the stack file's field of the same meaning, checked by the same schema ("[]":
# an item of the array; the flag gives one item's value).
FLAG_FIELDS: dict[str, tuple[str, ...]] = {
    "--name": ("metadata", "name"),
    "--namespace": ("metadata", "namespace"),
    "--kind": ("spec", "kind"),
    "--replicas": ("spec", "replicas"),
    "--schedule": ("spec", "schedule"),
    "--k8s-version": ("spec", "k8sVersion"),
    "--sidecar-mode": ("spec", "sidecarMode"),
    "--image-registry": ("spec", "imageRegistry"),
    "--container": ("spec", "app", "name"),
    "--app-image": ("spec", "app", "image"),
    "--app-port": ("spec", "app", "ports", "[]", "containerPort"),
    "--app-env": ("spec", "app", "env", "[]", "name"),
    "--with": ("spec", "sidecars", "[]", "name"),
    "--with PATTERN": ("spec", "sidecars", "[]", "pattern"),
    "--volume": ("spec", "sidecars", "[]", "volumes", "*", "volume"),
}


def _field_schema(path: tuple[str, ...]) -> dict[str, Any]:
    root = stack_schema()
    node = root
    for part in path:
        node = schema.resolve(node, root)
        if part == "[]":
            node = node["items"]
        elif part == "*":
            node = node["additionalProperties"]
        else:
            node = node["properties"][part]
    return node


def check_flags(given: list[tuple[str, Any]]) -> None:
    """Refuse (as a usage error naming the flag) any flag value the stack file's schema would
    refuse in the field of the same meaning: one check for both routes."""
    problems: list[str] = []
    for flag, value in given:
        if value is None:
            continue
        field_path = FLAG_FIELDS[flag]
        label = flag.split(" ")[0]
        problems += schema.validate(value, _field_schema(field_path), label, root=stack_schema())
    if problems:
        raise UsageError("; ".join(problems))


def options_from_flags(flags: SidecarFlags, defaults: SidecarOptions | None = None
                       ) -> SidecarOptions:
    """The sidecar flags of generate and inject, checked like a stack file's spec, on top of
    `defaults` (the stack file's)."""
    check_flags(flags.given())
    return flags.combine(defaults)


def load_stack(path: str) -> Stack:
    """Read a stack file (or stdin for '-'); every problem is reported with its path."""
    text, source = read_text(path, limit=STACK_FILE_LIMIT)
    docs = load_documents(text, source)
    manifests = [d for d in docs if kinds.is_manifest(d)]
    if manifests:
        found = ", ".join(sorted({str(d["kind"]) for d in manifests}))
        raise ManifestError(f"{source}: a Kubernetes manifest ({found}), not a stack file: add "
                            f"sidecars to it with `pattern inject -f {source} --with PATTERN`")
    if len(docs) != 1:
        raise ManifestError(f"{source}: a stack file holds exactly one YAML document")
    return stack_from_dict(docs[0], source)


def stack_from_dict(data: Any, source: str) -> Stack:
    spec = data.get("spec") if isinstance(data, dict) else None
    version = spec.get("k8sVersion") if isinstance(spec, dict) else None
    if isinstance(version, float):
        raise InvalidValues([
            f"{source}: stack.spec.k8sVersion: write it as a string, e.g. \"{version}\" "
            "(YAML reads an unquoted 1.30 as the number 1.3)"
        ])
    problems = schema.validate(data, stack_schema(), "stack")
    if problems:
        raise InvalidValues([f"{source}: {p}" for p in problems])
    meta, spec = data["metadata"], data["spec"]
    sidecars = tuple(
        SidecarRequest(
            pattern=item["pattern"],
            name=item.get("name", item["pattern"]),
            values=copy.deepcopy(item.get("values", {})),
            resources=item.get("resources"),
            lifecycle=item.get("lifecycle"),
            volumes=dict(item.get("volumes", {})),
        )
        for item in spec.get("sidecars", [])
    )
    return Stack(
        name=meta["name"],
        namespace=meta.get("namespace"),
        labels=dict(meta.get("labels", {})),
        annotations=dict(meta.get("annotations", {})),
        app=copy.deepcopy(spec["app"]),
        sidecars=sidecars,
        kind=spec.get("kind", "Pod"),
        replicas=spec.get("replicas"),
        schedule=spec.get("schedule"),
        k8s_version=str(spec.get("k8sVersion", DEFAULT_K8S_VERSION)),
        sidecar_mode=spec.get("sidecarMode", "auto"),
        volumes=tuple(copy.deepcopy(spec.get("volumes", []))),
        pod=copy.deepcopy(spec.get("pod", {})),
        image_registry=spec.get("imageRegistry"),
    )


def with_options(stack: Stack, options: SidecarOptions) -> Stack:
    """The stack with sidecar flags applied (they override the file)."""
    app = dict(stack.app)
    if options.container is not None:
        app["name"] = options.container
    return replace(stack, app=app, sidecars=options.requests, k8s_version=options.k8s_version,
                   sidecar_mode=options.sidecar_mode, image_registry=options.image_registry)
