"""Images staged onto an empty base (images/_common/stage.py) hold only what runs, start,
pass their health check, and rebuild from the same inputs into the same content."""

from __future__ import annotations

import json
import tarfile
import uuid
from contextlib import nullcontext
from pathlib import Path

import pytest
from pods import cli, ensure_images, remove_container, require_runtime
from staged_cases import CASES, IMAGES, staged
from support import wait_for

from generator import images
from generator.runner.runtime import Runtime

pytestmark = pytest.mark.integration

NOT_RUN = ("usr/share/doc/", "usr/share/man/", "usr/share/info/", "usr/share/locale/",
           "usr/lib/locale/", "usr/share/lintian/", "var/lib/apt/", "var/lib/dpkg/",
           "var/cache/apt/")
STAGED = staged()


def test_the_staged_images_include_the_first_converted_ones() -> None:
    assert {"iaas-metadata", "ssh", "log-collector", "redis-ambassador", "tls-proxy"} <= set(STAGED)
    assert set(STAGED) <= set(CASES), "give each staged image its health check in staged_cases"


@pytest.mark.parametrize("name", STAGED)
def test_the_image_holds_no_docs_man_pages_locales_or_package_state(name: str,
                                                                   tmp_path: Path) -> None:
    ref = ensure_images([name], require_runtime("podman"))[0]
    container = f"staged-{name}-{uuid.uuid4().hex[:8]}"
    cli("create", "--name", container, ref, check=True)
    try:
        cli("export", "-o", str(tmp_path / "root.tar"), container, check=True)
    finally:
        cli("rm", "-f", container)
    with tarfile.open(tmp_path / "root.tar") as tar:
        names = [m.name.removeprefix("./") for m in tar.getmembers()]
    assert "etc/passwd" in names and "tmp" in names  # the export is the staged root
    unwanted = [n for n in names if n.startswith(NOT_RUN) or n + "/" in NOT_RUN]
    assert unwanted == []
    if "--bin /bin/sh" not in (IMAGES / name / "Containerfile").read_text():
        assert not {"usr/bin/sh", "usr/bin/dash", "usr/bin/bash"} & set(names)  # no shell
    config = json.loads(cli("image", "inspect", ref, check=True).stdout)[0]["Config"]
    assert config["User"] == "65532:65532"
    assert config["Labels"]["org.opencontainers.image.version"] == ref.rsplit(":", 1)[1]
    assert config["Labels"][images.HASH_LABEL]


@pytest.mark.parametrize("name", STAGED)
def test_the_image_answers_help(name: str) -> None:
    """Config is by flags: `--help` lists them (argparse's lazily imported textwrap and
    locale are staged; without them --help crashed in the staged images)."""
    ref = ensure_images([name], require_runtime("podman"))[0]
    done = cli("run", "--rm", "--read-only", ref, "--help", timeout=60)
    assert done.returncode == 0 and done.stdout.lower().startswith("usage:"), done


@pytest.mark.parametrize("name", STAGED)
def test_the_image_starts_and_passes_its_health_check(name: str, runtime: Runtime,
                                                      tmp_path: Path) -> None:
    ref = ensure_images([name], runtime)[0]
    case = CASES[name]
    if case.stdin:  # a function: it runs on its input and exits
        ran = cli("run", "--rm", "-i", "--network", "none", "--read-only", "--tmpfs", "/tmp",
                  ref, *case.args, runtime=runtime.name, stdin=case.stdin)
        assert ran.returncode == 0 and ran.stdout, ran.stderr[-2000:]
        assert "Traceback" not in ran.stderr
        return
    container = f"staged-{name}-{uuid.uuid4().hex[:8]}"
    cli("run", "-d", "--name", container, "--read-only", "--tmpfs", "/tmp", *case.options(tmp_path),
        ref, *case.args, runtime=runtime.name, check=True)
    try:
        wait_for(f"{name} healthy", lambda: cli("exec", container, *case.health,
                                                 runtime=runtime.name).returncode == 0, 60)
        logs = cli("logs", container, runtime=runtime.name)
        assert "Traceback" not in logs.stdout + logs.stderr
    finally:
        remove_container(container, runtime.name)


@pytest.mark.parametrize("name", STAGED)
def test_a_restage_from_the_same_inputs_gives_the_same_content(name: str) -> None:
    """The staging step and every later one run again (a new RESTAGE value) on the cached
    package layer, and give the same layers."""
    ensure_images([name], require_runtime("podman"))
    source = next(s for s in images.sources(IMAGES) if s.name == name)
    assert "\nARG RESTAGE=0\n" in (source.folder / "Containerfile").read_text()
    again = f"localhost/staged-rebuild/{name}:{uuid.uuid4().hex[:8]}"
    common = images.common_context(IMAGES)
    assert common is not None
    with images.staged_program() if images.runs_program(source) else nullcontext() as program:
        named = [f"{images.PROGRAM_CONTEXT}={program}"] if program else []
        built = cli("build", "--pull=never", "-q", "--build-arg", f"RESTAGE={uuid.uuid4().hex}",
                    "--build-context", f"{images.COMMON_CONTEXT}={common}",
                    *[arg for context in named for arg in ("--build-context", context)],
                    "--build-arg", f"VERSION={source.version}", "-t", again, str(source.folder),
                    timeout=900)
    try:
        assert built.returncode == 0, built.stderr[-2000:]
        layers = [json.loads(cli("image", "inspect", "--format", "{{json .RootFS.Layers}}", ref,
                                 check=True).stdout) for ref in (source.reference(), again)]
        assert layers[0] == layers[1]
    finally:
        cli("rmi", "-f", again)
