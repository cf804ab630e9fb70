"""The ServiceMonitor and PodMonitor the pattern writes are valid against prometheus-operator's
CRD schemas, as compiled by the npm package @kubernetes-models/prometheus-operator (installed
here from the npm registry; integration because it needs the registry)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import metrics_peers as mp
import pytest
from pods import stack_documents
from support import CATALOGUE

PACKAGE = "@kubernetes-models/prometheus-operator@6.0.0"


@pytest.fixture(scope="session")
def crd_checker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("npm") is None or shutil.which("node") is None:
        pytest.fail("node and npm are needed to check the monitors against the CRD schema")
    folder = tmp_path_factory.mktemp("crd-check")
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "--prefix",
                    str(folder), PACKAGE], check=True, capture_output=True, timeout=300)
    shutil.copy(mp.HERE / "crd_check.mjs", folder / "crd_check.mjs")
    return folder


def check(folder: Path, documents: list[dict[str, Any]]) -> list[str]:
    proc = subprocess.run(["node", "crd_check.mjs"], cwd=folder, input=json.dumps(documents),
                          capture_output=True, text=True, check=True, timeout=60)
    return proc.stdout.splitlines()


def monitors(values: dict[str, Any]) -> list[dict[str, Any]]:
    stack = {"apiVersion": "sidecar-patterns.io/v1alpha1", "kind": "Stack",
             "metadata": {"name": "shop"},
             "spec": {"app": {"image": "localhost/busybox:latest"},
                      "sidecars": [{"pattern": "metrics-adapter", "values": values}]}}
    return [d for d in stack_documents(stack, CATALOGUE)
            if d["apiVersion"] == "monitoring.coreos.com/v1"]


@pytest.mark.parametrize("kind", ["PodMonitor", "ServiceMonitor"])
def test_monitors_are_valid_against_the_crd_schema(crd_checker: Path, kind: str) -> None:
    docs = monitors({"adapter": "redis", "monitor": kind, "scrapeInterval": "15s",
                     "monitorLabels": {"release": "kube-prometheus-stack"}})
    assert [d["kind"] for d in docs] == [kind]
    assert check(crd_checker, docs) == [f"ok {kind} shop-metrics-adapter"]


def test_the_checker_rejects_what_the_schema_forbids(crd_checker: Path) -> None:
    (doc,) = monitors({"adapter": "redis", "monitor": "PodMonitor"})
    doc["spec"]["podMetricsEndpoints"][0]["interval"] = 15  # the CRD says string
    (line,) = check(crd_checker, [doc])
    assert line.startswith("invalid PodMonitor shop-metrics-adapter: ") and "interval" in line
