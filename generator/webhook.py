"""`pattern webhook serve`'s answer to one AdmissionReview: inject, as a JSONPatch.

Nothing here decides what a pod gets: the pod of the request is injected by
`inject.inject_object` (so by `sidecars.build_patch`, with inject's checks and its record), then
checked by `validate.check_object`, and the answer is the difference between the pod before and
after as RFC 6902 operations (`component.json_patch`, the same difference the kustomize
Component writes). What to inject comes from the pod's annotations:

- `sidecar-patterns.io/inject: "log-collector,sync=git-sync"`: the sidecars (`[NAME=]PATTERN`,
  as `--with`); `"false"` skips the pod;
- `sidecar-patterns.io/profile: NAME`: the sidecars of a named profile (stack-file sidecars);
- `sidecar-patterns.io/set.SIDECAR.KEY: VALUE`: a value, as `--set SIDECAR.KEY=VALUE`.

Every answer is an AdmissionReview (never an error status): a request that cannot be read, a
pod that cannot be injected or fails the pod rules is denied with one clear message, or
allowed unchanged with that message as a warning when the webhook is configured so
(`on_error="allow"`). A pod already injected (inject's record is on it) is left alone, so the
webhook is idempotent under `reinvocationPolicy: IfNeeded`.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field, replace
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from .catalogue import Catalogue
from .component import json_patch
from .errors import PatternError
from .inject import INJECT_ANNOTATION, RECORD_ANNOTATION, inject_object
from .kinds import mapping
from .manifests import Document, Slot, metadata_of, plain
from .sidecars import SidecarOptions, SidecarRequest, add_requests
from .stack import API_VERSION, check_flags, stack_from_dict
from .validate import check_object
from .values import parse_assignment
from .versions import DEFAULT_K8S_VERSION

REVIEW_API = "admission.k8s.io/v1"
PROFILE_ANNOTATION = "sidecar-patterns.io/profile"
SET_PREFIX = "sidecar-patterns.io/set."
WORKLOAD_ANNOTATION = "sidecar-patterns.io/workload"  # names companion objects (see _workload)
MAX_REQUEST_BYTES = 3 << 20  # the API server sends at most 3 MiB
WARNING_LIMIT = 256  # the API server may truncate longer warnings
PROFILES_KIND = "WebhookProfiles"
PROFILE_FIELDS = {"sidecars", "sidecarMode", "imageRegistry"}
_SOURCE = "request.object"


class ReviewError(PatternError):
    """The request cannot be answered with a patch; the message says why."""


@dataclass(frozen=True)
class Settings:
    """How the webhook answers: the cluster's version, what a bad pod gets, the profiles."""

    k8s_version: str = DEFAULT_K8S_VERSION
    sidecar_mode: str = "auto"
    image_registry: str | None = None
    on_error: str = "deny"  # or "allow": allowed unchanged, the problem as a warning
    validate: bool = True
    profiles: dict[str, SidecarOptions] = field(default_factory=dict)


# ---------------------------------------------------------------- profiles

def read_profiles(data: Any, source: str) -> dict[str, SidecarOptions]:
    """Profiles from a WebhookProfiles document: `profiles: {NAME: {sidecars: [...]}}`, each
    checked by the stack schema as a stack file's spec would be."""
    if not isinstance(data, dict) or data.get("apiVersion") != API_VERSION \
            or data.get("kind") != PROFILES_KIND:
        raise ReviewError(f"{source}: expected apiVersion {API_VERSION}, kind {PROFILES_KIND}")
    profiles = data.get("profiles")
    if not isinstance(profiles, dict):
        raise ReviewError(f"{source}: profiles: expected a mapping of NAME to {{sidecars: ...}}")
    found: dict[str, SidecarOptions] = {}
    for name, spec in profiles.items():
        where = f"{source}: profiles.{name}"
        if not isinstance(spec, dict) or not spec.get("sidecars"):
            raise ReviewError(f"{where}: name at least one sidecar (sidecars: [...])")
        unknown = sorted(str(k) for k in spec if k not in PROFILE_FIELDS)
        if unknown:
            raise ReviewError(f"{where}: unknown field(s) {', '.join(unknown)} (known: "
                              f"{', '.join(sorted(PROFILE_FIELDS))})")
        stack = stack_from_dict({"apiVersion": API_VERSION, "kind": "Stack",
                                 "metadata": {"name": str(name)},
                                 "spec": {"app": {"image": "app"}, **plain(spec)}}, where)
        found[str(name)] = replace(stack.sidecar_options(), container=None)
    return found


# ---------------------------------------------------------------- what the pod asks for

def _items(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _options(annotations: dict[str, str], settings: Settings) -> SidecarOptions:
    """The sidecars and values the pod's annotations ask for, checked as the flags are."""
    base = SidecarOptions(k8s_version=settings.k8s_version, sidecar_mode=settings.sidecar_mode,
                          image_registry=settings.image_registry)
    profile = annotations.get(PROFILE_ANNOTATION)
    requests: tuple[SidecarRequest, ...] = ()
    if profile is not None:
        chosen = settings.profiles.get(profile.strip())
        if chosen is None:
            known = ", ".join(sorted(settings.profiles)) or "none configured"
            raise ReviewError(f"annotation {PROFILE_ANNOTATION}: no profile {profile!r} "
                              f"(profiles: {known})")
        requests = chosen.requests
        base = replace(base, sidecar_mode=chosen.sidecar_mode
                       if chosen.sidecar_mode != "auto" else base.sidecar_mode,
                       image_registry=chosen.image_registry or base.image_registry)
    listed = _items(annotations.get(INJECT_ANNOTATION, ""))
    try:
        for item in listed:  # each as `--with ITEM`, by the stack schema's rules
            name, sep, pattern = item.partition("=")
            check_flags([("--with", name)] + ([("--with PATTERN", pattern)] if sep else []))
        requests = add_requests(requests, listed)
    except PatternError as error:
        text = re.sub(r"--with( PATTERN)?:? ?", "", str(error))
        raise ReviewError(f"annotation {INJECT_ANNOTATION}: {text}") from None
    assignments = []
    for key, value in sorted(annotations.items()):
        if key.startswith(SET_PREFIX):
            expression = f"{key.removeprefix(SET_PREFIX)}={value}"
            try:
                assignments.append(parse_assignment(expression))
            except PatternError:
                raise ReviewError(f"annotation {key}: expected {SET_PREFIX}SIDECAR.KEY") \
                    from None
    return replace(base, requests=requests, assignments=tuple(assignments))


def _workload(pod: dict[str, Any]) -> str | None:
    """The name companion objects are named after: the annotation, else the pod's controller
    as a user knows it (a Deployment's ReplicaSet without its pod-template-hash), else none
    (inject then uses the pod's name or generateName)."""
    meta = metadata_of(pod)
    annotations = meta.get("annotations") or {}
    if annotations.get(WORKLOAD_ANNOTATION):
        return str(annotations[WORKLOAD_ANNOTATION])
    owners = [o for o in meta.get("ownerReferences") or [] if isinstance(o, dict)
              and o.get("controller")]
    if not owners:
        return None
    name = str(owners[0].get("name") or "")
    hash_label = str((meta.get("labels") or {}).get("pod-template-hash") or "")
    if owners[0].get("kind") == "ReplicaSet" and hash_label:
        name = name.removesuffix(f"-{hash_label}")
    return name or None


def _owner_kind(pod: dict[str, Any]) -> str:
    """Job when a Job controls the pod (its pods must complete), else Pod."""
    owners = [o for o in metadata_of(pod).get("ownerReferences") or []
              if isinstance(o, dict) and o.get("controller")]
    return "Job" if owners and owners[0].get("kind") == "Job" else "Pod"


def _round_trip(node: Any) -> Any:
    """Plain JSON data as the round-trip nodes inject edits in place."""
    if isinstance(node, dict):
        mapping = CommentedMap()
        for key, value in node.items():
            mapping[key] = _round_trip(value)
        return mapping
    if isinstance(node, list):
        return CommentedSeq(_round_trip(v) for v in node)
    return node


# ---------------------------------------------------------------- one pod

@dataclass
class Decision:
    """What the webhook does with one pod: a patch (maybe empty), warnings, or a denial."""

    allowed: bool = True
    patch: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    message: str = ""
    injected: dict[str, Any] | None = None  # the pod after the patch (for tests and checks)


def _skip_reason(pod: dict[str, Any]) -> str | None:
    meta = metadata_of(pod)
    annotations = meta.get("annotations") or {}
    spec = mapping(pod.get("spec"))
    if str(annotations.get(INJECT_ANNOTATION, "")).strip().lower() == "false":
        return f"skipped: annotation {INJECT_ANNOTATION} is \"false\""
    if RECORD_ANNOTATION in annotations:
        return None  # already injected: left alone without a warning (reinvocation)
    if spec.get("hostNetwork") is True:
        return ("skipped: hostNetwork is true, so the sidecars' ports would be ports of the "
                "node")
    if not annotations.get(INJECT_ANNOTATION) and PROFILE_ANNOTATION not in annotations:
        return (f"skipped: no sidecars asked for (annotation {INJECT_ANNOTATION} or "
                f"{PROFILE_ANNOTATION})")
    return None


def _name_for_messages(pod: dict[str, Any], namespace: str) -> str:
    meta = metadata_of(pod)
    name = meta.get("name") or f"{meta.get('generateName') or '?'}*"
    return f"Pod {namespace}/{name}" if namespace else f"Pod {name}"


def decide(pod: Any, namespace: str, settings: Settings, catalogue: Catalogue) -> Decision:
    """Inject the pod (plain JSON data) as its annotations ask; never raises a PatternError."""
    if not isinstance(pod, dict) or pod.get("kind") != "Pod" or \
            not isinstance(pod.get("spec"), dict):
        raise ReviewError("request.object: expected a Pod with a spec")
    reason = _skip_reason(pod)
    if reason is not None:
        return Decision(warnings=[reason])
    if RECORD_ANNOTATION in (metadata_of(pod).get("annotations") or {}):
        return Decision()
    who = _name_for_messages(pod, namespace)
    annotations = {str(k): str(v) for k, v in (metadata_of(pod).get("annotations") or {}).items()}
    options = _options(annotations, settings)
    obj = _round_trip(pod)
    workload = _workload(pod)
    if workload is not None and not obj["metadata"].get("name"):
        obj["metadata"]["generateName"] = f"{workload}-"
    if namespace and not obj["metadata"].get("namespace"):
        obj["metadata"]["namespace"] = namespace
    slot = Slot(Document(_SOURCE, 1, 1, ""), obj)
    try:
        outcome = inject_object(slot, options, catalogue, set(),
                                pod_kind=_owner_kind(pod))
    except PatternError as error:
        raise ReviewError(_clean(str(error))) from None
    after = plain(obj)
    after["metadata"] = {**after["metadata"]}
    for key in ("generateName", "namespace"):  # restore what we set only to name things
        if key in metadata_of(pod):
            after["metadata"][key] = metadata_of(pod)[key]
        else:
            after["metadata"].pop(key, None)
    after["metadata"] = _keep_order(metadata_of(pod), after["metadata"])
    if settings.validate:
        problems = _new_problems(pod, after, settings.k8s_version)
        if problems:
            raise ReviewError(f"the injected pod breaks {len(problems)} rule(s): "
                              + "; ".join(problems))
    warnings = [f"{who}: sidecar needs {o['kind']} {metadata_of(o).get('name')}, which an "
                "admission webhook does not create (sideEffects: None): create it, e.g. from "
                "`pattern inject` of the workload" for o in outcome.objects]
    return Decision(patch=json_patch(pod, after), warnings=warnings, injected=after)


def _keep_order(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    ordered = {k: after[k] for k in before if k in after}
    ordered.update({k: v for k, v in after.items() if k not in ordered})
    return ordered


def _new_problems(before: dict[str, Any], after: dict[str, Any], k8s_version: str) -> list[str]:
    """Problems of the injected pod that the pod did not have as it came: the API server
    judges its own defaulting, the webhook only what the sidecars add."""
    had = set(check_object(before, k8s_version))
    return [p for p in check_object(after, k8s_version) if p not in had]


def _clean(message: str) -> str:
    return re.sub(rf"^{re.escape(_SOURCE)}: document 1 \([^)]*\): ", "", message)


# ---------------------------------------------------------------- one AdmissionReview

def _response(uid: str, decision: Decision) -> dict[str, Any]:
    response: dict[str, Any] = {"uid": uid, "allowed": decision.allowed}
    if decision.patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(
            json.dumps(decision.patch, separators=(",", ":")).encode()).decode()
    if decision.warnings:
        response["warnings"] = [w if len(w) <= WARNING_LIMIT else w[:WARNING_LIMIT - 1] + "…"
                                for w in decision.warnings]
    if not decision.allowed:
        response["status"] = {"code": 403, "reason": "Forbidden",
                              "message": decision.message}
    return {"apiVersion": REVIEW_API, "kind": "AdmissionReview", "response": response}


def _denied(uid: str, message: str, settings: Settings, *, readable: bool) -> dict[str, Any]:
    message = " ".join(f"sidecar-patterns webhook: {message}".split())
    if settings.on_error == "allow" and readable:
        return _response(uid, Decision(warnings=[message]))
    return _response(uid, Decision(allowed=False, message=message))


def too_large(length: int, settings: Settings) -> dict[str, Any]:
    """The denial of a request body over MAX_REQUEST_BYTES (it is not parsed)."""
    return _denied("", f"the request is {length} bytes, more than the {MAX_REQUEST_BYTES} "
                   "this webhook reads", settings, readable=False)


def review(body: bytes, settings: Settings, catalogue: Catalogue) -> dict[str, Any]:
    """The AdmissionReview answering one request body; every problem is a denial (or, with
    on_error="allow", a warning on an unchanged pod), never an exception."""
    uid = ""
    if len(body) > MAX_REQUEST_BYTES:
        return too_large(len(body), settings)
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return _denied(uid, "the request is not JSON (expected an AdmissionReview)", settings,
                       readable=False)
    request = data.get("request") if isinstance(data, dict) else None
    if isinstance(request, dict) and isinstance(request.get("uid"), str):
        uid = request["uid"]
    if not isinstance(data, dict) or data.get("apiVersion") != REVIEW_API or \
            data.get("kind") != "AdmissionReview" or not isinstance(request, dict):
        got = data.get("apiVersion") if isinstance(data, dict) else None
        return _denied(uid, f"expected an AdmissionReview of {REVIEW_API} with a request "
                       f"(got apiVersion {str(got)[:60]!r})", settings, readable=False)
    kind = mapping(request.get("kind"))
    if (kind.get("group"), kind.get("kind")) != ("", "Pod"):
        return _denied(uid, f"this webhook injects Pods, not {str(kind.get('kind'))[:60]!r} "
                       "(check the rules of the MutatingWebhookConfiguration)", settings,
                       readable=False)
    if request.get("operation") != "CREATE":
        return _response(uid, Decision())  # only creation gets sidecars
    namespace = str(request.get("namespace") or "")
    try:
        decision = decide(request.get("object"), namespace, settings, catalogue)
    except RecursionError:
        return _denied(uid, "request.object is nested too deeply", settings, readable=False)
    except PatternError as error:
        return _denied(uid, str(error), settings, readable=True)
    return _response(uid, decision)
