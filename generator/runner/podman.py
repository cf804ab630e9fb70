"""Podman 4.3 behind the runtime seam: the only module that runs the podman command line.

A pod is podman's own: `kube play --start=false` of the translated pod creates it with its
infra container, and the runner starts each container itself, in Kubernetes order.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ..errors import RuntimeUnavailable
from ..yamlio import dump_documents
from .cli_engine import EngineCommandLine
from .plan import PodPlan
from .runtime import POD_LABEL, Build, Completed, Say

# No systemd here: without this podman prints a healthcheck timer error on every play.
_ENV = {**os.environ, "DISABLE_HC_SYSTEMD": "true"}

# `kube play` does not read the file it is given: podman 4.3 decodes it with go-yaml v3 and
# encodes each document again (splitMultiDocYAML), then reads that. v3 writes a string with a
# line break as a literal block, with an indentation indicator (`|4`) when the string starts
# with a space or a line break, but puts the lines at the indentation of its own layout, two
# columns short of what `|4` means under a sequence item or a key of a mapping inside one
# (go-yaml issue 76). So such a `command`/`args` item or env value fails the play ("did not find
# expected '-' indicator"), or loses two leading spaces of each line without a word. No quoting
# of ours survives the re-encoding: such strings must not be in the file at all.
_BREAKS = ("\n", "\r", "\x85", "\u2028", "\u2029")
ARGV_IMAGE = "localhost/sidecar-patterns-argv"
ARGV_LABEL = "io.sidecar-patterns.argv-of"  # the image such an image was made from


def breaks_in_kube_play(text: object) -> bool:
    """Whether podman 4.3's `kube play` would fail on, or change, this string (see above).
    Some of these v3 writes double-quoted after all (a space before a line break, a tab); they
    are counted in, which costs only the detour."""
    return isinstance(text, str) and "\n" in text and text.startswith((" ", *_BREAKS))


def argv_breaks_in_kube_play(container: dict[str, Any]) -> bool:
    """Whether a word of the container's `command` or `args` would break in `kube play`."""
    return any(breaks_in_kube_play(word)
               for word in [*(container.get("command") or []), *(container.get("args") or [])])


def argv_containerfile(container: dict[str, Any], image_config: dict[str, Any]) -> str:
    """The Containerfile of an image that runs the container's `command` and `args`: its
    image with ENTRYPOINT and CMD set as the kubelet combines them with the image's own (JSON
    arrays, so every string is exact)."""
    command, args = container.get("command") or [], container.get("args") or []
    entrypoint = command or image_config.get("Entrypoint") or []
    cmd = args if args or command else image_config.get("Cmd") or []
    return (f"FROM {container['image']}\n"
            f"ENTRYPOINT {json.dumps(entrypoint)}\nCMD {json.dumps(cmd)}\n")


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
        """The container as `kube play` can take it: a command or args that would break there
        (breaks_in_kube_play) move into an image made from the container's, which runs them."""
        if not argv_breaks_in_kube_play(container):
            return container
        found = json.loads(self.check("image", "inspect", container["image"]))[0]
        containerfile = argv_containerfile(container, found.get("Config") or {})
        digest = hashlib.sha256(f"{found['Id']}\n{containerfile}".encode()).hexdigest()[:20]
        tag = f"{ARGV_IMAGE}:{digest}"
        if not self.image_present(tag):
            context = folder / f"argv-{container['name']}"
            context.mkdir(parents=True, exist_ok=True)
            (context / "Containerfile").write_text(containerfile)
            built = self.build_image(Build(context, tag, {}, {ARGV_LABEL: container["image"]},
                                           {}, quiet=True))
            if built.code != 0:
                raise RuntimeUnavailable(f"podman build of the image that runs "
                                         f"{container['name']}'s command failed: "
                                         f"{built.error_line}")
        say(f"translate: {pod}: {container['name']}: podman: command and args -> image {tag} "
            f"({container['image']} with them as ENTRYPOINT and CMD: podman 4.3's kube play "
            "breaks a multi-line one that starts with a space or a line break)")
        return {k: v for k, v in container.items() if k not in ("command", "args")} | {
            "image": tag}

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

    def pods(self) -> list[str]:
        result = self.run("pod", "ps", "--filter", f"label={POD_LABEL}", "--format",
                          "{{.Name}}")
        return sorted(result.stdout.split()) if result.code == 0 else []
