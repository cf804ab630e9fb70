#!/usr/bin/python3
"""Terminate TLS with nginx in front of a plain-HTTP app on localhost.

The whole nginx config is written under the state dir at start from flags (each with a
TLS_PROXY_ environment twin); certificate files are read in place from the Secret mount, so a
rotation (the kubelet's `..data` swap) is seen by the supervisor's directory watch, checked
with `nginx -t` and applied with SIGHUP: new connections get the new certificate and open ones
finish on the old workers.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import engine_supervisor as supervisor
from sidecar_common import ConfigError, add_flag, plain_path

PROGRAM = "tls-proxy"
ENV_PREFIX = "TLS_PROXY_"
NGINX = "/usr/sbin/nginx"
# Mozilla's "intermediate" TLS 1.2 suites (forward-secret AEAD only) without the DHE ones,
# which would need a dhparam file; TLS 1.3 suites are OpenSSL's defaults, all of them strong.
TLS12_CIPHERS = ":".join([
    "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
    "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
    "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
])
SIZE = re.compile(r"^[0-9]{1,6}[kKmMgG]?$")
DURATION = re.compile(r"^[0-9]{1,5}(ms|s|m|h)?$")
HOST = re.compile(r"^[A-Za-z0-9.:\[\]-]{1,253}$")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="TLS in front of a plain-HTTP app on localhost (nginx). "
        "'tls-proxy healthcheck' asks the supervisor's /readyz.")
    flag = partial(add_flag, parser, ENV_PREFIX)
    flag("--port", "8443", "TLS port")
    flag("--http-port", "8880", "plain-HTTP port that redirects to HTTPS; 0 = none")
    flag("--public-https-port", "443", "HTTPS port clients use (Service port), for redirects")
    flag("--app-host", "127.0.0.1", "where the app listens (plain HTTP)")
    flag("--app-port", "8080", "the app's port")
    flag("--cert-dir", "/etc/tls-proxy/tls", "dir with tls.crt and tls.key (kubernetes.io/tls)")
    flag("--client-ca-dir", None, "dir with ca.crt: clients must present a certificate it signed")
    flag("--min-tls", "1.2", "lowest TLS version: 1.2 or 1.3")
    flag("--trust-forwarded-for", "false",
         "true: append to a client's X-Forwarded-For (behind a trusted balancer); "
         "false: replace it with the peer address")
    flag("--hsts-seconds", "0", "Strict-Transport-Security max-age; 0 = no header")
    flag("--max-body-size", "10m", "largest request body (nginx size: 10m, 512k, 0 = no limit)")
    flag("--read-timeout", "60s", "how long to wait for the app's response (nginx time)")
    flag("--workers", "1", "nginx worker processes")
    flag("--access-log", "true", "log every request to stdout")
    flag("--state-dir", "/tmp/tls-proxy", "where the rendered config and temp files live")
    supervisor.add_flags(parser, ENV_PREFIX, health_port=8881)
    return parser


def _port(name: str, value: str, allow_zero: bool = False) -> int:
    if not value.isdigit() or not (0 if allow_zero else 1) <= int(value) <= 65535:
        raise ConfigError(f"{name} {value!r}: expected a port number")
    return int(value)


def _bool(name: str, value: str) -> bool:
    if value.lower() not in ("true", "false"):
        raise ConfigError(f"{name} {value!r}: expected true or false")
    return value.lower() == "true"


def _match(name: str, value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.match(value):
        raise ConfigError(f"{name} {value!r}: expected {what}")
    return value


def _dir_with(name: str, value: str, files: Sequence[str]) -> Path:
    if not plain_path(value):
        raise ConfigError(f"{name} {value!r}: expected an absolute path without spaces")
    folder = Path(value)
    for file in files:
        if not (folder / file).is_file():
            raise ConfigError(f"{name}: {folder / file} is missing (the Secret needs key {file})")
    return folder


def nginx_config(args: argparse.Namespace) -> str:
    """The complete nginx.conf; every value is checked before it is written."""
    port = _port("--port", args.port)
    http_port = _port("--http-port", args.http_port, allow_zero=True)
    public = _port("--public-https-port", args.public_https_port)
    app_port = _port("--app-port", args.app_port)
    app_host = _match("--app-host", args.app_host, HOST, "a host name or address")
    used = {"--port": port, "--http-port": http_port, "--health-bind": int(
        str(args.health_bind).rpartition(":")[2] or 0)}
    for flag, number in used.items():
        if number and number == app_port and app_host in ("127.0.0.1", "localhost", "::1"):
            raise ConfigError(f"{flag} {number} is the app's port: pick another")
    if http_port and http_port == port:
        raise ConfigError(f"--http-port {http_port} is also --port")
    certs = _dir_with("--cert-dir", args.cert_dir, ("tls.crt", "tls.key"))
    ca = _dir_with("--client-ca-dir", args.client_ca_dir, ("ca.crt",)) \
        if args.client_ca_dir else None
    if args.min_tls not in ("1.2", "1.3"):
        raise ConfigError(f"--min-tls {args.min_tls!r}: expected 1.2 or 1.3")
    protocols = "TLSv1.2 TLSv1.3" if args.min_tls == "1.2" else "TLSv1.3"
    hsts = _match("--hsts-seconds", args.hsts_seconds, re.compile(r"^[0-9]{1,9}$"), "seconds")
    body = _match("--max-body-size", args.max_body_size, SIZE, "a size such as 10m")
    timeout = _match("--read-timeout", args.read_timeout, DURATION, "a time such as 60s")
    workers = _match("--workers", args.workers, re.compile(r"^([1-9]|1[0-6])$"), "1 to 16")
    state = supervisor.state_dir(args.state_dir)
    forwarded = "$proxy_add_x_forwarded_for" if _bool(
        "--trust-forwarded-for", args.trust_forwarded_for) else "$remote_addr"
    access = "access_log /dev/stdout forwarded;" if _bool(
        "--access-log", args.access_log) else "access_log off;"
    redirect_to = "https://$host" + ("" if public == 443 else f":{public}")
    lines = [
        f"worker_processes {workers};",
        f"pid {state}/nginx.pid;",
        "error_log stderr warn;",
        "events { worker_connections 1024; }",
        "http {",
        "  server_tokens off;",
        *(f"  {kind}_temp_path {state}/{kind};"
          for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")),
        "  log_format forwarded '$remote_addr [$time_local] \"$request\" $status "
        "$body_bytes_sent $request_time \"$http_user_agent\" tls=$ssl_protocol';",
        f"  {access}",
        "  map $http_upgrade $connection_upgrade { default upgrade; '' ''; }",
        # The client's Host as sent (with its port); $host when it sent none (HTTP/1.0).
        "  map $http_host $original_host { '' $host; default $http_host; }",
        f"  upstream app {{ server {app_host}:{app_port}; keepalive 16; }}",
    ]
    if http_port:
        lines += [
            "  server {",
            f"    listen {http_port};",
            f"    location / {{ return 308 {redirect_to}$request_uri; }}",
            "  }",
        ]
    lines += [
        "  server {",
        f"    listen {port} ssl http2;",
        f"    ssl_certificate {certs}/tls.crt;",
        f"    ssl_certificate_key {certs}/tls.key;",
        f"    ssl_protocols {protocols};",
        f"    ssl_ciphers {TLS12_CIPHERS};",
        "    ssl_prefer_server_ciphers off;",
        "    ssl_ecdh_curve X25519:prime256v1:secp384r1;",
        "    ssl_session_cache shared:tls:10m;",
        "    ssl_session_timeout 1d;",
        "    ssl_session_tickets off;",
        f"    client_max_body_size {body};",
    ]
    if ca is not None:
        lines += [
            f"    ssl_client_certificate {ca}/ca.crt;",
            "    ssl_verify_client on;",
            "    ssl_verify_depth 3;",
        ]
    if hsts != "0":
        lines.append(f'    add_header Strict-Transport-Security "max-age={int(hsts)}" always;')
    lines += [
        "    location / {",
        "      proxy_pass http://app;",
        "      proxy_http_version 1.1;",
        "      proxy_set_header Host $original_host;",
        "      proxy_set_header Upgrade $http_upgrade;",
        "      proxy_set_header Connection $connection_upgrade;",
        f"      proxy_set_header X-Forwarded-For {forwarded};",
        "      proxy_set_header X-Forwarded-Proto https;",
        "      proxy_set_header X-Forwarded-Host $host;",
        f"      proxy_set_header X-Forwarded-Port {public};",
        "      proxy_set_header X-Real-IP $remote_addr;",
        # A client may not claim to be verified: the header is the proxy's or empty.
        "      proxy_set_header X-Client-Subject "
        + ("$ssl_client_s_dn;" if ca is not None else '"";'),
        f"      proxy_read_timeout {timeout};",
        "    }",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def prepare(args: argparse.Namespace) -> tuple[supervisor.Engine, supervisor.Options]:
    options = supervisor.Options.from_args(args)
    config = nginx_config(args)
    path = supervisor.state_dir(args.state_dir) / "nginx.conf"
    base = [NGINX, "-e", "stderr", "-c", str(path)]
    check = [*base, "-t", "-q"]
    supervisor.install_config(path, config, check, "nginx")
    watch = options.watch_dirs or tuple(
        Path(d) for d in (args.cert_dir, args.client_ca_dir) if d)
    options = supervisor.Options(options.health_host, options.health_port, watch,
                                 options.watch_interval, options.stop_timeout)
    engine = supervisor.Engine(
        name="nginx",
        command=[*base, "-g", "daemon off;"],
        stop_signal=signal.SIGQUIT,  # graceful: open requests finish
        reload_signal=signal.SIGHUP,
        check=check,
        ready=supervisor.tcp_ready("127.0.0.1", int(args.port)),
    )
    return engine, options


def main(argv: Sequence[str]) -> int:
    return supervisor.image_main(PROGRAM, ENV_PREFIX, 8881, build_parser, prepare, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
