"""Every example manifest, app containers included, passes checkov's Kubernetes checks apart
from the exceptions patterns/README.md states with their reasons."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from support import CATALOGUE, ROOT

# Installed by scripts/setup.sh into .venv/checkov, beside the interpreter running the tests
# (the same one for a scratch checkout, as `pattern new`'s test makes).
CHECKOV = Path(sys.prefix) / "checkov" / "bin" / "checkov"
EXCEPTIONS = ("CKV_K8S_43", "CKV_K8S_21", "CKV2_K8S_6", "CKV_K8S_15")
# Skipped in the manifest itself (a checkov.io/skip annotation carrying the reason).
ANNOTATED_SKIPS = {("/patterns/metrics-adapter/examples/mariadb.yaml", "CKV_K8S_40"),
                   ("/patterns/backup/examples/database-with-backups.yaml", "CKV_K8S_35")}
EXAMPLES = sorted(p for p in CATALOGUE.glob("*/examples/*.yaml")
                  if not p.name.endswith(".stack.yaml"))


def checkov_results() -> dict[str, Any]:
    if not CHECKOV.is_file():
        pytest.fail(f"{CHECKOV} is missing: run `bash scripts/setup.sh`")
    files = [arg for path in EXAMPLES for arg in ("-f", str(path.relative_to(ROOT)))]
    proc = subprocess.run([str(CHECKOV), *files, "--framework", "kubernetes", "--compact",
                           "--skip-check", ",".join(EXCEPTIONS), "-o", "json"],
                          capture_output=True, text=True, timeout=300, check=False, cwd=ROOT)
    report: dict[str, Any] = json.loads(proc.stdout)
    results: dict[str, Any] = report["results"]
    return results


def test_every_example_passes_checkov_but_the_stated_exceptions() -> None:
    results = checkov_results()
    failed = [(f["file_path"], f["resource"], f["check_id"], f["check_name"])
              for f in results["failed_checks"]]
    assert failed == []
    assert results["parsing_errors"] == []
    skipped = {(f["file_path"], f["check_id"]) for f in results["skipped_checks"]}
    assert skipped <= ANNOTATED_SKIPS
    # Every example was read (a file checkov cannot parse would pass by having no results).
    scanned = {f["file_path"] for f in results["passed_checks"]}
    assert scanned == {f"/{p.relative_to(ROOT)}" for p in EXAMPLES}


def test_the_readme_states_each_exception() -> None:
    guide = (CATALOGUE / "README.md").read_text()
    section = guide[guide.index("## Examples and checkov"):]
    for check in EXCEPTIONS:
        assert f"`{check}`" in section, check
    for path, check in ANNOTATED_SKIPS:
        assert f"`{check}`" in section and path.split("/")[2] in section, (path, check)
