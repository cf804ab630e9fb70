"""Podman 4.3 behind the runtime seam: the only module that runs the podman command line.

A pod is podman's own: `kube play --start=false` of the translated pod creates it with its
infra container, and the runner starts each container itself, in Kubernetes order.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ..errors import ManifestError, RuntimeUnavailable
from ..yamlio import dump_documents
from . import state
from .cli_engine import EngineCommandLine
from .plan import PodPlan
from .runtime import POD_LABEL, Build, Completed, Say

# No systemd here: without this podman prints a healthcheck timer error on every play.
_ENV = {**os.environ, "DISABLE_HC_SYSTEMD": "true"}

# `kube play` does not read the file it is given: podman 4.3 decodes it with go-yaml v3 and
# encodes each document again (splitMultiDocYAML), then reads that. v3 writes a string with a
# line break as a literal block, with an indentation indicator (`|4`) when the string starts
# with a space or a line break, but puts its lines where its own layout indents, two columns
# short of what `|4` means under a sequence item or a key of a mapping inside one (go-yaml
# issue 76). So such a `command`/`args` word or env value fails the play ("did not find
# expected '-' indicator", "... expected key"), or silently loses two leading spaces of each
# line, or is emptied ("\n"). No quoting of ours survives the re-encoding, and a ConfigMap
# that podman reads loses a leading newline: such strings must not reach `kube play` at all.
# They go into an image made from the container's own (`detour`), which `kube play` then runs.
_BREAKS = ("\n", "\r", "\x85", "\u2028", "\u2029")
DETOUR_IMAGE = "localhost/sidecar-patterns-detour"
DETOUR_LABEL = "io.sidecar-patterns.detour-of"  # the image such an image was made from
_DETOURS = "detour-images"  # in the pod's state folder: the images remove_pod removes
_ENV_NAME = re.compile(r"[-._a-zA-Z0-9]+")


def breaks_in_kube_play(text: object) -> bool:
    """Whether podman 4.3's `kube play` would fail on, or change, this string (see above).
    A few of these v3 writes double-quoted after all (one with a space before a line break);
    they are counted in, which costs only the detour."""
    return isinstance(text, str) and "\n" in text and text.startswith((" ", *_BREAKS))


def _argv_breaks(container: dict[str, Any]) -> bool:
    return any(breaks_in_kube_play(word)
               for word in [*(container.get("command") or []), *(container.get("args") or [])])


def needs_detour(container: dict[str, Any]) -> bool:
    """Whether a `command`/`args` word or an env value of the container would break in
    `kube play`."""
    return _argv_breaks(container) or any(breaks_in_kube_play(item.get("value"))
                                          for item in container.get("env") or [])


def detour(container: dict[str, Any],
           image_config: dict[str, Any]) -> tuple[dict[str, Any], str, dict[str, str]]:
    """For a container that `needs_detour`: the container to play instead, the Containerfile
    of the image it runs (made from its own image), and that build's arguments. The image
    holds what would break: command and args as ENTRYPOINT and CMD, combined with the image's
    as the kubelet does (JSON arrays: every string exact), and each such env value as ENV from
    a build argument (substituted as it is). The container keeps everything else."""
    lines, build_args = [f"FROM {container['image']}"], {}
    played = dict(container)
    env = container.get("env") or []
    final: dict[str, Any] = {}
    for item in env:  # the last entry of a name wins, as in the kubelet
        final[item["name"]] = item.get("value") if "valueFrom" not in item else None
    moved = [name for name, value in final.items() if breaks_in_kube_play(value)]
    for index, name in enumerate(moved):
        if not _ENV_NAME.fullmatch(name):
            raise ManifestError(f"container {container['name']}: env {name[:40]!r}: podman "
                                "4.3 cannot be given this value (multi-line, starting with a "
                                "space or a line break) under this name; run with --runtime "
                                "docker")
        lines += [f"ARG VALUE{index}", f'ENV {name}="${{VALUE{index}}}"']
        build_args[f"VALUE{index}"] = final[name]
    kept = [item for item in env if item["name"] not in moved
            and not breaks_in_kube_play(item.get("value"))]  # the rest is overridden anyway
    if kept:
        played["env"] = kept
    else:
        played.pop("env", None)
    if _argv_breaks(container):
        command, args = container.get("command") or [], container.get("args") or []
        entrypoint = command or image_config.get("Entrypoint") or []
        cmd = args if args or command else image_config.get("Cmd") or []
        lines += [f"ENTRYPOINT {json.dumps(entrypoint)}", f"CMD {json.dumps(cmd)}"]
        played.pop("command", None)
        played.pop("args", None)
    return played, "\n".join(lines) + "\n", build_args


class Podman(EngineCommandLine):
    name = "podman"
    env = _ENV

    def __init__(self) -> None:
        self._infra_ids: dict[str, str] = {}  # pod -> infra container id (one pod inspect)

    def binary(self) -> str:
        found = shutil.which("podman")
        if found is None:
            raise RuntimeUnavailable(
                "podman is not installed: run scripts/setup.sh (Debian 12, as root)")
        return found

    # ------------------------------------------------------------ the engine

    def problem(self) -> str | None:
        if shutil.which("podman") is None:
            return "not installed"
        info = self.run("info", "--format", "{{.Host.OCIRuntime.Name}}", timeout=30)
        return None if info.code == 0 else info.error_line

    # ------------------------------------------------------------ images

    def image_present(self, reference: str) -> bool:
        return self.run("image", "exists", reference).code == 0

    def build_image(self, build: Build) -> Completed:
        command = [self.binary(), "build", "--pull=never"]  # no registry here; bases are local
        for name, folder in build.contexts.items():
            command += ["--build-context", f"{name}={folder}"]
        for key, value in build.build_args.items():
            command += ["--build-arg", f"{key}={value}"]
        for key, value in build.labels.items():
            command += ["--label", f"{key}={value}"]
        command += ["-t", build.tag, str(build.context)]
        proc = subprocess.run(command, capture_output=build.quiet, text=True, check=False,
                              env=_ENV)
        return Completed(proc.returncode, proc.stdout or "", proc.stderr or "")

    # ------------------------------------------------------------ pods

    def create_pod(self, plan: PodPlan, folder: Path, say: Say) -> None:
        self._infra_ids.pop(plan.name, None)
        spec = plan.play["spec"]
        play = {**plan.play, "metadata": {**plan.play["metadata"]},
                "spec": {**spec, "containers": [self._playable(c, plan.name, folder, say)
                                                for c in spec["containers"]]}}
        play["metadata"]["labels"] = {**(play["metadata"].get("labels") or {}),
                                      POD_LABEL: plan.name}
        play_file = folder / "play.yaml"
        play_file.write_text(dump_documents([play]))
        play_file.chmod(0o600)
        self.check("kube", "play", "--start=false", str(play_file))

    def _playable(self, container: dict[str, Any], pod: str, folder: Path,
                  say: Say) -> dict[str, Any]:
        """The container as `kube play` can take it (see `detour`)."""
        if not needs_detour(container):
            return container
        found = json.loads(self.check("image", "inspect", container["image"]))[0]
        played, containerfile, build_args = detour(container, found.get("Config") or {})
        digest = hashlib.sha256(json.dumps([found["Id"], containerfile, build_args])
                                .encode()).hexdigest()[:16]
        played["image"] = f"{DETOUR_IMAGE}:{pod}-{digest}"  # a tag has at most 128
        with (folder / _DETOURS).open("a") as made:  # before the build: down removes it
            made.write(played["image"] + "\n")
        if not self.image_present(played["image"]):
            context = folder / f"detour-{container['name']}"
            context.mkdir(parents=True, exist_ok=True)
            (context / "Containerfile").write_text(containerfile)
            built = self.build_image(Build(context, played["image"], build_args,
                                           {DETOUR_LABEL: container["image"], POD_LABEL: pod},
                                           {}, quiet=True))
            if built.code != 0:
                raise RuntimeUnavailable(f"podman build of the image that carries "
                                         f"{container['name']}'s command or env failed: "
                                         f"{built.error_line}")
        say(f"translate: {pod}: {container['name']}: podman: command, args or env values that "
            "are multi-line and start with a space or a line break -> image "
            f"{played['image']} ({container['image']} with them as ENTRYPOINT, CMD, ENV: "
            "podman 4.3's kube play breaks them)")
        return played

    def infra(self, pod: str) -> str:
        if pod not in self._infra_ids:
            self._infra_ids[pod] = self.check("pod", "inspect", pod, "--format",
                                              "{{.InfraContainerID}}").strip()
        return self._infra_ids[pod]

    def start_infra(self, pod: str) -> None:
        self.check("start", self.infra(pod))

    def pod_exists(self, pod: str) -> bool:
        return self.run("pod", "exists", pod).code == 0

    def infra_running(self, pod: str) -> bool:
        return self.pod_exists(pod) and self.is_running(self.infra(pod))

    def remove_pod(self, pod: str) -> None:
        self._infra_ids.pop(pod, None)
        # Stopping first makes removal fast (the cgroup teardown otherwise waits ~3 s).
        if self.run("pod", "stop", "-t", "0", pod).code == 0:
            self.run("pod", "rm", "-f", pod)
        made = state.pod_dir(pod) / _DETOURS
        if made.is_file():  # detour images hold env values, decoded Secrets among them
            self.run("image", "rm", "-f", *sorted(set(made.read_text().split())))
            made.unlink()

    def pods(self) -> list[str]:
        result = self.run("pod", "ps", "--filter", f"label={POD_LABEL}", "--format",
                          "{{.Name}}")
        return sorted(result.stdout.split()) if result.code == 0 else []
