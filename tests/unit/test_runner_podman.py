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

from generator.runner.plan import PodPlan
from generator.runner.podman import (
    ARGV_IMAGE,
    Podman,
    argv_breaks_in_kube_play,
    argv_containerfile,
    breaks_in_kube_play,
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


def _argv(containerfile: str) -> tuple[list[str], list[str]]:
    lines = containerfile.splitlines()
    assert len(lines) == 3 and lines[0].startswith("FROM ")
    assert lines[1].startswith("ENTRYPOINT [") and lines[2].startswith("CMD [")
    return json.loads(lines[1].split(" ", 1)[1]), json.loads(lines[2].split(" ", 1)[1])


IMAGE = {"Entrypoint": ["/entry"], "Cmd": ["default"]}


@pytest.mark.parametrize(("fields", "expected"), [
    ({"command": ["sh", "-c", "\necho hi\n"]}, (["sh", "-c", "\necho hi\n"], [])),
    ({"command": ["sh"], "args": ["-c", "\necho hi"]}, (["sh"], ["-c", "\necho hi"])),
    ({"args": ["\n x"]}, (["/entry"], ["\n x"])),  # args alone: the image's entrypoint runs
])
def test_the_image_runs_what_the_kubelet_would(fields: dict[str, Any],
                                               expected: tuple[list[str], list[str]]) -> None:
    container = {"image": "localhost/i:1", **fields}
    assert argv_breaks_in_kube_play(container)
    containerfile = argv_containerfile(container, IMAGE)
    assert containerfile.startswith("FROM localhost/i:1\n")
    assert _argv(containerfile) == expected


def test_a_container_kube_play_takes_gets_no_image() -> None:
    container = {"image": "i", "command": ["sh", "-c", "echo\n  hi\n"], "args": ["  x"]}
    assert not argv_breaks_in_kube_play(container)


@given(st.lists(EDGES, min_size=1, max_size=4), EDGES)
def test_every_word_reaches_the_image_exactly(words: list[str], script: str) -> None:
    argv = ["sh", "-c", "\n" + script, *words]
    containerfile = argv_containerfile({"image": "i", "command": argv}, {})
    assert _argv(containerfile) == (argv, [])


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
    assert "command" not in first and first["image"].startswith(f"{ARGV_IMAGE}:")
    assert second == plain  # untouched
    assert plan.play["spec"]["containers"][0] == app  # the plan is not changed
    (build,) = podman.builds
    assert build.tag == first["image"]
    assert _argv((build.context / "Containerfile").read_text()) == (["sh", "-c", script], [])
    assert any("app: podman: command and args -> image" in line for line in said)
    assert podman.calls[-1] == ("kube", "play", "--start=false", str(tmp_path / "play.yaml"))
