"""Bad values for the change-notifier pattern are one clear line from `pattern generate`; the
image refuses bad settings at start (the classic init container runs the same check); the
image as a process: a full queue, polling, the inotify fallback, https:// receivers (a test
CA, trusted or not)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pattern_inputs import documents, one_line_error
from pki import SERVER, Pki, issue, make_ca
from receiver import Receiver
from support import ROOT, free_port, kubelet_update, wait_for

IMAGE_DIR = ROOT / "images" / "change-notifier"
PYTHONPATH = os.pathsep.join(map(str, (IMAGE_DIR, ROOT / "images" / "_common")))  # lean_imports


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


def test_tls_ca_secret_is_mounted_and_named_in_both_containers() -> None:
    """tlsCaSecret: the Secret read-only at /etc/change-notifier-tls, its ca.crt the image's
    --ca-file, in the sidecar and in the classic init container that checks it; unset, none."""
    for mode, count in (("native", 1), ("classic", 2)):
        pod = documents("change-notifier", ["url=https://ingest:8443/e", "path=/srv/up",
                                            "tlsCaSecret=ingest-ca"], "--sidecar-mode", mode)[-1]
        ours = [c for c in pod["spec"]["initContainers"] + pod["spec"]["containers"]
                if c["name"].startswith("change-notifier")]
        assert len(ours) == count, ours
        for container in ours:
            env = {e["name"]: e["value"] for e in container["env"]}
            assert env["CHANGE_NOTIFIER_CA_FILE"] == "/etc/change-notifier-tls/ca.crt"
            assert {"name": "change-notifier-tls-ca", "mountPath": "/etc/change-notifier-tls",
                    "readOnly": True} in container["volumeMounts"]
        assert {"name": "change-notifier-tls-ca", "secret": {"secretName": "ingest-ca",
                                                             "optional": False}} in \
            pod["spec"]["volumes"]
    plain = documents("change-notifier", ["url=https://ingest:8443/e", "path=/srv/up"])[-1]
    (sidecar,) = plain["spec"]["initContainers"]
    assert "CHANGE_NOTIFIER_CA_FILE" not in {e["name"] for e in sidecar["env"]}


@pytest.mark.parametrize(("argv", "message"), [
    (["--url", "ftp://x/e"], "an http:// or https:// URL is needed"),
    (["--url", "http://x/e", "--watch-dir", "/nonexistent"], "not a folder"),
    (["--url", "http://x/e", "--debounce", "soon"], "a duration such as 500ms"),
    (["--url", "https://x/e", "--ca-file", "/nonexistent/ca.crt"], "no CA certificate in PEM"),
    (["--url", "https://x/e", "--ca-file", "/etc/passwd"], "no CA certificate in PEM"),
    (["--url", "http://x/e", "--ca-file", "/etc/passwd"], "only for an https:// --url"),
])
def test_the_image_refuses_bad_settings_in_one_line(tmp_path: Path, argv: list[str],
                                                    message: str) -> None:
    watch = tmp_path / "w"
    watch.mkdir()
    full = ["--watch-dir", str(watch), "--state-dir", str(tmp_path / "s"), *argv]
    proc = subprocess.run([sys.executable, "-m", "change_notifier", *full, "--check"],
                          capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PYTHONPATH": PYTHONPATH})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and message in proc.stderr, proc


@contextmanager
def notifier(watch: Path, state: Path, url: str, *args: str,
             prefix: tuple[str, ...] = ()) -> Iterator[Callable[[], dict[str, Any] | None]]:
    """The sidecar as a process (source /t, fast debounce); yields its /healthz reader. Its
    log is in `state`/../notifier.log once the block ends."""
    health = free_port()
    log = (state.parent / "notifier.log").open("w")
    proc = subprocess.Popen(
        [*prefix, sys.executable, "-m", "change_notifier", "--url", url, "--watch-dir",
         str(watch), "--state-dir", str(state), "--source", "/t", "--debounce", "50ms",
         "--health-bind", f"127.0.0.1:{health}", *args],
        env={**os.environ, "PYTHONPATH": PYTHONPATH}, stderr=log)

    def report() -> dict[str, Any] | None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{health}/healthz",
                                        timeout=10) as response:
                loaded: dict[str, Any] = json.loads(response.read())
                return loaded
        except OSError:
            return None
    try:
        wait_for("the notifier watching", lambda: (r := report()) and r["mode"] != "starting",
                 30)
        yield report
    finally:
        proc.terminate()
        code = proc.wait(timeout=30)
        log.close()
    assert code == 0, f"the notifier exited {code} on SIGTERM"


def test_a_full_queue_drops_new_events_and_says_so(tmp_path: Path) -> None:
    """Nothing is lost silently: past maxQueued, events are dropped, counted on /healthz and
    logged; those queued stay on disk for the receiver."""
    watch, state = tmp_path / "w", tmp_path / "s"
    watch.mkdir()
    with notifier(watch, state, f"http://127.0.0.1:{free_port()}/", "--max-queued",
                  "100") as report:
        for i in range(150):
            (watch / f"f{i}").write_text(str(i))
        counters = wait_for("150 events queued or dropped", lambda: (r := report()) and
                            r["queued"] + r["dropped"] == 150 and r, 30)
    assert counters["queued"] == 100 and counters["dropped"] == 50, counters
    assert counters["failedAttempts"] > 0 and "ConnectionRefusedError" in counters["lastError"]
    assert "queue full (100 events): dropped" in (tmp_path / "notifier.log").read_text()
    assert len(list((state / "queue").glob("*.json"))) == 100


def test_poll_mode_finds_writes_deletes_and_new_folders(tmp_path: Path) -> None:
    """mode poll (the fallback when inotify is refused): scans find the same changes."""
    watch, state = tmp_path / "w", tmp_path / "s"
    watch.mkdir()
    server = Receiver("127.0.0.1")
    server.start()
    try:
        with notifier(watch, state, server.url, "--mode", "poll", "--poll-interval",
                      "200ms") as report:
            assert (report() or {})["mode"] == "poll"
            (watch / "a.txt").write_text("a")
            (watch / "sub").mkdir()
            (watch / "sub" / "b.txt").write_text("bb")
            wait_for("two events", lambda: len(server.by_subject("/t")) == 2, 30)
            (watch / "a.txt").unlink()
            wait_for("the delete", lambda: len(server.by_subject("/t").get("a.txt", [])) == 2,
                     30)
    finally:
        server.stop()
    events = server.by_subject("/t")
    assert sorted(events) == ["a.txt", "sub/b.txt"]
    assert events["sub/b.txt"][0].data["size"] == 2
    assert [e.type.rsplit(".", 1)[1] for e in events["a.txt"]] == ["written", "deleted"]


# The kernel's own refusal, not a mock: inotify watch limits are counted per user namespace
# (Linux 5.11+), so a process in a fresh one can be given a tiny limit without touching the
# node's; the sidecar then gets ENOSPC from inotify_add_watch exactly as at the node limit.
def limited_watches(limit: int) -> tuple[str, ...]:
    return ("unshare", "--user", "--map-root-user", "sh", "-c",
            f'echo {limit} > /proc/sys/user/max_inotify_watches && exec "$@"', "limited")


@pytest.mark.parametrize("when", ["at start", "on a new folder"])
def test_a_refused_inotify_watch_falls_back_to_polling(tmp_path: Path, when: str) -> None:
    """mode inotify with the watch limit reached (at start: more folders than the limit;
    later: a new folder past it): /healthz says poll, the log says why, and the files
    written before and after the switch each arrive once."""
    watch, state = tmp_path / "w", tmp_path / "s"
    for folder in ["a", "b", "c"] if when == "at start" else ["a"]:
        (watch / folder).mkdir(parents=True)
    server = Receiver("127.0.0.1")
    server.start()
    try:
        with notifier(watch, state, server.url, "--poll-interval", "200ms",
                      prefix=limited_watches(3)) as report:
            if when == "on a new folder":
                assert (report() or {})["mode"] == "inotify"
                (watch / "a" / "before.txt").write_text("seen by inotify")
                wait_for("the inotify event", lambda: server.by_subject("/t"), 30)
                for folder in ["b", "c", "d"]:  # the third watch is the limit's
                    (watch / folder).mkdir()
            wait_for("the switch to polling", lambda: (report() or {})["mode"] == "poll", 30)
            for folder in ["a", "c", "d"] if when == "on a new folder" else ["a", "c"]:
                (watch / folder / "after.txt").write_text(folder)
            (watch / "top.txt").write_text("top")
            wanted = 5 if when == "on a new folder" else 3
            wait_for("every file's event", lambda: len(server.by_subject("/t")) >= wanted, 30)
            counters = report() or {}
    finally:
        server.stop()
    log = (tmp_path / "notifier.log").read_text()
    events = server.by_subject("/t")
    assert all(len(v) == 1 for v in events.values()), events
    assert "top.txt" in events and "c/after.txt" in events and len(events) == wanted, events
    assert "fs.inotify.max_user_watches" in log and "falling back to polling" in log, log
    assert counters["mode"] == "poll" and counters["dropped"] == 0, counters


# https:// receivers: a test CA (tests/pki.py) whose certificate the receiver serves, and the
# notifier trusting it as the pattern sets it up: tlsCaSecret's ca.crt, a Secret volume the
# kubelet updates by its ..data swap, named by --ca-file.
@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    make_ca(root, "ingest-ca")
    issue(root, "ingest-ca", "ingest", SERVER)
    issue(root, "ingest-ca", "elsewhere", "subjectAltName=DNS:elsewhere.example.org\n"
                                          "extendedKeyUsage=serverAuth\n")
    make_ca(root, "other-ca")
    issue(root, "other-ca", "impostor", SERVER)
    return Pki(root)


def ca_secret(folder: Path, pki: Pki, ca: str) -> Path:
    """The tlsCaSecret volume as the kubelet keeps it, holding CA's certificate; its ca.crt."""
    folder.mkdir(exist_ok=True)
    kubelet_update(folder, {"ca.crt": pki.path(f"{ca}.crt").read_bytes()})
    return folder / "ca.crt"


def assert_the_event_of(received: list[Any], content: bytes) -> None:
    (event,) = received
    assert event.type == "io.sidecar-patterns.change-notifier.file.written"
    assert event.content_type == "application/cloudevents+json; charset=utf-8"
    assert event.data["path"] == "report.csv" and event.data["size"] == len(content)
    assert event.data["sha256"] == hashlib.sha256(content).hexdigest()


def test_an_https_receiver_with_a_certificate_of_the_trusted_ca_gets_the_event(
        tmp_path: Path, pki: Pki) -> None:
    watch, state = tmp_path / "w", tmp_path / "s"
    watch.mkdir()
    ca = ca_secret(tmp_path / "tls-ca", pki, "ingest-ca")
    server = Receiver("127.0.0.1", tls=pki.serving("ingest"))
    server.start()
    try:
        with notifier(watch, state, server.url, "--ca-file", str(ca)) as report:
            (watch / "report.csv").write_bytes(b"a,b\n1,2\n")
            received = wait_for("the event over https",
                                lambda: server.by_subject("/t").get("report.csv"), 30)
            counters = wait_for("the delivery counted",
                                lambda: (r := report()) and r["delivered"] == 1 and r, 30)
    finally:
        server.stop()
    assert_the_event_of(received, b"a,b\n1,2\n")
    assert server.url.startswith("https://") and server.rejected == []
    assert counters["queued"] == 0 and counters["failedAttempts"] == 0, counters


@pytest.mark.parametrize("case", ["CA Secret renewed", "receiver of another CA replaced",
                                  "receiver of another name replaced"])
def test_an_untrusted_receiver_is_a_counted_failure_and_the_event_waits_for_trust(
        tmp_path: Path, pki: Pki, case: str) -> None:
    """Nothing lost silently: a receiver whose certificate does not verify (another CA's, or
    the trusted CA's for another name) gets nothing; each attempt is a failure on /healthz
    with the reason, and the event stays queued on disk; it is delivered, once, when the
    tlsCaSecret is renewed to the receiver's CA (read again for the next connection, no
    restart) or a receiver the notifier trusts answers on that URL."""
    watch, state = tmp_path / "w", tmp_path / "s"
    watch.mkdir()
    trusted, first = {"CA Secret renewed": ("other-ca", "ingest"),
                      "receiver of another CA replaced": ("ingest-ca", "impostor"),
                      "receiver of another name replaced": ("ingest-ca", "elsewhere")}[case]
    ca = ca_secret(tmp_path / "tls-ca", pki, trusted)
    server = Receiver("127.0.0.1", tls=pki.serving(first))
    server.start()
    try:
        with notifier(watch, state, server.url, "--ca-file", str(ca),
                      "--max-backoff", "500ms") as report:
            (watch / "report.csv").write_bytes(b"a,b\n")
            failing = wait_for("failed attempts", lambda: (r := report()) and
                               r["failedAttempts"] >= 2 and r, 30)
            assert failing["queued"] == 1 and failing["delivered"] == 0, failing
            assert "CERTIFICATE_VERIFY_FAILED" in failing["lastError"], failing
            assert len(list((state / "queue").glob("*.json"))) == 1
            assert server.got() == []
            if case == "CA Secret renewed":
                ca_secret(tmp_path / "tls-ca", pki, "ingest-ca")
            else:
                server.stop()
                server.tls = pki.serving("ingest")
                server.start()
            received = wait_for("the event once trusted",
                                lambda: server.by_subject("/t").get("report.csv"), 30)
            counters = wait_for("the delivery counted", lambda: (r := report()) and
                                r["delivered"] == 1 and r, 30)
    finally:
        server.stop()
    assert_the_event_of(received, b"a,b\n")
    assert counters["queued"] == 0 and counters["failedAttempts"] >= 2, counters
    assert list((state / "queue").glob("*.json")) == []
    assert len(server.by_subject("/t")["report.csv"]) == 1
