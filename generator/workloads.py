"""Wrap a pod spec in the workload a user deploys, and find the pod spec inside any workload."""

from __future__ import annotations

import re
from typing import Any

from .errors import UsageError
from .stack import Stack

NAME_LABEL = "app.kubernetes.io/name"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGER = "sidecar-patterns"

API_VERSIONS = {
    "Pod": "v1",
    "Deployment": "apps/v1",
    "StatefulSet": "apps/v1",
    "DaemonSet": "apps/v1",
    "ReplicaSet": "apps/v1",
    "Job": "batch/v1",
    "CronJob": "batch/v1",
    "ReplicationController": "v1",
}
# Kubernetes appends to these names (pod suffixes, job timestamps); keep room for them.
_NAME_LIMITS = {"CronJob": 52, "StatefulSet": 52}
_CRON_FIELD = r"[0-9*,/\-A-Za-z?LW#]+"
_CRON = re.compile(rf"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|"
                   rf"({_CRON_FIELD}\s+){{4}}{_CRON_FIELD})$")


def pod_spec_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec inside a Pod or any pod-bearing workload; None for other kinds."""
    template = pod_template_of(obj)
    if template is None:
        return None
    spec = template.get("spec")
    return spec if isinstance(spec, dict) else None


def pod_template_of(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The object holding the pod's metadata and spec (the Pod itself for kind Pod)."""
    kind = obj.get("kind")
    spec = obj.get("spec")
    if not isinstance(spec, dict) or kind not in API_VERSIONS:
        return None
    if kind == "Pod":
        return obj
    if kind == "CronJob":
        spec = (spec.get("jobTemplate") or {}).get("spec") or {}
    template = spec.get("template")
    return template if isinstance(template, dict) else None


def _check(stack: Stack) -> None:
    limit = _NAME_LIMITS.get(stack.kind, 63)
    if len(stack.name) > limit:
        raise UsageError(f"name {stack.name!r} is longer than {limit} characters, the limit for "
                         f"a {stack.kind}")
    if stack.kind == "CronJob":
        if not stack.schedule:
            raise UsageError("a CronJob needs --schedule (e.g. '*/15 * * * *')")
        if not _CRON.match(stack.schedule.strip()):
            raise UsageError(f"schedule {stack.schedule!r} is not a cron expression")
    elif stack.schedule:
        raise UsageError(f"--schedule only applies to a CronJob, not a {stack.kind}")
    if stack.replicas is not None and stack.kind not in {"Deployment", "StatefulSet"}:
        raise UsageError(
            f"--replicas only applies to a Deployment or StatefulSet, not a {stack.kind}"
        )


def wrap(stack: Stack, pod_spec: dict[str, Any], pod_annotations: dict[str, str]) -> dict[str, Any]:
    _check(stack)
    selector = {NAME_LABEL: stack.name}
    labels = {**selector, **stack.labels}
    metadata: dict[str, Any] = {"name": stack.name}
    if stack.namespace:
        metadata["namespace"] = stack.namespace
    metadata["labels"] = {**labels, MANAGED_BY_LABEL: MANAGER}
    if stack.kind == "Pod":
        if pod_annotations:
            metadata["annotations"] = pod_annotations
        return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": pod_spec}
    template_meta: dict[str, Any] = {"labels": labels}
    if pod_annotations:
        template_meta["annotations"] = pod_annotations
    if stack.kind in {"Job", "CronJob"}:
        policy = pod_spec.setdefault("restartPolicy", "Never")
        if policy == "Always":
            raise UsageError(f"a {stack.kind}'s pods need restartPolicy Never or OnFailure")
    template = {"metadata": template_meta, "spec": pod_spec}
    spec: dict[str, Any]
    if stack.kind == "Job":
        spec = {"template": template}
    elif stack.kind == "CronJob":
        spec = {"schedule": stack.schedule, "jobTemplate": {"spec": {"template": template}}}
    else:
        spec = {}
        if stack.kind in {"Deployment", "StatefulSet"}:
            spec["replicas"] = 1 if stack.replicas is None else stack.replicas
        if stack.kind == "StatefulSet":
            spec["serviceName"] = stack.name
        spec["selector"] = {"matchLabels": selector}
        spec["template"] = template
    return {"apiVersion": API_VERSIONS[stack.kind], "kind": stack.kind, "metadata": metadata,
            "spec": spec}


def companions(stack: Stack, pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Objects a workload needs to work: the governing headless Service of a StatefulSet."""
    if stack.kind != "StatefulSet":
        return []
    ports = [
        {"name": p.get("name", f"port-{p['containerPort']}"), "port": p["containerPort"],
         "protocol": p.get("protocol", "TCP")}
        for p in pod_spec["containers"][0].get("ports") or []
    ]
    metadata: dict[str, Any] = {"name": stack.name}
    if stack.namespace:
        metadata["namespace"] = stack.namespace
    metadata["labels"] = {NAME_LABEL: stack.name, MANAGED_BY_LABEL: MANAGER}
    spec: dict[str, Any] = {"clusterIP": "None", "selector": {NAME_LABEL: stack.name}}
    if ports:
        spec["ports"] = ports
    return [{"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}]
