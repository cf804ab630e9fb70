"""Translate Kubernetes documents into what podman can play, and what the runner must do.

Pure: no processes, no files. Every change is recorded as a one-line translation note
(`pattern run --verbose` prints them).
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import ManifestError
from ..kinds import claim_templates, local_pod_name, pod_template_of
from ..rules import classic_sidecar_names, is_native_sidecar

Role = Literal["init", "sidecar", "app"]
# --publish: container port -> host port (on 127.0.0.1) or (host IP, host port).
Publish = dict[int, int | tuple[str, int]]
DEFAULT_BIND = "127.0.0.1"


def host_side(value: int | tuple[str, int]) -> tuple[str, int]:
    return (DEFAULT_BIND, value) if isinstance(value, int) else value
DEFAULT_GRACE_SECONDS = 30


@dataclass(frozen=True)
class ContainerPlan:
    name: str
    role: Role
    native: bool
    startup: dict[str, Any] | None
    readiness: dict[str, Any] | None
    liveness: dict[str, Any] | None
    post_start: dict[str, Any] | None
    pre_stop: dict[str, Any] | None
    named_ports: dict[str, int] = field(default_factory=dict)


@dataclass
class PodPlan:
    name: str
    source: str  # "Deployment shop", for messages
    play: dict[str, Any]
    containers: list[ContainerPlan]
    files: dict[str, tuple[bytes, int]] = field(default_factory=dict)  # relative path -> data, mode
    grace_seconds: int = DEFAULT_GRACE_SECONDS
    host_ports: list[tuple[str, int]] = field(default_factory=list)
    host_network: bool = False
    pod_volumes: list[str] = field(default_factory=list)  # the pod's emptyDirs, removed on down
    # ConfigMap/Secret volume -> what it projects ({kind, name, items, mode, optional}), so
    # `pattern apply` can write a changed ConfigMap or Secret into the running pod.
    projections: dict[str, dict[str, Any]] = field(default_factory=dict)
    spec_hash: str = ""  # of the workload's pod template, to tell a changed pod (apply)
    runtime: str = ""  # the engine it was started on (set by the runner)
    notes: list[str] = field(default_factory=list)


def _decode_secret(obj: dict[str, Any]) -> dict[str, bytes]:
    name = obj["metadata"]["name"]
    values: dict[str, bytes] = {}
    for key, text in (obj.get("data") or {}).items():
        try:
            values[key] = base64.b64decode(str(text), validate=True)
        except ValueError:
            raise ManifestError(f"Secret {name}: data.{key} is not valid base64") from None
    for key, text in (obj.get("stringData") or {}).items():
        values[key] = str(text).encode()
    return values


def _config_map_values(obj: dict[str, Any]) -> dict[str, bytes]:
    values = {k: str(v).encode() for k, v in (obj.get("data") or {}).items()}
    for key, text in (obj.get("binaryData") or {}).items():
        values[key] = base64.b64decode(str(text))
    return values


@dataclass
class Sources:
    config_maps: dict[str, dict[str, bytes]]
    secrets: dict[str, dict[str, bytes]]

    def lookup(self, kind: str, name: str) -> dict[str, bytes] | None:
        table = self.config_maps if kind == "configMap" else self.secrets
        return table.get(name)


def sources_of(documents: list[dict[str, Any]]) -> Sources:
    """The ConfigMaps and Secrets of the input, decoded."""
    sources = Sources({}, {})
    for obj in documents:
        if obj.get("kind") == "ConfigMap":
            sources.config_maps[obj["metadata"]["name"]] = _config_map_values(obj)
        elif obj.get("kind") == "Secret":
            sources.secrets[obj["metadata"]["name"]] = _decode_secret(obj)
    return sources


def plan_documents(documents: list[dict[str, Any]], publish: Publish,
                   files_root: str) -> list[PodPlan]:
    """One plan per pod-bearing workload; ConfigMap/Secret volumes become host folders under
    `files_root/<pod>/<volume>` (the runner writes them from `PodPlan.files`)."""
    sources = sources_of(documents)
    plans = []
    for obj in documents:
        template = pod_template_of(obj)
        if template is None:
            continue
        plans.append(_plan_pod(obj, template, sources, publish, files_root))
    if not plans:
        kinds = ", ".join(sorted({str(d.get("kind")) for d in documents})) or "nothing"
        raise ManifestError(f"no pod-bearing workload to run (found: {kinds})")
    names = [p.name for p in plans]
    for name in names:
        if names.count(name) > 1:
            raise ManifestError(f"two workloads would run as pod {name!r}")
    return plans


def _plan_pod(obj: dict[str, Any], template: dict[str, Any], sources: Sources,
              publish: Publish, files_root: str) -> PodPlan:
    kind, name = obj["kind"], local_pod_name(obj)
    meta = template.get("metadata") or {}
    spec = copy.deepcopy(template["spec"])
    plan = PodPlan(name=name, source=f"{kind} {obj['metadata']['name']}", play={}, containers=[])
    plan.spec_hash = hashlib.sha256(json.dumps(template, sort_keys=True,
                                               default=str).encode()).hexdigest()
    if kind not in {"Pod"}:
        plan.notes.append(f"{kind} {obj['metadata']['name']}: runs as one pod named {name}")
    replicas = (obj.get("spec") or {}).get("replicas")
    if isinstance(replicas, int) and replicas != 1:
        plan.notes.append(f"replicas: {replicas} -> 1 (one local pod per workload)")
    plan.grace_seconds = int(spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_SECONDS))
    plan.host_network = bool(spec.get("hostNetwork"))
    pod_security = spec.get("securityContext") or {}
    if pod_security.get("fsGroup") is not None:
        # Neither engine applies fsGroup; its effect on access is the process's extra group.
        groups = list(pod_security.get("supplementalGroups") or [])
        if pod_security["fsGroup"] not in groups:
            groups.append(pod_security["fsGroup"])
        spec["securityContext"] = {**{k: v for k, v in pod_security.items() if k != "fsGroup"},
                                   "supplementalGroups": groups}
        plan.notes.append(f"fsGroup {pod_security['fsGroup']} -> a supplementary group of every "
                          "container (volumes are not chowned; emptyDirs are world-writable)")
    classic = classic_sidecar_names(meta.get("annotations"))
    ordered: list[dict[str, Any]] = []
    for container in spec.get("initContainers") or []:
        native = is_native_sidecar("initContainers", container)
        role: Role = "sidecar" if native else "init"
        ordered.append(container)
        plan.containers.append(_container_plan(container, role, native))
        if native:
            plan.notes.append(f"{container['name']}: native sidecar -> container started before "
                              "the app and waited for (podman hangs on them, docker has none)")
    for container in spec.get("containers") or []:
        role = "sidecar" if container["name"] in classic else "app"
        ordered.append(container)
        plan.containers.append(_container_plan(container, role, False))
    volumes = _translate_volumes(spec, sources, plan, f"{files_root}/{name}")
    volumes += _claimed_volumes(obj, name, plan)
    containers = [_translate_container(c, plan, sources, publish, obj) for c in ordered]
    _isolate_empty_dirs(name, volumes, containers, plan)
    for port in publish:
        if not any(p.get("containerPort") == port for c in containers for p in c.get("ports", [])):
            ip, host = host_side(publish[port])
            raise ManifestError(f"--publish {ip}:{host}:{port}: no container in {name} "
                                f"declares port {port}")
    play_spec: dict[str, Any] = {k: v for k, v in spec.items()
                                 if k not in {"initContainers", "containers", "volumes",
                                              "restartPolicy", "terminationGracePeriodSeconds"}}
    # The runner starts containers itself, in order; podman must not restart one-shot ones.
    play_spec["restartPolicy"] = "Never"
    play_spec["containers"] = containers
    if volumes:
        play_spec["volumes"] = volumes
    play_meta: dict[str, Any] = {"name": name}
    if meta.get("labels") or obj["metadata"].get("labels"):
        play_meta["labels"] = dict(meta.get("labels") or obj["metadata"].get("labels") or {})
    plan.play = {"apiVersion": "v1", "kind": "Pod", "metadata": play_meta, "spec": play_spec}
    return plan


def _isolate_empty_dirs(pod: str, volumes: list[dict[str, Any]],
                        containers: list[dict[str, Any]], plan: PodPlan) -> None:
    """podman 4.3 plays an emptyDir as a named volume called after it, shared by every pod
    using that name; Kubernetes gives each pod its own. Make the names pod-unique."""
    renamed = {}
    for volume in volumes:
        if "emptyDir" in volume:
            renamed[volume["name"]] = f"{pod}-{volume['name']}"
            volume["name"] = renamed[volume["name"]]
            plan.pod_volumes.append(volume["name"])
    for container in containers:
        for mount in container.get("volumeMounts") or []:
            mount["name"] = renamed.get(mount["name"], mount["name"])


def _container_plan(container: dict[str, Any], role: Role, native: bool) -> ContainerPlan:
    lifecycle = container.get("lifecycle") or {}
    return ContainerPlan(
        name=container["name"], role=role, native=native,
        startup=container.get("startupProbe"), readiness=container.get("readinessProbe"),
        liveness=container.get("livenessProbe"),
        post_start=lifecycle.get("postStart"), pre_stop=lifecycle.get("preStop"),
        named_ports={p["name"]: int(p["containerPort"]) for p in container.get("ports") or []
                     if "name" in p},
    )


_DROPPED = ("startupProbe", "readinessProbe", "livenessProbe", "lifecycle", "restartPolicy")


def _translate_container(container: dict[str, Any], plan: PodPlan, sources: Sources,
                         publish: Publish, obj: dict[str, Any]) -> dict[str, Any]:
    out = {k: copy.deepcopy(v) for k, v in container.items() if k not in _DROPPED}
    name = container["name"]
    if out.get("imagePullPolicy") == "Always":
        out["imagePullPolicy"] = "IfNotPresent"
        plan.notes.append(f"{name}: imagePullPolicy Always -> IfNotPresent (local images)")
    ports = []
    for port in out.get("ports") or []:
        number = port["containerPort"]
        if number in publish:
            ip, host = host_side(publish[number])
            port = {**port, "hostPort": host, "hostIP": ip}
        elif "hostPort" in port:
            port = {**port, "hostIP": port.get("hostIP", DEFAULT_BIND)}
        else:
            # podman publishes a bare containerPort on the host; Kubernetes does not.
            continue
        plan.host_ports.append((port["hostIP"], int(port["hostPort"])))
        ports.append(port)
    if ports:
        out["ports"] = ports
    else:
        out.pop("ports", None)
    if "env" in out or "envFrom" in out:
        out["env"] = _translate_env(container, plan, sources, obj)
        out.pop("envFrom", None)
        if not out["env"]:
            del out["env"]
    _expand_references(out)
    return out


def expand_references(text: str, variables: dict[str, str]) -> str:
    """What the kubelet does to `command`, `args` and `env[].value`: `$(NAME)` becomes the
    variable's value when NAME is defined, `$$` becomes `$`, anything else stays as written
    (an unknown or unclosed reference included). Neither engine does it."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] != "$" or i + 1 == len(text):
            out.append(text[i])
            i += 1
        elif text[i + 1] == "$":
            out.append("$")
            i += 2
        elif text[i + 1] == "(" and (end := text.find(")", i + 2)) != -1:
            name = text[i + 2:end]
            out.append(variables.get(name, text[i:end + 1]))
            i = end + 1
        else:
            out.append("$")
            i += 1
    return "".join(out)


def _expand_references(container: dict[str, Any]) -> None:
    # command and args see the whole environment (env values were expanded in _translate_env).
    variables = {item["name"]: item["value"] for item in container.get("env") or []
                 if isinstance(item.get("value"), str)}
    for key in ("command", "args"):
        if isinstance(container.get(key), list):
            container[key] = [expand_references(a, variables) if isinstance(a, str) else a
                              for a in container[key]]


def _translate_env(container: dict[str, Any], plan: PodPlan, sources: Sources,
                   obj: dict[str, Any]) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = []
    for source in container.get("envFrom") or []:
        for kind, ref_key in (("configMap", "configMapRef"), ("secret", "secretRef")):
            ref = source.get(ref_key)
            if ref is None:
                continue
            values = sources.lookup(kind, ref["name"])
            if values is None:
                if ref.get("optional"):
                    continue
                raise ManifestError(f"{plan.source}: {container['name']} needs {kind} "
                                    f"{ref['name']!r}, which is not in the input")
            prefix = source.get("prefix", "")
            env += [{"name": prefix + k, "value": v.decode()} for k, v in sorted(values.items())]
    # A plain value sees the variables before it; envFrom and valueFrom ones are taken as they
    # are (the kubelet's order). A later duplicate name overrides, as in the kubelet.
    known = {e["name"]: e["value"] for e in env}
    for item in container.get("env") or []:
        value_from = item.get("valueFrom")
        if value_from is None:
            entry = {**item, "value": expand_references(str(item.get("value", "")), known)}
        else:
            entry = {"name": item["name"], **_resolve_value_from(item["name"], value_from,
                                                                  container, plan, sources, obj)}
        env.append(entry)
        if isinstance(entry.get("value"), str):
            known[entry["name"]] = entry["value"]
    return env


def _resolve_value_from(name: str, value_from: dict[str, Any], container: dict[str, Any],
                        plan: PodPlan, sources: Sources, obj: dict[str, Any]) -> dict[str, Any]:
    for kind, key in (("configMap", "configMapKeyRef"), ("secret", "secretKeyRef")):
        ref = value_from.get(key)
        if ref is None:
            continue
        values = sources.lookup(kind, ref["name"])
        if values is None or ref["key"] not in values:
            if ref.get("optional"):
                return {"value": ""}
            raise ManifestError(f"{plan.source}: env {name} of {container['name']} needs "
                                f"{kind} {ref['name']!r} key {ref['key']!r}, not in the input")
        if kind == "secret":
            plan.notes.append(f"{container['name']}: env {name} <- decoded Secret "
                              f"{ref['name']}/{ref['key']} (podman would not decode it)")
        return {"value": values[ref["key"]].decode()}
    field_ref = value_from.get("fieldRef")
    if field_ref is not None:
        path = field_ref["fieldPath"]
        replacement = {
            "metadata.namespace": (obj.get("metadata") or {}).get("namespace", "default"),
            "spec.nodeName": os.uname().nodename,
            "spec.serviceAccountName": "default",
            "status.podIP": "", "status.podIPs": "", "status.hostIP": "",
        }
        if path in replacement:
            plan.notes.append(f"{container['name']}: env {name} fieldRef {path} -> "
                              f"{replacement[path]!r} (podman does not resolve it)")
            return {"value": replacement[path]}
    return {"valueFrom": value_from}


def _translate_volumes(spec: dict[str, Any], sources: Sources, plan: PodPlan,
                       folder: str) -> list[dict[str, Any]]:
    volumes = []
    for volume in spec.get("volumes") or []:
        name = volume["name"]
        for kind, name_key in (("configMap", "name"), ("secret", "secretName")):
            ref = volume.get(kind)
            if ref is None:
                continue
            values = sources.lookup(kind, ref[name_key])
            if values is None:
                if ref.get("optional"):
                    values = {}
                else:
                    raise ManifestError(f"{plan.source}: volume {name} needs {kind} "
                                        f"{ref[name_key]!r}, which is not in the input")
            projection = {"kind": kind, "name": ref[name_key], "items": ref.get("items"),
                          "mode": int(ref.get("defaultMode", 0o644)),
                          "optional": bool(ref.get("optional"))}
            plan.projections[name] = projection
            for relative, content in project(projection, values, plan.source, name).items():
                plan.files[f"{name}/{relative}"] = content
            plan.notes.append(f"volume {name}: {kind} {ref[name_key]} -> files on the host "
                              "(decoded, removed by down)" if kind == "secret" else
                              f"volume {name}: configMap {ref[name_key]} -> files on the host "
                              "(the kubelet's layout: ..data swapped by `pattern apply`)")
            volume = {"name": name, "hostPath": {"path": f"{folder}/{name}", "type": "Directory"}}
            break
        volumes.append(volume)
    return volumes


def project(projection: dict[str, Any], values: dict[str, bytes], source: str,
            volume: str) -> dict[str, tuple[bytes, int]]:
    """The files a ConfigMap/Secret volume shows (relative path -> data, mode), from the
    object's values, as the kubelet picks them (`items`, `defaultMode`, an item's `mode`)."""
    mode, items = projection["mode"], projection.get("items")
    chosen = {i["path"]: (values[i["key"]], int(i.get("mode", mode))) for i in items
              if i["key"] in values} if items else {k: (v, mode) for k, v in values.items()}
    for relative in chosen:
        if relative.startswith("/") or ".." in relative.split("/") or relative.startswith(".."):
            raise ManifestError(f"{source}: volume {volume}: bad item path {relative}")
    return chosen


def _claimed_volumes(obj: dict[str, Any], pod: str, plan: PodPlan) -> list[dict[str, Any]]:
    """A StatefulSet's volumeClaimTemplates, as Kubernetes names the first pod's claims
    (`<claim>-<pod>`): podman keeps such a named volume after `down`, as a cluster keeps PVCs."""
    volumes = []
    for claim in claim_templates(obj):
        volumes.append({"name": claim, "persistentVolumeClaim": {"claimName": f"{claim}-{pod}"}})
        plan.notes.append(f"volumeClaimTemplates {claim} -> volume {claim}-{pod} "
                          "(kept by down, as a cluster keeps the claim)")
    return volumes


def handler_port(action: dict[str, Any], named_ports: dict[str, int]) -> int:
    """The numeric port of an httpGet/tcpSocket action (named ports resolved)."""
    port = action.get("port")
    if isinstance(port, int):
        return port
    if isinstance(port, str) and port.isdigit():
        return int(port)
    if isinstance(port, str) and port in named_ports:
        return named_ports[port]
    raise ManifestError(f"probe port {port!r} is not a number or a declared port name")
