"""What real apps write besides tidy lines, and what real receivers do besides reading: each
either reaches the receiver or is counted where the user looks (health, the preStop result)."""

from __future__ import annotations

from typing import Any

import lc_support as lc
import pytest
from pods import running, stack_documents
from support import wait_for

from generator.runner.run import down

pytestmark = pytest.mark.integration

LONG = "L" * 100_000  # beyond syslog-ng's 64 KiB default message size
SILENT_PORT = 23999


def app_stack(name: str, script: str, values: dict[str, Any]) -> dict[str, Any]:
    """The log-collector beside an app that runs `script` (Python) with /var/log/app shared."""
    stack = lc.stack(name, values, lines_per_file=1)
    app = stack["spec"]["app"]
    app["command"] = ["python3", "-c", script + "\nimport signal, time\n"
                      "signal.signal(signal.SIGTERM, lambda *_: exit(0))\nprint('app done', "
                      "flush=True)\nwhile True: time.sleep(3600)\n"]
    del app["env"]
    return stack


def write_files(count: int, extra: str = "") -> str:
    return (f"for n in range(1, {count + 1}):\n"
            "    with open(f'/var/log/app/svc-{n:02}.log', 'w') as f:\n"
            "        f.write(f'first of {n}\\n\\nthird of {n}\\n')\n" + extra)


def test_many_files_empty_and_long_lines_all_arrive(peers: lc.Peers) -> None:
    name = lc.unique("lc-edges")
    script = write_files(12, f"open('/var/log/app/svc-01.log', 'a').write({LONG!r} + '\\n')\n")
    values = {"destination": "http", "url": f"{peers.http_url()}/ingest/{name}",
              "files": [{"glob": "svc-*.log", "level": "info"}]}
    with running(stack_documents(app_stack(name, script, values), lc.CATALOGUE)) as (pod,):
        wait_for("the app", lambda: "app done" in pod.logs(name), 60)
        records = lc.wait_for(lambda: lc.read_http(peers.out, name), 12 * 3 + 1, 90, stall=30)
        counters = lc.health(pod.container("log-collector"))
    by_file: dict[str, list[str]] = {}
    for record in records:
        by_file.setdefault(record.fields["file"], []).append(record.message)
    assert len(by_file) == 12, sorted(by_file)  # more than the old hard limit of 10
    assert by_file["svc-07.log"] == ["first of 7", "", "third of 7"]
    assert by_file["svc-01.log"] == ["first of 1", "", "third of 1", LONG]
    assert counters["unread_files"] == 0 and counters["dropped"] == 0, counters


def test_files_beyond_max_files_are_counted_as_unread(peers: lc.Peers) -> None:
    name = lc.unique("lc-maxfiles")
    values = {"destination": "http", "url": f"{peers.http_url()}/ingest/{name}", "maxFiles": 5,
              "files": [{"glob": "svc-*.log", "level": "info"}]}
    with running(stack_documents(app_stack(name, write_files(12), values),
                                 lc.CATALOGUE)) as (pod,):
        wait_for("the app", lambda: "app done" in pod.logs(name), 60)
        records = lc.wait_for(lambda: lc.read_http(peers.out, name), 5 * 3, 90, stall=30)
        line = lc.health_line(pod.container("log-collector"))
    assert len({r.fields["file"] for r in records}) == 5
    assert line.startswith("ok ") and "unread_files=7" in line.split(), line


def test_a_receiver_that_never_reads_is_reported_stalled(peers: lc.Peers) -> None:
    name = lc.unique("lc-stall")
    # The app also plays a receiver that accepts the connection and never reads from it.
    script = (
        "import socket, threading\n"
        f"server = socket.create_server(('127.0.0.1', {SILENT_PORT}))\n"
        "held = []\n"
        "threading.Thread(target=lambda: [held.append(server.accept()) for _ in iter(int, 1)],"
        " daemon=True).start()\n"
        "with open('/var/log/app/info.log', 'w') as f:\n"
        "    for n in range(300_000):\n"
        "        f.write(f'line {n} ' + 'x' * 100 + '\\n')\n")
    values = {"host": "127.0.0.1", "port": SILENT_PORT, "stallAfterSeconds": 5,
              "files": [{"glob": "info.log", "level": "info"}]}
    with running(stack_documents(app_stack(name, script, values), lc.CATALOGUE)) as (pod,):
        container = pod.container("log-collector")
        # The line that said stalled is the one checked: the kernel may still take a few
        # bytes later (the receiver's buffer is compacted), which restarts the stall clock.
        line = wait_for("health to report the stalled receiver",
                        lambda: (text := lc.health_line(container)).startswith("stalled ")
                        and text, 90)
        probe = pod.exec("log-collector", "log-collector-health", check=False)
    assert "(the destination has taken nothing for" in line, line
    queued = int(next(w for w in line.split() if w.startswith("queued="))[7:])
    assert queued > 0, line
    assert probe.returncode == 0, "a receiver's fault must not restart the sidecar"


def test_a_last_line_without_newline_fails_the_prestop_hook_by_name(peers: lc.Peers) -> None:
    name = lc.unique("lc-unended")
    script = "open('/var/log/app/info.log', 'w').write('whole line\\nhalf a line')\n"
    values = {"destination": "http", "url": f"{peers.http_url()}/ingest/{name}",
              "files": [{"glob": "info.log", "level": "info"}], "flushTimeoutSeconds": 10}
    with running(stack_documents(app_stack(name, script, values), lc.CATALOGUE)) as (pod,):
        wait_for("the app", lambda: "app done" in pod.logs(name), 60)
        assert [r.message for r in lc.wait_for(lambda: lc.read_http(peers.out, name), 1, 60,
                                                stall=20)] == ["whole line"]
        said: list[str] = []
        down(pod.name, grace=20, say=said.append)
    failed = [line for line in said if "preStop failed" in line]
    assert failed and "info.log has no newline" in failed[0], said
