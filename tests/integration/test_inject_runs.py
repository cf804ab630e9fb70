"""An injected hand-written manifest runs for real: the app sees what its sidecars provide."""

from __future__ import annotations

import pytest
import yaml
from pods import require_runtime, running
from support import FIXTURE_CATALOGUE, unique_name, with_requests

from generator.catalogue import Catalogue
from generator.inject import inject, uninject
from generator.manifests import parse_stream
from generator.sidecars import SidecarOptions
from generator.values import parse_assignment

MANIFEST = """\
# A hand-written pod that knows nothing about sidecars.
apiVersion: v1
kind: Pod
metadata:
  name: inject-run
spec:
  containers:
    - name: app   # reads what the sidecars put beside it
      image: docker.io/library/debian:bookworm-slim
      imagePullPolicy: Never
      command: ["sleep", "infinity"]
  terminationGracePeriodSeconds: 0
"""


@pytest.mark.integration
def test_an_injected_pod_runs_and_its_app_reads_the_sidecars_files() -> None:
    require_runtime()
    options = SidecarOptions(requests=with_requests(["file-server", "seed-loader"]),
                            assignments=(parse_assignment("seed-loader.seed=from inject"),
                                         parse_assignment("file-server.banner=served")))
    # A pod name no other run uses (a killed run's pod, another suite's).
    manifest = MANIFEST.replace("name: inject-run", f"name: {unique_name('inject-run')}")
    out = inject([parse_stream(manifest, "pod.yaml")], options,
                 Catalogue(FIXTURE_CATALOGUE)).text
    documents = [d for d in yaml.safe_load_all(out) if d]
    assert [d["kind"] for d in documents] == ["ConfigMap", "Pod"]
    with running(documents) as (pod,):
        assert pod.exec("app", "cat", "/seed/seed.txt").stdout == "from inject\n"
        assert pod.exec("app", "cat", "/srv/share/index.html").stdout == "served\n"
        assert pod.running("file-server") and pod.running("seed-loader")
    assert uninject([parse_stream(out, "out.yaml")]).text == manifest
