"""The log-rotate pattern in pods generated from it: while the app writes three logs at a steady
rate, logrotate rotates them by size every few seconds; every line written is then in exactly
one file (the current one or one rotated, possibly gzipped, file), and with log-collector in
the same pod the central rsyslog gets every line exactly once. What is about the pod (rotation
beside the app, the reopen by signal through the shared process namespace or by HTTP, state
across a sidecar restart) runs on podman and Docker; the rest, and the peers, on podman."""

from __future__ import annotations

from typing import Any

import lc_support as lc
import lr_support as lr
import pytest
from pods import RunningPod, running, stack_documents
from support import wait_for

from generator.runner.runtime import Runtime

LINES, RATE = 12_000, 400  # per file: 30 s of writing, about 6 rotations per file
ROTATE = {"maxSize": "64Ki", "checkInterval": "5s", "rotate": 50}
# copytruncate: lines the app writes between the end of the copy and the truncate are lost.
# The app writes 10-line batches 25 ms apart and a 100 KiB copy takes about a millisecond, so
# a rotation can lose at most one batch.
COPYTRUNCATE_LOSS_PER_ROTATION = 10
REOPEN_PORT = 8099
# Measured with log-collector (follow-freq 0.1 s): copytruncate lost 10-25 lines per rotation
# per file at 400 lines/s, what the collector had not read yet when the file was truncated.
# The bound is 0.2 s of writing per rotation.
COLLECTOR_COPYTRUNCATE_LOSS_PER_ROTATION = RATE // 5
VARIANTS: dict[str, dict[str, Any]] = {
    "copytruncate": {"mode": "copytruncate"},
    "create-signal": {"mode": "create", "reopenProcess": "python3", "reopenSignal": "HUP"},
    "create-http": {"mode": "create", "reopenUrl": f"http://127.0.0.1:{REOPEN_PORT}/reopen"},
}


def _docs(name: str, variant: str, collector: dict[str, Any] | None = None,
          lines: int = LINES, **rotate: Any) -> list[dict[str, Any]]:
    values = {**ROTATE, **VARIANTS[variant], **rotate}
    port = REOPEN_PORT if "reopenUrl" in values else None
    return stack_documents(lr.stack(name, values, lines=lines, rate=RATE, collector=collector,
                                    reopen_port=port), lc.CATALOGUE)


def _written_and_rotated(pod: RunningPod, app: str) -> dict[str, Any]:
    """Wait for the writer, then for one more check (so the tail is rotated or stays)."""
    wait_for("the writer", lambda: "writer done" in pod.logs(app), 120)
    runs = lr.status(pod)["runs"]
    return wait_for("one more logrotate run",
                    lambda: (status := lr.status(pod))["runs"] > runs and status, 60)


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_line_is_in_exactly_one_file_across_rotations(lr_runtime: Runtime,
                                                            variant: str) -> None:
    name = lc.unique(f"lr-{variant}")
    with running(_docs(name, variant), runtime=lr_runtime) as (pod,):
        status = _written_and_rotated(pod, name)
        files = lr.volume_lines(pod)
    assert status["failures"] == 0 and status["healthy"], status
    rotations = status["rotations"] // 3
    assert rotations >= 4, status  # by size, several times per file while the app wrote
    for level, report in ((level, lr.sequence_report(
            lr.in_rotation_order(files, f"{level}.log"), LINES)[level])
            for level in lc.LEVELS.values()):
        rotated = [n for n in files if n.startswith(f"{level}.log-")]
        # dateext names, gzip one rotation later (delaycompress): only the newest is plain.
        assert len([n for n in rotated if not n.endswith(".gz")]) == 1, sorted(files)
        assert report["duplicated"] == report["out_of_order"] == report["broken"] == 0, report
        if variant == "copytruncate":
            assert report["lost"] <= COPYTRUNCATE_LOSS_PER_ROTATION * rotations, report
        else:
            assert report["lost"] == 0, (level, report)


def test_reopen_failures_are_counted_and_turn_health_red(lr_image: str) -> None:
    name = lc.unique("lr-fail")
    docs = _docs(name, "create-signal", reopenProcess="no-such-app", maxFailures=2)
    with running(docs) as (pod,):
        status = wait_for("2 failures",
                          lambda: (s := lr.status(pod))["consecutiveFailures"] >= 2 and s, 60)
        health = pod.exec("log-rotate", "python3", "-c", lr.HEALTH_SCRIPT, check=False)
        said = pod.logs("log-rotate")
    # The first failure is logrotate's postrotate; then the reopen is retried every run.
    assert "no process named 'no-such-app' to signal" in said, said
    assert "reopen" in status["lastError"] and status["rotations"] == 3, status
    assert not status["healthy"] and status["failures"] >= 2, status
    assert health.stdout.strip() == "503", health


def test_state_survives_a_sidecar_restart(lr_runtime: Runtime) -> None:
    name = lc.unique("lr-state")
    # A third of the lines: two rotations a file are enough to have state to keep.
    with running(_docs(name, "create-signal", lines=LINES // 3), runtime=lr_runtime) as (pod,):
        _written_and_rotated(pod, name)
        before = lr.read_file(pod, "/var/lib/log-rotate/logrotate.status")
        rotated = sorted(lr.volume_lines(pod))
        assert any(n.startswith("error.log-") for n in rotated), rotated
        pod.kill("log-rotate")
        pod.start("log-rotate")
        wait_for("two runs after the restart", lambda: _runs(pod) >= 2, 60)
        after = lr.read_file(pod, "/var/lib/log-rotate/logrotate.status")
        assert sorted(lr.volume_lines(pod)) == rotated  # nothing rotated again
    assert before == after and "/var/log/app/error.log" in after, (before, after)


def _runs(pod: RunningPod) -> int:
    try:
        return int(lr.status(pod)["runs"])
    except AssertionError:  # not answering yet
        return 0


@pytest.mark.parametrize("variant", ["create-signal", "copytruncate"])
def test_with_log_collector_rsyslog_gets_every_line_once(lr_image: str, peers: lc.Peers,
                                                         variant: str) -> None:
    name = lc.unique(f"lr-lc-{variant}")
    collector = {"host": lr.receiver_address(peers), "port": lc.SYSLOG_PORT}
    with running(_docs(name, variant, collector=collector)) as (pod,):
        status = _written_and_rotated(pod, name)
        records = lc.wait_for(lambda: lc.read_syslog(peers.out, name), 3 * LINES, 60, stall=10)
    report = lc.loss_report(records, LINES)
    assert status["failures"] == 0 and status["rotations"] >= 12, status
    assert all(r["duplicated"] == 0 for r in report.values()), report
    print(f"{variant} with log-collector:", report, "rotations per file",
          status["rotations"] // 3)
    if variant == "create-signal":  # the safe combination: nothing lost, nothing twice
        lc.assert_exact(records, LINES)
    else:
        bound = COLLECTOR_COPYTRUNCATE_LOSS_PER_ROTATION * status["rotations"] // 3
        assert all(r["lost"] <= bound for r in report.values()), (bound, report)
