"""What each `pattern` command does, as functions that return text and raise PatternError."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .catalogue import Catalogue
from .errors import ManifestError, UsageError
from .output import table
from .versions import DEFAULT_K8S_VERSION, parse_k8s_version
from .yamlio import (
    file_kind,
    iter_mappings,
    load_documents,
    read_text,
)

# Each command imports what only it needs where it runs (cold start: `pattern list` must not
# pay for jinja2, ruamel.yaml or the runner; benchmarks/generate_bench.py measures it).
if TYPE_CHECKING:
    from .catalogue import Pattern
    from .runner.plan import Publish
    from .sidecars import SidecarFlags

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


def example_command(pattern: Pattern) -> str:
    """A command that works as printed: flags only when the pattern can join a bare app, else
    its first shipped stack file (a pattern that watches the app's own mounts needs one)."""
    import shlex

    from .errors import PatternError
    from .generate import GenerateRequest, generate_manifest
    from .sidecars import SidecarFlags

    settings = []
    for key in pattern.required_parameters:
        example = pattern.parameter_properties[key]["examples"][0]
        text = example if isinstance(example, str) else json.dumps(example)
        settings.append(f"{pattern.name}.{key}={text}")
    words = ["pattern", "generate", "--name", "demo", "--app-image", "nginx:1.27-bookworm",
             "--with", pattern.name, *(w for s in settings for w in ("--set", s))]
    stacks = sorted((pattern.root / "examples").glob("*.stack.yaml"))
    if stacks:
        try:
            generate_manifest(GenerateRequest(
                name="demo", app_image="nginx:1.27-bookworm", validate=False,
                sidecars=SidecarFlags(with_=(pattern.name,), set_=tuple(settings)),
                catalogue=pattern.root.parent))
        except PatternError:
            words = ["pattern", "generate", "-f", str(stacks[0])]
    return shlex.join(words)


def show_pattern(name: str, output: str, root: Path | None) -> str:
    from .docs import parameter_rows

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
    from .compose import compose
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
        _check_runnable(obj, f"{source}: document {index}")
    return objects


def _check_runnable(obj: dict[str, Any], where: str) -> None:
    """What `run` translates must have the types Kubernetes gives it, and a pod's name becomes
    a folder of the state directory: refuse both before anything starts."""
    from .kinds import local_pod_name, pod_spec_of, pod_template_of
    from .runner.state import check_pod_name
    from .validate import schema_problems

    wrong = [p for p in schema_problems(obj, parse_k8s_version(DEFAULT_K8S_VERSION))
             if " is not of type " in p or "matches none of the allowed forms" in p]
    if wrong:
        raise ManifestError(f"{where} ({obj['kind']}): {wrong[0]}")
    pod_spec = pod_spec_of(obj)
    spec = pod_spec or {}
    for key in ("initContainers", "containers"):
        for position, container in enumerate(spec.get(key) or []):
            if not isinstance(container, dict) or not all(
                    isinstance(container.get(k), str) and container[k] for k in ("name", "image")):
                raise ManifestError(f"{where} ({obj['kind']}): {key}[{position}] is not a "
                                    "container with a name and an image")
    if pod_spec is not None and not spec.get("containers"):
        # The API server refuses it too; run would start a pod of its infra container only.
        raise ManifestError(f"{where} ({obj['kind']}): spec.containers is empty (a pod "
                            "needs at least one container)")
    if pod_template_of(obj) is not None:
        if not isinstance(obj["metadata"].get("name"), str):
            raise ManifestError(f"{where} ({obj['kind']}): has no metadata.name")
        check_pod_name(local_pod_name(obj))


def _parse_publish(items: list[str]) -> Publish:
    """`[IP:]HOST:CONTAINER`, as `docker run -p` takes it (IP defaults to 127.0.0.1)."""
    import ipaddress

    from .runner.plan import DEFAULT_BIND

    mapping: Publish = {}
    for item in items:
        parts = item.rsplit(":", 2)
        ip = parts[0].strip("[]") if len(parts) == 3 else DEFAULT_BIND
        host, container = parts[-2:] if len(parts) >= 2 else ("", "")
        try:
            valid = bool(ip) and ipaddress.ip_address(ip) is not None
        except ValueError:
            valid = False
        if not valid or not host.isdigit() or not container.isdigit() \
                or not 0 < int(host) < 65536 or not 0 < int(container) < 65536:
            raise UsageError(f"--publish {item!r}: expected [IP:]HOST:CONTAINER, e.g. 8080:3000 "
                             "or 0.0.0.0:8080:3000")
        mapping[int(container)] = (ip, int(host))
    return mapping


def _status_rows(pods: list[str]) -> list[list[str]]:
    from .runner.run import status

    return [[r.pod, r.container, r.role, r.state, r.ready, r.live, r.detail]
            for r in status(pods)]


def _status_table(pods: list[str]) -> str:
    return table(["POD", "CONTAINER", "ROLE", "STATE", "READY", "LIVE", "READINESS PROBE"],
                 _status_rows(pods))


def run_pods(path: str | None, *, wait: bool, timeout: float, publish: list[str], replace: bool,
             catalogue: Path | None, say: Any, runtime: str | None = None) -> str:
    from .runner import engines
    from .runner.run import documents_to_plans, up

    if path is None:
        raise UsageError("give a manifest or stack file (or '-' for stdin)")
    plans = documents_to_plans(load_runnable(path, catalogue), _parse_publish(publish))
    up(plans, wait=wait, timeout=timeout, replace=replace, say=say or (lambda _: None),
       runtime=engines.choose(runtime))
    return _status_table([p.name for p in plans])


def apply_pods(path: str | None, *, wait: bool, timeout: float, publish: list[str],
               catalogue: Path | None, say: Any, runtime: str | None = None) -> str:
    from .runner import engines
    from .runner.run import apply

    if path is None:
        raise UsageError("give a manifest or stack file (or '-' for stdin)")
    lines = apply(load_runnable(path, catalogue), _parse_publish(publish), wait=wait,
                  timeout=timeout, say=say or (lambda _: None),
                  engine=lambda: engines.choose(runtime))
    return "".join(line + "\n" for line in lines)


def _known_pods(runtime: str | None) -> list[str]:
    """Pods `pattern run` recorded; only those of one engine when one is named (--runtime or
    SIDECAR_PATTERNS_RUNTIME), all of them with auto."""
    from .runner import engines, state

    chosen = engines.chosen_name(runtime)
    known = []
    for name in state.known_pods():
        plan = state.load(name)  # None when another `pattern down` removed it meanwhile
        if plan is not None and chosen in {"auto", plan.runtime or "podman"}:
            known.append(name)
    return known


def pod_status(pods: list[str], output: str, runtime: str | None = None) -> str:
    names = pods or _known_pods(runtime)
    if output == "json":
        rows = _status_rows(names)
        keys = ["pod", "container", "role", "state", "ready", "live", "readiness_probe"]
        return json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=2) + "\n"
    if output != "table":
        raise UsageError(f"--output {output!r}: choose table or json")
    if not names:
        return "no pods started by pattern run\n"
    return _status_table(names)


def pod_logs(pod: str | None, container: str | None, *, follow: bool, tail: int | None,
             runtime: str | None = None) -> int:
    from .runner.run import logs

    if pod is None:
        known = _known_pods(runtime)
        if len(known) != 1:
            raise UsageError("name the pod with --pod (running: " + (", ".join(known) or "none")
                             + ")")
        pod = known[0]
    return logs(pod, container, follow=follow, tail=tail)


def stop_pods(targets: list[str], *, everything: bool, grace: int | None,
              catalogue: Path | None, say: Any, runtime: str | None = None) -> list[str]:
    """Pods by name or by the file they came from; a pod `pattern run` recorded stops on its
    own engine, one without a record (its state folder lost) on the chosen engine, where its
    labels find it."""
    from .runner import engines, state
    from .runner.run import documents_to_plans, down

    names: list[str] = []
    if everything:
        names = _known_pods(runtime)
        if engines.chosen_name(runtime) != "auto":
            names += [p for p in engines.choose(runtime).pods() if p not in names]
    for target in targets:
        if target == "-" or file_kind(target) == "file":
            names += [p.name for p in documents_to_plans(load_runnable(target, catalogue), {})]
        else:
            names.append(target)
    if not names and not everything:
        raise UsageError("name the pods (or files) to stop, or pass --all")
    for name in names:
        unrecorded = engines.choose(runtime) if state.load(name) is None else None
        down(name, grace=grace, say=say or (lambda _: None), runtime=unrecorded)
    return names


# ---------------------------------------------------------------- inject / uninject / new

@dataclass(frozen=True)
class InjectRequest:
    files: list[str]
    sidecars: SidecarFlags
    validate: bool = True
    catalogue: Path | None = None
    target: str | None = None


def _inject_parts(request: InjectRequest) -> tuple[Any, Any, list[Any], Any]:
    """The checked options, the target (if any), the parsed inputs and the catalogue."""
    from .inject import Target
    from .manifests import read_sources
    from .stack import options_from_flags

    options = options_from_flags(request.sidecars)
    if not options.requests:
        raise UsageError("name the sidecars to inject with --with PATTERN")
    target = Target.parse(request.target) if request.target is not None else None
    return options, target, read_sources(request.files), Catalogue(request.catalogue)


def inject_manifests(request: InjectRequest) -> tuple[str, list[str]]:
    """The injected stream and the notes for stderr (skips, warnings, a summary)."""
    from .generate import check_output
    from .inject import inject

    options, target, sources, catalogue = _inject_parts(request)
    result = inject(sources, options, catalogue, target)
    if request.validate:
        check_output(result.written, options.k8s_version)
    return result.text, result.notes


def inject_component(request: InjectRequest, folder: Path | None, *,
                     force: bool) -> tuple[list[Path], list[str]]:
    """`inject -o kustomize-component`: the component's files written into `folder`."""
    from .component import MARKER, kustomize_component
    from .generate import check_output
    from .yamlio import write_folder

    if request.target is None:
        raise UsageError("-o kustomize-component: name the workload with --target KIND/NAME")
    if folder is None:
        raise UsageError("-o kustomize-component: name the component's folder with --output-dir "
                         "DIR")
    options, target, sources, catalogue = _inject_parts(request)
    component = kustomize_component(sources, options, catalogue, target)
    if request.validate:
        check_output(component.written, options.k8s_version)
    paths = write_folder(folder, component.files, marker=MARKER, force=force,
                         inputs=request.files)
    return paths, component.notes


def uninject_manifests(files: list[str]) -> tuple[str, list[str]]:
    from .inject import uninject
    from .manifests import read_sources

    result = uninject(read_sources(files))
    return result.text, result.notes


def new_pattern(name: str, *, image: str | None, root: Path | None) -> list[Path]:
    from .scaffold import new_pattern as scaffold

    return scaffold(name, image=image, root=root)


# ---------------------------------------------------------------- diagram

def diagram(path: str, fmt: str, root: Path | None) -> bytes:
    """The pods of a manifest or stack file drawn as SVG or PNG."""
    from .diagram import render

    if fmt not in {"svg", "png"}:
        raise UsageError(f"{fmt!r}: diagrams are svg or png")
    return render(load_runnable(path, root), fmt)
