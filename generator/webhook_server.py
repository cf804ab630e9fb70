"""`pattern webhook serve`: the HTTPS server in front of `webhook.review`.

Python's own `http.server` with one thread per connection and `ssl` (no dependency beyond the
standard library): a review is a few milliseconds of CPU under one interpreter lock, so an
event loop would not answer faster, and a bounded number of handler threads keeps memory
bounded under a burst (connections past the bound wait in the listen backlog, and the API
server's `timeoutSeconds` is the only clock that matters to them).

- `POST /mutate`: an AdmissionReview in, an AdmissionReview out, always HTTP 200 once a body
  was read (a bug in a review is a denial that says so, and is counted);
- `GET /healthz`: alive, with counters as JSON; `GET /readyz`: 503 until warm and while
  draining;
- SIGTERM: not ready at once, keep answering for `drain_seconds` (endpoints take a moment to
  drop the pod), then stop accepting, finish every request in flight, exit 0;
- the certificate and key, and the profiles file, are read again when their content changes
  (cert-manager and kubelet swap Secret and ConfigMap volumes by symlink): new connections get
  the new certificate; a file that does not load keeps the old one, counted in health.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import signal
import socket
import ssl
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any

from .catalogue import Catalogue
from .errors import PatternError
from .webhook import (
    MAX_REQUEST_BYTES,
    ReviewError,
    Settings,
    read_profiles,
    review,
    too_large,
)
from .yamlio import load_documents, read_text

MUTATE_PATH = "/mutate"


@dataclass
class ServeOptions:
    address: str = "0.0.0.0"
    port: int = 8443
    cert_file: Path = Path("/etc/webhook/tls/tls.crt")
    key_file: Path = Path("/etc/webhook/tls/tls.key")
    profiles_file: Path | None = None
    settings: Settings = field(default_factory=Settings)
    max_connections: int = 64  # handler threads at once; the rest wait in the backlog
    backlog: int = 1024
    idle_timeout: float = 30.0  # seconds a kept-alive or slow connection may stay silent
    drain_seconds: float = 5.0
    reload_seconds: float = 10.0
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)


@dataclass
class Counters:
    reviews: int = 0
    patched: int = 0
    denied: int = 0
    internal_errors: int = 0
    bad_http: int = 0
    tls_errors: int = 0
    cert_reloads: int = 0
    cert_reload_errors: int = 0
    profile_reloads: int = 0
    profile_errors: int = 0
    last_error: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **amounts: int) -> None:
        with self.lock:
            for key, amount in amounts.items():
                setattr(self, key, getattr(self, key) + amount)

    def as_json(self) -> dict[str, Any]:
        with self.lock:
            return {k: v for k, v in vars(self).items() if k != "lock"}


def _digest(*paths: Path | None) -> str:
    digest = hashlib.sha256()
    for path in paths:
        if path is not None:
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def load_profiles(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    text, source = read_text(str(path))
    documents = load_documents(text, source)
    if len(documents) != 1:
        raise ReviewError(f"{source}: a profiles file holds exactly one YAML document")
    return read_profiles(documents[0], source)


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as error:
        raise PatternError(f"TLS certificate {cert} / key {key}: {error}") from None
    return context


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # the API server keeps connections alive
    # Headers and body go out as two writes; with Nagle's algorithm the body waits for the
    # client's delayed ACK of the headers (40 ms on Linux), which was most of every review.
    disable_nagle_algorithm = True
    server: WebhookServer

    def setup(self) -> None:
        super().setup()
        self.server.track(self, True)
        self.busy = False

    def finish(self) -> None:
        self.server.track(self, False)
        super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per review is written by do_POST; the rest is noise

    def _send(self, code: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if self.server.draining.is_set():
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        self.wfile.write(body)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        finally:
            self.busy = False

    def parse_request(self) -> bool:
        self.busy = True  # a request line arrived: this connection is no longer idle
        return super().parse_request()

    def do_GET(self) -> None:
        server = self.server
        if self.path == "/healthz":
            body = {"status": "ok", **server.counters.as_json()}
            self._send(200, json.dumps(body).encode() + b"\n")
        elif self.path == "/readyz":
            ready = server.ready.is_set() and not server.draining.is_set()
            self._send(200 if ready else 503, b"ready\n" if ready else b"not ready\n",
                       "text/plain")
        else:
            self._send(404, b"not found\n", "text/plain")

    def do_POST(self) -> None:
        server = self.server
        if self.path.split("?", 1)[0] != MUTATE_PATH:
            server.counters.add(bad_http=1)
            self._send(404, b"not found (POST AdmissionReviews to /mutate)\n", "text/plain")
            return
        length_text = self.headers.get("Content-Length")
        if length_text is None or not length_text.isdigit():
            server.counters.add(bad_http=1)
            self._send(411, b"a Content-Length is required\n", "text/plain")
            self.close_connection = True
            return
        length = int(length_text)
        started = time.perf_counter()
        if length > MAX_REQUEST_BYTES:
            if length <= 4 * MAX_REQUEST_BYTES:  # read and dropped, so the answer arrives
                while length > 0:
                    chunk = self.rfile.read(min(length, 1 << 16))
                    length = length - len(chunk) if chunk else 0
            else:
                self.close_connection = True
            answer = too_large(int(length_text), server.settings)
        else:
            answer = server.answer(self.rfile.read(length))
        response = answer["response"]
        server.counters.add(reviews=1, patched=int("patch" in response),
                            denied=int(not response["allowed"]))
        self._send(200, json.dumps(answer, separators=(",", ":")).encode())
        took = (time.perf_counter() - started) * 1000
        message = response.get("status", {}).get("message") or "; ".join(
            response.get("warnings", []))
        server.options.log(json.dumps({
            "uid": response["uid"], "allowed": response["allowed"],
            "patched": "patch" in response, "ms": round(took, 2),
            **({"message": message} if message else {})}))


class WebhookServer(ThreadingMixIn, HTTPServer):
    """A threaded HTTPS server: TLS is negotiated in the connection's own thread, so one slow
    handshake never holds up the accept loop."""

    daemon_threads = False  # server_close waits for the requests in flight
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, options: ServeOptions, catalogue: Catalogue) -> None:
        self.options = options
        self.request_queue_size = options.backlog
        self.catalogue = catalogue
        self.counters = Counters()
        self.ready = threading.Event()
        self.draining = threading.Event()
        self.slots = threading.BoundedSemaphore(options.max_connections)
        self._handlers: set[_Handler] = set()
        self._handlers_lock = threading.Lock()
        self._tls_digest = _digest(options.cert_file, options.key_file)
        self.context = tls_context(options.cert_file, options.key_file)
        self._profiles_digest = _digest(options.profiles_file)
        self.settings = replace(options.settings,
                                profiles=load_profiles(options.profiles_file))
        super().__init__((options.address, options.port), _Handler)

    # ---- connections

    def track(self, handler: _Handler, alive: bool) -> None:
        with self._handlers_lock:
            (self._handlers.add if alive else self._handlers.discard)(handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.slots.acquire()  # at most max_connections threads; the backlog holds the rest
        try:
            super().process_request(request, client_address)
        except BaseException:
            self.slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            request.settimeout(self.options.idle_timeout)
            try:
                wrapped = self.context.wrap_socket(request, server_side=True)
            except (OSError, ssl.SSLError):
                self.counters.add(tls_errors=1)
                self.shutdown_request(request)
                return
            super().process_request_thread(wrapped, client_address)
        finally:
            self.slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError | ssl.SSLError):
            return  # a client that went away or timed out: nothing to answer
        self.counters.add(internal_errors=1)
        super().handle_error(request, client_address)

    # ---- reviews

    def answer(self, body: bytes) -> dict[str, Any]:
        try:
            return review(body, self.settings, self.catalogue)
        except Exception as error:  # a bug: denied with a message, counted, server stays up
            self.counters.add(internal_errors=1)
            with self.counters.lock:
                self.counters.last_error = f"{type(error).__name__}: {error}"[:300]
            self.options.log(f"internal error: {type(error).__name__}: {error}")
            return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                    "response": {"uid": _uid_of(body), "allowed": False, "status": {
                        "code": 500, "message": "sidecar-patterns webhook: internal error "
                        f"({type(error).__name__}); see the webhook's log"}}}

    # ---- reloads

    def reload(self) -> None:
        """Read the certificate and the profiles again if their content changed."""
        options = self.options
        try:
            digest = _digest(options.cert_file, options.key_file)
            if digest != self._tls_digest:
                self.context = tls_context(options.cert_file, options.key_file)
                self._tls_digest = digest
                self.counters.add(cert_reloads=1)
                options.log(f"reloaded the certificate {options.cert_file}")
        except (OSError, PatternError) as error:
            self.counters.add(cert_reload_errors=1)
            self._note(f"certificate not reloaded, the old one is served: {error}")
        try:
            digest = _digest(options.profiles_file)
            if digest != self._profiles_digest:
                self.settings = replace(self.settings,
                                        profiles=load_profiles(options.profiles_file))
                self._profiles_digest = digest
                self.counters.add(profile_reloads=1)
                options.log(f"reloaded the profiles {options.profiles_file}")
        except (OSError, PatternError) as error:
            self._profiles_digest = ""  # try again next time
            self.counters.add(profile_errors=1)
            self._note(f"profiles not reloaded, the old ones are used: {error}")

    def _note(self, message: str) -> None:
        with self.counters.lock:
            self.counters.last_error = message[:300]
        self.options.log(message)

    # ---- stopping

    def drain(self) -> None:
        """Not ready at once; after drain_seconds stop accepting; close idle kept-alive
        connections; requests in flight finish (server_close joins their threads)."""
        self.draining.set()
        self.options.log(f"draining: not ready; stopping in {self.options.drain_seconds:g} s")
        time.sleep(self.options.drain_seconds)
        self.shutdown()
        with self._handlers_lock:
            idle = [h for h in self._handlers if not h.busy]
        for handler in idle:
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RDWR)


def _uid_of(body: bytes) -> str:
    try:
        uid = json.loads(body)["request"]["uid"]
    except Exception:
        return ""
    return uid if isinstance(uid, str) else ""


WARM_UP = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
    "uid": "warm-up", "kind": {"group": "", "version": "v1", "kind": "Pod"},
    "operation": "CREATE", "namespace": "default", "object": {
        "apiVersion": "v1", "kind": "Pod", "metadata": {
            "name": "warm-up", "annotations": {"sidecar-patterns.io/inject": "ssh",
                                               "sidecar-patterns.io/set.ssh.authorizedKeysSecret":
                                               "keys"}},
        "spec": {"containers": [{"name": "app", "image": "app:1"}]}}}}


def start(options: ServeOptions, catalogue: Catalogue) -> WebhookServer:
    """A server listening (not yet serving) and warm: its first review is as fast as the next."""
    server = WebhookServer(options, catalogue)
    review(json.dumps(WARM_UP).encode(), server.settings, catalogue)
    return server


def serve(options: ServeOptions, catalogue: Catalogue) -> int:
    """Serve until SIGTERM or SIGINT, then drain; the exit code."""
    server = start(options, catalogue)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.drain, name="drain", daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def reloader() -> None:
        while not stopping.wait(options.reload_seconds):
            server.reload()

    threading.Thread(target=reloader, name="reload", daemon=True).start()
    server.ready.set()
    options.log(f"serving AdmissionReviews on https://{options.address}:{options.port}"
                f"{MUTATE_PATH} (Kubernetes {server.settings.k8s_version})")
    server.serve_forever(poll_interval=0.2)
    server.server_close()  # joins the threads of requests in flight
    options.log(f"stopped: {json.dumps(server.counters.as_json())}")
    return 0
