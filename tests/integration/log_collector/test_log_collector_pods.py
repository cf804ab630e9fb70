"""The log-collector pattern in pods generated from it: every line of the app's three files
reaches a real central server exactly once, in order, with its level and the pod's fields,
across rotation, a sidecar SIGKILL, a receiver outage and a full buffer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lc_support as lc
import pytest
from pods import ensure_images, running, stack_documents
from support import wait_for

from generator.runner.run import down
from generator.runner.runtime import Runtime

LINES = 40_000  # per file: 120,000 lines in all
HOSTILE = 'a"b\\c`HOME` $(env HOME) ${MSG} \'x\' }; destination d { file("/tmp/p"); };'


def _docs(name: str, values: dict[str, Any], **writer: Any) -> list[dict[str, Any]]:
    return stack_documents(lc.stack(name, values, **writer), lc.CATALOGUE)


def _stop_with_grace(name: str, grace: int) -> list[str]:
    """`pattern down` as Kubernetes deletes a pod: preStop hooks, then SIGTERM."""
    log: list[str] = []
    down(name, grace=grace, say=log.append)
    return log


def test_rename_rotation_to_rsyslog_exact_sequence_with_fields(peers: lc.Peers) -> None:
    name = lc.unique("lc-syslog")
    # The stop comes right after the writer, so preStop carries the whole backlog: on a loaded
    # CI machine that took longer than the default 20 s (102,154 of 120,000 lines read).
    values = {"host": peers.address("rsyslog"), "port": lc.SYSLOG_PORT,
              "flushTimeoutSeconds": 150}
    docs = _docs(name, values, lines_per_file=LINES, rotate="rename", pause=0.02)
    with running(docs) as (pod,):
        wait_for("the writer", lambda: "writer done" in pod.logs(name), 120)
        stopped = _stop_with_grace(pod.name, 180)
    # The pod is gone: whatever arrives now was sent before, so the flush did its job.
    records = lc.wait_for(lambda: lc.read_syslog(peers.out, name), 3 * LINES, 60, stall=10)
    assert any("log-collector: preStop ran" in line for line in stopped), stopped
    lc.assert_exact(records, LINES)
    for letter, level in lc.LEVELS.items():
        rec = next(r for r in records if r.message.startswith(letter))
        assert rec.level == lc.SEVERITIES[level], rec
        assert rec.fields == {"pod": name, "namespace": "default", "container": name,
                              "app": name, "level": level, "file": f"{level}.log"}, rec


def test_http_json_with_copytruncate_secret_headers_and_static_fields(peers: lc.Peers) -> None:
    name = lc.unique("lc-http")
    token = "Bearer " + HOSTILE
    values = {"destination": "http", "url": f"{peers.http_url()}/ingest/{name}",
              "headersSecret": f"{name}-headers", "fields": {"team": "payments", "note": HOSTILE}}
    headers = lc.secret(f"{name}-headers", {"http-headers": f"Authorization: {token}\n"})
    docs = [headers, *_docs(name, values, lines_per_file=LINES // 2, rotate="copytruncate",
                            quiet=2.0)]
    with running(docs) as (pod,):
        records = lc.wait_for(lambda: lc.read_http(peers.out, name), 3 * LINES // 2, 120)
        # The sink stores a batch before it answers; the queue shrinks once the answer is in.
        counters = wait_for("the queue empty", lambda: (
            h := lc.health(pod.container("log-collector"))).get("queued") == 0 and h, 60)
    lc.assert_exact(records, LINES // 2)
    assert counters["dropped"] == 0 and counters["queued"] == 0, counters
    for letter, level in lc.LEVELS.items():
        rec = next(r for r in records if r.message.startswith(letter))
        assert rec.level == level, rec
        assert {k: v for k, v in rec.fields.items() if k != "timestamp"} == {
            "pod": name, "namespace": "default", "container": name, "app": name,
            "file": f"{level}.log", "team": "payments", "note": HOSTILE,
            "auth": token, "path": f"/ingest/{name}"}, rec
        assert rec.fields["timestamp"].startswith("20"), rec


def test_sigkill_and_30s_outage_lose_nothing_and_prestop_flushes(peers: lc.Peers) -> None:
    name = lc.unique("lc-kill")
    # The preStop flush delivers what the outage left (about 100,000 lines): a generous
    # budget, so a loaded machine does not cut it short (it ends when the queue is empty).
    # The sink is restarted below: its session alias follows it, its IP does not.
    values = {"destination": "http", "url": f"{lc.HTTP_URL}/ingest/{name}",
              "flushTimeoutSeconds": 600}
    docs = _docs(name, values, lines_per_file=LINES, rotate="rename", batch=200, pause=0.1)
    with running(docs) as (pod,):
        sidecar = pod.container("log-collector")
        wait_for("first records", lambda: len(lc.read_http(peers.out, name)) > 1000, 60)
        peers.stop("http-sink")
        try:
            # SIGKILL during the outage, once the sidecar is buffering, then the restart the
            # kubelet would do: it resumes from its saved offsets. (Killed while the sink
            # answers, the batch in flight may be sent twice: delivery is at-least-once.)
            wait_for("the sidecar to buffer while the sink is down",
                     lambda: lc.health(sidecar).get("queued", 0) > 0, 120)
            lc.podman("kill", "-s", "KILL", sidecar)
            lc.podman("start", sidecar)
            during = wait_for("the restarted sidecar to buffer again",
                              lambda: (h := lc.health(sidecar)).get("queued", 0) > 0 and h, 120)
            delivered = len(lc.read_http(peers.out, name))
            # The writer keeps writing all through the outage: nothing may arrive meanwhile.
            wait_for("the writer", lambda: "writer done" in pod.logs(name), 600)
            assert len(lc.read_http(peers.out, name)) == delivered, "arrived while down"
        finally:
            peers.start("http-sink")
        # At once, while it reconnects: only the preStop flush can deliver what is left.
        stopped = _stop_with_grace(pod.name, 660)
    records = lc.wait_for(lambda: lc.read_http(peers.out, name), 3 * LINES, 300, stall=60)
    assert during["queued"] > 0 and during["dropped"] == 0, during  # buffering, as health says
    # All was written while the sink was down, so what had not arrived was left for the
    # preStop flush. (The health counter is no measure of that: it reads 0 while a batch is
    # being retried.)
    assert delivered < 3 * LINES, "nothing was left for the preStop flush to deliver"
    assert any("log-collector: preStop ran" in line for line in stopped), stopped
    # A batch the sink stored just before the SIGKILL is sent again: at most one batch
    # (the default batchLines, 1000) may repeat; nothing may be lost.
    lc.assert_no_loss(records, LINES, max_duplicated=1000)


def _settled(read: Callable[[], dict[str, int]]) -> dict[str, int]:
    """The counters once two reads a second apart agree (the sidecar stopped moving)."""
    previous: list[dict[str, int]] = [{}]

    def same() -> dict[str, int] | None:
        now = read()
        stable = now if now and now == previous[0] else None
        previous[0] = now
        return stable
    return wait_for("the sidecar's counters to settle", same, 120, interval=1.0)


def _drained(counters: dict[str, int], total: int) -> bool:
    return counters.get("queued") == 0 and \
        counters.get("written", 0) + counters.get("dropped", 0) >= total


@pytest.mark.parametrize("when_full", ["block", "drop"])
def test_full_buffer_blocks_or_drops_and_counts(peers: lc.Peers, when_full: str) -> None:
    lines = 10_000
    name = lc.unique(f"lc-{when_full}")
    values = {"destination": "http", "url": f"{lc.HTTP_URL}/ingest/{name}",
              "bufferSize": "1Mi", "whenFull": when_full}
    docs = _docs(name, values, lines_per_file=lines, rotate="none", pause=0.0)
    peers.stop("http-sink")
    try:
        with running(docs) as (pod,):
            sidecar = pod.container("log-collector")
            wait_for("the writer", lambda: "writer done" in pod.logs(name), 60)
            # Settled: the sidecar read all it will read (block) or dropped the rest (drop).
            full = _settled(lambda: lc.health(sidecar))
            peers.start("http-sink")
            after = wait_for("the queue", lambda: _drained(h := lc.health(sidecar), 3 * lines)
                             and h, 120)
            records = lc.wait_for(lambda: lc.read_http(peers.out, name), 3 * lines, 60, stall=3)
    finally:
        peers.start("http-sink")
    report = lc.loss_report(records, lines)
    lost = sum(r["lost"] for r in report.values())
    assert sum(r["duplicated"] for r in report.values()) == 0, report
    assert lost == after["dropped"], (report, after)  # the counter tells the truth
    if when_full == "block":
        assert full["dropped"] == 0 and lost == 0, (full, report)
        assert 0 < full["queued"] < lines, full  # it stopped reading: the rest waited in files
    else:
        assert full["dropped"] > lines, full


def test_elasticsearch_bulk_from_a_bulk_url(peers: lc.Peers, runtime: Runtime) -> None:
    """On each engine (the sink stays on podman)."""
    ensure_images(["log-collector"], runtime)
    lines = 2_000
    name = lc.unique("lc-es")
    docs = _docs(name, {"url": f"{peers.http_url()}/{name}-logs/_bulk"},
                 lines_per_file=lines, rotate="none", pause=0.0)
    with running(docs, runtime=runtime):
        records = lc.wait_for(lambda: lc.read_http(peers.out, name), 3 * lines, 60)
    lc.assert_exact(records, lines)  # the sink parsed every action + document pair
    assert {r.fields["path"] for r in records} == {f"/{name}-logs/_bulk"}
    assert {r.level for r in records} == set(lc.LEVELS.values())
