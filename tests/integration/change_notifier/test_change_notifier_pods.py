"""The change-notifier pattern in pods generated from it: files written by the app produce
exactly one CloudEvent each at a receiver that parses them with the `cloudevents` SDK; a 30 s
receiver outage and a SIGKILL of the sidecar lose none; a burst of 10,000 files arrives whole;
an https:// receiver is verified against the CA of the tlsCaSecret by the staged image's own
ssl (a receiver of another CA gets nothing and the event waits for one the Secret's CA
signed)."""

from __future__ import annotations

import base64
import hashlib
import json
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from pki import Pki, issue, make_ca
from pods import RunningPod, ensure_images, present_in, running, stack_documents
from receiver import Receiver, gateway, latencies
from support import CATALOGUE, wait_for

from generator.runner.runtime import Runtime

SOURCE_PREFIX = "/sidecar-patterns/"
APP_IMAGE = "localhost/busybox:latest"


def docs(name: str, url: str, **values: Any) -> list[dict[str, Any]]:
    stack = {"apiVersion": "sidecar-patterns.io/v1alpha1", "kind": "Stack",
             "metadata": {"name": name},
             "spec": {"app": {"image": APP_IMAGE,
                              "command": ["sh", "-c", "exec sleep 3600"]},
                      "sidecars": [{"pattern": "change-notifier",
                                    "values": {"url": url, "path": "/srv/data", **values}}]}}
    return stack_documents(stack, CATALOGUE)


def sh(pod: RunningPod, script: str) -> None:
    pod.exec(pod.name, "sh", "-c", script, timeout=300)


def health(pod: RunningPod) -> dict[str, Any]:
    out = pod.exec("change-notifier", "python3", "-m", "change_notifier", "healthcheck",
                   "/healthz").stdout
    loaded: dict[str, Any] = json.loads(out)
    return loaded


def on(runtime: Runtime) -> None:
    """The sidecar's image and the app's, on the test's engine."""
    ensure_images(["change-notifier"], runtime)
    present_in(runtime, APP_IMAGE)


def test_each_completed_change_is_one_cloudevent_with_size_and_sha256(
        runtime: Runtime, receiver: Receiver) -> None:
    on(runtime)
    name = f"cn-basic-{uuid.uuid4().hex[:6]}"
    source = f"{SOURCE_PREFIX}{name}/change-notifier"
    with running(docs(name, receiver.url, exclude=["*.part"]), runtime=runtime) as (pod,):
        sh(pod, "mkdir -p /srv/data/in/deep; for i in $(seq 1 20); do "
                "echo \"file $i\" > /srv/data/in/f$i.txt; done; "
                "echo deep > /srv/data/in/deep/d.txt; echo tmp > /srv/data/x.part; "
                "for i in 1 2 3 4 5; do echo more >> /srv/data/in/f1.txt; done")
        wait_for("21 files' events", lambda: len(receiver.by_subject(source)) >= 21, 30)
        sh(pod, "rm /srv/data/in/f2.txt; echo moved > /srv/data/.upload; "
                "mv /srv/data/.upload /srv/data/in/moved.txt")
        wait_for("the delete and the move", lambda: len(receiver.by_subject(source)) >= 22
                 and len(receiver.by_subject(source).get("in/f2.txt", [])) == 2, 30)
        time.sleep(1.5)  # anything extra would arrive now (debounce 0.5 s)
        # An event leaves the queue once the receiver has answered, a moment after it arrived.
        counters = wait_for("the queue empty", lambda: (h := health(pod))["queued"] == 0 and h,
                            60)
    events = receiver.by_subject(source)
    assert not receiver.rejected, receiver.rejected
    assert sorted(events) == sorted([f"in/f{i}.txt" for i in range(1, 21)] +
                                    ["in/deep/d.txt", "in/moved.txt"]), sorted(events)
    assert [e.type for e in events["in/f2.txt"]] == [
        "io.sidecar-patterns.change-notifier.file.written",
        "io.sidecar-patterns.change-notifier.file.deleted"]
    (f1,) = events["in/f1.txt"]  # six writes in a burst: one event, of the final content
    content = b"file 1\n" + b"more\n" * 5
    assert f1.data["size"] == len(content)
    assert f1.data["sha256"] == hashlib.sha256(content).hexdigest()
    assert f1.content_type.startswith("application/cloudevents+json")
    assert all(len(v) == 1 for k, v in events.items() if k != "in/f2.txt")
    assert counters["queued"] == 0 and counters["dropped"] == 0 and counters["mode"] == "inotify"


def test_a_30s_outage_and_a_sigkill_lose_no_event(runtime: Runtime,
                                                  receiver: Receiver) -> None:
    on(runtime)
    name = f"cn-kill-{uuid.uuid4().hex[:6]}"
    source = f"{SOURCE_PREFIX}{name}/change-notifier"
    with running(docs(name, receiver.url, maxBackoff="2s"), runtime=runtime) as (pod,):
        sh(pod, "for i in $(seq 1 200); do echo a$i > /srv/data/a$i; done")
        wait_for("the first 200", lambda: len(receiver.by_subject(source)) == 200, 60)
        # The receiver keeps an event before it answers: stopped now, the last answer could be
        # cut and that event stay queued (one more than every count below).
        wait_for("the first 200 acknowledged", lambda: health(pod)["queued"] == 0, 30)
        receiver.stop()
        down_at = time.monotonic()
        sh(pod, "for i in $(seq 1 200); do echo b$i > /srv/data/b$i; done")
        wait_for("200 events queued", lambda: health(pod)["queued"] == 200, 30)
        pod.kill("change-notifier", "KILL")
        wait_for("the sidecar gone", lambda: not pod.running("change-notifier"), 30)
        sh(pod, "for i in $(seq 1 200); do echo c$i > /srv/data/c$i; done; rm /srv/data/a1")
        pod.start("change-notifier")
        wait_for("the restarted sidecar", lambda: pod.exec(
            "change-notifier", "python3", "-m", "change_notifier", "healthcheck", "/readyz",
            check=False).returncode == 0, 60)
        # The 200 queued before the kill, plus what the restart's scan found: 200 new, 1 gone.
        during = wait_for("401 events queued on disk",
                          lambda: (h := health(pod))["queued"] == 401 and h, 30)
        time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
        receiver.start()
        wait_for("all 601 events", lambda: sum(
            len(v) for v in receiver.by_subject(source).values()) >= 601, 120)
        # An event leaves the queue once the receiver has answered, a moment after it arrived.
        after = wait_for("the queue empty", lambda: (h := health(pod))["queued"] == 0 and h, 60)
    events = receiver.by_subject(source)
    expected = {f"{p}{i}" for p in "abc" for i in range(1, 201)}
    assert set(events) == expected
    assert [e.type.rsplit(".", 1)[1] for e in events["a1"]] == ["written", "deleted"]
    assert during["dropped"] == 0, during
    assert after["queued"] == 0 and after["failedAttempts"] > 0, after
    # At least once: nothing lost; a duplicate can only be a resend with the same id.
    ids = [e.id for v in events.values() for e in v]
    assert len(ids) - len(set(ids)) <= 1, "more than the one in-flight event was resent"
    assert all(len({e.id for e in v}) == len(v) for k, v in events.items() if k != "a1")


def test_ten_thousand_files_in_a_burst_all_arrive(receiver: Receiver) -> None:
    name = f"cn-burst-{uuid.uuid4().hex[:6]}"
    source = f"{SOURCE_PREFIX}{name}/change-notifier"
    count = 10_000
    with running(docs(name, receiver.url, debounce="200ms")) as (pod,):
        started = time.time()
        sh(pod, f"cd /srv/data && i=0; while [ $i -lt {count} ]; do echo $i > f$i; "
                "i=$((i+1)); done")
        written = time.time()
        wait_for(f"{count} events", lambda: len(receiver.by_subject(source)) >= count, 300)
        done = time.time()
        # An event leaves the queue once the receiver has answered, a moment after it arrived.
        counters = wait_for("the queue empty", lambda: (h := health(pod))["queued"] == 0 and h,
                            60)
    events = receiver.by_subject(source)
    assert set(events) == {f"f{i}" for i in range(count)}
    duplicates = sum(len(v) - 1 for v in events.values())
    waits = latencies(events)
    print(f"\n{count} files written in {written - started:.1f} s; all delivered "
          f"{done - started:.1f} s after the first: {count / (done - started):.0f} events/s; "
          f"duplicates {duplicates}; latency p50 {statistics.median(waits):.2f} s, "
          f"p99 {waits[int(len(waits) * 0.99)]:.2f} s (benchmarks/change_notifier_bench.py "
          "measures these beside a baseline)")
    assert duplicates == 0 and counters["dropped"] == 0 and counters["queued"] == 0


def ca_secret(name: str, certificate: bytes) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "data": {"ca.crt": base64.b64encode(certificate).decode()}}


def test_the_tls_ca_secret_is_what_an_https_receiver_is_verified_against(
        runtime: Runtime, tmp_path: Path) -> None:
    on(runtime)
    host = gateway(runtime.name)  # the receiver's address as the pod sees it
    pki = Pki(tmp_path)
    extension = f"subjectAltName=IP:{host}\nextendedKeyUsage=serverAuth\n"
    make_ca(tmp_path, "ingest-ca")
    issue(tmp_path, "ingest-ca", "ingest", extension)
    make_ca(tmp_path, "other-ca")
    issue(tmp_path, "other-ca", "impostor", extension)
    name = f"cn-tls-{uuid.uuid4().hex[:6]}"
    source = f"{SOURCE_PREFIX}{name}/change-notifier"
    receiver = Receiver(host, tls=pki.serving("impostor"))
    receiver.start()
    documents = [ca_secret(f"{name}-ca", pki.path("ingest-ca.crt").read_bytes()),
                 *docs(name, receiver.url, tlsCaSecret=f"{name}-ca", maxBackoff="1s")]
    try:
        with running(documents, runtime=runtime) as (pod,):
            sh(pod, "printf 'a,b\\n' > /srv/data/report.csv")
            failing = wait_for("failed attempts at the impostor", lambda: (h := health(pod))
                               ["failedAttempts"] >= 2 and h, 60)
            assert receiver.got() == []
            receiver.stop()
            receiver.tls = pki.serving("ingest")
            receiver.start()
            received = wait_for("the event at the trusted receiver",
                                lambda: receiver.by_subject(source).get("report.csv"), 60)
            after = wait_for("the delivery counted",
                             lambda: (h := health(pod))["delivered"] == 1 and h, 30)
    finally:
        receiver.stop()
    assert failing["queued"] == 1 and "CERTIFICATE_VERIFY_FAILED" in failing["lastError"], \
        failing
    (event,) = received
    assert event.data["size"] == 4 and event.data["change"] == "written"
    assert after["queued"] == 0, after
