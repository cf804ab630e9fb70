"""Run one job on a schedule as a well-behaved sidecar: the loop, its counters and HTTP.

For images whose engine is a command that runs and exits (logrotate, restic), where
engine_supervisor.py is for an engine that stays up. The image gives a `job` callable that
does one run and returns a `Result`; this module runs it at start and every interval, one
run at a time, and answers on HTTP:

  GET /healthz  200 unless the last max_failures runs in a row failed (then 503)
  GET /readyz   200 once the first run has finished (with ready_on_success: succeeded)
  GET /status   the counters and the job's own facts as JSON
  GET /metrics  the counters (and numeric facts) in the Prometheus text format
  POST /run     run now (waits for a run in progress) and answer 200 or 500 with /status

HEAD is GET without the body. Anything else is answered too, never left hanging: 400 (not a
request line, or the client stopped before the end of its head), 404, 501 (another method),
408 (the head did not come within 10 s), 431 (a head over 16 KiB: a cut line is never read as
a shorter request). Headers and a body change no answer.

`healthcheck(bind, path)` is the image's exec check of the same endpoints (0 when 200).

SIGTERM or SIGINT ends the loop after the run in progress; the caller returns 0. Stdlib only.

    import periodic_job as job

    status = job.Status(max_failures=3)
    return job.run_every(job.seconds("1m"), lambda: job.Result(ok, error, counts={"rotations": 2}),
                         status, "0.0.0.0:8734", "log_rotate", log)
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import signal
import socket
import socketserver
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

_DURATION = re.compile(r"\A(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?\Z")


def seconds(text: str) -> float:
    """Seconds in a duration such as 30s, 1m30s, 1h, 500ms."""
    match = _DURATION.match(text.strip())
    if not text.strip() or not match or not any(match.groups()):
        raise ValueError(f"{text!r} is not a duration (e.g. 30s, 1m, 1h)")
    h, m, s, ms = (int(g or 0) for g in match.groups())
    return h * 3600 + m * 60 + s + ms / 1000


@dataclass(frozen=True)
class Result:
    """One run: whether it worked, why not, facts that replace the last ones (the last
    snapshot's id) and counts that add up over runs (rotations)."""

    ok: bool
    error: str = ""
    facts: dict[str, object] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class Status:
    max_failures: int
    runs: int = 0
    failures: int = 0
    consecutive_failures: int = 0
    last_run: float | None = None
    last_success: float | None = None
    last_error: str = ""
    facts: dict[str, object] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, result: Result) -> None:
        """The result's facts and counts, without counting a run."""
        with self.lock:
            self.facts.update(result.facts)
            for key, count in result.counts.items():
                old = self.facts.get(key, 0)
                self.facts[key] = (old if isinstance(old, int) else 0) + count

    def record(self, result: Result) -> None:
        now = time.time()
        self.note(result)
        with self.lock:
            self.runs += 1
            self.last_run = now
            if result.ok:
                self.consecutive_failures = 0
                self.last_success = now
            else:
                self.failures += 1
                self.consecutive_failures += 1
                self.last_error = result.error or "failed"

    def healthy(self) -> bool:
        return self.consecutive_failures < self.max_failures

    def as_dict(self) -> dict[str, object]:
        with self.lock:
            return {**self.facts, "healthy": self.healthy(), "runs": self.runs,
                    "failures": self.failures, "consecutiveFailures": self.consecutive_failures,
                    "lastRun": self.last_run, "lastSuccess": self.last_success,
                    "lastError": self.last_error}

    def metrics(self, prefix: str) -> str:
        lines = []
        for key, value in sorted(self.as_dict().items()):
            if isinstance(value, bool) or not isinstance(value, int | float):
                continue
            name = prefix + "_" + re.sub(r"(?<!^)([A-Z])", r"_\1", key).lower()
            lines += [f"# TYPE {name} gauge", f"{name} {value}"]
        return "\n".join(lines) + "\n"


REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 408: "Request Timeout",
           431: "Request Header Fields Too Large", 500: "Internal Server Error",
           501: "Not Implemented", 503: "Service Unavailable"}
HEAD_LIMIT = 16384  # bytes of request line and headers read at most
LINGER = 2.0  # seconds to read what a client still sends after the answer (then close)
_END_OF_HEAD = re.compile(rb"\r?\n\r?\n")
_REQUEST_LINE = re.compile(rb"\A([!#$%&'*+.^_`|~0-9A-Za-z-]+) ([\x21-\x7e\x80-\xff]+) "
                           rb"HTTP/[0-9]\.[0-9]\Z")


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


def _read_head(connection: socket.socket, deadline: float) -> tuple[bytes | None, int]:
    """The request line (headers and body change no answer) once the head is complete, or
    None and the status to answer: 408 when it did not come in time, 431 when it is longer
    than HEAD_LIMIT, 400 when the client stopped sending before its end (0: sent nothing)."""
    head = b""
    while not (end := _END_OF_HEAD.search(head.lstrip(b"\r\n"))):
        if len(head) > HEAD_LIMIT:
            return None, 431
        left = deadline - time.monotonic()
        if left <= 0:
            return None, 408
        connection.settimeout(left)
        try:
            chunk = connection.recv(4096)
        except TimeoutError:
            return None, 408
        if not chunk:
            return None, 400 if head.strip(b"\r\n") else 0
        head += chunk
    if end.start() > HEAD_LIMIT:
        return None, 431
    return head.lstrip(b"\r\n").split(b"\n", 1)[0].rstrip(b"\r"), 200


def serve(bind: str, status: Status, ready: threading.Event, run_now: Callable[[], Result],
          prefix: str, request_timeout: float = 10.0) -> socketserver.ThreadingTCPServer:
    """The endpoints, HTTP/1.0 (one request per connection), on socketserver: http.server
    would bring http.client, email and html along, a third of an idle job's memory. Each
    connection is answered (or closed, when it ends without a byte) within request_timeout
    of its start, plus the time of a run it asked for and LINGER: a slow or stuck client
    holds no thread for longer."""
    host, _, port = bind.rpartition(":")

    def answer(method: str, path: str) -> tuple[int, str, str]:
        path = path.split("?", 1)[0]
        if method in ("GET", "HEAD"):
            if path == "/healthz":
                healthy = status.healthy()
                return (200, "ok\n", "text/plain") if healthy else \
                    (503, f"unhealthy: {status.last_error}\n", "text/plain")
            if path == "/readyz":
                return (200, "ready\n", "text/plain") if ready.is_set() else \
                    (503, "first run not finished\n", "text/plain")
            if path == "/status":
                return 200, json.dumps(status.as_dict(), sort_keys=True) + "\n", \
                    "application/json"
            if path == "/metrics":
                return 200, status.metrics(prefix), "text/plain; version=0.0.4"
            return 404, "not found\n", "text/plain"
        if method == "POST":
            if path != "/run":
                return 404, "not found\n", "text/plain"
            code = 200 if run_now().ok else 500
            return code, json.dumps(status.as_dict(), sort_keys=True) + "\n", "application/json"
        return 501, "not implemented\n", "text/plain"

    class Handler(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            connection: socket.socket = self.request
            deadline = time.monotonic() + request_timeout
            try:
                line, code = _read_head(connection, deadline)
            except OSError:
                return  # reset by the client
            method = ""
            if line is not None:
                request = _REQUEST_LINE.match(line)
                method = request.group(1).decode() if request else ""
                if request is None:
                    code, body, kind = 400, "bad request\n", "text/plain"
                else:
                    try:
                        code, body, kind = answer(method, request.group(2).decode("latin-1"))
                    except Exception as exc:  # a job's bug: a 500, the server stays up
                        code, body, kind = 500, f"{type(exc).__name__}: {exc}\n", "text/plain"
            elif code == 0:
                return  # a connection that sent nothing (a TCP probe): nothing to answer
            else:
                body, kind = REASONS[code].lower() + "\n", "text/plain"
            data = body.encode()
            head = (f"HTTP/1.0 {code} {REASONS[code]}\r\nContent-Type: {kind}\r\n"
                    f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n")
            with contextlib.suppress(OSError):
                connection.settimeout(request_timeout)
                connection.sendall(head.encode() + (data if method != "HEAD" else b""))
                # Read what the client still sends (a body, more requests) for a moment
                # before closing: a close with unread input sends a reset, which can cost
                # the client an answer it has not read yet (a lingering close).
                connection.shutdown(socket.SHUT_WR)
                until = time.monotonic() + LINGER
                while (left := until - time.monotonic()) > 0:
                    connection.settimeout(left)
                    if not connection.recv(65536):
                        break

    server = _Server((host or "0.0.0.0", int(port)), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def healthcheck(bind: str, path: str = "/healthz", timeout: float = 3.0) -> int:
    """0 when GET `path` on the endpoints at `bind` answers 200 (1 otherwise, with why): an
    image's exec health check (a wildcard host is asked on 127.0.0.1). http.client is
    imported here: the check is a process of its own, the job's memory stays without it."""
    from http.client import HTTPConnection

    host, _, port = bind.rpartition(":")
    connection = HTTPConnection("127.0.0.1" if host in ("", "0.0.0.0") else host, int(port),
                                timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read().decode(errors="replace").strip()
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    if response.status != 200:
        print(f"unhealthy: {response.status} {body}", file=sys.stderr)
        return 1
    return 0


class _Stop:
    """The stop flag SIGTERM sets, and a wait that SIGTERM ends. The kernel may deliver the
    signal to any thread; Python runs the handler in the main thread only once that thread
    wakes, and a main thread asleep in Event.wait(interval) did not wake: the job ignored
    SIGTERM until the next run or SIGKILL (2 stops in 15 in the test). Here the interpreter
    writes each signal to a pipe (signal.set_wakeup_fd) that wait() selects on."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        signal.set_wakeup_fd(self._write)
        self._set = False

    def set(self) -> None:
        self._set = True
        with contextlib.suppress(BlockingIOError):  # the pipe is full: a wake is pending
            os.write(self._write, b".")

    def is_set(self) -> bool:
        return self._set

    def wait(self, timeout: float) -> bool:
        """Until set or `timeout` has passed (another signal's wake waits on)."""
        deadline = time.monotonic() + timeout
        while not self._set and (left := deadline - time.monotonic()) > 0:
            select.select([self._read], [], [], left)
            with contextlib.suppress(BlockingIOError):
                os.read(self._read, 512)  # the wakes seen; the handler has run by the check
        return self._set


def run_every(interval: float, job: Callable[[], Result], status: Status, bind: str,
              prefix: str, log: Callable[[str], None], run_at_start: bool = True,
              first: Callable[[], Result] | None = None,
              ready_on_success: bool = False) -> int:
    """Run `job` now (or, without run_at_start, first after one interval: then it is ready at
    once) and every `interval` seconds until SIGTERM; one run at a time. `first`, when given,
    runs once before any job, with the endpoints up and no job beside it (POST /run waits);
    if it fails, the loop ends there and the caller gets 1. With ready_on_success, /readyz
    waits for the first run that worked (a loader whose app must not start without its
    data), not for the first run."""
    ready, stop, one_at_a_time = threading.Event(), _Stop(), threading.Lock()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())

    def run() -> Result:
        with one_at_a_time:
            result = job()
            status.record(result)
        if not result.ok:
            log(f"run failed: {result.error}")
        elif ready_on_success:
            ready.set()  # a POST /run that worked counts too
        return result

    server = serve(bind, status, ready, run, prefix) if bind != "off" else None
    if first is not None:
        if not run_at_start:
            ready.set()
        with one_at_a_time:
            before = first()
        status.note(before)
        if not before.ok:
            log(f"error: {before.error}")
            if server is not None:
                server.shutdown()
            return 1
    if not run_at_start:
        ready.set()
        stop.wait(interval)
    while not stop.is_set():
        if run().ok or not ready_on_success:
            ready.set()
        stop.wait(interval)
    if server is not None:
        server.shutdown()
    log("stopped")
    return 0
