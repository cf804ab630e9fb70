"""What podman's `kube play` is given: strings it would break never reach it as YAML (podman
4.3 re-encodes the file with go-yaml v3 before reading it; podman.py says how that breaks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from generator.errors import ManifestError
from generator.runner.plan import PodPlan
from generator.runner.podman import (
    DETOUR_IMAGE,
    Podman,
    breaks_in_kube_play,
    detour,
    needs_detour,
)
from generator.runner.runtime import Build, Completed

# What a user writes in a pod: `sh -c` scripts from a `|` block (a leading newline when the
# script starts on the line after the quote), indented code, edges of whitespace.
PIECES = [" ", "\n", "\t", "\r", "#", ": ", "- ", "'", '"', "\\", "a", "é", "中", "😀", "|2-",
          "$(X)", "{{ x }}"]
EDGES = st.lists(st.sampled_from(PIECES), max_size=12).map("".join)


@pytest.mark.parametrize("text", ["\nfoo", "\necho hi\n", "  a\n  b\n", " \n", "\n", "\n\n",
                                  "\r\nx", " a\nb", "\n\tx"])
def test_what_kube_play_would_break(text: str) -> None:
    assert breaks_in_kube_play(text)


@pytest.mark.parametrize("text", ["", "foo", "foo\n  bar\n", "  foo", " ", "\tx\ny", "a\n\nb",
                                  "#x\n", "\r", "\u2028"])
def test_what_kube_play_takes_as_it_is(text: str) -> None:
    assert not breaks_in_kube_play(text)


def _image(containerfile: str, build_args: dict[str, str]) -> dict[str, Any]:
    """What the image the Containerfile makes is set to run (a small reader of the lines
    detour writes: JSON arrays, ENV from a build argument)."""
    lines = containerfile.splitlines()
    assert lines[0].startswith("FROM ")
    made: dict[str, Any] = {"env": {}}
    for line in lines[1:]:
        word, rest = line.split(" ", 1)
        if word in ("ENTRYPOINT", "CMD"):
            made[word] = json.loads(rest)
        elif word == "ENV":
            name, value = rest.split("=", 1)
            assert value.startswith('"${') and value.endswith('}"')
            made["env"][name] = build_args[value[3:-2]]
        else:
            assert word == "ARG" and rest in build_args
    return made


IMAGE = {"Entrypoint": ["/entry"], "Cmd": ["default"]}


@pytest.mark.parametrize(("fields", "entrypoint", "cmd"), [
    ({"command": ["sh", "-c", "\necho hi\n"]}, ["sh", "-c", "\necho hi\n"], []),
    ({"command": ["sh"], "args": ["-c", "\necho hi"]}, ["sh"], ["-c", "\necho hi"]),
    ({"args": ["\n x"]}, ["/entry"], ["\n x"]),  # args alone: the image's entrypoint runs
])
def test_the_image_runs_what_the_kubelet_would(fields: dict[str, Any], entrypoint: list[str],
                                               cmd: list[str]) -> None:
    container = {"name": "c", "image": "localhost/i:1", "workingDir": "/w", **fields}
    assert needs_detour(container)
    played, containerfile, build_args = detour(container, IMAGE)
    assert containerfile.startswith("FROM localhost/i:1\n")
    made = _image(containerfile, build_args)
    assert (made["ENTRYPOINT"], made["CMD"]) == (entrypoint, cmd)
    assert played == {"name": "c", "image": "localhost/i:1", "workingDir": "/w"}


def test_env_values_go_to_the_image_and_the_rest_stays() -> None:
    container = {"name": "c", "image": "i", "command": ["sleep", "1"], "env": [
        {"name": "A", "value": "plain"}, {"name": "B", "value": "\n  script\n"},
        {"name": "C", "value": "\nlater overridden"}, {"name": "C", "value": "plain C"},
        {"name": "D", "value": "plain D"}, {"name": "D", "value": " x\ny"},
        {"name": "E", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory"}}}]}
    played, containerfile, build_args = detour(container, IMAGE)
    assert _image(containerfile, build_args) == {"env": {"B": "\n  script\n", "D": " x\ny"}}
    assert played["command"] == ["sleep", "1"]
    assert played["env"] == [container["env"][i] for i in (0, 3, 6)]


def test_a_name_an_image_cannot_take_is_one_clear_line() -> None:
    container = {"name": "c", "image": "i", "env": [{"name": "A B", "value": "\nx"}]}
    with pytest.raises(ManifestError, match=r"env 'A B': podman 4.3 cannot .* --runtime docker"):
        detour(container, IMAGE)


def test_a_container_kube_play_takes_gets_no_image() -> None:
    container = {"image": "i", "command": ["sh", "-c", "echo\n  hi\n"], "args": ["  x"],
                 "env": [{"name": "A", "value": "a\n b"}, {"name": "B", "value": " b"}]}
    assert not needs_detour(container)


@given(st.lists(EDGES, min_size=1, max_size=4), EDGES, EDGES)
def test_every_word_and_value_reaches_the_image_exactly(words: list[str], script: str,
                                                        value: str) -> None:
    argv = ["sh", "-c", "\n" + script, *words]
    container = {"name": "c", "image": "i", "command": argv,
                 "env": [{"name": "V", "value": " " + value + "\n"}]}
    played, containerfile, build_args = detour(container, {})
    assert played == {"name": "c", "image": "i"}
    made = _image(containerfile, build_args)
    assert (made["ENTRYPOINT"], made["CMD"]) == (argv, [])
    assert made["env"] == {"V": " " + value + "\n"}
    assert len(containerfile.splitlines()) == 5  # no string reached the file as text


class FakePodman(Podman):
    """Podman with its command line recorded instead of run."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, ...]] = []
        self.builds: list[Build] = []

    def check(self, *args: str, input_text: str | None = None, timeout: float = 120) -> str:
        self.calls.append(args)
        if args[:2] == ("image", "inspect"):
            return json.dumps([{"Id": "f" * 64, "Config": IMAGE}])
        return ""

    def image_present(self, reference: str) -> bool:
        return False

    def build_image(self, build: Build) -> Completed:
        self.builds.append(build)
        return Completed(0, "", "")


def test_the_play_file_holds_no_string_kube_play_would_break(tmp_path: Path) -> None:
    script = "\nset -e\n  echo indented\necho done\n"
    app = {"name": "app", "image": "localhost/busybox:1", "command": ["sh", "-c", script]}
    plain = {"name": "other", "image": "localhost/busybox:1", "command": ["sleep", "1"]}
    plan = PodPlan(name="p", source="Pod p", containers=[], play={
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"containers": [app, plain]}})
    said: list[str] = []
    podman = FakePodman()
    podman.create_pod(plan, tmp_path, said.append)
    played = yaml.safe_load((tmp_path / "play.yaml").read_text())
    first, second = played["spec"]["containers"]
    assert "command" not in first and first["image"].startswith(f"{DETOUR_IMAGE}:p-")
    assert second == plain  # untouched
    assert plan.play["spec"]["containers"][0] == app  # the plan is not changed
    (build,) = podman.builds
    assert build.tag == first["image"]
    made = _image((build.context / "Containerfile").read_text(), build.build_args)
    assert made == {"env": {}, "ENTRYPOINT": ["sh", "-c", script], "CMD": []}
    assert build.labels["io.sidecar-patterns.pod"] == "p"
    assert (tmp_path / "detour-images").read_text() == first["image"] + "\n"
    assert any("app: podman: command, args or env values" in line for line in said)
    assert podman.calls[-1] == ("kube", "play", "--start=false", str(tmp_path / "play.yaml"))
