"""`pattern generate`: a new workload from a stack, with the sidecar pipeline's patch applied.

Data flows one way: the stack says the app and the pod; `sidecars.build_patch` resolves,
renders and places the sidecars; this module builds the pod spec around the app, wraps it in
the workload kind and checks the pod rules.
"""

from __future__ import annotations

import copy
from typing import Any

from . import kinds, rules, workloads
from .catalogue import Catalogue
from .errors import ComposeError
from .sidecars import PodContext, PodPatch, build_patch, volume_sources
from .stack import Stack
from .values import Assignment
from .versions import parse_k8s_version


def _app(stack: Stack) -> dict[str, Any]:
    app = copy.deepcopy(stack.app)
    return {"name": app.pop("name", stack.name), **app}


def pod_context(stack: Stack, app: dict[str, Any]) -> PodContext:
    """The pod a stack describes, as the sidecar pipeline sees it."""
    return PodContext(
        workload=stack.name,
        app=app,
        labels=workloads.labels_of(stack),
        selector=workloads.selector_of(stack),
        volumes=tuple(str(v.get("name")) for v in stack.volumes),
        volume_sources=volume_sources(list(stack.volumes)),
        pod_fields={k: v for k, v in stack.pod.items() if k not in {"containers", "volumes"}},
        annotations=dict(stack.annotations),
        namespace=stack.namespace,
        kind=stack.kind,
    )


def build_pod_spec(app: dict[str, Any], patch: PodPatch, stack: Stack) -> dict[str, Any]:
    extra = copy.deepcopy(stack.pod)
    for reserved in ("containers", "volumes"):
        if reserved in extra:
            raise ComposeError(f"spec.pod.{reserved}: set it through app, sidecars or volumes")
    if patch.app_mounts:
        app = {**app, "volumeMounts": [*(app.get("volumeMounts") or []), *patch.app_mounts]}
    spec: dict[str, Any] = {}
    init = patch.init_containers + extra.pop("initContainers", [])
    if init:
        spec["initContainers"] = init
    spec["containers"] = [app, *patch.classic_containers]
    spec.update(extra)
    spec.update(patch.pod_fields)
    volumes = [*copy.deepcopy(list(stack.volumes)), *patch.volumes]
    if volumes:
        spec["volumes"] = volumes
    return spec


def compose_with_notes(stack: Stack, catalogue: Catalogue,
                       assignments: list[Assignment]) -> tuple[list[dict[str, Any]], list[str]]:
    """The documents to emit (companion objects first, then the workload), and notes."""
    app = _app(stack)
    patch = build_patch(stack.sidecar_options(tuple(assignments)), catalogue,
                        pod_context(stack, app))
    spec = build_pod_spec(app, patch, stack)
    annotations = {**stack.annotations, **patch.annotations}
    workload = workloads.wrap(stack, spec, annotations)
    problems = rules.check_pod(
        kinds.pod_spec_of(workload) or {},
        annotations,
        k8s_version=parse_k8s_version(stack.k8s_version),
        in_job=kinds.is_job(stack.kind),
    )
    if problems:
        raise ComposeError("; ".join(problems))
    return [*patch.objects, *workloads.companions(stack, spec), workload], patch.notes


def compose(stack: Stack, catalogue: Catalogue,
            assignments: list[Assignment]) -> list[dict[str, Any]]:
    """The documents to emit: supporting objects first, then the workload."""
    return compose_with_notes(stack, catalogue, assignments)[0]
