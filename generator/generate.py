"""`pattern generate`: a stack (a file and/or flags) to the YAML of a new workload.

`docs` renders the catalogue's examples with the same function, so they cannot drift.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .catalogue import Catalogue
from .compose import compose_with_notes
from .errors import UsageError, ValidationFailed
from .sidecars import SidecarFlags
from .stack import Stack, check_flags, load_stack, options_from_flags, with_options
from .values import Assignment
from .yamlio import HEADER, dump_documents


@dataclass(frozen=True)
class GenerateRequest:
    file: str | None = None
    name: str | None = None
    app_image: str | None = None
    app_ports: list[int] = field(default_factory=list)
    app_command: str | None = None
    app_env: list[str] = field(default_factory=list)
    post_start: str | None = None
    pre_stop: str | None = None
    sidecars: SidecarFlags = field(default_factory=SidecarFlags)
    kind: str | None = None
    replicas: int | None = None
    schedule: str | None = None
    namespace: str | None = None
    validate: bool = True
    catalogue: Path | None = None


def _app_from_flags(request: GenerateRequest, base: dict[str, Any]) -> dict[str, Any]:
    app = dict(base)
    if request.app_image:
        app["image"] = request.app_image
    if request.app_command:
        try:
            app["command"] = shlex.split(request.app_command)
        except ValueError as error:
            raise UsageError(f"--app-command: {error}") from None
    if request.app_ports:
        app["ports"] = [{"containerPort": p} for p in request.app_ports]
    if request.app_env:
        env = list(app.get("env", []))
        for item in request.app_env:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise UsageError(f"--app-env {item!r}: expected KEY=VALUE")
            env.append({"name": key, "value": value})
        app["env"] = env
    hooks = {"postStart": request.post_start, "preStop": request.pre_stop}
    for hook, command in hooks.items():
        if command:
            lifecycle = dict(app.get("lifecycle", {}))
            lifecycle[hook] = {"exec": {"command": ["/bin/sh", "-c", command]}}
            app["lifecycle"] = lifecycle
    return app


def build_stack(request: GenerateRequest) -> tuple[Stack, tuple[Assignment, ...]]:
    """The stack file (if any) with command-line flags on top, as kubectl-style tools do;
    and the `--set` values."""
    if request.file:
        stack = load_stack(request.file)
    else:
        if not request.name or not request.app_image:
            raise UsageError("give --name and --app-image, or a stack file with -f")
        stack = Stack(name=request.name, app={})
    check_flags([
        ("--name", request.name), ("--namespace", request.namespace), ("--kind", request.kind),
        ("--replicas", request.replicas), ("--schedule", request.schedule),
        ("--app-image", request.app_image),
        *(("--app-port", port) for port in request.app_ports),
        *(("--app-env", item.partition("=")[0]) for item in request.app_env),
    ])
    overrides: dict[str, Any] = {"app": _app_from_flags(request, stack.app)}
    for key in ("name", "kind", "replicas", "schedule", "namespace"):
        if getattr(request, key) is not None:
            overrides[key] = getattr(request, key)
    stack = replace(stack, **overrides)
    options = options_from_flags(request.sidecars, stack.sidecar_options())
    return with_options(stack, options), options.assignments


def check_output(documents: list[dict[str, Any]], k8s_version: str) -> None:
    """What both generate and inject write is checked (unless --no-validate)."""
    from .validate import check_documents

    problems = check_documents(documents, k8s_version)
    if problems:
        raise ValidationFailed(problems)


def generate_manifest(request: GenerateRequest) -> tuple[str, list[str]]:
    """The generated YAML, and notes for stderr."""
    stack, assignments = build_stack(request)
    documents, notes = compose_with_notes(stack, Catalogue(request.catalogue), list(assignments))
    if request.validate:
        check_output(documents, stack.k8s_version)
    return HEADER + dump_documents(documents), notes
