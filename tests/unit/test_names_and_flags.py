"""Rules 1 and 8 of issue 17: every name that becomes a path is a DNS label and removal stays in
the state directory; `pattern new` leaves nothing behind when it fails; flags mean one thing
(-o is the output format everywhere, as in kubectl). Bad inputs go through `try_bad`.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import typer.main
from bad_input import try_bad
from support import FIXTURE_CATALOGUE, ROOT, run_in_process

from generator.catalogue import Catalogue
from generator.cli import app

POD = b"apiVersion: v1\nkind: Pod\nmetadata: {name: shop}\n" \
      b"spec:\n  containers:\n  - name: app\n    image: nginx:1.27\n"


# ---------------------------------------------------------------- the state directory

@pytest.fixture
def state(tmp_path: Path) -> Path:
    folder = tmp_path / "state"
    (folder / "pods").mkdir(parents=True)
    return folder


@pytest.mark.parametrize("name", ["../../victim", "../victim", "/tmp", ".", "..", "a/b",
                                  "x" * 300, "Shop", "shop\n", ""])
@pytest.mark.parametrize("command", [("down",), ("status",), ("logs", "--pod")])
def test_a_pod_name_is_a_dns_label_and_nothing_outside_is_touched(
        tmp_path: Path, state: Path, name: str, command: tuple[str, ...]) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "plan.json").write_text("{}")
    (state / "pods" / "ok").mkdir()
    (state / "pods" / "ok" / "plan.json").write_text("{}")
    result = try_bad(*command, name, env={"SIDECAR_PATTERNS_STATE": str(state)},
                     watch=(tmp_path,))
    assert "not a DNS label" in result.stderr or "File name too long" in result.stderr
    assert (victim / "plan.json").is_file() and (state / "pods" / "ok" / "plan.json").is_file()


def test_removal_never_follows_a_link_out_of_the_state_directory(tmp_path: Path,
                                                                 state: Path) -> None:
    from generator.errors import PatternError
    from generator.runner import state as runner_state

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "plan.json").write_text("{}")
    (state / "pods" / "linked").symlink_to(outside)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIDECAR_PATTERNS_STATE", str(state))
        with pytest.raises(PatternError, match="not a folder of"):
            runner_state.forget("linked")
        runner_state.forget("gone")  # a pod with no folder: nothing to do
    assert (outside / "plan.json").is_file()


def test_an_unreadable_plan_is_one_line(state: Path) -> None:
    (state / "pods" / "old").mkdir()
    (state / "pods" / "old" / "plan.json").write_text(json.dumps({"containers": [],
                                                                  "unknown_field": 1}))
    result = try_bad("logs", "--pod", "old", env={"SIDECAR_PATTERNS_STATE": str(state)},
                     watch=(state,))
    assert "unreadable (written by another version" in result.stderr


# ---------------------------------------------------------------- pattern new

@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    root = tmp_path / "patterns"
    root.mkdir()
    shutil.copytree(ROOT / "patterns" / "_lib", root / "_lib")
    shutil.copy(ROOT / "patterns" / "README.md", root)
    (tmp_path / "images").mkdir()
    return root


@pytest.mark.parametrize("args", [
    ("new", "hello\n"), ("new", "Hello"), ("new", "../hello"), ("new", "x" * 300),
    ("new", "hello", "--image", "yes"), ("new", "hello", "--image", "null"),
    ("new", "hello", "--image", "x: y"), ("new", "hello", "--image", "{{ 7*7 }}"),
    ("new", "hello", "--image", "ghcr.io/x/y:1\n"),
    ("new", "demo"),  # the scaffold's own example names its workload demo: it cannot load
])
def test_a_failed_new_leaves_nothing_and_the_catalogue_still_lists(catalogue: Path,
                                                                   args: tuple[str, ...]) -> None:
    before = sorted(p.name for p in catalogue.parent.rglob("*"))
    try_bad(*args, catalogue=catalogue, watch=(catalogue.parent,))
    assert sorted(p.name for p in catalogue.parent.rglob("*")) == before
    listed = run_in_process("list", catalogue=catalogue)
    assert listed.code == 0 and listed.traceback is None


def test_new_in_a_catalogue_that_cannot_be_written() -> None:
    result = try_bad("new", "hello", catalogue=Path("/sys/kernel/mm"))
    assert "cannot write the new pattern" in result.stderr


def test_a_good_new_is_moved_in_whole(catalogue: Path) -> None:
    made = run_in_process("new", "hello-world", catalogue=catalogue)
    assert made.code == 0 and made.traceback is None, made.stderr
    assert not [p for p in catalogue.iterdir() if p.name.startswith(".new-")]
    assert Catalogue(catalogue).names() == ["hello-world"]


def test_folders_not_named_as_patterns_are_not_catalogue_entries(tmp_path: Path) -> None:
    root = tmp_path / "patterns"
    shutil.copytree(FIXTURE_CATALOGUE, root)
    for stray in (".new-abc", "Bad_Name", "x" * 60):
        shutil.copytree(FIXTURE_CATALOGUE / "file-server", root / stray)
    assert Catalogue(root).names() == ["file-server", "seed-loader"]
    result = try_bad("show", "Bad_Name", catalogue=root)
    assert "unknown pattern" in result.stderr


# ---------------------------------------------------------------- rule 8: one meaning per flag

def test_dash_o_is_the_output_format_in_every_command() -> None:
    command = typer.main.get_command(app)
    found = []
    for name, sub in command.commands.items():  # type: ignore[attr-defined]
        subs = getattr(sub, "commands", {name: sub})
        for sub_name, leaf in subs.items():
            for param in leaf.params:
                if "-o" in getattr(param, "opts", []):
                    found.append((sub_name, param.metavar or param.name))
    assert found and all(meta in ("FORMAT", "output") for _, meta in found), found
    assert {n for n, _ in found} >= {"list", "show", "status", "generate", "inject", "uninject"}


def test_output_file_and_the_deprecated_spelling(tmp_path: Path) -> None:
    new = tmp_path / "new.yaml"
    written = run_in_process("inject", "-f", "-", "--with", "file-server", "-o", "yaml",
                             "--output-file", str(new), stdin=POD)
    assert written.code == 0 and new.is_file() and "deprecated" not in written.stderr
    old = tmp_path / "old.yaml"
    deprecated = run_in_process("inject", "-f", "-", "--with", "file-server", "-o", str(old),
                                stdin=POD)
    assert deprecated.code == 0 and old.read_text() == new.read_text()
    assert "-o FILE is deprecated, write --output-file" in deprecated.stderr
    assert run_in_process("generate", "--name", "a", "--app-image", "n:1", "-o", "yaml"
                          ).stdout.startswith("# Generated")


@pytest.mark.parametrize(("args", "message"), [
    (("generate", "--name", "a", "--app-image", "n:1", "-o", "json"), "writes yaml"),
    (("uninject", "-f", "-", "-o", "x.yaml", "--output-file", "y.yaml"), "the file is "
                                                                         "--output-file"),
    (("run", "a.yaml", "-f", "b.yaml"), "give the file once"),
    (("run", "-", "--timeout", "-1"), "not a number of seconds"),
    (("run", "-", "--timeout", "nan"), "not a number of seconds"),
    (("run", "-", "--timeout", "inf"), "not a number of seconds"),
    (("logs", "--tail", "-1"), "is negative"),
    (("logs", ""), "not a DNS label"),
    (("logs", "App"), "not a DNS label"),
    (("down", "--grace-period", "-5", "x"), "is negative"),
    (("images", "build", "--push", "--registry", ""), "must not be empty"),
    (("images", "build", "--push"), "--push needs --registry"),
    (("images", "build", "--tag", " "), "must not be empty"),
    (("validate",), "give the manifests to validate"),
])
def test_inconsistent_or_impossible_flags_are_refused(tmp_path: Path, args: tuple[str, ...],
                                                      message: str) -> None:
    result = try_bad(*args, env={"SIDECAR_PATTERNS_STATE": str(tmp_path)}, watch=(tmp_path,))
    assert message in result.stderr, result.stderr


def test_validate_takes_files_with_dash_f_as_well(tmp_path: Path) -> None:
    pod = tmp_path / "pod.yaml"
    pod.write_bytes(POD)
    both = run_in_process("validate", str(pod), "-f", str(pod))
    assert both.code == 0 and "2 object(s) valid" in both.stderr
    assert run_in_process("validate", "-f", "-", stdin=POD).code == 0
