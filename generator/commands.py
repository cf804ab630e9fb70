"""What each `pattern` command does, as functions that return text and raise PatternError."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import schema
from .catalogue import Catalogue, Pattern
from .compose import compose
from .errors import ManifestError, PatternError, UsageError, ValidationFailed
from .output import table
from .stack import (
    DEFAULT_K8S_VERSION,
    KINDS,
    SIDECAR_MODES,
    SidecarRequest,
    Stack,
    load_stack,
    parse_k8s_version,
    with_sidecars,
)
from .values import parse_assignment
from .yamlio import (
    HEADER,
    dump_documents,
    iter_mappings,
    load_documents,
    read_text,
    write_atomically,
)

# ---------------------------------------------------------------- list / show

def list_patterns(output: str, root: Path | None) -> str:
    patterns = Catalogue(root).all()
    if output == "json":
        return json.dumps([
            {"name": p.name, "version": p.version, "summary": p.summary,
             "images": sorted(p.images.values())}
            for p in patterns
        ], indent=2) + "\n"
    if output != "table":
        raise UsageError(f"--output {output!r}: choose table or json")
    rows = [[p.name, p.version, p.summary, ", ".join(sorted(p.images.values()))] for p in patterns]
    return table(["NAME", "VERSION", "SUMMARY", "IMAGES"], rows)


def parameter_rows(pattern: Pattern) -> list[dict[str, str]]:
    """One row per parameter, as the README tables and `show` print them."""
    rows = []
    for key, prop in pattern.parameter_properties.items():
        kind = prop["type"] if isinstance(prop["type"], str) else " or ".join(prop["type"])
        if "format" in prop:
            kind += f" ({prop['format']})"
        rows.append({
            "name": key,
            "type": kind,
            "default": "required" if key in pattern.required_parameters else
            json.dumps(prop.get("default")) if "default" in prop else "",
            "description": " ".join(prop["description"].split()),
            "example": json.dumps(prop["examples"][0]),
        })
    return rows


def example_command(pattern: Pattern) -> str:
    words = ["pattern", "generate", "--name", "demo", "--app-image", "nginx:1.27-bookworm",
             "--with", pattern.name]
    for key in pattern.required_parameters:
        example = pattern.parameter_properties[key]["examples"][0]
        text = example if isinstance(example, str) else json.dumps(example)
        words += ["--set", f"{pattern.name}.{key}={text}"]
    return shlex.join(words)


def show_pattern(name: str, output: str, root: Path | None) -> str:
    pattern = Catalogue(root).get(name)
    if output == "json":
        return json.dumps({
            "name": pattern.name, "version": pattern.version, "summary": pattern.summary,
            "description": pattern.description, "images": pattern.images,
            "parameters": pattern.parameters, "example": example_command(pattern),
        }, indent=2) + "\n"
    if output != "text":
        raise UsageError(f"--output {output!r}: choose text or json")
    rows = [[r["name"], r["type"], r["default"], r["description"]] for r in parameter_rows(pattern)]
    parts = [
        f"{pattern.name} {pattern.version}: {pattern.summary}\n\n",
        pattern.description.rstrip() + "\n\n",
        "Images: " + ", ".join(sorted(pattern.images.values())) + "\n",
    ]
    for need in pattern.volumes:
        where = f" (app mounts it at the {need.app_mount_parameter} parameter)" \
            if need.app_mount_parameter else " (sidecar only)"
        parts.append(f"Volume {need.name}: {need.role}{where}\n")
    for port in pattern.ports:
        number = f"parameter {port.parameter}" if port.parameter else str(port.port)
        parts.append(f"Port {port.name} ({number}): {port.role}\n")
    parts += ["\nParameters:\n", table(["NAME", "TYPE", "DEFAULT", "DESCRIPTION"], rows)]
    parts += ["\nExample:\n  ", example_command(pattern), "\n"]
    return "".join(parts)


# ---------------------------------------------------------------- generate

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
    patterns: list[str] = field(default_factory=list)
    assignments: list[str] = field(default_factory=list)
    kind: str | None = None
    replicas: int | None = None
    schedule: str | None = None
    namespace: str | None = None
    k8s_version: str | None = None
    sidecar_mode: str | None = None
    image_registry: str | None = None
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
        for port in request.app_ports:
            if not 1 <= port <= 65535:
                raise UsageError(f"--app-port {port}: must be between 1 and 65535")
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


def build_stack(request: GenerateRequest) -> Stack:
    """The stack file (if any) with command-line flags on top, as kubectl-style tools do."""
    if request.file:
        stack = load_stack(request.file)
    else:
        if not request.name or not request.app_image:
            raise UsageError("give --name and --app-image, or a stack file with -f")
        stack = Stack(name=request.name, app={})
    overrides: dict[str, Any] = {"app": _app_from_flags(request, stack.app)}
    if request.name:
        if schema.validate(request.name, {"type": "string", "format": "dns-label"}, "--name"):
            raise UsageError(f"--name {request.name!r}: must be a DNS label "
                             "(lowercase letters, digits and '-', at most 63)")
        overrides["name"] = request.name
    if request.kind is not None:
        if request.kind not in KINDS:
            raise UsageError(f"--kind {request.kind!r}: choose one of {', '.join(KINDS)}")
        overrides["kind"] = request.kind
    if request.sidecar_mode is not None:
        if request.sidecar_mode not in SIDECAR_MODES:
            raise UsageError(f"--sidecar-mode {request.sidecar_mode!r}: choose one of "
                             f"{', '.join(SIDECAR_MODES)}")
        overrides["sidecar_mode"] = request.sidecar_mode
    for key in ("replicas", "schedule", "namespace", "k8s_version", "image_registry"):
        if getattr(request, key) is not None:
            overrides[key] = getattr(request, key)
    stack = replace(stack, **overrides)
    parse_k8s_version(stack.k8s_version)
    return with_sidecars(stack, request.patterns)


def generate_manifest(request: GenerateRequest) -> str:
    stack = build_stack(request)
    assignments = [parse_assignment(text) for text in request.assignments]
    documents = compose(stack, Catalogue(request.catalogue), assignments)
    if request.validate:
        from .validate import check_documents

        problems = check_documents(documents, stack.k8s_version)
        if problems:
            raise ValidationFailed(problems)
    return HEADER + dump_documents(documents)


def write_output(path: Path, text: str, *, force: bool, inputs: list[str]) -> None:
    """Write generated YAML, never clobbering a file the user wrote by hand."""
    if any(i != "-" and Path(i).resolve() == path.resolve() for i in inputs):
        raise UsageError(f"--output {path}: is also the input file")
    if path.is_dir():
        raise UsageError(f"--output {path}: is a directory")
    if path.exists() and not force:
        with path.open(encoding="utf-8", errors="replace") as handle:
            first = handle.readline()
        if first != HEADER.splitlines(keepends=True)[0]:
            raise PatternError(
                f"--output {path}: exists and was not written by pattern generate; "
                "pass --force to replace it"
            )
    try:
        write_atomically(path, text)
    except OSError as error:
        raise PatternError(f"--output {path}: cannot write: {error.strerror}") from None


# ---------------------------------------------------------------- validate

def validate_files(files: list[str], k8s_version: str) -> tuple[list[str], int]:
    from .validate import check_object

    parse_k8s_version(k8s_version)
    problems: list[str] = []
    count = 0
    for path in files:
        text, source = read_text(path)
        documents = load_documents(text, source)
        for _, obj in iter_mappings(documents):
            count += 1
            problems += [f"{source}: {p}" for p in check_object(obj, k8s_version)]
        for index, doc in enumerate(documents, start=1):
            if not isinstance(doc, dict):
                problems.append(f"{source}: document {index} is not a mapping")
    if count == 0 and not problems:
        raise ManifestError("no Kubernetes objects found in " + ", ".join(files))
    return problems, count


# ---------------------------------------------------------------- run / status / logs / down

def load_runnable(path: str, root: Path | None) -> list[dict[str, Any]]:
    """Kubernetes documents from a manifest, or generated from a stack file."""
    from .stack import stack_from_dict

    text, source = read_text(path)
    documents = load_documents(text, source)
    if len(documents) == 1 and isinstance(documents[0], dict) \
            and documents[0].get("kind") == "Stack":
        stack = stack_from_dict(documents[0], source)
        return compose(stack, Catalogue(root), [])
    objects = [obj for _, obj in iter_mappings(documents)]
    if len(objects) != len(documents) and not any(
            isinstance(d, dict) and d.get("kind") == "List" for d in documents):
        raise ManifestError(f"{source}: every document must be a Kubernetes object")
    for index, obj in enumerate(objects, start=1):
        if not isinstance(obj.get("kind"), str) or not isinstance(obj.get("metadata"), dict):
            raise ManifestError(f"{source}: document {index} has no kind or metadata")
    return objects


def _parse_publish(items: list[str]) -> dict[int, int]:
    mapping: dict[int, int] = {}
    for item in items:
        host, sep, container = item.partition(":")
        if not sep or not host.isdigit() or not container.isdigit():
            raise UsageError(f"--publish {item!r}: expected HOST:CONTAINER ports, e.g. 8080:3000")
        mapping[int(container)] = int(host)
    return mapping


def _status_rows(pods: list[str]) -> list[list[str]]:
    from .runner.run import status

    return [[r.pod, r.container, r.role, r.state, r.ready, r.live, r.detail]
            for r in status(pods)]


def _status_table(pods: list[str]) -> str:
    return table(["POD", "CONTAINER", "ROLE", "STATE", "READY", "LIVE", "READINESS PROBE"],
                 _status_rows(pods))


def run_pods(path: str | None, *, wait: bool, timeout: float, publish: list[str], replace: bool,
             catalogue: Path | None, say: Any) -> str:
    from .runner.run import documents_to_plans, up

    if path is None:
        raise UsageError("give a manifest or stack file (or '-' for stdin)")
    plans = documents_to_plans(load_runnable(path, catalogue), _parse_publish(publish))
    up(plans, wait=wait, timeout=timeout, replace=replace, say=say or (lambda _: None))
    return _status_table([p.name for p in plans])


def pod_status(pods: list[str], output: str) -> str:
    from .runner import state

    # Listing everything tolerates a pod another `pattern down` removes meanwhile.
    names = pods or [p for p in state.known_pods() if state.load(p) is not None]
    if output == "json":
        rows = _status_rows(names)
        keys = ["pod", "container", "role", "state", "ready", "live", "readiness_probe"]
        return json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=2) + "\n"
    if output != "table":
        raise UsageError(f"--output {output!r}: choose table or json")
    if not names:
        return "no pods started by pattern run\n"
    return _status_table(names)


def pod_logs(pod: str | None, container: str | None, *, follow: bool, tail: int | None) -> int:
    from .runner import state
    from .runner.run import logs

    if pod is None:
        known = state.known_pods()
        if len(known) != 1:
            raise UsageError("name the pod with --pod (running: " + (", ".join(known) or "none")
                             + ")")
        pod = known[0]
    return logs(pod, container, follow=follow, tail=tail)


def stop_pods(targets: list[str], *, everything: bool, grace: int | None,
              catalogue: Path | None, say: Any) -> list[str]:
    from .runner import state
    from .runner.run import documents_to_plans, down

    names: list[str] = []
    if everything:
        names = state.known_pods()
    for target in targets:
        if target == "-" or Path(target).is_file():
            names += [p.name for p in documents_to_plans(load_runnable(target, catalogue), {})]
        else:
            names.append(target)
    if not names and not everything:
        raise UsageError("name the pods (or files) to stop, or pass --all")
    for name in names:
        down(name, grace=grace, say=say or (lambda _: None))
    return names


# ---------------------------------------------------------------- inject / uninject / new

def parse_with(items: list[str]) -> tuple[SidecarRequest, ...]:
    """`--with PATTERN` or `--with NAME=PATTERN` (a sidecar named otherwise than its pattern)."""
    requests: list[SidecarRequest] = []
    for item in items:
        name, sep, pattern = item.partition("=")
        if not sep:
            name = pattern = item
        if schema.validate(name, {"type": "string", "format": "dns-label"}, "--with"):
            raise UsageError(f"--with {item!r}: the sidecar name must be a DNS label")
        if name in {r.name for r in requests}:
            raise UsageError(f"--with {item!r}: a sidecar is already named {name!r}; "
                             "name one otherwise with --with NAME=PATTERN")
        requests.append(SidecarRequest(pattern=pattern, name=name))
    return tuple(requests)


@dataclass(frozen=True)
class InjectRequest:
    files: list[str]
    patterns: list[str]
    assignments: list[str] = field(default_factory=list)
    container: str | None = None
    k8s_version: str = DEFAULT_K8S_VERSION
    sidecar_mode: str = "auto"
    image_registry: str | None = None
    catalogue: Path | None = None


def inject_manifests(request: InjectRequest) -> tuple[str, list[str]]:
    """The injected stream and the notes for stderr (skips, warnings, a summary)."""
    from .inject import InjectOptions, inject, read_sources

    parse_k8s_version(request.k8s_version)
    if request.sidecar_mode not in SIDECAR_MODES:
        raise UsageError(f"--sidecar-mode {request.sidecar_mode!r}: choose one of "
                         f"{', '.join(SIDECAR_MODES)}")
    options = InjectOptions(
        requests=parse_with(request.patterns),
        assignments=tuple(parse_assignment(text) for text in request.assignments),
        container=request.container, k8s_version=request.k8s_version,
        sidecar_mode=request.sidecar_mode, image_registry=request.image_registry,
    )
    result = inject(read_sources(request.files), options, Catalogue(request.catalogue))
    return result.text, result.notes


def uninject_manifests(files: list[str]) -> tuple[str, list[str]]:
    from .inject import read_sources, uninject

    result = uninject(read_sources(files))
    return result.text, result.notes


def write_manifest(path: Path, text: str) -> None:
    """Write a manifest atomically: readers see the old or the new file, never half of one."""
    if path.is_dir():
        raise UsageError(f"--output {path}: is a directory")
    try:
        write_atomically(path, text)
    except OSError as error:
        raise PatternError(f"--output {path}: cannot write: {error.strerror}") from None


def new_pattern(name: str, *, image: str | None, root: Path | None) -> list[Path]:
    from .scaffold import new_pattern as scaffold

    return scaffold(name, image=image, root=root)
