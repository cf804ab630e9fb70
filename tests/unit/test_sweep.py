"""The adversarial sweep of issue 17, extended to flags and file targets: any text in any flag,
any kind of thing at the output path. Each case goes through `try_bad` (no traceback, under
10 s, an error is one line, no file changed but the one asked for); the run's summary prints
how many bad inputs all the tests tried.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bad_input import try_bad
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import run_in_process

from generator.yamlio import HEADER

POD = b"apiVersion: v1\nkind: Pod\nmetadata: {name: shop}\n" \
      b"spec:\n  containers:\n  - name: app\n    image: nginx:1.27\n"
GENERATE = ("generate", "--name", "shop", "--app-image", "nginx:1.27", "--with", "file-server")
INJECT = ("inject", "-f", "-", "--with", "file-server")

# Free text a careless or hostile user may type, biased to what breaks parsers and paths.
HOSTILE = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "\n", "x\n", "-1", "nan", "inf", "1e400", "99999999999999999999",
                     "../../etc", "/dev/null", "x: y", "{{ 7*7 }}", "!!python/object", "*a",
                     "&a b", "- a", "'", '"', "\\", "a" * 300, "é", "\x00", "\u2028", "null",
                     "yes", "~", "[", "{", "%", "@", "`", "$(id)", "a=b=c", "a.b.c=d", "=",
                     "file-server.", ".port=1", "file-server.port="]),
)
GENERATE_FLAGS = ["--name", "--app-image", "--app-port", "--app-command", "--app-env",
                  "--post-start", "--pre-stop", "--with", "--set", "--volume", "--container",
                  "--kind", "--replicas", "--schedule", "--namespace", "--k8s-version",
                  "--sidecar-mode", "--image-registry", "-o"]
INJECT_FLAGS = ["--with", "--set", "--volume", "--container", "--k8s-version", "--sidecar-mode",
                "--image-registry", "-o"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flag=st.sampled_from(GENERATE_FLAGS), value=HOSTILE, kind=st.sampled_from(
    [None, "Deployment", "CronJob"]))
def test_any_text_in_any_generate_flag(tmp_path_factory: pytest.TempPathFactory, flag: str,
                                       value: str, kind: str | None) -> None:
    if "\x00" in value:  # the OS refuses it in argv; nothing of ours sees it
        return
    cwd = tmp_path_factory.mktemp("cwd")
    extra = ("--kind", kind, "--schedule", "* * * * *") if kind else ()
    old = Path.cwd()
    os.chdir(cwd)
    try:
        try_bad(*GENERATE, *extra, flag, value, watch=(cwd,), fails=False,
                may_write=cwd / value if flag == "-o" and value and "/" not in value else None)
    finally:
        os.chdir(old)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(flag=st.sampled_from(INJECT_FLAGS), value=HOSTILE)
def test_any_text_in_any_inject_flag(tmp_path_factory: pytest.TempPathFactory, flag: str,
                                     value: str) -> None:
    if "\x00" in value:
        return
    cwd = tmp_path_factory.mktemp("cwd")
    old = Path.cwd()
    os.chdir(cwd)
    try:
        try_bad(*INJECT, flag, value, stdin=POD, watch=(cwd,), fails=False,
                may_write=cwd / value if flag == "-o" and value and "/" not in value else None)
    finally:
        os.chdir(old)


def _target(kind: str, folder: Path) -> tuple[Path, bool]:
    """A thing at the output path, and whether writing over it is allowed without --force."""
    path = folder / "out.yaml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "symlink":
        (folder / "real.yaml").write_text(HEADER)
        path.symlink_to(folder / "real.yaml")
    elif kind == "dangling-symlink":
        path.symlink_to(folder / "nowhere.yaml")
    elif kind == "directory":
        path.mkdir()
    elif kind == "hand-written":
        path.write_text("# mine\n")
    elif kind == "empty":
        path.write_text("")
    elif kind == "ours":
        path.write_text(HEADER + "kind: Pod\n")
        return path, True
    elif kind == "device":
        return Path("/dev/null"), False
    elif kind == "missing-folder":
        return folder / "no" / "such" / "out.yaml", False
    elif kind == "input":
        (folder / "in.yaml").write_bytes(POD)
        return folder / "in.yaml", False
    elif kind == "hard-link-to-input":
        (folder / "in.yaml").write_bytes(POD)
        os.link(folder / "in.yaml", path)
    elif kind == "inside-the-input-folder":
        (folder / "in.yaml").write_bytes(POD)
    return path, False


TARGETS = ["fifo", "symlink", "dangling-symlink", "directory", "hand-written", "empty", "ours",
           "device", "missing-folder", "input", "hard-link-to-input", "inside-the-input-folder"]


@pytest.mark.parametrize("kind", TARGETS)
@pytest.mark.parametrize("command", ["generate", "inject", "uninject"])
@pytest.mark.parametrize("force", [False, True])
def test_the_output_path_is_never_written_through_or_over_what_the_user_has(
        tmp_path: Path, kind: str, command: str, force: bool) -> None:
    target, ours = _target(kind, tmp_path)
    source = tmp_path / "in.yaml"
    if not source.exists():
        source.write_bytes(POD)
    given = {"generate": GENERATE, "inject": ("inject", "--with", "file-server"),
             "uninject": ("uninject",)}[command]
    inputs = () if command == "generate" else ("-f", str(tmp_path if kind ==
                                                          "inside-the-input-folder" else source))
    args = (*given, *inputs, "--output-file", str(target), *(("--force",) if force else ()))
    allowed = ours or (force and kind in ("hand-written", "empty"))
    if command == "generate" and kind in ("input", "hard-link-to-input"):
        allowed = force  # generate reads no file here: in.yaml is just a file of the user's
    if command == "generate" and kind == "inside-the-input-folder":
        allowed = True  # nothing is at the path, and generate reads no folder
    result = try_bad(*args, watch=(tmp_path,), may_write=target if allowed else None,
                     fails=not allowed)
    if allowed:
        assert result.code == 0, result.stderr


def test_a_fifo_target_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "out.yaml"
    os.mkfifo(fifo)
    result = run_in_process(*GENERATE, "--output-file", str(fifo))
    assert result.code == 2 and result.seconds < 2 and "not a regular file" in result.stderr
