"""An installed `pattern` finds its catalogue, schemas and images inside the wheel."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

from support import ROOT


def test_wheel_carries_the_catalogue_and_works_unpacked(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("sidecar_patterns-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "site")
    assert "generator/schemas/pattern.schema.yaml" in names
    assert "generator/_data/patterns/README.md" in names
    assert "generator/_data/images/README.md" in names
    assert {"generator/web/templates/compose.html", "generator/web/static/app.js",
            "generator/web/static/style.css"} <= names  # `pattern ui` fetches nothing
    # -S skips site, so the checkout's editable install cannot shadow the unpacked wheel; the
    # dependencies come from this environment's site-packages, named explicitly.
    dependencies = sysconfig.get_paths()["purelib"]
    env = {"PYTHONPATH": f"{tmp_path / 'site'}:{dependencies}", "PATH": "/usr/bin:/bin"}
    python = [sys.executable, "-S"]
    where = subprocess.run([*python, "-c", "import generator; print(generator.__file__)"],
                           cwd=tmp_path, env=env, capture_output=True, text=True,
                           check=True).stdout
    assert where.startswith(str(tmp_path / "site"))
    listed = subprocess.run([*python, "-m", "generator", "list", "-o", "json"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, check=False)
    assert listed.returncode == 0, listed.stderr
    shipped = sorted(p.parent.name for p in (ROOT / "patterns").glob("*/pattern.yaml"))
    assert [p["name"] for p in __import__("json").loads(listed.stdout)] == shipped
