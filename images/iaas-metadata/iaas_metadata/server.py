"""The local HTTP API. It answers from the cache only and proxies nothing by path."""

from __future__ import annotations

import json
import logging
import socket
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from iaas_metadata.cache import MetadataCache
from iaas_metadata.config import Config
from iaas_metadata.ec2 import (
    MAX_TOKEN_TTL,
    VERSIONS,
    TokenStore,
    lookup,
    split_version,
    version_tree,
)
from iaas_metadata.fields import FIELDS
from iaas_metadata.upstream import UpstreamError

log = logging.getLogger("iaas_metadata")

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
# Headers that only a relay adds; the cloud metadata services refuse them for the same reason.
RELAY_HEADERS = ("X-Forwarded-For", "Forwarded", "Via", "X-Forwarded-Host")
TOKEN_TTL_HEADER = "X-aws-ec2-metadata-token-ttl-seconds"
TOKEN_HEADER = "X-aws-ec2-metadata-token"
USER_DATA_REFUSED = ("user-data is not exposed: set the pattern parameter exposeUserData: true "
                     "(image flag --expose user-data)")


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


def plain(status: int, message: str, **headers: str) -> Answer:
    return Answer(status, (message + "\n").encode(), headers=headers)


def exact(status: int, text: str, **headers: str) -> Answer:
    """EC2 dialect bodies carry no trailing newline: clients use them verbatim as tokens."""
    return Answer(status, text.encode(), headers=headers)


def as_json(status: int, doc: Any, **headers: str) -> Answer:
    body = (json.dumps(doc, indent=2, sort_keys=False) + "\n").encode()
    return Answer(status, body, "application/json", headers)


def allowed_hosts(config: Config) -> frozenset[str]:
    hosts = set(LOCAL_HOSTS) | set(config.allowed_hosts)
    if config.listen_host not in ("0.0.0.0", "::"):
        hosts.add(config.listen_host)
    return frozenset(hosts)


def host_name(host_header: str) -> str:
    """The name part of a Host header: 'a:1' -> 'a', '[::1]:1' -> '::1'."""
    if host_header.startswith("["):
        return host_header[1:].partition("]")[0]
    return host_header.rpartition(":")[0] if host_header.count(":") == 1 else host_header


def refuse_relay(target: str, headers: Any, hosts: frozenset[str]) -> Answer | None:
    """Refuse what looks like an SSRF relay: proxy-style targets, foreign Host, relay headers."""
    if not target.startswith("/") or target.startswith("//"):
        return plain(400, "absolute-form request targets are refused: this is not a proxy")
    host = headers.get("Host")
    if not host or host_name(host.strip()).lower() not in hosts:
        return plain(421, f"Host {host!r} is not served here; allowed: {sorted(hosts)}")
    for name in RELAY_HEADERS:
        if headers.get(name) is not None:
            return plain(403, f"requests carrying {name} are refused (relayed request)")
    return None


class Api:
    """Routes a request to an answer. Pure apart from reading the cache."""

    def __init__(self, config: Config, cache: MetadataCache) -> None:
        self.config = config
        self.cache = cache
        self.tokens = TokenStore()
        self.hosts = allowed_hosts(config)

    def answer(self, method: str, target: str, headers: Any) -> Answer:
        refused = refuse_relay(target, headers, self.hosts)
        if refused:
            return refused
        path = urlsplit(target).path
        if self.config.ec2_dialect:
            ec2_path = split_version(path)
            if ec2_path is not None:
                return self.ec2(method, *ec2_path, headers)
        if method not in ("GET", "HEAD"):
            return plain(405, f"{method} is not allowed", Allow="GET, HEAD")
        if path == "/healthz":
            return plain(200, "ok")
        if path == "/readyz":
            return self.readyz()
        if path == "/v1/provider":
            return as_json(200, vars(self.cache.detection))
        if path == "/v1/instance":
            return self.instance()
        if path.startswith("/v1/instance/"):
            return self.field(path[len("/v1/instance/"):])
        if path == "/v1/user-data":
            return self.user_data()
        if path.startswith("/v1/credentials") or path.startswith("/v1/token"):
            return plain(403, "credentials and tokens are never served by this adapter; "
                              "use the cloud SDK's own credential chain")
        return plain(404, "not found; see /v1/instance, /v1/instance/<field>, /v1/provider")

    def _headers(self, age: float, stale: bool) -> dict[str, str]:
        return {"Age": str(int(age)), "X-Metadata-Age-Seconds": f"{age:.3f}",
                "X-Metadata-Stale": "true" if stale else "false", "Cache-Control": "no-store"}

    def readyz(self) -> Answer:
        snapshot, _, error = self.cache.read()
        if snapshot is None:
            return plain(503, f"not ready: {error or 'no metadata fetched yet'}")
        return plain(200, "ready")

    def _snapshot(self) -> tuple[dict[str, Any], float, bool] | Answer:
        snapshot, age, error = self.cache.read()
        if snapshot is None:
            return plain(503, f"no metadata yet: {error or 'first fetch in progress'}",
                         **{"Retry-After": "1"})
        stale = error is not None or age > self.config.ttl
        # Milliseconds cut, not rounded: a body saying 1.0 s beside an Age of 0 disagreed.
        age = int(age * 1000) / 1000
        doc = snapshot.document()
        doc.update({"age_seconds": age, "stale": stale, "last_error": error})
        return doc, age, stale

    def instance(self) -> Answer:
        got = self._snapshot()
        if isinstance(got, Answer):
            return got
        doc, age, stale = got
        return as_json(200, doc, **self._headers(age, stale))

    def field(self, name: str) -> Answer:
        name = name.strip("/")
        if name not in FIELDS:
            return plain(404, f"unknown field {name!r}; fields: {', '.join(FIELDS)}")
        got = self._snapshot()
        if isinstance(got, Answer):
            return got
        doc, age, stale = got
        headers = self._headers(age, stale)
        value = doc[name]
        if value is None:
            return plain(404, f"{name} is null: {doc['missing'].get(name, '')}", **headers)
        if name == "tags":
            return plain(200, "\n".join(f"{k}={v}" for k, v in value.items()), **headers)
        return plain(200, str(value), **headers)

    def user_data(self) -> Answer:
        if "user-data" not in self.config.expose:
            return plain(403, USER_DATA_REFUSED)
        provider = self.cache.provider
        if provider is None:
            return plain(503, "provider not detected yet")
        try:
            data = provider.user_data()
        except (UpstreamError, ValueError) as err:
            return plain(502, f"user-data fetch failed: {err}")
        if data is None:
            return plain(404, "the instance has no user-data")
        return Answer(200, data, "application/octet-stream")

    def ec2(self, method: str, version: str, rest: str, headers: Any) -> Answer:
        """The EC2 dialect: GET / lists the versions; /<version>/... is the same tree for
        every version; PUT /latest/api/token issues session tokens."""
        if version == "latest" and rest.rstrip("/") == "api/token":
            if method != "PUT":
                return plain(405, "use PUT", Allow="PUT")
            raw = headers.get(TOKEN_TTL_HEADER, "")
            if not raw.isdigit() or not 1 <= int(raw) <= MAX_TOKEN_TTL:
                return plain(400, f"{TOKEN_TTL_HEADER} must be 1..{MAX_TOKEN_TTL}")
            return exact(200, self.tokens.issue(int(raw)), **{TOKEN_TTL_HEADER: raw})
        if method not in ("GET", "HEAD"):
            return plain(405, f"{method} is not allowed", Allow="GET, HEAD")
        token = headers.get(TOKEN_HEADER)
        if token is not None and not self.tokens.valid(token):
            return plain(401, "invalid or expired token")
        if token is None and self.config.ec2_tokens == "required":
            return plain(401, "a session token is required (PUT /latest/api/token, then send "
                              f"{TOKEN_HEADER}); the pattern parameter ec2Tokens: optional "
                              "allows tokenless reads")
        if not version:
            return exact(200, "\n".join(VERSIONS))
        if rest.rstrip("/") == "user-data":
            # The real service answers 404 when there is none; so does the dialect while
            # user-data is not exposed (cloud-init treats 404 as "no user-data").
            if "user-data" not in self.config.expose:
                return plain(404, USER_DATA_REFUSED)
            return self.user_data()
        got = self._snapshot()
        if isinstance(got, Answer):
            return got
        doc, age, stale = got
        tree = version_tree(doc, "user-data" in self.config.expose)
        # The real service lists a version's root without trailing slashes, deeper levels with.
        text = "\n".join(tree) if not rest.strip("/") else lookup(tree, rest)
        if text is None:
            return plain(404, "not found")
        return exact(200, text, **self._headers(age, stale))


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], api: Api) -> None:
        self.api = api
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "iaas-metadata"
    sys_version = ""
    server: ApiServer

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes; with Nagle on, a keep-alive client waits
        # for the delayed ACK (~40 ms) before the body arrives.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _serve(self, method: str) -> None:
        if int(self.headers.get("Content-Length") or 0) > 0:
            self.send_error(413, "request bodies are not accepted")
            return
        answer = self.server.api.answer(method, self.path, self.headers)
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(answer.body)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    def do_CONNECT(self) -> None:
        self._serve("CONNECT")
