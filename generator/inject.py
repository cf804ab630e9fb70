"""`pattern inject` and `pattern uninject`: catalogue sidecars in manifests users already have.

Inject describes each pod template it finds (its real labels, selector, app container and
volumes) to the sidecar pipeline (`sidecars.build_patch`) and applies the patch it gets back to
the template in place, through the round-trip stream of `manifests`. What it adds is recorded
in one annotation on the template; uninject removes exactly what that record names and puts
back what it changed, so `uninject(inject(x)) == x`. Re-injecting first takes away the old
injection and then adds the sidecars again, which makes inject idempotent and lets new values
replace old ones in place.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ruamel.yaml.comments import CommentedMap

from . import kinds, schema
from .catalogue import Catalogue
from .errors import PatternError, UsageError
from .manifests import (
    Document,
    Slot,
    StreamError,
    annotations_of,
    join_sources,
    metadata_of,
    object_key,
    owner_text,
    plain,
    readable,
    remove_slot,
    set_key,
    slots,
)
from .sidecars import (
    LIST_ANNOTATIONS,
    PATTERNS_ANNOTATION,
    POD_FIELDS,
    PodContext,
    PodPatch,
    SidecarOptions,
    SidecarRequest,
    build_patch,
    volume_sources,
)

INJECT_ANNOTATION = "sidecar-patterns.io/inject"  # "false" on an object or its pod: skip it
APP_ANNOTATION = "sidecar-patterns.io/app-container"  # the app container, when not the first
RECORD_ANNOTATION = "sidecar-patterns.io/injected"  # what inject added, for an exact uninject
OWNER_ANNOTATION = "sidecar-patterns.io/injected-for"  # on objects inject added: their workload


class InjectError(StreamError):
    """A manifest cannot be injected or uninjected as asked; the message names the document."""


def pod_template(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template of a pod-bearing object of a core API group, else None (a CRD that
    happens to be called Deployment passes through)."""
    return kinds.pod_template_of(obj, strict_group=True)


# ---------------------------------------------------------------- the record

_NAME = {"type": "string", "format": "dns-label"}
_NAMES = {"type": "array", "items": _NAME, "uniqueItems": True}
_ONE_LINE = {"type": "string", "pattern": "\\A[^\\x00-\\x1f\\x7f]{1,253}\\Z"}
# What inject writes in RECORD_ANNOTATION, and nothing else: uninject refuses any other shape.
RECORD_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False,
    "required": ["sidecars", "app", "containers", "initContainers", "volumes", "mounts",
                 "objects", "annotations", "created"],
    "properties": {
        "sidecars": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["name", "pattern", "version", "values"],
            "properties": {"name": _NAME, "pattern": _NAME, "version": _ONE_LINE,
                           "values": {"type": "object"}, "volumes": {"type": "object"}}}},
        "app": _NAME, "containers": _NAMES, "initContainers": _NAMES, "volumes": _NAMES,
        "mounts": _NAMES,
        "objects": {"type": "array", "items": {
            "type": "object", "additionalProperties": False, "required": ["kind", "name"],
            "properties": {"kind": _ONE_LINE, "name": _ONE_LINE}}},
        "annotations": {"type": "object", "propertyNames": _ONE_LINE,
                        "additionalProperties": {"type": ["string", "null"]}},
        "created": {"type": "object",
                    "propertyNames": {"enum": ["initContainers", "volumes", "volumeMounts",
                                               "annotations", "metadata"]},
                    "additionalProperties": {"enum": ["absent", "null"]}},
        "podFields": {"type": "object", "propertyNames": {"enum": sorted(POD_FIELDS)}},
    },
}

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
    pod_fields: dict[str, Any] = field(default_factory=dict)  # spec field -> value before

    def to_json(self) -> str:
        data: dict[str, Any] = {
            "sidecars": self.sidecars, "app": self.app, "containers": self.containers,
            "initContainers": self.init_containers, "volumes": self.volumes,
            "mounts": self.mounts, "objects": self.objects, "annotations": self.annotations,
            "created": self.created,
        }
        if self.pod_fields:
            data["podFields"] = self.pod_fields
        return json.dumps(data, separators=(",", ":"), ensure_ascii=False)

    @classmethod
    def from_json(cls, text: Any, where: str) -> Record:
        """The record an annotation holds, refused unless it has the shape inject writes."""
        tampered = f"{where}: annotation {RECORD_ANNOTATION} is not a record pattern inject " \
            "wrote (edited by hand?)"
        try:
            data: Any = json.loads(text) if isinstance(text, str) else None
        except (ValueError, RecursionError):
            raise InjectError(tampered) from None
        problems = schema.validate(data, RECORD_SCHEMA, "record")
        if problems:
            raise InjectError(f"{tampered}: {problems[0]}")
        return cls(
            sidecars=[dict(s) for s in data["sidecars"]], app=str(data["app"]),
            containers=list(data["containers"]),
            init_containers=list(data["initContainers"]), volumes=list(data["volumes"]),
            mounts=list(data["mounts"]), objects=list(data["objects"]),
            annotations=dict(data["annotations"]), created=dict(data["created"]),
            pod_fields=dict(data.get("podFields", {})),
        )


def read_record(template: dict[str, Any], where: str) -> Record | None:
    """The template's record, checked against the schema and against the object itself."""
    text = annotations_of(metadata_of(template)).get(RECORD_ANNOTATION)
    if text is None:
        return None
    record = Record.from_json(text, where)
    check_record(template, record, where)
    return record


# ---------------------------------------------------------------- removing (uninject)

def _remove_named(items: Any, names: list[str]) -> None:
    if isinstance(items, list):
        for position in reversed(range(len(items))):
            item = items[position]
            if isinstance(item, dict) and item.get("name") in names:
                del items[position]


def _drop_if_created(mapping: dict[str, Any], key: str, how: str | None) -> None:
    if how is None or key not in mapping or mapping[key]:
        return
    if how == "absent":
        del mapping[key]
    else:
        mapping[key] = None


def _names(items: Any) -> list[str]:
    return [str(i.get("name")) for i in items if isinstance(i, dict)] \
        if isinstance(items, list) else []


def check_record(template: dict[str, Any], record: Record, where: str) -> None:
    """Refuse a record that does not match the object: it may only name sidecar containers
    and volumes the pod has, never the app, and leave no mount of a volume it removes."""
    spec = template.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    sidecars = {str(s["name"]) for s in record.sidecars}
    problems: list[str] = []
    for field_name, names in (("containers", record.containers),
                              ("initContainers", record.init_containers)):
        present = _names(spec.get(field_name))
        for name in names:
            if name not in present:
                problems.append(f"it names {field_name} {name!r}, which the pod does not have")
            elif name == record.app or name.removesuffix("-init") not in sidecars:
                problems.append(f"it would remove {field_name} {name!r}, which is not a "
                                "sidecar it added")
    app = next((c for _, _, c in _containers(spec) if c.get("name") == record.app), None)
    if app is None:
        problems.append(f"its app container {record.app!r} is not in the pod")
    missing = sorted(set(record.volumes) - set(_names(spec.get("volumes"))))
    if missing:
        problems.append(f"it names volumes the pod does not have: {', '.join(missing)}")
    if app is not None and set(record.mounts) - set(_names(app.get("volumeMounts"))):
        problems.append("it names mounts the app container does not have")
    removed = set(record.containers) | set(record.init_containers)
    for field_name, _, container in _containers(spec):
        if container.get("name") in removed:
            continue
        mine = record.mounts if container is app else []
        left = {m for m in _names(container.get("volumeMounts")) if m not in mine}
        orphaned = sorted(left & set(record.volumes))
        if orphaned:
            problems.append(f"{field_name} {container.get('name')!r} would keep mounts of "
                            f"volumes it removes: {', '.join(orphaned)}")
    if problems:
        raise InjectError(f"{where}: annotation {RECORD_ANNOTATION} does not match the object "
                          f"({problems[0]}); nothing was changed")


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
    for key, before in record.pod_fields.items():
        if before is None:
            spec.pop(key, None)
        else:
            spec[key] = before
    _drop_if_created(spec, "initContainers", record.created.get("initContainers"))
    _drop_if_created(spec, "volumes", record.created.get("volumes"))
    _drop_if_created(meta, "annotations", record.created.get("annotations"))
    _drop_if_created(template, "metadata", record.created.get("metadata"))


# ---------------------------------------------------------------- adding (inject)

def _app_container(spec: dict[str, Any], template: dict[str, Any], options: SidecarOptions,
                   where: str) -> tuple[int, dict[str, Any]]:
    containers = spec.get("containers")
    if not isinstance(containers, list) or not containers:
        raise InjectError(f"{where}: the pod has no containers")
    wanted = options.container or annotations_of(metadata_of(template)).get(APP_ANNOTATION)
    if wanted is None:
        return 0, containers[0]
    for position, container in enumerate(containers):
        if isinstance(container, dict) and container.get("name") == wanted:
            return position, container
    names = ", ".join(str(c.get("name")) for c in containers if isinstance(c, dict))
    raise InjectError(f"{where}: the pod has no container {wanted!r} (it has: {names})")


def _desired(record: Record | None, options: SidecarOptions) -> tuple[SidecarRequest, ...]:
    """Sidecars the pod ends with: those injected before keep their values and volume
    bindings; those named now are new or replace them."""
    named = {r.name: r for r in options.requests}
    kept = []
    for entry in record.sidecars if record else []:
        name = str(entry["name"])
        if name in named:
            kept.append(named.pop(name))
        else:
            kept.append(SidecarRequest(str(entry["pattern"]), name, dict(entry["values"]),
                                       volumes=dict(entry.get("volumes", {}))))
    return (*kept, *(r for r in options.requests if r.name in named))


def _repository(image: Any) -> str:
    text = str(image or "").split("@", 1)[0]
    last = text.rsplit("/", 1)[-1]
    return text[: len(text) - len(last)] + last.split(":", 1)[0]


def _containers(spec: dict[str, Any]) -> Iterator[tuple[str, int, dict[str, Any]]]:
    for key in ("initContainers", "containers"):
        for position, container in enumerate(spec.get(key) or []):
            if isinstance(container, dict):
                yield key, position, container


def _conflicts(spec: dict[str, Any], template: dict[str, Any], patch: PodPatch,
               desired: tuple[SidecarRequest, ...], catalogue: Catalogue, prefix: str,
               where: str) -> None:
    """One clear error for the first thing already in the pod that the sidecars would clash with."""
    new_names = {c["name"] for c in patch.sidecars + patch.one_shot}
    for key, position, container in _containers(spec):
        if container.get("name") in new_names:
            raise InjectError(
                f"{where}: {prefix}{key}[{position}].name: the pod already has a container "
                f"named {container['name']!r} that pattern inject did not add (name the sidecar "
                f"otherwise with --with OTHER={container['name']})")
    owners: dict[tuple[Any, str], str] = {}
    for key, position, container in _containers(spec):
        if key == "initContainers" and container.get("restartPolicy") != "Always":
            continue  # runs alone, before the others
        for number, port in enumerate(container.get("ports") or []):
            field_path = f"{prefix}{key}[{position}].ports[{number}].containerPort"
            owners[(port.get("containerPort"), str(port.get("protocol", "TCP")))] = field_path
    for sidecar in patch.sidecars:
        for port in sidecar.get("ports") or []:
            taken = owners.get((port.get("containerPort"), str(port.get("protocol", "TCP"))))
            if taken:
                raise InjectError(
                    f"{where}: {taken}: port {port['containerPort']} is also the port of sidecar "
                    f"{sidecar['name']!r} (containers in a pod share one network namespace; "
                    "choose another with --set)")
            owners[(port.get("containerPort"), str(port.get("protocol", "TCP")))] = sidecar["name"]
    listed = str(annotations_of(metadata_of(template)).get(PATTERNS_ANNOTATION) or "")
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


def _apply(template: dict[str, Any], spec: CommentedMap, app_position: int, patch: PodPatch,
           record: Record) -> None:
    """Add the patch's containers, volumes, mounts, fields and annotations; record each."""
    created: dict[str, str] = {}
    front = patch.init_containers
    if front:
        created["initContainers"] = set_key(spec, "initContainers", [], before="containers")
        for position, container in enumerate(front):
            spec["initContainers"].insert(position, readable(container))
    spec["containers"].extend(readable(c) for c in patch.classic_containers)
    if patch.volumes:
        created["volumes"] = set_key(spec, "volumes", [])
        spec["volumes"].extend(readable(v) for v in patch.volumes)
    app = spec["containers"][app_position]
    if patch.app_mounts:
        created["volumeMounts"] = set_key(app, "volumeMounts", [])
        app["volumeMounts"].extend(readable(m) for m in patch.app_mounts)
    for key, value in patch.pod_fields.items():
        record.pod_fields[key] = plain(spec.get(key))
        spec[key] = value
    created["metadata"] = set_key(template, "metadata", CommentedMap())
    meta = template["metadata"]
    created["annotations"] = set_key(meta, "annotations", CommentedMap())
    annotations = meta["annotations"]
    for key, ours in patch.annotations.items():
        before = annotations.get(key)
        record.annotations[key] = None if before is None else str(before)
        joined = f"{before},{ours}" if before and key in LIST_ANNOTATIONS else ours
        annotations[key] = readable(joined)
    record.containers = [c["name"] for c in patch.classic_containers]
    record.init_containers = [c["name"] for c in front]
    record.volumes = [v["name"] for v in patch.volumes]
    record.app = str(app.get("name"))
    record.mounts = [m["name"] for m in patch.app_mounts]
    record.created = {k: v for k, v in created.items() if v}
    annotations[RECORD_ANNOTATION] = record.to_json()


@dataclass
class Outcome:
    """What happened to one object: the objects to write before it, and notes for stderr."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    changed: bool = False
    injected: bool = False


def _pod_context(obj: dict[str, Any], template: dict[str, Any], app: dict[str, Any],
                 workload: str, kind: str | None = None) -> PodContext:
    spec = template["spec"]
    meta = metadata_of(template)
    labels = meta.get("labels")
    return PodContext(
        workload=workload,
        app=plain(app),
        labels={str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {},
        selector=kinds.pod_selector(plain(obj)),
        volumes=(*(str(v.get("name")) for v in spec.get("volumes") or [] if isinstance(v, dict)),
                 *kinds.claim_templates(obj)),
        volume_sources=volume_sources(plain(spec.get("volumes") or [])),
        pod_fields={k: plain(v) for k, v in spec.items() if k not in {"containers",
                                                                      "initContainers"}},
        annotations={str(k): str(v) for k, v in annotations_of(meta).items()},
        namespace=metadata_of(obj).get("namespace"),
        kind=kind or str(obj.get("kind")),
    )


def inject_object(slot: Slot, options: SidecarOptions, catalogue: Catalogue,
                  taken: set[tuple[str, str, str]], pod_kind: str | None = None) -> Outcome:
    """Inject the sidecars into one pod-bearing object (in place). `pod_kind` is the kind the
    pod belongs to when that is not the object's own (a Job's pod, seen by the webhook)."""
    obj = slot.obj
    template = pod_template(obj)
    outcome = Outcome()
    if template is None:
        return outcome
    where = slot.label()
    if any(str(annotations_of(m).get(INJECT_ANNOTATION, "")).lower() == "false"
           for m in (metadata_of(obj), metadata_of(template))):
        outcome.notes.append(f"{where}: skipped ({INJECT_ANNOTATION}: \"false\")")
        return outcome
    spec = template.get("spec")
    if not isinstance(spec, CommentedMap):
        raise InjectError(f"{where}: the pod template has no spec")
    kind = kinds.KINDS[str(obj["kind"])]
    meta = metadata_of(obj)
    workload = str(meta.get("name") or str(meta.get("generateName") or "").rstrip("-"))
    if not workload:
        raise InjectError(f"{where}: has no metadata.name")
    record = read_record(template, where)
    before = plain(template) if record is not None else None
    if record is not None:
        remove_injection(template, record)
    desired = _desired(record, options)
    app_position, app = _app_container(spec, template, options, where)
    try:
        patch = build_patch(replace(options, requests=desired), catalogue,
                            _pod_context(obj, template, app, workload, pod_kind))
    except UsageError:
        raise
    except PatternError as error:
        raise InjectError(f"{where}: {error}") from None
    _conflicts(spec, template, patch, desired, catalogue, kind.field_prefix, where)
    for new in patch.objects:
        key = object_key(new)
        if key in taken:
            raise InjectError(f"{where}: the stream already has a {key[0]} named {key[2]!r} that "
                              f"pattern inject did not add; sidecar {desired[0].name!r} needs "
                              "that name")
    new_record = Record(
        sidecars=[_recorded(r, catalogue, patch) for r in desired],
        objects=[{"kind": str(o.get("kind")), "name": str(metadata_of(o).get("name"))}
                 for o in patch.objects],
    )
    _apply(template, spec, app_position, patch, new_record)
    outcome.notes += [f"{where}: {note}" for note in patch.notes]
    if spec.get("hostNetwork") is True:
        ports = sorted({str(p.get("containerPort")) for c in patch.sidecars
                        for p in c.get("ports") or []})
        outcome.notes.append(f"{where}: warning: hostNetwork is true, so the sidecars' ports "
                             f"({', '.join(ports) or 'none'}) are ports of the node")
    for new in patch.objects:
        new.setdefault("metadata", {}).setdefault("annotations", {})[OWNER_ANNOTATION] = \
            owner_text(obj)
        outcome.objects.append(readable(new))
    outcome.changed = record is None or plain(template) != before
    outcome.injected = True
    return outcome


def _recorded(request: SidecarRequest, catalogue: Catalogue, patch: PodPatch) -> dict[str, Any]:
    """A sidecar as the record keeps it: the values that differ from the pattern's defaults,
    and its volume bindings."""
    pattern = catalogue.get(request.pattern)
    defaults = pattern.defaults()
    values = patch.values.get(request.name, {})
    entry: dict[str, Any] = {
        "name": request.name, "pattern": pattern.name, "version": pattern.version,
        "values": {k: v for k, v in values.items() if defaults.get(k, object()) != v}}
    if request.volumes:
        entry["volumes"] = request.volumes
    return entry


# ---------------------------------------------------------------- whole streams

@dataclass
class Result:
    text: str
    notes: list[str]
    written: list[dict[str, Any]] = field(default_factory=list)  # what we changed or added



def _injected_objects(slots: list[Slot]) -> dict[str, list[Slot]]:
    found: dict[str, list[Slot]] = {}
    for slot in slots:
        owner = annotations_of(metadata_of(slot.obj)).get(OWNER_ANNOTATION)
        if owner is not None:
            found.setdefault(str(owner), []).append(slot)
    return found


@dataclass(frozen=True)
class Target:
    """`--target KIND/NAME` or `KIND/NAMESPACE/NAME`: the one workload to inject."""

    kind: str
    name: str
    namespace: str | None = None

    @classmethod
    def parse(cls, text: str) -> Target:
        parts = text.split("/")
        known = ", ".join(kinds.KINDS)
        if len(parts) not in (2, 3) or not all(parts):
            raise UsageError(f"--target {text!r}: expected KIND/NAME or KIND/NAMESPACE/NAME, "
                             "e.g. Deployment/shop")
        if parts[0] not in kinds.KINDS:
            raise UsageError(f"--target {text!r}: {parts[0]!r} is not a pod-bearing kind "
                             f"({known})")
        for part, what in zip(parts[1:], ("namespace", "name")[3 - len(parts):], strict=True):
            if not _OBJECT_NAME.fullmatch(part):
                raise UsageError(f"--target {text!r}: {part!r} is not a valid {what}")
        return cls(parts[0], parts[-1], parts[1] if len(parts) == 3 else None)

    def __str__(self) -> str:
        middle = f"{self.namespace}/" if self.namespace else ""
        return f"{self.kind}/{middle}{self.name}"

    def matches(self, obj: dict[str, Any]) -> bool:
        kind, namespace, name = object_key(obj)
        return pod_template(obj) is not None and (kind, name) == (self.kind, self.name) and (
            self.namespace is None or namespace == self.namespace)

    def find(self, found: list[Slot]) -> Slot:
        """The one slot the target names; one error line when it is not there or ambiguous."""
        hits = [s for s in found if self.matches(s.obj)]
        if len(hits) > 1:
            where = ", ".join(owner_text(s.obj) for s in hits)
            raise InjectError(f"--target {self}: matches {len(hits)} objects ({where}); name "
                              "the namespace too, KIND/NAMESPACE/NAME")
        if not hits:
            have = ", ".join(owner_text(s.obj) for s in found
                             if pod_template(s.obj) is not None) or "none"
            raise InjectError(f"--target {self}: not in the input (its pod-bearing objects: "
                              f"{have})")
        return hits[0]


_OBJECT_NAME = re.compile(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?")


def _summary(verb: str, count: int, total: int) -> str:
    return f"{verb} {count} of {total} pod-bearing object(s)"


def inject(sources: list[list[Document]], options: SidecarOptions,
           catalogue: Catalogue, target: Target | None = None) -> Result:
    """Inject into every pod-bearing object of the parsed inputs (or only the target's); the
    output stream."""
    if not options.requests:
        raise UsageError("name the sidecars to inject with --with PATTERN")
    for request in options.requests:
        catalogue.get(request.pattern)  # an unknown name is one error, not one per document
    found = [s for documents in sources for s in slots(documents)]
    chosen = target.find(found) if target else None
    ours = _injected_objects(found)
    taken = {object_key(s.obj) for s in found
             if OWNER_ANNOTATION not in annotations_of(metadata_of(s.obj))}
    written: list[dict[str, Any]] = []
    notes: list[str] = []
    produced: dict[tuple[str, str, str], str] = {}  # objects made in this run, and for whom
    injected = total = 0
    for slot in found:
        if pod_template(slot.obj) is None or (chosen is not None and slot is not chosen):
            continue
        total += 1
        outcome = inject_object(slot, options, catalogue, taken)
        notes += outcome.notes
        injected += outcome.injected
        if outcome.injected:
            written += [plain(slot.obj), *(plain(o) for o in outcome.objects)]
        if not outcome.changed:
            continue  # injected before with the same values: its bytes stay as they are
        for new in outcome.objects:
            if object_key(new) in produced:
                raise InjectError(
                    f"{slot.label()}: its sidecars need a {new['kind']} named "
                    f"{object_key(new)[2]!r}, as do those of {produced[object_key(new)]}: name the "
                    "sidecar otherwise for one of them (--with NAME=PATTERN, one run each)")
            produced[object_key(new)] = slot.label()
        for old in ours.pop(owner_text(slot.obj), []):
            remove_slot(old)
        if slot.item is None:
            slot.document.before += outcome.objects
        elif outcome.objects:
            slot.document.items_before[slot.item] = outcome.objects
        slot.document.changed |= outcome.changed or (slot.item is not None and bool(
            outcome.objects))
    if total == 0:
        raise InjectError(_no_pods(found))
    notes.append(_summary("injected", injected, total))
    return Result(join_sources(sources), notes, written)


def _no_pods(found: list[Slot]) -> str:
    kinds_found = sorted({str(s.obj.get("kind")) for s in found})
    return (f"no pod-bearing object ({', '.join(kinds.KINDS)}) in the input, only: "
            f"{', '.join(kinds_found)}")


def uninject(sources: list[list[Document]]) -> Result:
    """Remove what the records of the parsed inputs name; the output stream."""
    found = [s for documents in sources for s in slots(documents)]
    ours = _injected_objects(found)
    removed = total = 0
    for slot in found:
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
        for old in ours.get(owner_text(slot.obj), []):
            if (old.obj.get("kind"), metadata_of(old.obj).get("name")) in names:
                remove_slot(old)
    if total == 0:
        raise InjectError(_no_pods(found))
    return Result(join_sources(sources), [_summary("uninjected", removed, total)])
