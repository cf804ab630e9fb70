"""Bad values for the change-notifier pattern are one clear line from `pattern generate`; the
image refuses bad settings at start (the classic init container runs the same check)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from pattern_inputs import documents, one_line_error
from support import ROOT, free_port, wait_for

IMAGE_DIR = ROOT / "images" / "change-notifier"


@pytest.mark.parametrize(("sets", "message"), [
    (["path=/srv/up"], "change-notifier.url: is required"),
    (["url=ftp://ingest/e", "path=/srv/up"], "must be an http:// or https:// URL"),
    (["url=http://ingest/a b", "path=/srv/up"], "is not a URI"),
    (["url=http://ingest/e", "path=/srv/up", "subdir=../etc"],
     "change-notifier.subdir: '../etc' must be a folder inside path: relative, without '..'"),
    (["url=http://ingest/e", "path=/srv/up", "subdir=in/../../x"], "must be a folder inside"),
    (["url=http://ingest/e", "path=/srv/up", "subdir=/etc"], "must be a folder inside"),
    (["url=http://ingest/e", "path=srv"], "change-notifier.path: 'srv' is not an absolute path"),
    (["url=http://ingest/e", "path=/srv/up", "debounce=soon"], "change-notifier.debounce"),
    (["url=http://ingest/e", "path=/srv/up", "include=[\"a,b\"]"], "must be a glob without"),
])
def test_bad_values_are_one_clear_line(sets: list[str], message: str) -> None:
    assert message in one_line_error("change-notifier", sets)


def test_the_sidecar_watches_the_subdir_read_only_and_starts_before_the_app() -> None:
    pod = documents("change-notifier", ["url=http://ingest:8080/e", "path=/srv/up",
                                        "subdir=in"])[-1]
    (sidecar,) = pod["spec"]["initContainers"]
    env = {e["name"]: e["value"] for e in sidecar["env"]}
    assert env["CHANGE_NOTIFIER_WATCH_DIR"] == "/watch/in"
    assert env["CHANGE_NOTIFIER_SOURCE"] == "/sidecar-patterns/shop/change-notifier"
    assert {"name": "change-notifier-watch", "mountPath": "/watch", "readOnly": True} in \
        sidecar["volumeMounts"]
    assert sidecar["startupProbe"]["exec"]["command"][-1] == "/readyz"
    assert {"name": "change-notifier-watch", "mountPath": "/srv/up"} in \
        pod["spec"]["containers"][0]["volumeMounts"]


@pytest.mark.parametrize(("argv", "message"), [
    (["--url", "ftp://x/e"], "an http:// or https:// URL is needed"),
    (["--url", "http://x/e", "--watch-dir", "/nonexistent"], "not a folder"),
    (["--url", "http://x/e", "--debounce", "soon"], "a duration such as 500ms"),
])
def test_the_image_refuses_bad_settings_in_one_line(tmp_path: Path, argv: list[str],
                                                    message: str) -> None:
    watch = tmp_path / "w"
    watch.mkdir()
    full = ["--watch-dir", str(watch), "--state-dir", str(tmp_path / "s"), *argv]
    proc = subprocess.run([sys.executable, "-m", "change_notifier", *full, "--check"],
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PYTHONPATH": str(IMAGE_DIR)})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and message in proc.stderr, proc


def test_a_full_queue_drops_new_events_and_says_so(tmp_path: Path) -> None:
    """Nothing is lost silently: past maxQueued, events are dropped, counted on /healthz and
    logged; those queued stay on disk for the receiver."""
    watch, state = tmp_path / "w", tmp_path / "s"
    watch.mkdir()
    health = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "change_notifier", "--url", f"http://127.0.0.1:{free_port()}/",
         "--watch-dir", str(watch), "--state-dir", str(state), "--max-queued", "100",
         "--debounce", "50ms", "--health-bind", f"127.0.0.1:{health}"],
        env={**os.environ, "PYTHONPATH": str(IMAGE_DIR)}, stderr=subprocess.PIPE, text=True)
    try:
        def report() -> dict[str, Any] | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{health}/readyz",
                                            timeout=2) as response:
                    loaded: dict[str, Any] = json.loads(response.read())
                    return loaded
            except OSError:
                return None
        wait_for("the notifier watching", report, 30)
        for i in range(150):
            (watch / f"f{i}").write_text(str(i))
        counters = wait_for("150 events queued or dropped", lambda: (r := report()) and
                            r["queued"] + r["dropped"] == 150 and r, 30)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert counters["queued"] == 100 and counters["dropped"] == 50, counters
    assert counters["failedAttempts"] > 0 and "ConnectionRefusedError" in counters["lastError"]
    assert "queue full (100 events): dropped" in err
    assert len(list((state / "queue").glob("*.json"))) == 100
    assert proc.returncode == 0
