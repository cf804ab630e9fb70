"""`pattern new`: a scaffold that the catalogue accepts as generated, and that never overwrites."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from support import ROOT, free_port, run_pattern, wait_for


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A checkout's layout with an empty catalogue: the tests, the fixtures, images/."""
    (tmp_path / "tests" / "fixtures").mkdir(parents=True)
    for name in ("catalogue", "support.py", "conftest.py"):
        source = ROOT / "tests" / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / "tests" / name)
    shutil.copytree(ROOT / "tests" / "fixtures" / "patterns",
                    tmp_path / "tests" / "fixtures" / "patterns")
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "generator").symlink_to(ROOT / "generator")
    (tmp_path / "patterns").mkdir()
    shutil.copy(ROOT / "patterns" / "README.md", tmp_path / "patterns")
    (tmp_path / "images").mkdir()
    return tmp_path


def test_the_scaffold_passes_the_catalogue_tests_and_is_listed_at_once(checkout: Path) -> None:
    catalogue = checkout / "patterns"
    made = run_pattern("new", "hello-world", catalogue=catalogue, cwd=checkout)
    assert made.code == 0, made.stderr
    for path in ("patterns/hello-world/pattern.yaml", "patterns/hello-world/examples/basic.yaml",
                 "patterns/hello-world/tests/test_hello_world_pattern.py",
                 "images/hello-world/VERSION", "images/hello-world/Containerfile"):
        assert f"wrote {checkout / path}\n" in made.stderr
    listed = run_pattern("list", catalogue=catalogue)
    assert listed.stdout.splitlines()[1].startswith("hello-world  0.1.0")
    assert "[hello-world](hello-world/README.md)" in (catalogue / "README.md").read_text()
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "tests/catalogue", "patterns/hello-world", "-q",
         "-p", "no:cacheprovider"],
        cwd=checkout, capture_output=True, text=True, timeout=300, check=False,
        env={k: v for k, v in os.environ.items() if k != "SIDECAR_PATTERNS_CATALOGUE"})
    assert tests.returncode == 0, tests.stdout[-3000:]
    assert "hello-world" in subprocess.run(
        [sys.executable, "-m", "pytest", "tests/catalogue", "--collect-only", "-q"],
        cwd=checkout, capture_output=True, text=True, check=False).stdout
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--config",
                           str(ROOT / "pyproject.toml"), "patterns", "images"],
                          cwd=checkout, capture_output=True, text=True, check=False)
    assert lint.returncode == 0, lint.stdout


def test_an_existing_pattern_is_never_overwritten(checkout: Path) -> None:
    catalogue = checkout / "patterns"
    assert run_pattern("new", "tidy", catalogue=catalogue).code == 0
    readme = catalogue / "tidy" / "README.md"
    readme.write_text("my own words\n")
    again = run_pattern("new", "tidy", catalogue=catalogue)
    assert again.code == 1
    assert again.stderr == f"error: {catalogue / 'tidy'}: already exists; pattern new never " \
                           "overwrites a pattern\n"
    assert readme.read_text() == "my own words\n"


@pytest.mark.parametrize("name", ["Tidy", "two--dashes", "9lives", "x" * 41, "under_score",
                                  "trail-"])
def test_a_bad_name_is_a_usage_error(checkout: Path, name: str) -> None:
    result = run_pattern("new", name, catalogue=checkout / "patterns")
    assert result.code == 2 and "lowercase words joined by '-'" in result.stderr
    assert list((checkout / "patterns").iterdir()) == [checkout / "patterns" / "README.md"]


def test_the_image_is_chosen_by_flag_or_taken_from_images(checkout: Path) -> None:
    catalogue = checkout / "patterns"
    given = run_pattern("new", "custom", "--image", "registry.example.org/me/custom:1.0",
                        catalogue=catalogue)
    assert given.code == 0
    assert "main: registry.example.org/me/custom:1.0" in (catalogue / "custom" /
                                                          "pattern.yaml").read_text()
    assert not (checkout / "images" / "custom").exists()
    (checkout / "images" / "built").mkdir()
    (checkout / "images" / "built" / "VERSION").write_text("2.3.4\n")
    built = run_pattern("new", "built", catalogue=catalogue)
    assert built.code == 0
    assert "main: ghcr.io/sidecar-patterns/built:2.3.4" in (catalogue / "built" /
                                                           "pattern.yaml").read_text()
    assert [p.name for p in (checkout / "images" / "built").iterdir()] == ["VERSION"]


def _status(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            code: int = response.status
            return code
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None  # not listening yet


def test_the_scaffolded_image_program_does_what_its_readme_says(checkout: Path) -> None:
    assert run_pattern("new", "hello-world", catalogue=checkout / "patterns").code == 0
    shared = checkout / "shared"
    shared.mkdir()
    port = free_port()
    program = subprocess.Popen(
        [sys.executable, str(checkout / "images" / "hello-world" / "sidecar.py"),
         "--port", str(port)],
        env={**os.environ, "HELLO_WORLD_DIR": str(shared), "HELLO_WORLD_MESSAGE": "hi: there"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for("the program's /readyz",
                 lambda: _status(f"http://127.0.0.1:{port}/readyz") == 200, 60)
        assert _status(f"http://127.0.0.1:{port}/healthz") == 200
        assert (shared / "message.txt").read_text() == "hi: there\n"
        program.send_signal(signal.SIGTERM)
        assert program.wait(timeout=30) == 0
    finally:
        program.kill()
        program.wait()
