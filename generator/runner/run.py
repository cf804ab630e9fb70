"""Start, watch and stop pods: the orchestration behind run, status, logs and down."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import ManifestError, PatternError, RuntimeUnavailable
from ..yamlio import dump_documents
from . import podman, state
from .plan import ContainerPlan, PodPlan, plan_documents
from .probes import Outcome, Target, probe_once, run_action, wait_until

Say = Callable[[str], None]


class NotReady(PatternError):
    """A pod did not become ready; the message names the container, probe and output."""


def _quiet(_: str) -> None:
    return None


# ---------------------------------------------------------------- preflight

def preflight(plans: list[PodPlan], *, replace: bool) -> None:
    """Everything that can be checked before anything starts: one clear line each."""
    podman.binary()
    info = podman.run("info", "--format", "{{.Host.OCIRuntime.Name}}", timeout=30)
    if info.code != 0:
        raise RuntimeUnavailable(f"podman cannot run containers here: {info.error_line}")
    for plan in plans:
        for container in plan.play["spec"]["containers"]:
            if not podman.image_exists(container["image"]):
                raise RuntimeUnavailable(
                    f"image {container['image']} (container {container['name']} of {plan.name}) "
                    "is not available locally: build it (pattern images build) or pull it")
        exists = podman.run("pod", "exists", plan.name).code == 0
        if exists and not replace:
            raise PatternError(f"pod {plan.name} already exists: run `pattern down {plan.name}` "
                               "or pass --replace")
        if exists:
            down(plan.name, grace=0)
        for host, port in plan.host_ports:
            _check_port_free(host, port, plan.name)
        _check_non_root(plan)


def _check_port_free(host: str, port: int, pod: str) -> None:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            raise PatternError(f"host port {host}:{port} (pod {pod}) is already taken") from None


def _check_non_root(plan: PodPlan) -> None:
    """runAsNonRoot, which podman ignores: refuse as the kubelet would."""
    pod_ctx = plan.play["spec"].get("securityContext") or {}
    for container in plan.play["spec"]["containers"]:
        ctx = {**pod_ctx, **(container.get("securityContext") or {})}
        if not ctx.get("runAsNonRoot"):
            continue
        user = ctx.get("runAsUser")
        if user is None:
            user = podman.check("image", "inspect", "--format", "{{.Config.User}}",
                                container["image"]).strip().split(":")[0] or "0"
        if str(user) in {"0", "root"}:
            raise PatternError(f"{plan.name}/{container['name']}: runAsNonRoot is set but the "
                               f"image {container['image']} runs as root (the kubelet refuses it)")


# ---------------------------------------------------------------- up

def pod_ip(pod: str, host_network: bool) -> str:
    """The pod's address ('' while its infra container is not running)."""
    if host_network:
        return "127.0.0.1"
    infra = podman.check("pod", "inspect", pod, "--format", "{{.InfraContainerID}}").strip()
    return podman.check("inspect", infra, "--format",
                        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}").strip()


def _create_empty_dirs(plan: PodPlan) -> None:
    """An emptyDir on Kubernetes is world-writable (0777); podman would give it to the first
    container's uid with 0755, so an app and a sidecar with different uids could not share it."""
    for volume in plan.podman_volumes:
        podman.run("volume", "rm", "-f", volume)  # a leftover of an earlier run
        podman.check("volume", "create", volume)
        mountpoint = podman.check("volume", "inspect", volume, "--format", "{{.Mountpoint}}")
        Path(mountpoint.strip()).chmod(0o777)


def _start_infra(plan: PodPlan) -> str:
    """Start the pod's infra container, which owns the network namespace, and return the pod
    IP: probes and hooks of the first containers need it before anything else runs."""
    infra = podman.check("pod", "inspect", plan.name, "--format", "{{.InfraContainerID}}").strip()
    podman.check("start", infra)
    ip = pod_ip(plan.name, plan.host_network)
    if not ip:
        raise RuntimeUnavailable(f"pod {plan.name} has no IP address after its start")
    return ip


def _target(plan: PodPlan, container: ContainerPlan, ip: str) -> Target:
    return Target(podman.container_name(plan.name, container.name), ip, container.named_ports)


def _is_running(name: str) -> Callable[[], bool]:
    def check() -> bool:
        result = podman.run("inspect", name, "--format", "{{.State.Running}}")
        return result.stdout.strip() == "true"
    return check


def _logs_tail(name: str) -> str:
    result = podman.run("logs", "--tail", "5", name)
    text = " | ".join(ln for ln in (result.stdout + result.stderr).splitlines() if ln.strip())
    return f" (last log lines: {text[-400:]})" if text else ""


def _start(plan: PodPlan, container: ContainerPlan, ip: str, deadline: float, say: Say) -> None:
    name = podman.container_name(plan.name, container.name)
    podman.check("start", name)
    say(f"{plan.name}/{container.name}: started ({container.role})")
    target = _target(plan, container, ip)
    if container.post_start is not None:
        outcome = run_action(container.post_start, target, timeout=30)
        if not outcome.ok:
            if not _is_running(name)():
                raise NotReady(f"{plan.name}/{container.name}: exited right after it started"
                               + _logs_tail(name))
            raise NotReady(f"{plan.name}/{container.name}: postStart hook failed: "
                           f"{outcome.detail}")
        say(f"{plan.name}/{container.name}: postStart ran ({outcome.detail})")
    if container.role == "init":
        code = podman.check("wait", name, timeout=max(1.0, deadline - time.monotonic())).strip()
        if code != "0":
            raise NotReady(f"{plan.name}/{container.name}: init container exited {code}"
                           + _logs_tail(name))
        say(f"{plan.name}/{container.name}: completed")
    elif container.native and container.startup is not None:
        outcome = wait_until(container.startup, target, deadline, give_up_after_failures=True,
                             is_running=_is_running(name))
        if not outcome.ok:
            raise NotReady(f"{plan.name}/{container.name}: startupProbe {outcome.detail}"
                           + _logs_tail(name))
        say(f"{plan.name}/{container.name}: started per startupProbe")


def _wait_ready(plan: PodPlan, ip: str, deadline: float, say: Say) -> None:
    for container in plan.containers:
        if container.role == "init":
            continue
        name = podman.container_name(plan.name, container.name)
        target = _target(plan, container, ip)
        if container.startup is not None and not container.native:
            outcome = wait_until(container.startup, target, deadline,
                                 give_up_after_failures=True, is_running=_is_running(name))
            if not outcome.ok:
                raise NotReady(f"{plan.name}/{container.name}: startupProbe {outcome.detail}"
                               + _logs_tail(name))
        if container.readiness is not None:
            outcome = wait_until(container.readiness, target, deadline,
                                 give_up_after_failures=False, is_running=_is_running(name))
            if not outcome.ok:
                raise NotReady(f"{plan.name}/{container.name}: readinessProbe {outcome.detail}"
                               + _logs_tail(name))
            say(f"{plan.name}/{container.name}: ready ({outcome.detail})")
        elif not _is_running(name)():
            raise NotReady(f"{plan.name}/{container.name}: exited" + _logs_tail(name))


def up(plans: list[PodPlan], *, wait: bool, timeout: float, replace: bool = False,
       say: Say = _quiet) -> None:
    """Start every pod in Kubernetes order; with `wait`, return once all are ready.

    On any failure everything this call started is stopped and removed again.
    """
    for plan in plans:
        for note in plan.notes:
            say(f"translate: {plan.name}: {note}")
    preflight(plans, replace=replace)
    started: list[PodPlan] = []
    deadline = time.monotonic() + timeout
    try:
        for plan in plans:
            state.save(plan)
            started.append(plan)
            state.write_files(plan, state.root() / "files")
            _create_empty_dirs(plan)
            play_file = state.pod_dir(plan.name) / "play.yaml"
            play_file.write_text(dump_documents([plan.play]))
            play_file.chmod(0o600)
            podman.check("kube", "play", "--start=false", str(play_file))
            say(f"{plan.name}: created")
            ip = _start_infra(plan)
            for container in plan.containers:
                _start(plan, container, ip, deadline, say)
        if wait:
            for plan in plans:
                _wait_ready(plan, pod_ip(plan.name, plan.host_network), deadline, say)
    except BaseException:
        for plan in reversed(started):
            down(plan.name, grace=0)
        raise


# ---------------------------------------------------------------- status / logs / down

@dataclass(frozen=True)
class ContainerStatus:
    pod: str
    container: str
    role: str
    state: str
    ready: str
    live: str  # the livenessProbe now; podman restarts nothing on it, so it is only reported
    detail: str


def status(pods: list[str]) -> list[ContainerStatus]:
    rows = []
    for pod in pods:
        plan = state.load(pod)
        if plan is None:
            raise PatternError(f"no pod {pod!r} started by pattern run")
        ip = pod_ip(pod, plan.host_network) if podman.run("pod", "exists", pod).code == 0 \
            else "127.0.0.1"
        for container in plan.containers:
            rows.append(_container_status(plan, container, ip))
    return rows


def _container_status(plan: PodPlan, container: ContainerPlan, ip: str) -> ContainerStatus:
    name = podman.container_name(plan.name, container.name)
    inspected = podman.run("inspect", name, "--format", "{{.State.Status}} {{.State.ExitCode}}")
    if inspected.code != 0:
        return ContainerStatus(plan.name, container.name, container.role, "missing", "-", "-", "")
    status_word, exit_code = inspected.stdout.split()
    if status_word != "running":
        word = "completed" if container.role == "init" and exit_code == "0" else \
            f"{status_word} ({exit_code})"
        return ContainerStatus(plan.name, container.name, container.role, word,
                               "-" if container.role == "init" else "no", "-", "")
    target = _target(plan, container, ip)
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
    plan = state.load(pod)
    if plan is None:
        raise PatternError(f"no pod {pod!r} started by pattern run")
    names = [c.name for c in plan.containers]
    chosen = container or next((c.name for c in plan.containers if c.role == "app"), names[0])
    if chosen not in names:
        raise PatternError(f"pod {pod} has no container {chosen!r} (it has: {', '.join(names)})")
    args = ["logs", *(["-f"] if follow else []), *(["--tail", str(tail)] if tail else []),
            podman.container_name(pod, chosen)]
    return subprocess.run([podman.binary(), *args], check=False).returncode


def down(pod: str, *, grace: int | None = None, say: Say = _quiet) -> None:
    """Stop as Kubernetes does (preStop, then SIGTERM with the grace period; sidecars last,
    in reverse order), then remove the pod and everything of ours. Safe to repeat."""
    plan = state.load(pod)
    exists = podman.run("pod", "exists", pod).code == 0
    if plan is not None and exists:
        ip = pod_ip(pod, plan.host_network)
        # The grace period is one budget for the whole pod, as on Kubernetes.
        deadline = time.monotonic() + (plan.grace_seconds if grace is None else grace)
        mains = [c for c in plan.containers if c.role != "init" and not c.native]
        natives = [c for c in reversed(plan.containers) if c.native]
        _stop_group(plan, mains, ip, deadline, say)
        for container in natives:
            _stop_group(plan, [container], ip, deadline, say)
    if exists:
        # Stopping first makes removal fast (the cgroup teardown otherwise waits ~3 s).
        podman.run("pod", "stop", "-t", "0", pod)
        podman.run("pod", "rm", "-f", pod)
    if plan is not None and plan.podman_volumes:
        podman.run("volume", "rm", "-f", *plan.podman_volumes)
    if plan is None and not exists:
        raise PatternError(f"no pod {pod!r} to stop")
    if plan is not None:
        shutil.rmtree(state.root() / "files" / pod, ignore_errors=True)
        state.forget(pod)


def _stop_group(plan: PodPlan, group: list[ContainerPlan], ip: str, deadline: float,
                say: Say) -> None:
    running = [c for c in group
               if _is_running(podman.container_name(plan.name, c.name))()]
    for container in running:
        if container.pre_stop is not None:
            outcome = run_action(container.pre_stop, _target(plan, container, ip),
                                 timeout=max(1.0, deadline - time.monotonic()))
            say(f"{plan.name}/{container.name}: preStop {'ran' if outcome.ok else 'failed'} "
                f"({outcome.detail})")
    if running:
        names = [podman.container_name(plan.name, c.name) for c in running]
        seconds = max(0, round(deadline - time.monotonic()))
        podman.run("stop", "-t", str(seconds), *names, timeout=seconds + 30)


def documents_to_plans(documents: list[dict[str, Any]], publish: dict[int, int]) -> list[PodPlan]:
    if not documents:
        raise ManifestError("nothing to run: the input has no documents")
    return plan_documents(documents, publish, str(state.root() / "files"))
