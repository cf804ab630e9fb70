"""`pattern inject -o kustomize-component`: the injection of one workload as a kustomize
Component a user lists under `components:` of their own kustomization.

Nothing here decides what a pod gets: the target is injected by `inject.inject` (so by
`sidecars.build_patch`, with inject's checks and record), and the component is the difference
between the workload before and after, as JSON-patch operations, plus the objects inject added
as resources. `kubectl kustomize` applying the patch gives the very object `pattern inject`
writes, record included, so `pattern uninject` undoes the rendered result too. Each positional
insert is guarded by a `test` operation on the name of the list item it relies on, so a base
that changed since the component was written fails to build instead of patching the wrong
container.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import kinds
from .catalogue import Catalogue
from .inject import InjectError, Target, inject, pod_template, read_record
from .manifests import Document, metadata_of, plain, slots
from .sidecars import SidecarOptions
from .yamlio import dump_documents

COMPONENT_API = "kustomize.config.k8s.io/v1alpha1"
MARKER = ("# Written by `pattern inject -o kustomize-component`: run it again rather than "
          "editing this file.")


@dataclass
class Component:
    """The files of the component folder (name -> text), and inject's notes and output."""

    files: dict[str, str]
    notes: list[str]
    written: list[dict[str, Any]] = field(default_factory=list)


def _pointer(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _names(items: list[Any]) -> list[str] | None:
    if all(isinstance(i, dict) and isinstance(i.get("name"), str) for i in items):
        names = [str(i["name"]) for i in items]
        return names if len(set(names)) == len(names) else None
    return None


def _list_patch(before: list[Any], after: list[Any], path: str) -> list[dict[str, Any]] | None:
    """Inserts (then changes, guarded by a test of the name) that turn `before` into `after`,
    when `after` keeps `before`'s named items in their order; else None."""
    old, new = _names(before), _names(after)
    if old is None or new is None or [n for n in new if n in old] != old:
        return None
    last = max((i for i, name in enumerate(new) if name in old), default=-1)
    ops: list[dict[str, Any]] = [  # appended at the end ("-") wherever the base's list ends
        {"op": "add", "path": f"{path}/{i if i < last else '-'}", "value": item}
        for i, item in enumerate(after) if new[i] not in old]
    for i, item in enumerate(after):
        if new[i] in old:
            changes = json_patch(before[old.index(new[i])], item, f"{path}/{i}")
            if changes:
                ops += [{"op": "test", "path": f"{path}/{i}/name", "value": new[i]}, *changes]
    return ops


def json_patch(before: Any, after: Any, path: str = "") -> list[dict[str, Any]]:
    """RFC 6902 operations that turn `before` into `after` (plain data)."""
    if before == after:
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        ops: list[dict[str, Any]] = [{"op": "remove", "path": f"{path}/{_pointer(k)}"}
                                     for k in before if k not in after]
        for key, value in after.items():
            where = f"{path}/{_pointer(str(key))}"
            if key in before:
                ops += json_patch(before[key], value, where)
            else:
                ops.append({"op": "add", "path": where, "value": value})
        return ops
    if isinstance(before, list) and isinstance(after, list):
        inserted = _list_patch(before, after, path)
        if inserted is not None:
            return inserted
    return [{"op": "replace", "path": path, "value": after}]


def _file_name(obj: dict[str, Any]) -> str:
    return f"{str(obj.get('kind')).lower()}-{metadata_of(obj).get('name')}.yaml"


def _selector(obj: dict[str, Any]) -> dict[str, Any]:
    group, _, version = str(obj.get("apiVersion")).rpartition("/")
    selector: dict[str, Any] = {"group": group, "version": version, "kind": obj["kind"],
                                "name": metadata_of(obj)["name"]}
    namespace = metadata_of(obj).get("namespace")
    if namespace:
        selector["namespace"] = namespace
    if not group:
        del selector["group"]
    return selector


def kustomize_component(sources: list[list[Document]], options: SidecarOptions,
                        catalogue: Catalogue, target: Target) -> Component:
    """The component that injects the target workload of the parsed inputs."""
    slot = target.find([s for documents in sources for s in slots(documents)])
    template = pod_template(slot.obj)
    assert template is not None  # Target.find only finds pod-bearing objects
    if read_record(template, slot.label()) is not None:
        raise InjectError(f"{slot.label()}: already injected; a component adds to the workload "
                          "of the base, so give the base without the sidecars (pattern "
                          "uninject)")
    if kinds.of(slot.obj, strict_group=True) is None:
        raise InjectError(f"{slot.label()}: not a workload of a Kubernetes API group")
    before = plain(slot.obj)
    result = inject(sources, options, catalogue, target)
    after, companions = result.written[0], result.written[1:]
    patch_name = f"patch-{_file_name(after)}"
    header = MARKER + "\n"
    files = {
        "kustomization.yaml": header + dump_documents([{
            "apiVersion": COMPONENT_API, "kind": "Component",
            **({"resources": [_file_name(o) for o in companions]} if companions else {}),
            "patches": [{"path": patch_name, "target": _selector(before)}],
        }]),
        patch_name: header + dump_documents([json_patch(before, after)]),
    }
    for obj in companions:
        files[_file_name(obj)] = header + dump_documents([obj])
    return Component(files, result.notes, result.written)
