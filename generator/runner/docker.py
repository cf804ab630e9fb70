"""Docker Engine behind the runtime seam: the only module that runs the docker command line.

Docker has no pods, so one is built the way the kubelet builds it: an infra container (catatonit
in pause mode, a minimal long-lived process) owns the network namespace, IPC, and the PID
namespace when `shareProcessNamespace` is set, plus every published port, the hostname and
/etc/hosts (Docker refuses `-p` on a container that joins another's network); the pod's
containers join it with `--network/--ipc[/--pid] container:<infra>`. Every container and
volume carries the `io.sidecar-patterns.pod` label, so status and down find all of a pod.

The pod spec arrives already translated by plan.py; what Docker needs beyond that (the
securityContext as flags, resources, env fieldRefs, mounts) is translated here, each with a
note for `--verbose`.
"""

from __future__ import annotations

import io
import math
import os
import re
import subprocess
import tarfile
from pathlib import Path
from typing import Any

from ..errors import ManifestError, PatternError, RuntimeUnavailable
from .cli_engine import EngineCommandLine
from .plan import PodPlan
from .podman import Podman
from .runtime import POD_LABEL, Build, Completed, Say, copy_images

ROLE_LABEL = "io.sidecar-patterns.role"
INFRA_IMAGE = "localhost/sidecar-patterns-infra:catatonit"
CATATONIT = ("/usr/bin/catatonit", "/usr/libexec/podman/catatonit")
# Debian's client matches the daemon setup-runtime.sh installs; it is preferred to another
# `docker` earlier on PATH (a newer client in /usr/local/bin, say, which would have to
# negotiate the API version down).
DEBIAN_CLIENT = "/usr/bin/docker"


def _client() -> str | None:
    found = [str(Path(d) / "docker") for d in os.environ.get("PATH", "").split(os.pathsep)
             if d and os.access(Path(d) / "docker", os.X_OK)]
    return DEBIAN_CLIENT if DEBIAN_CLIENT in found else (found[0] if found else None)


def quantity(text: str | int | float) -> float:
    """A Kubernetes quantity ('128Mi', '500m', '1.5', '2G') as a number."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9,
             "T": 1e12, "m": 1e-3}
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(text).strip())
    if match is None or (match.group(2) and match.group(2) not in units):
        raise ManifestError(f"resource quantity {text!r} is not a Kubernetes quantity")
    return float(match.group(1)) * units.get(match.group(2), 1)


class Docker(EngineCommandLine):
    name = "docker"

    def binary(self) -> str:
        found = _client()
        if found is None:
            raise RuntimeUnavailable("docker is not installed: run scripts/setup-runtime.sh "
                                     "(installs Docker Engine and starts dockerd)")
        return found

    # ------------------------------------------------------------ the engine

    def problem(self) -> str | None:
        if _client() is None:
            return "not installed"
        info = self.run("version", "--format", "{{.Server.Version}}", timeout=30)
        if info.code == 0:
            return None
        if "Cannot connect" in info.stderr or "connect:" in info.stderr:
            return "dockerd is not running (start it: `dockerd &`, or scripts/setup-runtime.sh)"
        return info.error_line

    # ------------------------------------------------------------ images

    def image_present(self, reference: str) -> bool:
        return self.run("image", "inspect", "--format", "{{.Id}}", reference).code == 0

    def build_image(self, build: Build) -> Completed:
        """With podman at hand, the image is built there and loaded into Docker (`podman save |
        docker load`): the same image in both engines, and Docker 20.10's classic builder has
        no named build contexts (`--build-context`, `COPY --from=<context>`) and no
        `COPY --chmod`. Without podman, `docker build`, which refuses those images."""
        podman = Podman()
        if podman.problem() is None:
            built = podman.build_image(build)
            if built.code == 0:
                copy_images([build.tag], podman, self)
            return built
        text = (build.context / "Containerfile").read_text()
        if any(f"--from={name}" in text for name in build.contexts) or "--chmod" in text:
            return Completed(1, "", f"Error: {build.tag} needs named build contexts or COPY "
                             "--chmod, which Docker 20.10's builder lacks; install podman "
                             "(scripts/setup-runtime.sh) to build it")
        command = [self.binary(), "build", "-f", str(build.context / "Containerfile")]
        for key, value in build.build_args.items():
            command += ["--build-arg", f"{key}={value}"]
        for key, value in build.labels.items():
            command += ["--label", f"{key}={value}"]
        command += ["-t", build.tag, str(build.context)]
        proc = subprocess.run(command, capture_output=build.quiet, text=True, check=False)
        return Completed(proc.returncode, proc.stdout or "", proc.stderr or "")

    def _infra_image(self) -> str:
        """The infra container's image: the host's static catatonit on an empty root, made
        here once (no registry needed)."""
        if self.image_present(INFRA_IMAGE):
            return INFRA_IMAGE
        binary = next((p for p in CATATONIT if os.access(p, os.X_OK)), None)
        if binary is None:
            raise RuntimeUnavailable("a Docker pod's infra container needs catatonit: "
                                     "apt-get install catatonit (scripts/setup-runtime.sh does)")
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w") as tar:
            info = tar.gettarinfo(binary, arcname="catatonit")
            info.uid = info.gid = 0
            with open(binary, "rb") as handle:
                tar.addfile(info, handle)
        proc = subprocess.run(
            [self.binary(), "import", "--change", 'ENTRYPOINT ["/catatonit", "-P"]',
             "--change", "LABEL org.opencontainers.image.description=\"sidecar-patterns pod "
             "infra container: the host's catatonit, pause mode\"", "-", INFRA_IMAGE],
            input=archive.getvalue(), capture_output=True, check=False)
        if proc.returncode != 0:
            raise RuntimeUnavailable(f"making {INFRA_IMAGE} failed: "
                                     f"{proc.stderr.decode().strip().splitlines()[-1:]}")
        return INFRA_IMAGE

    # ------------------------------------------------------------ pods

    def infra(self, pod: str) -> str:
        # "_" never appears in a Kubernetes container name, so this cannot clash with one.
        return f"{pod}_infra"

    def create_pod(self, plan: PodPlan, folder: Path, say: Say) -> None:
        spec = plan.play["spec"]
        labels = {POD_LABEL: plan.name}
        infra = self.infra(plan.name)
        command = ["create", "--name", infra, *_labels({**labels, ROLE_LABEL: "infra"})]
        if plan.host_network:
            command += ["--network", "host"]
        else:
            command += ["--hostname", plan.name]
            for alias in spec.get("hostAliases") or []:
                command += [f"--add-host={host}:{alias['ip']}" for host in alias["hostnames"]]
        command += ["--ipc", "shareable"]
        published = [] if plan.host_network else \
            [(c["name"], p) for c in spec["containers"] for p in c.get("ports") or []]
        for _, port in published:
            protocol = str(port.get("protocol", "TCP")).lower()
            ip = str(port.get("hostIP", "127.0.0.1"))
            ip = f"[{ip}]" if ":" in ip else ip  # an IPv6 address, as -p wants it
            command += ["-p", f"{ip}:{port['hostPort']}:{port['containerPort']}/{protocol}"]
        if published:
            say(f"translate: {plan.name}: docker: ports of "
                f"{', '.join(sorted({c for c, _ in published}))} published on the infra "
                "container (Docker refuses -p on a container that joins another's network)")
        self.check("create", *command[1:], self._infra_image())
        infra_id = self.check("inspect", "--format", "{{.Id}}", infra).strip()
        joined = ["--network", f"container:{infra}", "--ipc", f"container:{infra}"]
        if spec.get("shareProcessNamespace"):
            joined += ["--pid", f"container:{infra}"]
            say(f"translate: {plan.name}: docker: shareProcessNamespace -> --pid container:"
                f"{infra} (catatonit is PID 1)")
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        for container in spec["containers"]:
            args, notes = _container_args(container, spec, volumes, plan, infra_id, self)
            for note in notes:
                say(f"translate: {plan.name}: {container['name']}: docker: {note}")
            self.check("create", "--name", self.container_name(plan.name, container["name"]),
                       *_labels({**labels, ROLE_LABEL: "container"}), *joined, *args)

    def start_infra(self, pod: str) -> None:
        self.check("start", self.infra(pod))

    def _members(self, pod: str) -> list[str]:
        result = self.run("ps", "-aq", "--filter", f"label={POD_LABEL}={pod}")
        return result.stdout.split() if result.code == 0 else []

    def pod_exists(self, pod: str) -> bool:
        return bool(self._members(pod))

    def infra_running(self, pod: str) -> bool:
        return self.is_running(self.infra(pod))

    def remove_pod(self, pod: str) -> None:
        members = self._members(pod)
        if members:
            self.run("rm", "-f", "-v", *members)
        volumes = self.run("volume", "ls", "-q", "--filter", f"label={POD_LABEL}={pod}")
        self.remove_volumes(volumes.stdout.split())

    def pods(self) -> list[str]:
        result = self.run("ps", "-a", "--filter", f"label={ROLE_LABEL}=infra", "--format",
                          f'{{{{.Label "{POD_LABEL}"}}}}')
        return sorted(set(result.stdout.split())) if result.code == 0 else []


# ---------------------------------------------------------------- a container as flags

def _labels(labels: dict[str, str]) -> list[str]:
    return [arg for key, value in labels.items() for arg in ("--label", f"{key}={value}")]


def _container_args(container: dict[str, Any], spec: dict[str, Any],
                    volumes: dict[str, dict[str, Any]], plan: PodPlan, pod_uid: str,
                    docker: Docker) -> tuple[list[str], list[str]]:
    """`docker create` arguments for one translated container, and what was translated."""
    args: list[str] = []
    notes: list[str] = []
    security = _security_args(container, spec, docker, notes)
    args += security
    args += _resource_args(container.get("resources") or {}, notes)
    for item in container.get("env") or []:
        value = _env_from(item, container, plan, pod_uid) if "valueFrom" in item \
            else item.get("value", "")
        args += ["-e", f"{item['name']}={value}"]
    for mount in container.get("volumeMounts") or []:
        args += ["--mount", _mount(mount, volumes, plan, docker)]
    if container.get("workingDir"):
        args += ["--workdir", str(container["workingDir"])]
    if container.get("stdin"):
        args.append("--interactive")
    if container.get("tty"):
        args.append("--tty")
    command = [str(c) for c in container.get("command") or []]
    arguments = [str(a) for a in container.get("args") or []]
    if command:
        args += ["--entrypoint", command[0], container["image"], *command[1:], *arguments]
    else:
        args += [container["image"], *arguments]
    return args, notes


def _security_args(container: dict[str, Any], spec: dict[str, Any], docker: Docker,
                   notes: list[str]) -> list[str]:
    pod_ctx = spec.get("securityContext") or {}
    ctx = {**{k: v for k, v in pod_ctx.items() if k in {"runAsUser", "runAsGroup",
                                                        "seccompProfile"}},
           **(container.get("securityContext") or {})}
    args: list[str] = []
    user, group = ctx.get("runAsUser"), ctx.get("runAsGroup")
    if group is not None and user is None:
        user = docker.image_user(container["image"]).split(":")[0] or "0"
    if user is not None:
        args += ["--user", f"{user}:{group}" if group is not None else str(user)]
    for gid in pod_ctx.get("supplementalGroups") or []:  # fsGroup is among them (plan.py)
        args += ["--group-add", str(gid)]
    if ctx.get("readOnlyRootFilesystem"):
        args.append("--read-only")
    capabilities = ctx.get("capabilities") or {}
    args += [f"--cap-drop={c}" for c in capabilities.get("drop") or []]
    args += [f"--cap-add={c}" for c in capabilities.get("add") or []]
    if ctx.get("privileged"):
        args.append("--privileged")
    if ctx.get("allowPrivilegeEscalation") is False:
        args += ["--security-opt", "no-new-privileges"]
    if (ctx.get("seccompProfile") or {}).get("type") == "Unconfined":
        args += ["--security-opt", "seccomp=unconfined"]
    return args


def _resource_args(resources: dict[str, Any], notes: list[str]) -> list[str]:
    args: list[str] = []
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    if "memory" in limits:
        args += ["--memory", str(int(quantity(limits["memory"])))]
    if "cpu" in limits:
        args += ["--cpus", f"{quantity(limits['cpu']):g}"]
    if "memory" in requests:
        args += ["--memory-reservation", str(int(quantity(requests["memory"])))]
    if "cpu" in requests:
        shares = max(2, round(quantity(requests["cpu"]) * 1024))
        args += ["--cpu-shares", str(shares)]
        notes.append(f"requests.cpu {requests['cpu']} -> --cpu-shares {shares}")
    return args


def _env_from(item: dict[str, Any], container: dict[str, Any], plan: PodPlan,
              pod_uid: str) -> str:
    """What plan.py left as valueFrom: fieldRefs of the pod, resourceFieldRefs."""
    source = item["valueFrom"]
    meta = plan.play["metadata"]
    field_ref = source.get("fieldRef")
    if field_ref is not None:
        path = str(field_ref["fieldPath"])
        if path == "metadata.name":
            return plan.name
        if path == "metadata.uid":
            return pod_uid
        match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
        if match:
            return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    resource = source.get("resourceFieldRef")
    if resource is not None:
        limits = (container.get("resources") or {}).get("limits") or {}
        requests = (container.get("resources") or {}).get("requests") or {}
        what, _, kind = str(resource["resource"]).partition(".")
        table = limits if what == "limits" else requests
        divisor = quantity(resource.get("divisor", 1))
        if kind == "memory":
            value = quantity(table["memory"]) if "memory" in table else \
                float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
        elif kind == "cpu":
            value = quantity(table["cpu"]) if "cpu" in table else float(os.cpu_count() or 1)
        else:
            value = 0.0
        return str(math.ceil(value / divisor))
    raise PatternError(f"{plan.name}/{container['name']}: env {item['name']}: {source} cannot "
                       "be resolved outside a cluster")


def _mount(mount: dict[str, Any], volumes: dict[str, dict[str, Any]], plan: PodPlan,
           docker: Docker) -> str:
    volume = volumes.get(mount["name"])
    if volume is None:
        raise ManifestError(f"{plan.source}: volumeMount {mount['name']} names no volume")
    target = str(mount["mountPath"])
    sub_path = str(mount.get("subPath") or "")
    read_only = ",readonly" if mount.get("readOnly") else ""
    if "hostPath" in volume:
        source = Path(volume["hostPath"]["path"])
        kind = volume["hostPath"].get("type", "")
        if kind == "DirectoryOrCreate":
            source.mkdir(parents=True, exist_ok=True)
        elif kind == "FileOrCreate" and not source.exists():
            source.parent.mkdir(parents=True, exist_ok=True)
            source.touch()
        elif not source.exists():
            raise ManifestError(f"{plan.source}: volume {mount['name']}: hostPath {source} "
                                "does not exist")
    elif "emptyDir" in volume or "persistentVolumeClaim" in volume:
        name = volume["name"] if "emptyDir" in volume else \
            str(volume["persistentVolumeClaim"]["claimName"])
        if not sub_path:
            return f"type=volume,source={name},target={target}{read_only}"
        if "persistentVolumeClaim" in volume:
            docker.run("volume", "create", name)
        # Docker 20.10 mounts no volume subpath: bind the folder inside the volume instead.
        source = Path(docker.check("volume", "inspect", name, "--format",
                                   "{{.Mountpoint}}").strip())
    else:
        kinds = sorted(set(volume) - {"name"})
        raise ManifestError(f"{plan.source}: volume {mount['name']}: {', '.join(kinds)} "
                            "volumes are not supported by pattern run on Docker")
    if sub_path:
        source = source / sub_path
        if not source.exists():  # a file of a ConfigMap (a link through ..data) is bound as is
            source.mkdir(parents=True)
    return f"type=bind,source={source},target={target}{read_only}"
