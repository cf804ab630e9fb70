"""HTTP endpoints: /livez, /healthz, /readyz, /status (JSON), /metrics (Prometheus), POST /sync.

What each answers (the pattern wires liveness to /livez and readiness to /readyz):
    /livez   the process works: the sync loop finished an attempt recently (Config.stall_after_s);
             a failing remote or a deleted branch is no reason to restart the sidecar
    /readyz  a tree is published, so the app can be served
    /healthz the last syncs succeed (fewer than --max-failures in a row): staleness, for
             monitoring and alerts, also in /status and /metrics
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from gitsync.log import Logger
from gitsync.status import Status, prometheus_text

MAX_BODY = 1 << 20


def authorize(token: str, authorization: str | None, signature: str | None, body: bytes) -> int:
    """HTTP status for a trigger: 202 accepted, 401 no credentials, 403 wrong credentials.

    Accepts ``Authorization: Bearer <token>`` or a GitHub/Gitea style
    ``X-Hub-Signature-256: sha256=<hmac of body>`` keyed with the same token, so a forge's
    push webhook can call POST /sync directly.
    """
    if authorization:
        scheme, _, value = authorization.partition(" ")
        ok = scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(),
                                                                  token.encode())
        return 202 if ok else 403
    if signature:
        expected = "sha256=" + hmac.new(token.encode(), body, hashlib.sha256).hexdigest()
        return 202 if hmac.compare_digest(signature.strip().encode(), expected.encode()) else 403
    return 401


def loop_alive(last_attempt_unix: float | None, started_unix: float, stall_after_s: float,
               now: float) -> bool:
    return now - (last_attempt_unix or started_unix) < stall_after_s


def make_handler(status: Status, token_file: Path | None, trigger: Callable[[], None],
                 logger: Logger, stall_after_s: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "git-sync"
        sys_version = ""

        def log_message(self, format: str, *args: object) -> None:
            logger.debug("http", client=self.client_address[0], request=format % args)

        def _send(self, code: int, payload: object, content_type: str = "application/json",
                  headers: dict[str, str] | None = None) -> None:
            body = payload.encode() if isinstance(payload, str) else \
                (json.dumps(payload, indent=1) + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            snap = status.snapshot()
            path = self.path.split("?", 1)[0]
            if path == "/livez":
                alive = loop_alive(snap.last_attempt_unix, snap.started_unix, stall_after_s,
                                   time.time())
                self._send(200 if alive else 503, {"alive": alive,
                                                   "last_attempt_unix": snap.last_attempt_unix})
            elif path in ("/healthz", "/"):
                code = 200 if snap.healthy else 503
                self._send(code, {"healthy": snap.healthy, "commit": snap.last_commit,
                                  "consecutive_failures": snap.consecutive_failures,
                                  "last_error": snap.last_error})
            elif path == "/readyz":
                self._send(200 if snap.ready else 503,
                           {"ready": snap.ready, "commit": snap.last_commit})
            elif path == "/status":
                self._send(200, asdict(snap))
            elif path == "/metrics":
                self._send(200, prometheus_text(snap), "text/plain; version=0.0.4")
            else:
                self._send(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] != "/sync":
                self._send(404, {"error": "not found"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._send(413, {"error": "body too large"})
                return
            body = self.rfile.read(length) if length else b""
            if token_file is None:
                self._send(404, {"error": "trigger disabled: start with --trigger-token-file"})
                return
            try:
                token = token_file.read_text().strip()  # re-read: rotation needs no restart
            except OSError as exc:
                logger.error("trigger_token_unreadable", file=token_file, error=exc.strerror)
                token = ""
            if not token:
                self._send(503, {"error": "trigger token file missing or empty"})
                return
            code = authorize(token, self.headers.get("Authorization"),
                             self.headers.get("X-Hub-Signature-256"), body)
            if code == 202:
                status.record_trigger()
                trigger()
                logger.info("sync_triggered", client=self.client_address[0])
                self._send(202, {"status": "sync scheduled"})
            else:
                logger.warn("trigger_rejected", client=self.client_address[0], status=code)
                headers = {"WWW-Authenticate": 'Bearer realm="git-sync"'} if code == 401 else None
                self._send(code, {"error": "unauthorized" if code == 401 else "forbidden"},
                           headers=headers)

    return Handler


def start_server(bind: tuple[str, int], handler: type[BaseHTTPRequestHandler]
                 ) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(bind, handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server
