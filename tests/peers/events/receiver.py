"""A CloudEvents receiver for the change-notifier tests: an HTTP server on the pods' network
gateway (pods reach the host there) that parses every request with the CNCF `cloudevents`
SDK and keeps what it got. It can be stopped and started again on the same port (an outage),
and speak https with the certificate of a `tls` context (which may change between starts)."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cloudevents.core.bindings.http import HTTPMessage, from_http_event
from pods import cli

KUBE_NETWORK = "podman-default-kube-network"


def gateway(runtime: str = "podman") -> str:
    """The host's address on the network `pattern run` pods of that engine use."""
    if runtime == "docker":  # Docker's default bridge (its gateway field is often empty)
        subnet = cli("network", "inspect", "bridge", "--format",
                     "{{range .IPAM.Config}}{{.Subnet}} {{end}}", runtime="docker",
                     check=True).stdout.split()[0]
        return str(next(ipaddress.ip_network(subnet).hosts()))
    if cli("network", "exists", KUBE_NETWORK).returncode != 0:
        cli("network", "create", KUBE_NETWORK, check=True)
    out = cli("network", "inspect", KUBE_NETWORK, "--format",
              "{{range .Subnets}}{{.Gateway}}{{end}}", check=True).stdout.strip()
    return out.split()[0]


@dataclass
class Received:
    id: str
    source: str
    type: str
    subject: str
    data: dict[str, Any]
    content_type: str
    at: float


@dataclass
class Receiver:
    host: str
    port: int = 0
    events: list[Received] = field(default_factory=list)
    rejected: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None
    connections: list[socket.socket] = field(default_factory=list)
    tls: ssl.SSLContext | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}/events"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with receiver.lock:
                    receiver.connections.append(self.connection)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    event = from_http_event(HTTPMessage(headers=headers, body=body))
                    data = event.get_data()
                    got = Received(event.get_id(), event.get_source(), event.get_type(),
                                   str(event.get_subject()), data if isinstance(data, dict)
                                   else {}, headers.get("content-type", ""), time.time())
                except Exception as exc:  # what the SDK refuses is the test's failure
                    with receiver.lock:
                        receiver.rejected.append(f"{exc}: {body[:200]!r}")
                    self.send_response(400)
                else:
                    with receiver.lock:
                        receiver.events.append(got)
                    self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        # On every address: the pods' bridge (and so the gateway address) exists only while
        # a pod runs; pods reach this server at the gateway address.
        self.server = ThreadingHTTPServer(("0.0.0.0", self.port), Handler)
        self.server.daemon_threads = True
        if self.tls is not None:  # a client that refuses the certificate is never served
            self.server.socket = self.tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Down as a crashed receiver is: no listener, and open connections cut."""
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None
        with self.lock:
            connections, self.connections = self.connections, []
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def got(self) -> list[Received]:
        with self.lock:
            return list(self.events)

    def by_subject(self, source: str) -> dict[str, list[Received]]:
        found: dict[str, list[Received]] = {}
        for event in self.got():
            if event.source == source:
                found.setdefault(event.subject, []).append(event)
        return found


def latencies(events: dict[str, list[Received]]) -> list[float]:
    """Seconds from each file's last write (the event's mtime) to its parse here, sorted."""
    return sorted(e.at - datetime.fromisoformat(e.data["mtime"].replace("Z", "+00:00"))
                  .timestamp() for v in events.values() for e in v)
