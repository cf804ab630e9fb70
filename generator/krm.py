"""`pattern krm`: inject as a KRM function (kustomize `transformers:`, kpt).

A `ResourceList` comes in on stdin; its `functionConfig` (kind `Inject`, the stack file's
sidecar fields plus an optional target) says what to inject; its `items` go through the same
`inject.inject` as `pattern inject`, on the round-trip stream, so comments inside items stay.
The ResourceList goes out on stdout with the injected items and `results`: every note as an
`info`, a problem as an `error` (the items then unchanged) and a non-zero exit, never a
traceback; the error line also goes to stderr, which kustomize shows (it does not show the
results of a failed function). Accepted apiVersions: `config.kubernetes.io/v1` (the functions
spec) and the `v1alpha1` and `v1beta1` ones older kustomize and kpt send; the answer uses the
one it got. The input goes through the project's one YAML reader's limits (yamlio: at most
MANIFEST_LIMIT bytes, MAX_DEPTH levels, MAX_NODES values once aliases are expanded) before the
round-trip parser sees it, so a huge or deeply nested ResourceList is an error result.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, replace
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from .catalogue import Catalogue
from .errors import PatternError
from .inject import Target, inject
from .manifests import parse_stream, plain
from .stack import API_VERSION, stack_from_dict
from .yamlio import check_shape, read_exactly

RESOURCE_LISTS = ("config.kubernetes.io/v1", "config.kubernetes.io/v1beta1",
                  "config.kubernetes.io/v1alpha1", "config.k8s.io/v1alpha1")
CONFIG_FIELDS = {"sidecars", "target", "container", "k8sVersion", "sidecarMode",
                 "imageRegistry"}
SOURCE = "functionConfig"
INPUT = "<stdin>"


class FunctionConfigError(PatternError):
    """The functionConfig does not say what to inject."""


@dataclass
class Answer:
    text: str
    error: str | None = None  # the message of the error result, if there is one

    @property
    def failed(self) -> bool:
        return self.error is not None


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.width = 1 << 20
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _options(config: Any) -> tuple[Any, Target | None]:
    """The sidecar options and target a functionConfig asks for, checked by the stack schema
    (its messages name `functionConfig.spec...`)."""
    if not isinstance(config, dict) or config.get("kind") != "Inject" \
            or config.get("apiVersion") != API_VERSION:
        raise FunctionConfigError(f"{SOURCE}: expected apiVersion {API_VERSION}, kind Inject")
    spec = plain(config.get("spec"))
    if not isinstance(spec, dict):
        raise FunctionConfigError(f"{SOURCE}.spec: missing (it names the sidecars)")
    unknown = sorted(str(k) for k in spec if k not in CONFIG_FIELDS)
    if unknown:
        raise FunctionConfigError(f"{SOURCE}.spec: unknown field(s) {', '.join(unknown)} "
                                  f"(known: {', '.join(sorted(CONFIG_FIELDS))})")
    if not spec.get("sidecars"):
        raise FunctionConfigError(f"{SOURCE}.spec.sidecars: name at least one sidecar")
    as_stack = {"apiVersion": API_VERSION, "kind": "Stack", "metadata": {"name": "krm"},
                "spec": {"app": {"image": "app"},
                         **{k: v for k, v in spec.items() if k not in {"target", "container"}}}}
    try:
        stack = stack_from_dict(as_stack, SOURCE)
    except PatternError as error:
        raise FunctionConfigError(str(error).replace(f"{SOURCE}: stack.", f"{SOURCE}.")) \
            from None
    options = replace(stack.sidecar_options(), container=None)
    container = spec.get("container")
    if container is not None:
        if not isinstance(container, str):
            raise FunctionConfigError(f"{SOURCE}.spec.container: must be a container name")
        options = replace(options, container=container)
    target = spec.get("target")
    if target is None:
        return options, None
    if not isinstance(target, dict) or not isinstance(target.get("kind"), str) \
            or not isinstance(target.get("name"), str):
        raise FunctionConfigError(f"{SOURCE}.spec.target: expected {{kind, name, namespace?}}")
    words = [target["kind"], *([str(target["namespace"])] if target.get("namespace") else []),
             target["name"]]
    try:
        return options, Target.parse("/".join(words))
    except PatternError as error:
        raise FunctionConfigError(str(error).replace("--target", f"{SOURCE}.spec.target", 1)) \
            from None


def _items_stream(items: list[Any]) -> str:
    parts = []
    for item in items:
        out = io.StringIO()
        _yaml().dump(item, out)
        parts.append(out.getvalue())
    return "---\n".join(parts)


def run_stdin(catalogue: Catalogue) -> Answer:
    """The answer to the ResourceList on stdin, read as every input is (yamlio)."""
    try:
        text, _ = read_exactly("-")
    except PatternError as error:
        return _failure(None, str(error))
    return run(text, catalogue)


def run(text: str, catalogue: Catalogue) -> Answer:
    """The answer to one ResourceList (as text)."""
    yaml = _yaml()
    try:
        check_shape(text, INPUT)
        resource_list = yaml.load(text)
    except PatternError as error:
        return _failure(None, str(error))
    except YAMLError as error:
        return _failure(None, f"the input is not valid YAML: {str(error).splitlines()[0]}")
    if not isinstance(resource_list, dict) or resource_list.get("kind") != "ResourceList" \
            or resource_list.get("apiVersion") not in RESOURCE_LISTS:
        return _failure(None, "the input is not a ResourceList (apiVersion "
                        f"{' or '.join(RESOURCE_LISTS)})")
    items = resource_list.get("items") or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        return _failure(resource_list, "items: expected a list of objects")
    results: list[dict[str, Any]] = []
    try:
        options, target = _options(resource_list.get("functionConfig"))
        if items:
            result = inject([parse_stream(_items_stream(items), "items")], options, catalogue,
                            target)
            resource_list["items"] = [d for d in yaml.load_all(result.text) if d is not None]
            results += [{"message": note, "severity": "info"} for note in result.notes]
    except PatternError as error:
        return _failure(resource_list, str(error))
    if results:
        resource_list["results"] = results
    return Answer(_dump(resource_list))


def _failure(resource_list: Any, message: str) -> Answer:
    answer = resource_list if isinstance(resource_list, dict) else {
        "apiVersion": RESOURCE_LISTS[0], "kind": "ResourceList", "items": []}
    line = " ".join(message.split())
    answer["results"] = [{"message": line, "severity": "error"}]
    return Answer(_dump(answer), error=line)


def _dump(data: Any) -> str:
    out = io.StringIO()
    _yaml().dump(data, out)
    return out.getvalue()
