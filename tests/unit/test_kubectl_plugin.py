"""Installing the package installs the kubectl plugin: the real kubectl finds `kubectl-pattern`
on PATH, and `kubectl pattern ...` is `pattern ...`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
from support import ROOT

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl missing: install kubectl 1.32+")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The wheel installed into a fresh prefix; the environment that puts it first."""
    work = tmp_path_factory.mktemp("plugin")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(work), str(ROOT)], check=True, capture_output=True)
    wheel = next(work.glob("sidecar_patterns-*.whl"))
    # --ignore-installed: else pip uninstalls this environment's own (editable) install first
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                    "--ignore-installed", "--prefix", str(work / "prefix"), str(wheel)],
                   check=True, capture_output=True)
    site = sysconfig.get_path("purelib", vars={"base": str(work / "prefix")})
    return {**os.environ, "PATH": f"{work / 'prefix' / 'bin'}:/usr/bin:/bin",
            "PYTHONPATH": site, "HOME": str(work)}


def kubectl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    return subprocess.run([KUBECTL, *args], env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def test_kubectl_plugin_list_shows_the_installed_plugin(installed: dict[str, str]) -> None:
    listed = kubectl(installed, "plugin", "list")
    assert listed.returncode == 0, listed.stderr
    plugin = Path(installed["PATH"].split(":")[0]) / "kubectl-pattern"
    assert str(plugin) in listed.stdout.splitlines()


def test_kubectl_pattern_list_prints_the_catalogue(installed: dict[str, str]) -> None:
    table = kubectl(installed, "pattern", "list")
    assert table.returncode == 0, table.stderr
    shipped = sorted(p.parent.name for p in (ROOT / "patterns").glob("*/pattern.yaml"))
    assert [line.split()[0] for line in table.stdout.splitlines()[1:]] == shipped
    as_json = kubectl(installed, "pattern", "list", "-o", "json")
    assert [p["name"] for p in json.loads(as_json.stdout)] == shipped


def test_help_names_the_plugin_and_errors_stay_one_line(installed: dict[str, str]) -> None:
    shown = kubectl(installed, "pattern", "--help")
    assert shown.returncode == 0
    assert shown.stdout.startswith("Usage: kubectl pattern [OPTIONS] COMMAND")
    assert "kubectl plugin kubectl-pattern" in " ".join(shown.stdout.split())
    wrong = kubectl(installed, "pattern", "inject", "-f", "-", "--with", "ssh",
                    "--target", "nothing")
    assert wrong.returncode == 2
    assert wrong.stderr == ("error: --target 'nothing': expected KIND/NAME or "
                            "KIND/NAMESPACE/NAME, e.g. Deployment/shop\n")
