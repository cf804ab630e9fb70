"""Bad values for the change-notifier pattern are one clear line from `pattern generate`; the
image refuses bad settings at start (the classic init container runs the same check)."""

from __future__ import annotations

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
from receiver import Receiver
from support import ROOT, free_port, wait_for

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
