"""`pattern inject` and `pattern uninject`: catalogue sidecars in manifests users already have.

The stream is split at its `---` lines and each document is parsed on its own with ruamel.yaml's
round-trip loader, so a document we do not change is written back as the very bytes we read,
and one we change keeps its comments, key order and quoting. What inject adds to a pod template
is recorded in one annotation on it; uninject removes exactly what that record names and puts
back the annotations it changed, so `uninject(inject(x)) == x`. Re-injecting first takes away
the old injection and then adds the sidecars again, which makes inject idempotent and lets new
values replace old ones in place.
"""

from __future__ import annotations

import io
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarstring import LiteralScalarString

from .catalogue import Catalogue
from .compose import PATTERNS_ANNOTATION, PodParts, add_sidecars
from .errors import ManifestError, PatternError, UsageError
from .stack import DEFAULT_K8S_VERSION, SidecarRequest, Stack
from .values import Assignment
from .workloads import pod_template_of

INJECT_ANNOTATION = "sidecar-patterns.io/inject"  # "false" on an object or its pod: skip it
APP_ANNOTATION = "sidecar-patterns.io/app-container"  # the app container, when not the first
RECORD_ANNOTATION = "sidecar-patterns.io/injected"  # what inject added, for an exact uninject
OWNER_ANNOTATION = "sidecar-patterns.io/injected-for"  # on objects inject added: their workload

# Pod-bearing kinds and the API groups they belong to: a CRD that reuses a kind name in another
# group (an Argo `Rollout` is fine, a `Deployment` of example.com is not ours) passes through.
POD_KINDS: dict[str, frozenset[str]] = {
    "Pod": frozenset({""}),
    "Deployment": frozenset({"apps", "extensions"}),
    "StatefulSet": frozenset({"apps"}),
    "DaemonSet": frozenset({"apps", "extensions"}),
    "ReplicaSet": frozenset({"apps", "extensions"}),
    "ReplicationController": frozenset({""}),
    "Job": frozenset({"batch"}),
    "CronJob": frozenset({"batch"}),
}
JOB_KINDS = frozenset({"Job", "CronJob"})
_DOC_START = re.compile(r"---(?:[ \t].*)?\r?\n?")
_DOC_END = re.compile(r"^\.\.\.(?:[ \t].*)?$", re.MULTILINE)
_DOC_MARKER = re.compile(r"---[ \t]*(?:#.*)?\r?\n")
_BLOCK_KEY = re.compile(r"( *)[^\s#\-][^#]*:[ \t]*(?:#.*)?")


class InjectError(ManifestError):
    """A manifest cannot be injected or uninjected as asked; the message names the document."""


# ---------------------------------------------------------------- the YAML stream

@dataclass
class Document:
    """One `---`-separated part of an input, kept verbatim until it changes."""

    source: str
    index: int  # 1-based among the source's documents; 0 for comment-only parts
    line: int  # 1-based line of its first line in the source
    text: str
    data: Any = None
    changed: bool = False
    removed: bool = False
    before: list[Any] = field(default_factory=list)  # new documents to write before this one
    items_before: dict[int, list[Any]] = field(default_factory=dict)  # same, in a List's items
    items_removed: set[int] = field(default_factory=set)

    @property
    def header(self) -> str:
        """Its opening `---` line, or ""."""
        return self.text.split("\n", 1)[0] + "\n" if self.text.startswith("---") else ""

    def where(self) -> str:
        return f"{self.source}: document {self.index} (line {self.line})"


def _is_blank(text: str) -> bool:
    """Only comments, directives, markers and blank lines: no document."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith(("#", "%")) and stripped not in {"---", "..."}:
            return False
    return True


def split_stream(text: str, source: str) -> list[Document]:
    """The parts of a stream, cut before each `---` line (a marker no scalar may contain)."""
    parts: list[tuple[int, list[str]]] = [(1, [])]
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        if _DOC_START.fullmatch(line) and parts[-1][1]:
            parts.append((number, []))
        parts[-1][1].append(line)
    documents = []
    index = 0
    for line_number, lines in parts:
        chunk = "".join(lines)
        if not chunk:
            continue
        blank = _is_blank(chunk)
        index += 0 if blank else 1
        documents.append(Document(source, 0 if blank else index, line_number, chunk))
    return documents


def _indentation(text: str) -> tuple[int, int]:
    """(mapping indent, sequence dash offset) as the document writes them; (2, 2) by default."""
    mapping: int | None = None
    offset: int | None = None
    opener: int | None = None  # indent of the last `key:` line that opens a block
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        indent = len(line) - len(stripped)
        if opener is not None and indent >= opener:
            if stripped.startswith("- ") or stripped == "-":
                offset = indent - opener if offset is None else offset
            elif indent > opener:
                mapping = indent - opener if mapping is None else mapping
        if mapping is not None and offset is not None:
            break
        match = _BLOCK_KEY.fullmatch(line)
        opener = len(match.group(1)) if match else None
    return mapping or 2, 2 if offset is None else offset


@cache
def _yaml(mapping: int, offset: int) -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 1 << 20  # never fold a long line the user wrote on one line
    yaml.indent(mapping=mapping, sequence=offset + 2, offset=offset)
    return yaml


def parse(document: Document) -> None:
    """Load a document's data; errors name its index and line."""
    if document.index == 0:
        return
    try:
        document.data = _yaml(2, 2).load(document.text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = document.line + (mark.line if mark is not None else 0)
        problem = error.problem or error.context or "unreadable"
        raise InjectError(f"{document.source}: document {document.index} (line {line}): "
                          f"not valid YAML: {problem}") from None
    except YAMLError as error:
        raise InjectError(f"{document.where()}: not valid YAML: {error}") from None
    if not isinstance(document.data, dict) or not isinstance(document.data.get("kind"), str):
        raise InjectError(f"{document.where()}: not a Kubernetes object (it has no kind)")


def _dump(data: Any, like: str) -> str:
    """Dump a changed document in the indentation, line endings and final newline of `like`."""
    stream = io.StringIO()
    _yaml(*_indentation(like)).dump(data, stream)
    text = stream.getvalue()
    if "\r\n" in like:
        text = text.replace("\n", "\r\n")
    return text if like.endswith("\n") else text.rstrip("\r\n")


def _new_document(obj: dict[str, Any]) -> str:
    stream = io.StringIO()
    _yaml(2, 2).dump(obj, stream)
    return stream.getvalue()


def _rebuild_list(doc: Document) -> None:
    items = doc.data["items"]
    rebuilt = []
    for position, item in enumerate(items):
        rebuilt += doc.items_before.get(position, [])
        if position not in doc.items_removed:
            rebuilt.append(item)
    items[:] = rebuilt


def render_stream(documents: list[Document]) -> str:
    """The documents as one stream: untouched ones verbatim, changed ones dumped again.

    The first document written has a `---` line only if the input's first one had; every
    later one has one. So inserting an object before a bare first document, then removing
    it, gives back the input's bytes.
    """
    bare = next((not d.header for d in documents if d.index), True)
    out: list[str] = []
    first = True

    def header_for(own: str) -> str:
        return "" if first and bare else own or "---\n"

    for doc in documents:
        for obj in doc.before:
            out.append(header_for("") + _new_document(obj))
            first = False
        if doc.removed:
            continue
        if not doc.index:
            out.append(doc.text)
            continue
        header = header_for(doc.header)
        body = doc.text[len(doc.header):]
        if doc.items_before or doc.items_removed:
            _rebuild_list(doc)
        if doc.changed:
            # ruamel drops a `...` end marker and what follows it: keep them as written
            end = _DOC_END.search(body)
            tail = body[end.start():] if end else ""
            out.append(header + _dump(doc.data, body[: len(body) - len(tail)]) + tail)
        elif header == doc.header or not _DOC_MARKER.fullmatch(doc.header):
            out.append(doc.text)  # as read; a `--- content` line stays as written too
        else:
            out.append(header + body)
        first = False
    return "".join(out)


# ---------------------------------------------------------------- objects in the stream

@dataclass
class Slot:
    """A Kubernetes object and where it sits: a document, or an item of a List document."""

    document: Document
    obj: dict[str, Any]
    item: int | None = None  # index in the List's items

    def label(self) -> str:
        meta = _metadata(self.obj)
        name = meta.get("name") or meta.get("generateName") or "?"
        what = f"{self.obj.get('kind')}/{name}"
        inner = f" item {self.item + 1}" if self.item is not None else ""
        return f"{self.document.source}: document {self.document.index}{inner} ({what})"


def _slots(documents: list[Document]) -> Iterator[Slot]:
    for doc in documents:
        if doc.data is None:
            continue
        if doc.data.get("kind") == "List" and isinstance(doc.data.get("items"), list):
            for position, item in enumerate(doc.data["items"]):
                if not isinstance(item, dict) or not isinstance(item.get("kind"), str):
                    raise InjectError(f"{doc.where()}: items[{position}] has no kind")
                yield Slot(doc, item, position)
        else:
            yield Slot(doc, doc.data)


def _group(api_version: Any) -> str:
    text = str(api_version or "")
    return text.split("/", 1)[0] if "/" in text else ""


def _metadata(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def _annotations(meta: dict[str, Any]) -> dict[str, Any]:
    found = meta.get("annotations")
    return found if isinstance(found, dict) else {}


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    meta = _metadata(obj)
    return str(obj.get("kind")), str(meta.get("namespace") or ""), str(meta.get("name") or "")


def _owner_text(obj: dict[str, Any]) -> str:
    kind, namespace, name = _key(obj)
    return f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"


def pod_template(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template of a pod-bearing object of a core API group, else None (a CRD that
    happens to be called Deployment passes through)."""
    kind = obj.get("kind")
    if kind not in POD_KINDS or _group(obj.get("apiVersion")) not in POD_KINDS[str(kind)]:
        return None
    return pod_template_of(obj)


# ---------------------------------------------------------------- the record

@dataclass
class Record:
    """What inject added to one pod template (and the annotations' values before it)."""

    sidecars: list[dict[str, Any]] = field(default_factory=list)
    app: str = ""
    containers: list[str] = field(default_factory=list)
    init_containers: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    mounts: list[str] = field(default_factory=list)
    objects: list[dict[str, str]] = field(default_factory=list)
    annotations: dict[str, str | None] = field(default_factory=dict)
    created: dict[str, str] = field(default_factory=dict)  # key -> "absent" or "null"

    def to_json(self) -> str:
        return json.dumps({
            "sidecars": self.sidecars, "app": self.app, "containers": self.containers,
            "initContainers": self.init_containers, "volumes": self.volumes,
            "mounts": self.mounts, "objects": self.objects, "annotations": self.annotations,
            "created": self.created,
        }, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: Any, where: str) -> Record:
        try:
            data = json.loads(str(text))
            return cls(
                sidecars=[dict(s) for s in data["sidecars"]], app=str(data["app"]),
                containers=list(data["containers"]),
                init_containers=list(data["initContainers"]), volumes=list(data["volumes"]),
                mounts=list(data["mounts"]), objects=list(data["objects"]),
                annotations=dict(data["annotations"]), created=dict(data["created"]),
            )
        except (ValueError, KeyError, TypeError):
            raise InjectError(f"{where}: annotation {RECORD_ANNOTATION} is not a record "
                              "pattern inject wrote (edited by hand?)") from None


def read_record(template: dict[str, Any], where: str) -> Record | None:
    text = _annotations(_metadata(template)).get(RECORD_ANNOTATION)
    return None if text is None else Record.from_json(text, where)


# ---------------------------------------------------------------- removing (uninject)

def _remove_named(items: Any, names: list[str]) -> None:
    if isinstance(items, list):
        for position in reversed(range(len(items))):
            item = items[position]
            if isinstance(item, dict) and item.get("name") in names:
                del items[position]


def _containers(spec: dict[str, Any]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    for key in ("initContainers", "containers"):
        for position, container in enumerate(spec.get(key) or []):
            if isinstance(container, dict):
                yield key, position, container


def _drop_if_created(mapping: dict[str, Any], key: str, how: str | None) -> None:
    if how is None or key not in mapping or mapping[key]:
        return
    if how == "absent":
        del mapping[key]
    else:
        mapping[key] = None


def remove_injection(template: dict[str, Any], record: Record) -> None:
    """Take away exactly what the record names, and restore the annotations it changed."""
    spec = template["spec"]
    _remove_named(spec.get("containers"), record.containers)
    _remove_named(spec.get("initContainers"), record.init_containers)
    _remove_named(spec.get("volumes"), record.volumes)
    for _, _, container in _containers(spec):
        if container.get("name") == record.app:
            _remove_named(container.get("volumeMounts"), record.mounts)
            _drop_if_created(container, "volumeMounts", record.created.get("volumeMounts"))
    meta = template["metadata"]
    annotations = meta["annotations"]
    del annotations[RECORD_ANNOTATION]
    for key, before in record.annotations.items():
        if before is None:
            annotations.pop(key, None)
        else:
            annotations[key] = before
    _drop_if_created(spec, "initContainers", record.created.get("initContainers"))
    _drop_if_created(spec, "volumes", record.created.get("volumes"))
    _drop_if_created(meta, "annotations", record.created.get("annotations"))
    _drop_if_created(template, "metadata", record.created.get("metadata"))


# ---------------------------------------------------------------- adding (inject)

@dataclass(frozen=True)
class InjectOptions:
    """What the command line asks for, the same for every document."""

    requests: tuple[SidecarRequest, ...]
    assignments: tuple[Assignment, ...] = ()
    container: str | None = None
    k8s_version: str = DEFAULT_K8S_VERSION
    sidecar_mode: str = "auto"
    image_registry: str | None = None


def _plain(node: Any) -> Any:
    """ruamel's commented nodes and scalar subclasses as plain Python data."""
    if isinstance(node, dict):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if isinstance(node, bool) or node is None:
        return node
    for kind in (str, int, float):
        if isinstance(node, kind):
            return kind(node)
    return node


def _readable(node: Any) -> Any:
    """New content as it reads best: multi-line text as literal blocks, like generate writes."""
    if isinstance(node, dict):
        return {k: _readable(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_readable(v) for v in node]
    if isinstance(node, str) and "\n" in node and not node.startswith((" ", "\n")) and all(
        line == line.rstrip() for line in node.split("\n")
    ) and all(c == "\n" or 0x20 <= ord(c) < 0x7F or ord(c) >= 0xA0 for c in node):
        return LiteralScalarString(node)
    return node


def _set_key(mapping: dict[str, Any], key: str, value: Any, before: str | None = None) -> str:
    """Give `mapping[key]` a value of its own; how it was before: "", "absent" or "null"."""
    if key in mapping and mapping[key] is not None:
        return ""
    how = "null" if key in mapping else "absent"
    position = None
    if how == "absent" and isinstance(mapping, CommentedMap):
        # where a reader looks for it: initContainers before containers, metadata first
        position = list(mapping).index(before) if before in mapping else \
            0 if key == "metadata" else None
    if position is not None and isinstance(mapping, CommentedMap):
        mapping.insert(position, key, value)
    else:
        mapping[key] = value
    return how


def _app_container(spec: dict[str, Any], template: dict[str, Any], options: InjectOptions,
                   where: str) -> tuple[int, dict[str, Any]]:
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        raise InjectError(f"{where}: the pod has no containers")
    wanted = options.container or _annotations(_metadata(template)).get(APP_ANNOTATION)
    if wanted is None:
        return 0, containers[0]
    for position, container in enumerate(containers):
        if isinstance(container, dict) and container.get("name") == wanted:
            return position, container
    names = ", ".join(str(c.get("name")) for c in containers if isinstance(c, dict))
    raise InjectError(f"{where}: the pod has no container {wanted!r} (it has: {names})")


def _desired(record: Record | None, options: InjectOptions) -> tuple[SidecarRequest, ...]:
    """Sidecars the pod ends with: those injected before keep their values, named ones are new."""
    named = {r.name: r for r in options.requests}
    kept = []
    for entry in record.sidecars if record else []:
        name = str(entry["name"])
        if name in named:
            kept.append(named.pop(name))
        else:
            kept.append(SidecarRequest(str(entry["pattern"]), name, dict(entry["values"])))
    return (*kept, *(r for r in options.requests if r.name in named))


def _repository(image: Any) -> str:
    text = str(image or "").split("@", 1)[0]
    last = text.rsplit("/", 1)[-1]
    return text[: len(text) - len(last)] + last.split(":", 1)[0]


def _conflicts(spec: dict[str, Any], template: dict[str, Any], parts: PodParts,
               desired: tuple[SidecarRequest, ...], catalogue: Catalogue, prefix: str,
               where: str) -> None:
    """One clear error for the first thing already in the pod that the sidecars would clash with."""
    new_names = {c["name"] for c in parts.sidecars + parts.one_shot}
    for key, position, container in _containers(spec):
        if container.get("name") in new_names:
            raise InjectError(
                f"{where}: {prefix}{key}[{position}].name: the pod already has a container "
                f"named {container['name']!r} that pattern inject did not add (name the sidecar "
                f"otherwise with --with OTHER={container['name']})")
    for position, volume in enumerate(spec.get("volumes") or []):
        if isinstance(volume, dict) and volume.get("name") in {v["name"] for v in parts.volumes}:
            raise InjectError(f"{where}: {prefix}volumes[{position}].name: the pod already has a "
                              f"volume named {volume['name']!r} that pattern inject did not add")
    owners: dict[tuple[Any, str], str] = {}
    for key, position, container in _containers(spec):
        if key == "initContainers" and container.get("restartPolicy") != "Always":
            continue  # runs alone, before the others
        for number, port in enumerate(container.get("ports") or []):
            field_path = f"{prefix}{key}[{position}].ports[{number}].containerPort"
            owners[(port.get("containerPort"), str(port.get("protocol", "TCP")))] = field_path
    for sidecar in parts.sidecars:
        for port in sidecar.get("ports") or []:
            taken = owners.get((port.get("containerPort"), str(port.get("protocol", "TCP"))))
            if taken:
                raise InjectError(
                    f"{where}: {taken}: port {port['containerPort']} is also the port of sidecar "
                    f"{sidecar['name']!r} (containers in a pod share one network namespace; "
                    "choose another with --set)")
            owners[(port.get("containerPort"), str(port.get("protocol", "TCP")))] = sidecar["name"]
    listed = str(_annotations(_metadata(template)).get(PATTERNS_ANNOTATION) or "")
    entries = [item.partition("=") for item in listed.split(",") if item]
    present = {pattern.split("@", 1)[0] for _, _, pattern in entries}
    known = {name for name, _, _ in entries}  # sidecars `pattern generate` added, by name
    for request in desired:
        if request.pattern in present:
            raise InjectError(
                f"{where}: metadata.annotations[{PATTERNS_ANNOTATION}]: the pod already has a "
                f"{request.pattern} sidecar that pattern inject did not add")
        repositories = {_repository(i) for i in catalogue.get(request.pattern).images.values()}
        for key, position, container in _containers(spec):
            if container.get("name") not in known and \
                    _repository(container.get("image")) in repositories:
                raise InjectError(
                    f"{where}: {prefix}{key}[{position}].image: container "
                    f"{container.get('name')!r} already runs {request.pattern}'s image; "
                    "pattern inject did not add it (remove it, or leave the pod as it is)")


def _apply(template: dict[str, Any], spec: CommentedMap, app_position: int, parts: PodParts,
           record: Record) -> None:
    """Add the sidecars' containers, volumes, mounts and annotations; record each addition."""
    created: dict[str, str] = {}
    front = parts.sidecars if parts.native else parts.one_shot
    if front:
        created["initContainers"] = _set_key(spec, "initContainers", [], before="containers")
        for position, container in enumerate(front):
            spec["initContainers"].insert(position, _readable(container))
    if not parts.native:
        spec["containers"].extend(_readable(c) for c in parts.sidecars)
    if parts.volumes:
        created["volumes"] = _set_key(spec, "volumes", [])
        spec["volumes"].extend(_readable(v) for v in parts.volumes)
    app = spec["containers"][app_position]
    known = {m.get("name") for m in app.get("volumeMounts") or []}
    mounts = [m for m in parts.app.get("volumeMounts") or [] if m["name"] not in known]
    if mounts:
        created["volumeMounts"] = _set_key(app, "volumeMounts", [])
        app["volumeMounts"].extend(mounts)
    created["metadata"] = _set_key(template, "metadata", CommentedMap())
    meta = template["metadata"]
    created["annotations"] = _set_key(meta, "annotations", CommentedMap())
    annotations = meta["annotations"]
    for key, ours in parts.annotations.items():
        before = annotations.get(key)
        record.annotations[key] = None if before is None else str(before)
        annotations[key] = f"{before},{ours}" if before else ours
    record.containers = [] if parts.native else [c["name"] for c in parts.sidecars]
    record.init_containers = [c["name"] for c in front]
    record.volumes = [v["name"] for v in parts.volumes]
    record.app = str(app.get("name"))
    record.mounts = [m["name"] for m in mounts]
    record.created = {k: v for k, v in created.items() if v}
    annotations[RECORD_ANNOTATION] = record.to_json()


@dataclass
class Outcome:
    """What happened to one object: the objects to write before it, and notes for stderr."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    changed: bool = False
    injected: bool = False


def inject_object(slot: Slot, options: InjectOptions, catalogue: Catalogue,
                  taken: set[tuple[str, str, str]]) -> Outcome:
    """Inject the sidecars into one pod-bearing object (in place)."""
    obj = slot.obj
    template = pod_template(obj)
    outcome = Outcome()
    if template is None:
        return outcome
    where = slot.label()
    if any(str(_annotations(m).get(INJECT_ANNOTATION, "")).lower() == "false"
           for m in (_metadata(obj), _metadata(template))):
        outcome.notes.append(f"{where}: skipped ({INJECT_ANNOTATION}: \"false\")")
        return outcome
    spec = template.get("spec")
    if not isinstance(spec, CommentedMap):
        raise InjectError(f"{where}: the pod template has no spec")
    kind = str(obj["kind"])
    prefix = {"Pod": "spec.", "CronJob": "spec.jobTemplate.spec.template.spec."}.get(
        kind, "spec.template.spec.")
    meta = _metadata(obj)
    workload = str(meta.get("name") or str(meta.get("generateName") or "").rstrip("-"))
    if not workload:
        raise InjectError(f"{where}: has no metadata.name")
    record = read_record(template, where)
    before = _plain(template) if record is not None else None
    if record is not None:
        remove_injection(template, record)
    desired = _desired(record, options)
    app_position, app = _app_container(spec, template, options, where)
    stack = Stack(name=workload, app={}, sidecars=desired, namespace=meta.get("namespace"),
                  k8s_version=options.k8s_version, sidecar_mode=options.sidecar_mode,
                  image_registry=options.image_registry)
    try:
        parts = add_sidecars(stack, catalogue, list(options.assignments), _plain(app), [])
    except UsageError:
        raise
    except PatternError as error:
        raise InjectError(f"{where}: {error}") from None
    if kind in JOB_KINDS and not parts.native:
        raise InjectError(
            f"{where}: a classic sidecar never exits, so the {kind} would never complete; "
            f"target Kubernetes 1.29+ (--k8s-version) to get native sidecars "
            f"(initContainers with restartPolicy: Always), which a Job's pods stop by themselves")
    _conflicts(spec, template, parts, desired, catalogue, prefix, where)
    for new in parts.objects:
        key = _key(new)
        if key in taken:
            raise InjectError(f"{where}: the stream already has a {key[0]} named {key[2]!r} that "
                              f"pattern inject did not add; sidecar {desired[0].name!r} needs "
                              "that name")
    new_record = Record(
        sidecars=[_recorded(r, catalogue, parts) for r in desired],
        objects=[{"kind": str(o.get("kind")), "name": str(_metadata(o).get("name"))}
                 for o in parts.objects],
    )
    _apply(template, spec, app_position, parts, new_record)
    if spec.get("hostNetwork") is True:
        ports = sorted({str(p.get("containerPort")) for c in parts.sidecars
                        for p in c.get("ports") or []})
        outcome.notes.append(f"{where}: warning: hostNetwork is true, so the sidecars' ports "
                             f"({', '.join(ports) or 'none'}) are ports of the node")
    for new in parts.objects:
        new.setdefault("metadata", {}).setdefault("annotations", {})[OWNER_ANNOTATION] = \
            _owner_text(obj)
        outcome.objects.append(_readable(new))
    outcome.changed = record is None or _plain(template) != before
    outcome.injected = True
    return outcome


def _recorded(request: SidecarRequest, catalogue: Catalogue, parts: PodParts) -> dict[str, Any]:
    """A sidecar as the record keeps it: the values that differ from the pattern's defaults."""
    pattern = catalogue.get(request.pattern)
    defaults = pattern.defaults()
    values = parts.values.get(request.name, {})
    return {"name": request.name, "pattern": pattern.name, "version": pattern.version,
            "values": {k: v for k, v in values.items() if defaults.get(k, object()) != v}}


# ---------------------------------------------------------------- whole streams

@dataclass
class Result:
    text: str
    notes: list[str]


def parse_stream(text: str, source: str) -> list[Document]:
    """A stream split into its documents, each parsed; errors name the document and line."""
    documents = split_stream(text, source)
    for document in documents:
        parse(document)
    return documents


def read_exactly(path: str) -> tuple[str, str]:
    """A file's text, or stdin's for '-', with its line endings as they are (CRLF stays)."""
    if path == "-":
        raw, source = sys.stdin.buffer.read(), "<stdin>"
    else:
        source = path
        try:
            raw = Path(path).read_bytes()
        except FileNotFoundError:
            raise ManifestError(f"{path}: no such file") from None
        except OSError as error:
            raise ManifestError(f"{path}: cannot read: {error.strerror}") from None
    try:
        return raw.decode("utf-8"), source
    except UnicodeDecodeError:
        raise ManifestError(f"{source}: not UTF-8 text") from None


def read_sources(paths: list[str]) -> list[list[Document]]:
    """Each input (a file, '-' for stdin, or a folder's YAML/JSON files), parsed."""
    if not paths:
        raise UsageError("give the manifests with -f FILE (or -f - for stdin, or -f DIR)")
    sources: list[list[Document]] = []
    for path in paths:
        names = [path]
        if path != "-" and Path(path).is_dir():
            names = sorted(str(p) for p in Path(path).rglob("*")
                           if p.is_file() and p.suffix in {".yaml", ".yml", ".json"})
            if not names:
                raise ManifestError(f"{path}: no .yaml, .yml or .json files in this folder")
        for name in names:
            sources.append(parse_stream(*read_exactly(name)))
    return sources


def _join(sources: list[list[Document]]) -> str:
    parts: list[str] = []
    for documents in sources:
        text = render_stream(documents)
        if parts and text and not text.startswith("---"):
            text = "---\n" + text
        if parts and not parts[-1].endswith("\n"):
            parts[-1] += "\n"
        parts.append(text)
    return "".join(parts)


def _remove_slot(slot: Slot) -> None:
    if slot.item is None:
        slot.document.removed = True
    else:
        slot.document.items_removed.add(slot.item)
        slot.document.changed = True


def _injected_objects(slots: list[Slot]) -> dict[str, list[Slot]]:
    found: dict[str, list[Slot]] = {}
    for slot in slots:
        owner = _annotations(_metadata(slot.obj)).get(OWNER_ANNOTATION)
        if owner is not None:
            found.setdefault(str(owner), []).append(slot)
    return found


def _summary(verb: str, count: int, total: int) -> str:
    return f"{verb} {count} of {total} pod-bearing object(s)"


def inject(sources: list[list[Document]], options: InjectOptions,
           catalogue: Catalogue) -> Result:
    """Inject into every pod-bearing object of the parsed inputs; the output stream."""
    if not options.requests:
        raise UsageError("name the sidecars to inject with --with PATTERN")
    for request in options.requests:
        catalogue.get(request.pattern)  # an unknown name is one error, not one per document
    slots = [s for documents in sources for s in _slots(documents)]
    ours = _injected_objects(slots)
    taken = {_key(s.obj) for s in slots
             if OWNER_ANNOTATION not in _annotations(_metadata(s.obj))}
    notes: list[str] = []
    produced: dict[tuple[str, str, str], str] = {}  # objects made in this run, and for whom
    injected = total = 0
    for slot in slots:
        if pod_template(slot.obj) is None:
            continue
        total += 1
        outcome = inject_object(slot, options, catalogue, taken)
        notes += outcome.notes
        injected += outcome.injected
        if not outcome.changed:
            continue  # injected before with the same values: its bytes stay as they are
        for new in outcome.objects:
            if _key(new) in produced:
                raise InjectError(
                    f"{slot.label()}: its sidecars need a {new['kind']} named "
                    f"{_key(new)[2]!r}, as do those of {produced[_key(new)]}: name the "
                    "sidecar otherwise for one of them (--with NAME=PATTERN, one run each)")
            produced[_key(new)] = slot.label()
        for old in ours.pop(_owner_text(slot.obj), []):
            _remove_slot(old)
        if slot.item is None:
            slot.document.before += outcome.objects
        elif outcome.objects:
            slot.document.items_before[slot.item] = outcome.objects
        slot.document.changed |= outcome.changed or (slot.item is not None and bool(
            outcome.objects))
    notes.append(_summary("injected", injected, total))
    return Result(_join(sources), notes)


def uninject(sources: list[list[Document]]) -> Result:
    """Remove what the records of the parsed inputs name; the output stream."""
    slots = [s for documents in sources for s in _slots(documents)]
    ours = _injected_objects(slots)
    removed = total = 0
    for slot in slots:
        template = pod_template(slot.obj)
        if template is None:
            continue
        total += 1
        record = read_record(template, slot.label())
        if record is None:
            continue
        remove_injection(template, record)
        slot.document.changed = True
        removed += 1
        names = {(o["kind"], o["name"]) for o in record.objects}
        for old in ours.get(_owner_text(slot.obj), []):
            if (old.obj.get("kind"), _metadata(old.obj).get("name")) in names:
                _remove_slot(old)
    return Result(_join(sources), [_summary("uninjected", removed, total)])
