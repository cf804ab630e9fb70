"""Requests/s, p99 latency and RSS of TLS termination in front of a plain-HTTP app: nginx and
HAProxy (both Debian bookworm, the packages an image would install), and the app direct, all in
one run with the same load generator (wrk from Debian).

The app is nginx serving a small static file on 127.0.0.1 (fast, so the proxy is what is
measured). Both proxies get one worker (nginx worker_processes 1, HAProxy nbthread 1), the same
certificate (ECDSA P-256), TLS 1.2+ with the pattern's cipher list, keep-alive to the client
and to the app, and X-Forwarded-For/Proto set. wrk keeps connections open (TLS handshakes are
amortised); `--no-keepalive` adds a `Connection: close` header so every request pays one.
RSS is the sum over the proxy's processes (master + worker), read from /proc at the end.

Usage (as root or any user; apt-get install nginx-light haproxy wrk):
    .venv/bin/python benchmarks/tls_proxy_bench.py [--seconds 5] [--connections 32]
        [--threads 2] [--runs 1] [--no-keepalive]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CIPHERS = ("ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
           "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
           "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_port(port: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def nginx_conf(work: Path, body: str) -> Path:
    user = "user root;" if os.geteuid() == 0 else ""
    temp = "\n".join(f"  {k}_temp_path {work}/{k};" for k in
                     ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    text = (f"{user}\nworker_processes 1;\npid {work}/nginx.pid;\nerror_log stderr warn;\n"
            f"events {{ worker_connections 1024; }}\nhttp {{\n  access_log off;\n{temp}\n"
            f"{body}\n}}\n")
    path = work / "nginx.conf"
    path.write_text(text)
    return path


def start_app(work: Path) -> tuple[subprocess.Popen[bytes], int]:
    folder = work / "app"
    (folder / "www").mkdir(parents=True)
    (folder / "www" / "index.html").write_text("hello from the legacy app\n" * 20)
    port = free_port()
    conf = nginx_conf(folder, f"  server {{ listen 127.0.0.1:{port}; root {folder}/www; }}")
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-g", "daemon off;"])
    wait_port(port)
    return proc, port


def start_nginx(work: Path, app: int, cert: Path, key: Path) -> tuple[subprocess.Popen[bytes], int]:
    folder = work / "nginx"
    folder.mkdir()
    port = free_port()
    body = f"""  upstream app {{ server 127.0.0.1:{app}; keepalive 32; }}
  server {{
    listen 127.0.0.1:{port} ssl;
    ssl_certificate {cert}; ssl_certificate_key {key};
    ssl_protocols TLSv1.2 TLSv1.3; ssl_ciphers {CIPHERS}; ssl_prefer_server_ciphers off;
    ssl_session_cache shared:tls:1m;
    location / {{
      proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
    }}
  }}"""
    proc = subprocess.Popen(["nginx", "-c", str(nginx_conf(folder, body)), "-g", "daemon off;"])
    wait_port(port)
    return proc, port


def start_haproxy(work: Path, app: int, cert: Path, key: Path) -> tuple[subprocess.Popen[bytes],
                                                                        int]:
    folder = work / "haproxy"
    folder.mkdir()
    pem = folder / "site.pem"
    pem.write_bytes(cert.read_bytes() + key.read_bytes())
    port = free_port()
    conf = folder / "haproxy.cfg"
    conf.write_text(f"""global
  nbthread 1
  maxconn 2048
  ssl-default-bind-options ssl-min-ver TLSv1.2
  ssl-default-bind-ciphers {CIPHERS}
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
frontend tls
  bind 127.0.0.1:{port} ssl crt {pem}
  option forwardfor
  http-request set-header X-Forwarded-Proto https
  default_backend app
backend app
  http-reuse always
  server app 127.0.0.1:{app}
""")
    proc = subprocess.Popen(["haproxy", "-W", "-db", "-q", "-f", str(conf)])
    wait_port(port)
    return proc, port


def rss_kib(root: int) -> int:
    """Sum of VmRSS over root and its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        found = re.search(r"^VmRSS:\s+(\d+)", status, re.M)
        total += int(found.group(1)) if found else 0
    return total


def wrk(url: str, args: argparse.Namespace) -> tuple[float, float]:
    command = ["wrk", "--latency", "-t", str(args.threads), "-c", str(args.connections),
               "-d", f"{args.seconds}s", url]
    if args.no_keepalive:
        command[1:1] = ["-H", "Connection: close"]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99_ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    if "Non-2xx" in out or "Socket errors" in out:
        print(f"  wrk reported errors for {url}:\n{out}", file=sys.stderr)
    return rate, p99_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--no-keepalive", action="store_true")
    args = parser.parse_args()
    for tool in ("nginx", "haproxy", "wrk", "openssl"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} is missing: apt-get install nginx-light haproxy wrk")
    with tempfile.TemporaryDirectory(prefix="tls-bench-") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        cert, key = work / "tls.crt", work / "tls.key"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj",
                        "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                       check=True, capture_output=True)
        app, app_port = start_app(work)
        procs = [app]
        try:
            nginx, nginx_port = start_nginx(work, app_port, cert, key)
            procs.append(nginx)
            haproxy, haproxy_port = start_haproxy(work, app_port, cert, key)
            procs.append(haproxy)
            targets = [("direct app (http)", f"http://127.0.0.1:{app_port}/", app.pid),
                       ("nginx 1.22 TLS", f"https://127.0.0.1:{nginx_port}/", nginx.pid),
                       ("haproxy 2.6 TLS", f"https://127.0.0.1:{haproxy_port}/", haproxy.pid)]
            mode = "new connection per request" if args.no_keepalive else "keep-alive"
            print(f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s, {mode}, "
                  f"{os.cpu_count()} CPUs, {args.runs} run(s)")
            print(f"{'target':<20} {'req/s':>10} {'p99 ms':>8} {'RSS MiB':>8}")
            for _ in range(args.runs):
                for label, url, pid in targets:
                    rate, p99 = wrk(url, args)
                    print(f"{label:<20} {rate:>10.0f} {p99:>8.2f} {rss_kib(pid) / 1024:>8.1f}",
                          flush=True)
        finally:
            for proc in procs:
                proc.terminate()
                proc.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
