"""How to start each image staged by images/_common/stage.py and tell it is healthy; shared by
test_staged_images.py and benchmarks/images_bench.py (start-to-ready, idle RSS)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

IMAGES = Path(__file__).resolve().parents[3] / "images"
# A throwaway public key: sshd starts only with a way to log in.
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJZApGzAF77DVzJ5JAAbihZYpAFYa5m/rRPerfazHQXU"


@dataclass(frozen=True)
class Case:
    args: tuple[str, ...]  # after the image's entrypoint
    health: tuple[str, ...]  # exec'd in the container; exit 0 = healthy
    mount: str = ""  # a folder `make` fills on the host, mounted read-only here
    make: Callable[[Path], None] | None = None
    # A function image (runs once on its stdin, then exits): run with this input; healthy =
    # exit 0 (`health` is not used), ready = done.
    stdin: str = ""

    def options(self, folder: Path) -> list[str]:
        """`run` options; `folder` is an empty host folder this case may fill and mount."""
        if not self.make:
            return []
        self.make(folder)
        folder.chmod(0o755)
        for path in folder.rglob("*"):  # as a Secret arrives, readable by the image's user
            path.chmod(0o755 if path.is_dir() else 0o644)
        return ["-v", f"{folder}:{self.mount}:ro"]


# A ResourceList with one Deployment and an Inject that adds one sidecar.
KRM_INPUT = """\
apiVersion: config.kubernetes.io/v1
kind: ResourceList
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: shop}
  spec:
    selector: {matchLabels: {app: shop}}
    template:
      metadata: {labels: {app: shop}}
      spec: {containers: [{name: shop, image: nginx}]}
functionConfig:
  apiVersion: sidecar-patterns.io/v1alpha1
  kind: Inject
  metadata: {name: logs}
  spec:
    sidecars: [{pattern: log-collector, values: {files: [{glob: app.log, level: info}]}}]
"""
# Ready once /readyz answers 200 over its TLS (the stdlib's client, in the image).
WEBHOOK_READY = ("import http.client, ssl, sys; c = http.client.HTTPSConnection('127.0.0.1', "
                 "8443, context=ssl._create_unverified_context(), timeout=2); "
                 "c.request('GET', '/readyz'); sys.exit(c.getresponse().status != 200)")


def self_signed(folder: Path) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost",
                    "-keyout", str(folder / "tls.key"), "-out", str(folder / "tls.crt")],
                   check=True, capture_output=True)


def git_repository(folder: Path) -> None:
    """A bare repository with one commit at folder/app.git (git-sync publishes it)."""
    work = folder / "work"
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org", "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(folder),
           "PATH": "/usr/bin:/bin"}
    for command in (["init", "-q", "--bare", str(folder / "app.git")],
                    ["init", "-q", "-b", "main", str(work)]):
        subprocess.run(["git", *command], check=True, capture_output=True, env=env)
    (work / "VERSION").write_text("v1\n")
    for command in (["add", "VERSION"], ["commit", "-q", "-m", "v1"],
                    ["push", "-q", str(folder / "app.git"), "main"]):
        subprocess.run(["git", "-C", str(work), *command], check=True, capture_output=True,
                       env=env)


def http_ok(port: int, path: str = "/readyz") -> tuple[str, ...]:
    """Exits 0 when GET 127.0.0.1:PORT/PATH answers 200, as an httpGet probe sees it (over a
    socket: not every image stages urllib)."""
    return ("python3", "-c", "import socket, sys\n"
            f"c = socket.create_connection(('127.0.0.1', {port}), timeout=5)\n"
            f"c.sendall(b'GET {path} HTTP/1.0\\r\\n\\r\\n')\n"
            "sys.exit(c.recv(64).split()[1:2] != [b'200'])\n")


def logrotate_config(folder: Path) -> None:
    (folder / "logrotate.conf").write_text("/tmp/logs/*.log {\n    hourly\n    missingok\n}\n")


CASES = {
    # /healthz answers 200 while the process serves, whether or not a cloud answers.
    "iaas-metadata": Case(("--provider", "aws", "--aws-endpoint", "http://127.0.0.1:9"),
                          ("python3", "-m", "iaas_metadata.probe", "/healthz")),
    # The image's default config; state on /tmp (the test runs it with a read-only root).
    "log-collector": Case(("--state-dir", "/tmp"), ("log-collector-health", "--state-dir", "/tmp")),
    # Ready once nutcracker listens; it connects to a server only when a request comes.
    "redis-ambassador": Case(("--servers", "127.0.0.1:6390:1"),
                             ("redis-ambassador", "healthcheck")),
    # Ready once nginx serves with the mounted certificate (no app needs to listen).
    "tls-proxy": Case((), ("tls-proxy", "healthcheck"), "/etc/tls-proxy/tls", self_signed),
    # Ready once the watch is set; nothing listens at the URL (no change, nothing to send).
    "change-notifier": Case(("--url", "http://127.0.0.1:9/events", "--state-dir", "/tmp/state"),
                            ("python3", "-m", "change_notifier", "healthcheck", "/readyz")),
    # Ready once the baseline hash of the mounted folder is taken (nothing to tell yet).
    "config-reloader": Case(("--watch", "/etc/conf", "--notify", "restart"),
                            ("python3", "-m", "config_reloader", "healthcheck", "/readyz"),
                            "/etc/conf", lambda folder: (folder / "app.conf").write_text("a\n")),
    # Ready once the exporter listens; it reaches the app (redis) only when scraped.
    "metrics-adapter": Case(("--adapter", "redis"),
                            ("python3", "-m", "metrics_adapter", "healthcheck", "/readyz")),
    "ssh": Case(("--data-dir", "/tmp", "--authorized-keys", SSH_KEY),
                ("ssh-sidecar", "healthcheck")),
    # Anonymous only (no users Secret), a self-signed certificate made at start by openssl.
    "ftp": Case(("--data-dir", "/tmp", "--anonymous", "true"), ("ftp-sidecar", "healthcheck")),
    # Ready at once (the first snapshot is one interval away; no repository needed before).
    "backup": Case(("--host", "staged", "--interval", "1h"), http_ok(8735)),
    # Ready once the first logrotate run finished (nothing to rotate; state on /tmp).
    "log-rotate": Case(("--state-dir", "/tmp"), http_ok(8734), "/etc/log-rotate",
                       logrotate_config),
    # /healthz answers 200 while the loop serves; no source answers, and many failures are
    # allowed, so it stays healthy (ready needs a load). Asked over a socket, not with
    # `data-loader healthcheck`: the benchmark asks 0.1.x images the same way.
    "data-loader": Case(("--source", "http://127.0.0.1:9/", "--root", "/tmp/data",
                         "--max-failures", "1000"), http_ok(8736, "/healthz")),
    # Healthy once a commit of the mounted repository is published (file://: no network).
    "git-sync": Case(("--repo", "file:///srv/git/app.git", "--ref", "main", "--root", "/tmp/root"),
                     ("python3", "-m", "gitsync.probe", "healthz"), "/srv/git", git_repository),
    # `pattern krm` on a ResourceList, as kustomize runs it.
    "krm": Case((), (), stdin=KRM_INPUT),
    # `pattern webhook serve` with the mounted serving certificate.
    "webhook": Case((), ("python3", "-c", WEBHOOK_READY), "/etc/webhook/tls", self_signed),
}


def staged() -> list[str]:
    """Images whose Containerfile stages onto an empty base with stage.py."""
    return sorted(p.parent.name for p in IMAGES.glob("*/Containerfile")
                  if "stage.py" in p.read_text() and "FROM scratch" in p.read_text())
