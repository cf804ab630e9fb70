"""Checks of scripts/setup-runtime.sh that never change the machine they run on."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from support import SETUP_RUNTIME as SCRIPT
from support import run_setup_runtime as run_script

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to reach past preflight")


def work_dirs() -> set[Path]:
    return set(Path("/tmp").glob("setup-runtime.*"))


def assert_one_line_failure(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    lines = result.stderr.splitlines()
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert len(lines) == 1, lines
    assert lines[0].startswith("setup-runtime: ")
    for fragment in fragments:
        assert fragment in lines[0]


def test_script_is_valid_bash() -> None:
    result = subprocess.run(
        ["bash", "-n", str(SCRIPT)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(
    shutil.which("shellcheck") is None, reason="shellcheck missing: apt-get install shellcheck"
)
def test_script_passes_shellcheck() -> None:
    result = subprocess.run(
        ["shellcheck", "--shell=bash", str(SCRIPT)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout


def test_non_root_user_gets_one_line_and_exit_1() -> None:
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    result = run_script(*(as_nobody if os.geteuid() == 0 else []))
    assert_one_line_failure(result, "must run as root")


@needs_root
def test_unknown_step_is_refused_before_doing_anything() -> None:
    before = work_dirs()
    result = run_script(env={"SETUP_STEPS": "conf bogus"})
    assert_one_line_failure(result, "unknown step 'bogus'")
    assert work_dirs() == before


@needs_root
def test_non_debian_machine_gets_one_line_and_exit_1(tmp_path: Path) -> None:
    os_release = tmp_path / "os-release"
    os_release.write_text('ID=fedora\nNAME="Fedora Linux"\n')
    # A private mount namespace lets the script see another distribution's os-release.
    fake_os = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "sh",
        "-c",
        f'mount --bind "{os_release}" /etc/os-release && exec "$0" "$@"',
    ]
    probe = subprocess.run([*fake_os, "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a private mount namespace: {probe.stderr!r}")
    result = run_script(*fake_os)
    assert_one_line_failure(result, "not a Debian system", "fedora")


@needs_root
def test_failing_podman_is_reported_in_one_line(tmp_path: Path) -> None:
    fake = tmp_path / "podman"
    fake.write_text('#!/bin/sh\necho "Error: fake engine is broken" >&2\nexit 125\n')
    fake.chmod(0o755)
    before = work_dirs()
    # The debian step alone runs no step before the podman check, so nothing is changed.
    result = run_script(env={"SETUP_STEPS": "debian", "PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert_one_line_failure(result, "podman info fails", "fake engine is broken")
    assert work_dirs() == before
