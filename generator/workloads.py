"""Wrap a pod spec in the workload a user deploys (the facts about each kind are in `kinds`)."""

from __future__ import annotations

import re
from typing import Any

from .errors import UsageError
from .kinds import KINDS, Kind
from .stack import Stack

NAME_LABEL = "app.kubernetes.io/name"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGER = "sidecar-patterns"

_CRON_FIELD = r"[0-9*,/\-A-Za-z?LW#]+"
_CRON = re.compile(rf"^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|"
                   rf"({_CRON_FIELD}\s+){{4}}{_CRON_FIELD})\Z")


def _check(stack: Stack, kind: Kind) -> None:
    limit = kind.name_limit
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
    if stack.replicas is not None and not kind.replicas:
        with_replicas = " or ".join(k.name for k in KINDS.values() if k.replicas and k.generate)
        raise UsageError(f"--replicas only applies to a {with_replicas}, not a {stack.kind}")


def selector_of(stack: Stack) -> dict[str, str]:
    """The labels that select a generated workload's pods."""
    return {NAME_LABEL: stack.name}


def labels_of(stack: Stack) -> dict[str, str]:
    """The labels of a generated workload's pods."""
    return {**selector_of(stack), **stack.labels}


def wrap(stack: Stack, pod_spec: dict[str, Any], pod_annotations: dict[str, str]) -> dict[str, Any]:
    kind = KINDS[stack.kind]
    _check(stack, kind)
    selector = selector_of(stack)
    labels = labels_of(stack)
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
    if kind.job:
        policy = pod_spec.setdefault("restartPolicy", "Never")
        if policy == "Always":
            raise UsageError(f"a {stack.kind}'s pods need restartPolicy Never or OnFailure")
    template = {"metadata": template_meta, "spec": pod_spec}
    spec: dict[str, Any] = {}
    if stack.schedule:
        spec["schedule"] = stack.schedule
    if kind.replicas:
        spec["replicas"] = 1 if stack.replicas is None else stack.replicas
    if kind.headless_service:
        spec["serviceName"] = stack.name
    if kind.selector:
        spec["selector"] = {"matchLabels": selector}
    # The template sits where the kind keeps it (spec.template, spec.jobTemplate.spec.template).
    node = spec
    for key in kind.template_path[1:-1]:
        node = node.setdefault(key, {})
    node[kind.template_path[-1]] = template
    return {"apiVersion": kind.api_version, "kind": stack.kind, "metadata": metadata,
            "spec": spec}


def companions(stack: Stack, pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Objects a workload needs to work: the governing headless Service of a StatefulSet."""
    if not KINDS[stack.kind].headless_service:
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
    spec: dict[str, Any] = {"clusterIP": "None", "selector": selector_of(stack)}
    if ports:
        spec["ports"] = ports
    return [{"apiVersion": "v1", "kind": "Service", "metadata": metadata, "spec": spec}]
