"""The endpoints of images/_common/periodic_job.py (its own HTTP/1.0 server on socketserver)
under whatever a client sends: arbitrary request lines, methods, paths, headers and bodies,
partial and oversized requests, slow, silent and vanishing clients, non-UTF-8 bytes. The job
runs as an image runs it (`run_every` in a process of its own, tests/images/periodic_job/
periodic_driver.py). Every connection is answered with a well-formed status line, or closed
when it sent nothing, within the server's bound; the documented endpoints answer as
documented whatever headers and body come along; `POST /run` runs the job exactly once per
request it answers, and nothing else runs it; the server never logs a traceback."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import periodic_job
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import ROOT, free_port, wait_for

DRIVER = Path(__file__).with_name("periodic_driver.py")
# The server's own bound on a request (periodic_job.serve's request_timeout) and on reading
# what a client still sends after the answer, with room for a loaded 2-core machine: a
# client that waits longer than this for an answer or a close has met a hang.
BOUND = 10.0 + periodic_job.LINGER + 20.0
STATUS_LINE = re.compile(rb"\AHTTP/1\.0 ([0-9]{3}) ([A-Za-z ]+)\Z")
HEAD_REQUEST = re.compile(rb"\AHEAD [\x21-\xff]+ HTTP/[0-9]\.[0-9]\Z")
ENDPOINTS = ["/healthz", "/readyz", "/status", "/metrics", "/run"]


@dataclass
class Answer:
    code: int
    headers: dict[str, str]
    body: bytes


def parse(raw: bytes, method: str = "") -> Answer:
    """The answer in `raw`, checked for being well-formed HTTP/1.0 (a status line with the
    reason of its code, headers, a body as long as Content-Length says, nothing after)."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    assert sep, f"no end of the head in {raw[:300]!r}"
    status, *lines = head.split(b"\r\n")
    match = STATUS_LINE.match(status)
    assert match, f"malformed status line {status!r}"
    code = int(match.group(1))
    assert match.group(2).decode() == periodic_job.REASONS[code], status
    headers = {}
    for line in lines:
        name, colon, value = line.decode("ascii").partition(": ")
        assert colon and name, f"malformed header {line!r}"
        headers[name.lower()] = value
    assert headers["connection"] == "close"
    if method == "HEAD":
        assert body == b"", body  # the length of what GET would send, no body
    else:
        assert int(headers["content-length"]) == len(body), (headers, body)
    return Answer(code, headers, body)


class Job:
    """The driver's process: its port, its runs, its streams."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.log = (folder / "driver.log").open("w+")
        self.proc = subprocess.Popen(
            [sys.executable, str(DRIVER), f"127.0.0.1:{self.port}", str(folder)],
            env={**os.environ, "PYTHONPATH": str(ROOT / "images" / "_common")},
            stderr=self.log)
        wait_for("the endpoints", lambda: self.answers(b"GET /readyz HTTP/1.0\r\n\r\n"), 30)

    def runs(self) -> int:
        path = self.folder / "runs"
        return len(path.read_text().splitlines()) if path.exists() else 0

    def send(self, data: bytes, half_close: bool = True, chunks: int = 1) -> bytes:
        """Send `data` (in `chunks` pieces), end our side (unless told not to), and read
        until the server closes; a server that neither answers nor closes within BOUND
        fails here."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=BOUND) as client:
            step = max(1, len(data) // chunks)
            try:
                for start in range(0, len(data), step):
                    client.sendall(data[start:start + step])
                if half_close:
                    client.shutdown(socket.SHUT_WR)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered (an oversized head) and closed first: read it
            received = b""
            while True:
                try:
                    chunk = client.recv(65536)
                except ConnectionResetError:
                    raise AssertionError(f"reset after {received[:200]!r}") from None
                if not chunk:
                    return received
                received += chunk

    def answers(self, data: bytes) -> bool:
        try:
            return self.send(data).startswith(b"HTTP/1.0 200 ")
        except OSError:
            return False

    def get(self, path: str) -> Answer:
        return parse(self.send(f"GET {path} HTTP/1.0\r\n\r\n".encode()))

    def stop(self) -> str:
        """SIGTERM, as the kubelet stops it: exit 0; the log it wrote."""
        self.proc.send_signal(signal.SIGTERM)
        assert self.proc.wait(timeout=30) == 0
        self.log.seek(0)
        return self.log.read()


@pytest.fixture(scope="module")
def job(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Job]:
    running = Job(tmp_path_factory.mktemp("periodic-job"))
    try:
        yield running
    finally:
        log = running.stop()
    assert "Traceback" not in log and "Exception" not in log, log
    assert log.strip().splitlines()[-1] == "stopped", log


def check_exchange(job: Job, data: bytes, half_close: bool = True,
                   chunks: int = 1) -> Answer | None:
    """Send anything; the answer is well-formed (or there is none because nothing was sent),
    and the job ran once if and only if it was a POST that was answered 200 or 500."""
    before = job.runs()
    raw = job.send(data, half_close, chunks)
    after = job.runs()
    if not data.strip(b"\r\n"):  # nothing, or only the empty lines a server skips
        assert raw == b"" and after == before
        return None
    line = data.lstrip(b"\r\n").split(b"\n", 1)[0].removesuffix(b"\r")
    complete = re.search(rb"\r?\n\r?\n", data.lstrip(b"\r\n"))
    answer = parse(raw, "HEAD" if complete and HEAD_REQUEST.match(line) else "")
    ran = answer.code in (200, 500) and line.startswith(b"POST ")
    assert after - before == (1 if ran else 0), (data[:200], answer, before, after)
    if ran:
        assert answer.headers["content-type"] == "application/json"
        assert json.loads(answer.body)["runs"] == after
    return answer


METHODS = st.sampled_from(["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "get", "PATCH",
                           "BREW", "POST\x00", "G ET", ""])
PATHS = st.one_of(st.sampled_from([*ENDPOINTS, "/", "*", "/run/", "//run", "/healthz?x=1",
                                   "/run?now", "http://x/run", "/%72un"]),
                  st.text(min_size=0, max_size=40).map(lambda t: "/" + t))
VERSIONS = st.sampled_from(["HTTP/1.0", "HTTP/1.1", "HTTP/2.0", "HTTP/1", "http/1.0",
                            "HTTP/1.0 extra", ""])
HEADER = st.tuples(st.binary(min_size=0, max_size=30).filter(lambda b: b"\n" not in b),
                   st.binary(min_size=0, max_size=200).filter(lambda b: b"\n" not in b))
ENDINGS = st.sampled_from([b"\r\n", b"\n"])


@st.composite
def requests(draw: st.DrawFn) -> bytes:
    """A request as clients write them and as they get them wrong: a line of a method, a path
    and a version (any text, encoded in UTF-8 or Latin-1, or raw bytes), headers, a body, and
    maybe only part of it."""
    if draw(st.booleans()):
        line = " ".join([draw(METHODS), draw(PATHS), draw(VERSIONS)])
        encoded = line.encode(draw(st.sampled_from(["utf-8", "latin-1"])), "replace")
    else:
        encoded = draw(st.binary(max_size=120))
    end = draw(ENDINGS)
    headers = draw(st.lists(HEADER, max_size=6))
    body = draw(st.binary(max_size=3000))
    data = encoded + end + b"".join(n + b": " + v + end for n, v in headers) + end + body
    if draw(st.booleans()):
        data = data[:draw(st.integers(0, len(data)))]  # a partial request, then our side ends
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(data=requests(), chunks=st.integers(1, 4))
def test_any_request_is_answered_well_formed_and_runs_only_for_post_run(
        job: Job, data: bytes, chunks: int) -> None:
    check_exchange(job, data, chunks=chunks)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(endpoint=st.sampled_from(ENDPOINTS), method=st.sampled_from(["GET", "HEAD", "POST"]),
       version=st.sampled_from(["HTTP/1.0", "HTTP/1.1"]), headers=st.lists(HEADER, max_size=8),
       body=st.binary(max_size=100_000), end=ENDINGS)
def test_the_documented_endpoints_answer_as_documented_whatever_comes_along(
        job: Job, endpoint: str, method: str, version: str, headers: list[tuple[bytes, bytes]],
        body: bytes, end: bytes) -> None:
    """Headers and a body (up to 100 kB, not read before the answer) change no answer, and
    the client gets the answer whole, never a reset."""
    data = (f"{method} {endpoint} {version}".encode() + end
            + b"".join(b"X-" + n + b": " + v + end for n, v in headers) + end + body)
    answer = check_exchange(job, data)
    assert answer is not None
    if method == "POST":
        assert answer.code == (200 if endpoint == "/run" else 404), answer
        return
    want = {"/healthz": b"ok\n", "/readyz": b"ready\n"}
    if endpoint == "/run":
        assert answer.code == 404
    elif endpoint in want:
        assert (answer.code, answer.body) == (200, want[endpoint] if method == "GET" else b"")
    else:
        assert answer.code == 200
        if method == "GET" and endpoint == "/status":
            assert json.loads(answer.body)["runs"] == job.runs()
        if method == "GET" and endpoint == "/metrics":
            assert f"toy_job_runs {job.runs()}\n".encode() in answer.body


def test_post_run_runs_once_per_request_also_when_many_come_at_once(job: Job) -> None:
    """Eight clients at once (one run at a time): eight runs, each answered 200 with the
    counters as they were after its own run (or a later one that finished meanwhile)."""
    before = job.runs()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: parse(job.send(b"POST /run HTTP/1.1\r\nContent-Length:"
                                                         b" 2\r\n\r\n{}")), range(8)))
    assert [a.code for a in answers] == [200] * 8
    assert job.runs() == before + 8
    counts = sorted(json.loads(a.body)["runs"] for a in answers)
    assert before + 1 <= counts[0] and counts[-1] == before + 8, counts


def test_failed_runs_turn_healthz_503_with_the_error_and_a_good_run_heals_it(job: Job) -> None:
    (job.folder / "fail").write_text("disk full")
    try:
        failed = [parse(job.send(b"POST /run HTTP/1.0\r\n\r\n")) for _ in range(2)]
        assert [a.code for a in failed] == [500, 500]
        assert json.loads(failed[-1].body)["lastError"] == "disk full"
        unhealthy = job.get("/healthz")
        assert (unhealthy.code, unhealthy.body) == (503, b"unhealthy: disk full\n")
    finally:
        (job.folder / "fail").unlink()
    assert parse(job.send(b"POST /run HTTP/1.0\r\n\r\n")).code == 200
    assert job.get("/healthz").code == 200


def test_oversized_heads_are_refused_without_running(job: Job) -> None:
    """A request line or headers past the server's limit: 431, and a POST /run does not run
    (a cut line is never read as a shorter one)."""
    long_line = b"POST /run HTTP/1.0" + b"x" * (2 * periodic_job.HEAD_LIMIT) + b"\r\n\r\n"
    many = b"POST /run HTTP/1.0\r\n" + b"X-A: b\r\n" * periodic_job.HEAD_LIMIT + b"\r\n"
    for data in (long_line, many, b"GET /" + b"a" * periodic_job.HEAD_LIMIT * 2):
        answer = check_exchange(job, data, half_close=False)
        assert answer is not None and answer.code == 431, answer


def test_slow_silent_and_vanishing_clients_hold_nothing(job: Job) -> None:
    """Clients that never finish (one byte at a time, or nothing at all) are answered 408
    within the server's bound, while others are served meanwhile; clients that go away
    (closed at once, reset before or after their request) leave the server serving."""
    def drip_sender(client: socket.socket, stop: threading.Event) -> None:
        for byte in b"POST /run HTTP/1.0\r\nX-Slow: " + b"y" * 1000:
            if stop.wait(0.5):
                return
            try:
                client.sendall(bytes([byte]))
            except OSError:
                return

    def dripping() -> bytes:
        stop = threading.Event()
        with socket.create_connection(("127.0.0.1", job.port), timeout=BOUND) as client:
            sender = threading.Thread(target=drip_sender, args=(client, stop))
            sender.start()
            received = b""
            try:
                while chunk := client.recv(65536):
                    received += chunk
            finally:
                stop.set()
                sender.join()
            return received

    def silent() -> bytes:
        with socket.create_connection(("127.0.0.1", job.port), timeout=BOUND) as client:
            received = b""
            while chunk := client.recv(65536):
                received += chunk
            return received

    before = job.runs()
    with ThreadPoolExecutor(6) as pool:
        waiting = [pool.submit(dripping), pool.submit(dripping), pool.submit(silent),
                   pool.submit(silent)]
        for _ in range(5):  # served while those hang on
            assert job.get("/healthz").code == 200
        for data in (b"", b"GET /healthz HTTP/1.0\r\n\r\n"):
            for linger in (False, True):  # closed (FIN), or reset (RST) at once
                with socket.create_connection(("127.0.0.1", job.port)) as client:
                    client.sendall(data)
                    if linger:
                        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                          struct.pack("ii", 1, 0))
        answers = [parse(w.result(timeout=BOUND)) for w in waiting]
    assert [a.code for a in answers] == [408] * 4
    assert job.runs() == before
    assert job.get("/healthz").code == 200


def test_a_traceback_free_log_and_a_clean_stop(tmp_path: Path) -> None:
    """SIGTERM ends the loop with exit 0 and `stopped`, with a request in the air."""
    job = Job(tmp_path)
    with socket.create_connection(("127.0.0.1", job.port)) as client:
        client.sendall(b"GET /status HTTP/1.0\r\n")
        log = job.stop()
    assert log.strip().splitlines() == ["stopped"], log
