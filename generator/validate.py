"""Check manifests against the official Kubernetes schemas (strict) and the pod rules."""

from __future__ import annotations

import importlib.util
import json
import re
from functools import cache
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from . import rules, schema
from .errors import PatternError
from .kinds import claim_templates, is_job, mapping, of, pod_spec_of, pod_template_of
from .sidecars import MANAGED_BY_LABEL, MANAGER
from .versions import parse_k8s_version

# Custom resources a pattern (or `pattern webhook manifests --tls cert-manager`) may write
# whose CRDs are not part of Kubernetes, so no official schema exists here: they pass
# unchecked (the metrics-adapter tests check the ones it writes against prometheus-operator's
# CRD schema).
CUSTOM_RESOURCES = frozenset({("monitoring.coreos.com/v1", "ServiceMonitor"),
                              ("monitoring.coreos.com/v1", "PodMonitor"),
                              ("cert-manager.io/v1", "Certificate"),
                              ("cert-manager.io/v1", "Issuer")})


SCHEMA_FOLDER = "kubernetes-json-schema"
# A version's schema folder may be one zip archive of its files instead (FOLDER.zip): how the
# images that run `pattern` carry them (generator/images.py), a tenth of the size; one archive
# per version, so only the version used is ever opened.
ARCHIVE = ".zip"


@cache
def _schema_root() -> Path:
    # The schemas ship with the kubernetes-validate package; we only read its data files, so
    # it is located, not imported (its import pulls in jsonschema: tens of milliseconds).
    spec = importlib.util.find_spec("kubernetes_validate")
    if spec is None or spec.origin is None:
        raise PatternError("the kubernetes-validate package is missing: pip install it")
    return Path(spec.origin).parent / SCHEMA_FOLDER


@cache
def supported_versions() -> list[tuple[int, int]]:
    found = set()
    for folder in _schema_root().iterdir():
        match = re.match(r"^v(\d+)\.(\d+)\.\d+-local-strict(?:\.zip)?$", folder.name)
        if match:
            found.add((int(match.group(1)), int(match.group(2))))
    return sorted(found)


@cache
def _folder(version: tuple[int, int]) -> Traversable:
    if version not in supported_versions():
        low, high = supported_versions()[0], supported_versions()[-1]
        raise PatternError(
            f"no Kubernetes schema for {version[0]}.{version[1]}: "
            f"this install knows {low[0]}.{low[1]} to {high[0]}.{high[1]}"
        )
    folder = _schema_root() / f"v{version[0]}.{version[1]}.0-local-strict"
    archive = folder.with_name(folder.name + ARCHIVE)
    if not folder.is_dir() and archive.is_file():
        import zipfile  # only here: its import costs a few milliseconds

        return zipfile.Path(archive)
    return folder


@cache
def _definitions(version: tuple[int, int]) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((_folder(version) / "_definitions.json").read_text())
    return loaded


@cache
def _kind_schema(version: tuple[int, int], kind: str, api_version: str) -> dict[str, Any] | None:
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = _folder(version) / f"{kind.lower()}-{group_version}.json"
    if not path.is_file():
        return None
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _label(obj: dict[str, Any]) -> str:
    name = mapping(obj.get("metadata")).get("name", "<unnamed>")
    return f"{obj.get('kind')} {name}"


def schema_problems(obj: dict[str, Any], version: tuple[int, int]) -> list[str]:
    """Problems of one object against the official, strict schema of a Kubernetes version."""
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if not isinstance(kind, str) or not isinstance(api_version, str):
        return ["needs apiVersion and kind"]
    if (api_version, kind) in CUSTOM_RESOURCES:
        return []
    kind_schema = _kind_schema(version, kind, api_version)
    if kind_schema is None:
        return [f"Kubernetes {version[0]}.{version[1]} has no {kind} in {api_version}"]
    return [p.removeprefix("$.") for p in
            schema.validate(obj, kind_schema, "$", root=_definitions(version))]


def check_object(obj: dict[str, Any], k8s_version: str) -> list[str]:
    """Schema and pod-rule problems of one object, each starting with `Kind name:`."""
    version = parse_k8s_version(k8s_version)
    label = _label(obj)
    kind = obj.get("kind")
    problems = schema_problems(obj, version)
    spec = pod_spec_of(obj)
    kind_entry = of(obj, strict_group=True)
    if spec is None and not problems and kind_entry is not None:
        # The schema allows an empty spec, the API server does not: a pod needs containers.
        problems.append(f"{kind_entry.field_prefix}containers: is required (a pod spec with at "
                        "least one container)")
    if spec is not None and not problems:
        template = pod_template_of(obj) or {}
        annotations = mapping(template.get("metadata")).get("annotations")
        problems += rules.check_pod(spec, annotations, k8s_version=version, in_job=is_job(kind),
                                    claim_templates=claim_templates(obj))
    return [f"{label}: {p}" for p in problems]


def _unselected_services(documents: list[dict[str, Any]]) -> list[str]:
    """A companion Service we wrote must select the pods it was made for: those of a workload
    in the same stream and namespace (a stream without workloads is not judged)."""
    pods = [(mapping(obj.get("metadata")).get("namespace"),
             mapping(mapping(mapping(pod_template_of(obj)).get("metadata")).get("labels")))
            for obj in documents if pod_template_of(obj) is not None]
    problems = []
    for obj in documents:
        meta = mapping(obj.get("metadata"))
        selector = mapping(obj.get("spec")).get("selector")
        if obj.get("kind") != "Service" or not isinstance(selector, dict) or not pods or \
                mapping(meta.get("labels")).get(MANAGED_BY_LABEL) != MANAGER:
            continue
        if not any(namespace == meta.get("namespace") and isinstance(labels, dict) and
                   all(labels.get(k) == v for k, v in selector.items())
                   for namespace, labels in pods):
            problems.append(f"{_label(obj)}: spec.selector {selector} selects no pod template "
                            "of this stream")
    return problems


def check_documents(documents: list[dict[str, Any]], k8s_version: str) -> list[str]:
    problems: list[str] = []
    for obj in documents:
        problems += check_object(obj, k8s_version)
    return problems + _unselected_services(documents)
