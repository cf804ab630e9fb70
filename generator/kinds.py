"""Every fact about a workload kind, in one place: adding a kind is a change here (plus tests).

Who asks what: `generate` wraps a pod spec (`wrap` in workloads), `inject` finds pod templates in
objects it did not write (API groups, field paths), `validate` and the pod rules need to know a
Job, the stack schema lists the kinds `generate` makes, and `pattern run` names the local pod.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kind:
    name: str
    api_version: str  # what `generate` writes
    groups: frozenset[str]  # API groups whose objects of this name are ours to inject
    template_path: tuple[str, ...]  # keys from the object to its pod template; () = the object
    generate: bool = False  # `pattern generate --kind` makes it
    job: bool = False  # its pods run to completion: classic sidecars would never let them
    replicas: bool = False  # has spec.replicas
    selector: bool = False  # has spec.selector.matchLabels over the template's labels
    name_limit: int = 63  # Kubernetes appends to some names (pod suffixes, job timestamps)
    headless_service: bool = False  # needs a governing Service (StatefulSet)
    local_pod_suffix: str = ""  # what Kubernetes appends to the first pod's name

    @property
    def field_prefix(self) -> str:
        """Where the pod spec sits, as a field path for messages (`spec.template.spec.`)."""
        return "".join(f"{key}." for key in self.template_path) + "spec."


_TEMPLATE = ("spec", "template")
KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    Kind("Pod", "v1", frozenset({""}), (), generate=True),
    Kind("Deployment", "apps/v1", frozenset({"apps", "extensions"}), _TEMPLATE, generate=True,
         replicas=True, selector=True),
    Kind("StatefulSet", "apps/v1", frozenset({"apps"}), _TEMPLATE, generate=True,
         replicas=True, selector=True, name_limit=52, headless_service=True,
         local_pod_suffix="-0"),
    Kind("DaemonSet", "apps/v1", frozenset({"apps", "extensions"}), _TEMPLATE, generate=True,
         selector=True),
    Kind("ReplicaSet", "apps/v1", frozenset({"apps", "extensions"}), _TEMPLATE, selector=True),
    Kind("ReplicationController", "v1", frozenset({""}), _TEMPLATE),
    Kind("Job", "batch/v1", frozenset({"batch"}), _TEMPLATE, generate=True, job=True),
    Kind("CronJob", "batch/v1", frozenset({"batch"}), ("spec", "jobTemplate", "spec", "template"),
         generate=True, job=True, name_limit=52),
)}
GENERATED = tuple(name for name, kind in KINDS.items() if kind.generate)


def get(name: str) -> Kind | None:
    return KINDS.get(name)


def is_job(name: Any) -> bool:
    kind = KINDS.get(str(name))
    return kind is not None and kind.job


def _group(api_version: Any) -> str:
    text = str(api_version or "")
    return text.split("/", 1)[0] if "/" in text else ""


def of(obj: dict[str, Any], *, strict_group: bool = False) -> Kind | None:
    """The kind of a pod-bearing object; with `strict_group`, only in the API groups we know (a
    CRD that reuses a kind name in another group, e.g. a `Deployment` of example.com, is not)."""
    kind = KINDS.get(str(obj.get("kind")))
    if kind is None or (strict_group and _group(obj.get("apiVersion")) not in kind.groups):
        return None
    return kind


def pod_template_of(obj: dict[str, Any], *, strict_group: bool = False) -> dict[str, Any] | None:
    """The mapping holding the pod's metadata and spec (the Pod itself for kind Pod)."""
    kind = of(obj, strict_group=strict_group)
    if kind is None or not isinstance(obj.get("spec"), dict):
        return None
    node: Any = obj
    for key in kind.template_path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None


def pod_spec_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec inside a Pod or any pod-bearing workload; None for other kinds."""
    template = pod_template_of(obj)
    spec = template.get("spec") if template is not None else None
    return spec if isinstance(spec, dict) else None


def pod_selector(obj: dict[str, Any]) -> dict[str, str]:
    """The labels that select the object's pods: spec.selector.matchLabels where the kind has
    one, else the pod template's own labels."""
    kind = of(obj)
    template = pod_template_of(obj) or {}
    spec = obj.get("spec")
    selector = spec.get("selector") if isinstance(spec, dict) else None
    selector = selector if kind is not None and kind.selector else None
    if isinstance(selector, dict) and isinstance(selector.get("matchLabels"), dict):
        return {str(k): str(v) for k, v in selector["matchLabels"].items()}
    labels = mapping(template.get("metadata")).get("labels")
    return {str(k): str(v) for k, v in labels.items()} if isinstance(labels, dict) else {}


def mapping(value: Any) -> dict[str, Any]:
    """`value` if it is a mapping, else an empty one: what a manifest holds may be any type."""
    return value if isinstance(value, dict) else {}


def sequence(value: Any) -> list[Any]:
    """`value` if it is a list, else an empty one."""
    return value if isinstance(value, list) else []


def local_pod_name(obj: dict[str, Any]) -> str:
    """What Kubernetes would call the workload's first pod (`pattern run` runs one)."""
    kind = of(obj)
    return str(obj["metadata"]["name"]) + (kind.local_pod_suffix if kind else "")


def claim_templates(obj: dict[str, Any]) -> tuple[str, ...]:
    """Volumes a StatefulSet's volumeClaimTemplates add to each of its pods."""
    templates = sequence(mapping(obj.get("spec")).get("volumeClaimTemplates"))
    return tuple(str(mapping(t.get("metadata")).get("name")) for t in templates
                 if isinstance(t, dict))


# ---------------------------------------------------------------- which document is which

def is_stack_file(data: Any) -> bool:
    """A stack file (`pattern generate -f`), not a Kubernetes object."""
    return isinstance(data, dict) and data.get("kind") == "Stack" \
        and str(data.get("apiVersion", "")).startswith("sidecar-patterns.io/")


def is_manifest(data: Any) -> bool:
    """A Kubernetes object (`pattern inject -f`), not a stack file."""
    return isinstance(data, dict) and isinstance(data.get("kind"), str) \
        and isinstance(data.get("apiVersion"), str) and not is_stack_file(data)
