"""Start, watch and stop pods: the orchestration behind run, status, logs and down.

Engine-neutral: every container operation goes through the `Runtime` it is given (or the one
a pod was recorded with).
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import ManifestError, PatternError, RuntimeUnavailable
from ..kinds import pod_template_of
from . import engines, state
from .plan import ContainerPlan, PodPlan, Publish, plan_documents, project, sources_of
from .probes import Outcome, Target, probe_once, run_action, wait_until
from .runtime import Runtime

Say = Callable[[str], None]


class NotReady(PatternError):
    """A pod did not become ready; the message names the container, probe and output."""


def _quiet(_: str) -> None:
    return None


# ---------------------------------------------------------------- preflight

def preflight(plans: list[PodPlan], rt: Runtime, *, replace: bool) -> None:
    """Everything that can be checked before anything starts: one clear line each."""
    problem = rt.problem()
    if problem is not None:
        raise RuntimeUnavailable(f"{rt.name} cannot run containers here: {problem}; "
                                 + engines.HOW_TO_START)
    for plan in plans:
        for container in plan.play["spec"]["containers"]:
            if not rt.image_present(container["image"]):
                raise RuntimeUnavailable(
                    f"image {container['image']} (container {container['name']} of {plan.name}) "
                    f"is not available to {rt.name}: build it (pattern images build --runtime "
                    f"{rt.name}) or pull it")
        recorded = state.load(plan.name)
        other = engines.for_pod(recorded.runtime) if recorded is not None else rt
        exists = rt.pod_exists(plan.name) or (other.name != rt.name
                                              and other.pod_exists(plan.name))
        if exists and not replace:
            raise PatternError(f"pod {plan.name} already exists: run `pattern down {plan.name}` "
                               "or pass --replace")
        if exists or recorded is not None:
            down(plan.name, grace=0, runtime=rt)
        for host, port in plan.host_ports:
            _check_port_free(host, port, plan.name)
        _check_non_root(plan, rt)


def _check_port_free(host: str, port: int, pod: str) -> None:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            raise PatternError(f"host port {host}:{port} (pod {pod}) is already taken") from None


def _check_non_root(plan: PodPlan, rt: Runtime) -> None:
    """runAsNonRoot, which the engines ignore: refuse as the kubelet would."""
    pod_ctx = plan.play["spec"].get("securityContext") or {}
    for container in plan.play["spec"]["containers"]:
        ctx = {**pod_ctx, **(container.get("securityContext") or {})}
        if not ctx.get("runAsNonRoot"):
            continue
        user = ctx.get("runAsUser")
        if user is None:
            user = rt.image_user(container["image"]).split(":")[0] or "0"
        if str(user) in {"0", "root"}:
            raise PatternError(f"{plan.name}/{container['name']}: runAsNonRoot is set but the "
                               f"image {container['image']} runs as root (the kubelet refuses it)")


# ---------------------------------------------------------------- up

def _create_empty_dirs(plan: PodPlan, rt: Runtime) -> None:
    """An emptyDir on Kubernetes is world-writable (0777); an engine would give it to the first
    container's uid with 0755, so an app and a sidecar with different uids could not share it."""
    for volume in plan.pod_volumes:
        rt.create_volume(volume, plan.name).chmod(0o777)


def _start_infra(plan: PodPlan, rt: Runtime) -> str:
    """Start the pod's infra container, which owns the network namespace, and return the pod
    IP: probes and hooks of the first containers need it before anything else runs."""
    rt.start_infra(plan.name)
    ip = rt.pod_ip(plan.name, plan.host_network)
    if not ip:
        raise RuntimeUnavailable(f"pod {plan.name} has no IP address after its start")
    return ip


def _target(plan: PodPlan, container: ContainerPlan, ip: str, rt: Runtime) -> Target:
    return Target(rt.container_name(plan.name, container.name), ip, container.named_ports, rt)


def _is_running(name: str, rt: Runtime) -> Callable[[], bool]:
    return lambda: rt.is_running(name)


def _logs_tail(name: str, rt: Runtime) -> str:
    result = rt.logs(name, tail=5)
    text = " | ".join(ln for ln in (result.stdout + result.stderr).splitlines() if ln.strip())
    return f" (last log lines: {text[-400:]})" if text else ""


def _check_infra(plan: PodPlan, rt: Runtime) -> None:
    """Containers joined to a pod's namespaces do not survive the loss of its infra container:
    say so rather than carry on with half a pod."""
    if not plan.host_network and not rt.infra_running(plan.name):
        raise NotReady(f"{plan.name}: its infra container (which holds the pod's network) is "
                       "gone; the pod cannot work without it")


def _start(plan: PodPlan, container: ContainerPlan, ip: str, deadline: float, say: Say,
           rt: Runtime) -> None:
    name = rt.container_name(plan.name, container.name)
    _check_infra(plan, rt)
    rt.start(name)
    say(f"{plan.name}/{container.name}: started ({container.role})")
    target = _target(plan, container, ip, rt)
    if container.post_start is not None:
        outcome = run_action(container.post_start, target, timeout=30)
        if not outcome.ok:
            if not rt.is_running(name):
                raise NotReady(f"{plan.name}/{container.name}: exited right after it started"
                               + _logs_tail(name, rt))
            raise NotReady(f"{plan.name}/{container.name}: postStart hook failed: "
                           f"{outcome.detail}")
        say(f"{plan.name}/{container.name}: postStart ran ({outcome.detail})")
    if container.role == "init":
        code = rt.wait(name, max(1.0, deadline - time.monotonic()))
        if code != "0":
            raise NotReady(f"{plan.name}/{container.name}: init container exited {code}"
                           + _logs_tail(name, rt))
        say(f"{plan.name}/{container.name}: completed")
    elif container.native and container.startup is not None:
        outcome = wait_until(container.startup, target, deadline, give_up_after_failures=True,
                             is_running=_is_running(name, rt))
        if not outcome.ok:
            raise NotReady(f"{plan.name}/{container.name}: startupProbe {outcome.detail}"
                           + _logs_tail(name, rt))
        say(f"{plan.name}/{container.name}: started per startupProbe")


def _wait_ready(plan: PodPlan, ip: str, deadline: float, say: Say, rt: Runtime) -> None:
    for container in plan.containers:
        if container.role == "init":
            continue
        name = rt.container_name(plan.name, container.name)
        target = _target(plan, container, ip, rt)
        if container.startup is not None and not container.native:
            outcome = wait_until(container.startup, target, deadline,
                                 give_up_after_failures=True, is_running=_is_running(name, rt))
            if not outcome.ok:
                raise NotReady(f"{plan.name}/{container.name}: startupProbe {outcome.detail}"
                               + _logs_tail(name, rt))
        if container.readiness is not None:
            outcome = wait_until(container.readiness, target, deadline,
                                 give_up_after_failures=False, is_running=_is_running(name, rt))
            if not outcome.ok:
                raise NotReady(f"{plan.name}/{container.name}: readinessProbe {outcome.detail}"
                               + _logs_tail(name, rt))
            say(f"{plan.name}/{container.name}: ready ({outcome.detail})")
        elif not rt.is_running(name):
            _check_infra(plan, rt)
            raise NotReady(f"{plan.name}/{container.name}: exited" + _logs_tail(name, rt))


def up(plans: list[PodPlan], *, wait: bool, timeout: float, replace: bool = False,
       say: Say = _quiet, runtime: Runtime | None = None) -> Runtime:
    """Start every pod in Kubernetes order; with `wait`, return once all are ready.

    On any failure everything this call started is stopped and removed again. Returns the
    engine the pods run on (`runtime`, or the one `engines.choose` picks).
    """
    rt = runtime or engines.choose()
    say(f"runtime: {rt.name}")
    for plan in plans:
        plan.runtime = rt.name
        for note in plan.notes:
            say(f"translate: {plan.name}: {note}")
    preflight(plans, rt, replace=replace)
    started: list[PodPlan] = []
    deadline = time.monotonic() + timeout
    try:
        for plan in plans:
            state.save(plan)
            started.append(plan)
            state.write_files(plan, state.root() / "files")
            _create_empty_dirs(plan, rt)
            rt.create_pod(plan, state.pod_dir(plan.name), say)
            say(f"{plan.name}: created")
            ip = _start_infra(plan, rt)
            for container in plan.containers:
                _start(plan, container, ip, deadline, say, rt)
        if wait:
            for plan in plans:
                _wait_ready(plan, rt.pod_ip(plan.name, plan.host_network), deadline, say, rt)
    except BaseException:
        for plan in reversed(started):
            down(plan.name, grace=0)
        raise
    return rt


# ---------------------------------------------------------------- apply

def apply(documents: list[dict[str, Any]], publish: Publish, *, wait: bool, timeout: float,
          say: Say = _quiet, engine: Callable[[], Runtime] = engines.choose) -> list[str]:
    """What `kubectl apply` does to a pod, locally: a ConfigMap or Secret of the input that
    a running pod mounts is written into it as the kubelet would (a new timestamped folder and
    one `..data` swap, at once rather than after the kubelet's sync delay), and the pod keeps
    running; env values taken from it stay as they were, as on Kubernetes. A workload of the
    input that is not running is started; one whose pod template changed is refused (a cluster
    would replace its pod: `pattern run --replace`); `engine` is asked only then (updating
    files needs no engine). Returns one line per object."""
    if not documents:
        raise ManifestError("nothing to apply: the input has no documents")
    sources = sources_of(documents)
    has_pods = any(pod_template_of(obj) is not None for obj in documents)
    plans = plan_documents(documents, publish, str(state.root() / "files")) if has_pods else []
    if not plans and not sources.config_maps and not sources.secrets:
        kinds = ", ".join(sorted({str(d.get("kind")) for d in documents}))
        raise ManifestError(f"nothing to apply: no workload, ConfigMap or Secret (found: {kinds})")
    start = []
    for plan in plans:
        recorded = state.load(plan.name)
        if recorded is None or not engines.for_pod(recorded.runtime).pod_exists(plan.name):
            start.append(plan)
        elif recorded.spec_hash != plan.spec_hash:
            raise PatternError(f"pod {plan.name}: its pod template changed; apply "
                               "only updates ConfigMaps and Secrets: `pattern run FILE "
                               "--replace` replaces the pod, as a rollout would")
    lines, used = [], set()
    for pod in state.known_pods():
        recorded = state.load(pod)
        if recorded is None or any(plan.name == pod for plan in start):
            continue
        payloads = {}
        for volume, projection in recorded.projections.items():
            values = sources.lookup(projection["kind"], projection["name"])
            if values is not None:
                used.add((projection["kind"], projection["name"]))
                payloads[volume] = project(projection, values, recorded.source, volume)
        changed = state.write_volumes(state.root() / "files" / pod, payloads)
        for volume in sorted(payloads):
            projection = recorded.projections[volume]
            word = "configured" if volume in changed else "unchanged"
            lines.append(f"{projection['kind'].lower()}/{projection['name']} {word} "
                         f"(pod {pod}, volume {volume})")
            say(f"{pod}: volume {volume}: {word}" + (" (new ..data)" if word == "configured"
                                                      else ""))
    for kind, table in (("configMap", sources.config_maps), ("secret", sources.secrets)):
        for name in sorted(table):
            if (kind, name) not in used and not any(
                    (p.get("kind"), p.get("name")) == (kind, name)
                    for plan in start for p in plan.projections.values()):
                lines.append(f"{kind.lower()}/{name} not mounted by a running pod")
    if start:
        up(start, wait=wait, timeout=timeout, say=say, runtime=engine())
        lines += [f"pod/{plan.name} created" for plan in start]
    return lines


def pod_ip(pod: str) -> str:
    """The address of a pod `pattern run` started ('' while its infra container is not
    running)."""
    plan = _recorded(pod)
    return engines.for_pod(plan.runtime).pod_ip(pod, plan.host_network)


def _recorded(pod: str) -> PodPlan:
    plan = state.load(pod)
    if plan is None:
        raise PatternError(f"no pod {pod!r} started by pattern run")
    return plan


# ---------------------------------------------------------------- status / logs / down

@dataclass(frozen=True)
class ContainerStatus:
    pod: str
    container: str
    role: str
    state: str
    ready: str
    live: str  # the livenessProbe now; the runner restarts nothing on it, so it is only reported
    detail: str


def status(pods: list[str]) -> list[ContainerStatus]:
    rows = []
    for pod in pods:
        plan = _recorded(pod)
        rt = engines.for_pod(plan.runtime)
        exists = rt.pod_exists(pod)
        ip = rt.pod_ip(pod, plan.host_network) if exists else "127.0.0.1"
        lost = exists and not plan.host_network and not rt.infra_running(pod)
        for container in plan.containers:
            rows.append(_container_status(plan, container, ip, rt, lost))
    return rows


def _container_status(plan: PodPlan, container: ContainerPlan, ip: str, rt: Runtime,
                      infra_lost: bool) -> ContainerStatus:
    name = rt.container_name(plan.name, container.name)
    inspected = rt.state(name)
    if inspected is None:
        return ContainerStatus(plan.name, container.name, container.role, "missing", "-", "-", "")
    status_word, exit_code = inspected
    if infra_lost:
        return ContainerStatus(plan.name, container.name, container.role, status_word,
                               "no", "-", f"the pod's infra container is gone (pattern down "
                               f"{plan.name})")
    if status_word != "running":
        word = "completed" if container.role == "init" and exit_code == "0" else \
            f"{status_word} ({exit_code})"
        return ContainerStatus(plan.name, container.name, container.role, word,
                               "-" if container.role == "init" else "no", "-", "")
    target = _target(plan, container, ip, rt)
    live = "-"
    if container.liveness is not None:
        live = "yes" if probe_once(container.liveness, target).ok else "no"
    if container.readiness is None:
        return ContainerStatus(plan.name, container.name, container.role, "running", "yes",
                               live, "no readinessProbe")
    outcome: Outcome = probe_once(container.readiness, target)
    return ContainerStatus(plan.name, container.name, container.role, "running",
                           "yes" if outcome.ok else "no", live, outcome.detail)


def logs(pod: str, container: str | None, *, follow: bool, tail: int | None) -> int:
    plan = _recorded(pod)
    names = [c.name for c in plan.containers]
    chosen = container or next((c.name for c in plan.containers if c.role == "app"), names[0])
    if chosen not in names:
        raise PatternError(f"pod {pod} has no container {chosen!r} (it has: {', '.join(names)})")
    rt = engines.for_pod(plan.runtime)
    return rt.stream_logs(rt.container_name(pod, chosen), follow=follow, tail=tail)


def down(pod: str, *, grace: int | None = None, say: Say = _quiet,
         runtime: Runtime | None = None) -> None:
    """Stop as Kubernetes does (preStop, then SIGTERM with the grace period; sidecars last,
    in reverse order), then remove the pod and everything of ours. Safe to repeat.

    The engine is the one the pod was recorded with; `runtime` is asked when there is no
    record (a pod left behind by a lost state folder)."""
    plan = state.load(pod)
    rt = engines.for_pod(plan.runtime) if plan is not None else (runtime or engines.choose())
    exists = rt.pod_exists(pod)
    if plan is not None and exists and rt.infra_running(pod):
        # The grace period is one budget for the whole pod, as on Kubernetes.
        deadline = time.monotonic() + (plan.grace_seconds if grace is None else grace)
        mains = [c for c in plan.containers if c.role != "init" and not c.native]
        natives = [c for c in reversed(plan.containers) if c.native]
        up = rt.running([rt.container_name(pod, c.name) for c in mains + natives])
        running = [c for c in mains + natives if rt.container_name(pod, c.name) in up]
        # The pod IP only when a preStop hook goes over the network (one engine call less).
        ip = rt.pod_ip(pod, plan.host_network) if any(
            c.pre_stop is not None and "exec" not in c.pre_stop for c in running) else ""
        _stop_group(plan, [c for c in mains if c in running], ip, deadline, say, rt)
        for container in natives:
            if container in running:
                _stop_group(plan, [container], ip, deadline, say, rt)
    if exists:
        rt.remove_pod(pod)
    if plan is not None:
        rt.remove_volumes(plan.pod_volumes)
    if plan is None and not exists:
        raise PatternError(f"no pod {pod!r} to stop")
    if plan is not None:
        shutil.rmtree(state.root() / "files" / pod, ignore_errors=True)
        state.forget(pod)


def _stop_group(plan: PodPlan, running: list[ContainerPlan], ip: str, deadline: float,
                say: Say, rt: Runtime) -> None:
    """preStop hooks of these running containers, then SIGTERM within what is left of the
    grace period."""
    for container in running:
        if container.pre_stop is not None:
            outcome = run_action(container.pre_stop, _target(plan, container, ip, rt),
                                 timeout=max(1.0, deadline - time.monotonic()))
            say(f"{plan.name}/{container.name}: preStop {'ran' if outcome.ok else 'failed'} "
                f"({outcome.detail})")
    if running:
        names = [rt.container_name(plan.name, c.name) for c in running]
        rt.stop(names, max(0, round(deadline - time.monotonic())))


def documents_to_plans(documents: list[dict[str, Any]], publish: Publish) -> list[PodPlan]:
    if not documents:
        raise ManifestError("nothing to run: the input has no documents")
    return plan_documents(documents, publish, str(state.root() / "files"))
