"""Real git servers, an upstream repository and a running git-sync process for the tests.

Shared by the component tests (this folder) and the image tests (tests/integration/git_sync_image).
"""

from __future__ import annotations

import base64
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from support import wait_for

REPO_ROOT = Path(__file__).resolve().parents[3]
IMAGE_DIR = REPO_ROOT / "images" / "git-sync"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "test", "GIT_AUTHOR_EMAIL": "test@example.invalid",
    "GIT_COMMITTER_NAME": "test", "GIT_COMMITTER_EMAIL": "test@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0",
}


def git(*args: str, cwd: Path | None = None, check: bool = True) -> str:
    env = dict(os.environ, **GIT_ENV, HOME=str(cwd or Path.cwd()))
    done = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          check=False)
    if check and done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout.strip()


@dataclass
class Upstream:
    """A bare repository served by the test servers, plus a clone to commit from."""

    base: Path
    name: str = "app.git"
    version: int = 0

    @property
    def bare(self) -> Path:
        return self.base / self.name

    @property
    def work(self) -> Path:
        return self.base / "work"

    def create(self) -> None:
        git("init", "-q", "--bare", "-b", "main", str(self.bare))
        git("config", "uploadpack.allowAnySHA1InWant", "true", cwd=self.bare)
        git("init", "-q", "-b", "main", str(self.work))
        git("remote", "add", "origin", str(self.bare), cwd=self.work)

    def commit_version(self, files: int = 5, message: str | None = None,
                       extra: dict[str, str] | None = None) -> str:
        """Write VERSION and `files` data files that all hold the same new version; commit."""
        self.version += 1
        text = f"v{self.version}\n"
        (self.work / "VERSION").write_text(text)
        data = self.work / "data"
        data.mkdir(exist_ok=True)
        for i in range(files):
            (data / f"f{i:03d}.txt").write_text(text * 50)
        for rel, content in (extra or {}).items():
            path = self.work / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        git("add", "-A", cwd=self.work)
        git("commit", "-q", "-m", message or f"version {self.version}", cwd=self.work)
        return git("rev-parse", "HEAD", cwd=self.work)

    def push(self, branch: str = "main", force: bool = False) -> None:
        git("push", "-q", *(["--force"] if force else []), "origin", f"HEAD:refs/heads/{branch}",
            cwd=self.work)

    def commit_and_push(self, files: int = 5) -> str:
        sha = self.commit_version(files)
        self.push()
        return sha


class GitDaemon:
    """`git daemon` on 127.0.0.1 (or another address) that can be stopped and restarted."""

    def __init__(self, base: Path, port: int, host: str = "127.0.0.1") -> None:
        self.base, self.port, self.host = base, port, host
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, name: str = "app.git", host: str | None = None) -> str:
        return f"git://{host or self.host}:{self.port}/{name}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={self.base}",
             f"--listen={self.host}", f"--port={self.port}", str(self.base)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def listening() -> bool:
            with socket.socket() as s:
                return s.connect_ex((self.host, self.port)) == 0
        wait_for("the condition", listening, 30)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


class _CgiGitHandler(BaseHTTPRequestHandler):
    """Runs the real `git http-backend` CGI behind HTTP Basic auth checked against a token file."""

    server: AuthGitHttpServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _authorized(self) -> bool:
        header = self.headers.get("Authorization", "")
        if not header.startswith("Basic "):
            return False
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        token = self.server.token_file.read_text().strip()
        self.server.auth_attempts.append((user, password))
        return user == self.server.username and hmac.compare_digest(password, token)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _serve(self) -> None:
        body = self._body() if self.command == "POST" else b""
        if not self._authorized():
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        path, _, query = self.path.partition("?")
        env = dict(os.environ, GIT_PROJECT_ROOT=str(self.server.base), GIT_HTTP_EXPORT_ALL="1",
                   PATH_INFO=path, QUERY_STRING=query, REQUEST_METHOD=self.command,
                   CONTENT_TYPE=self.headers.get("Content-Type", ""),
                   CONTENT_LENGTH=str(len(body)), REMOTE_USER=self.server.username,
                   REMOTE_ADDR=self.client_address[0],
                   GIT_PROTOCOL=self.headers.get("Git-Protocol", ""))
        done = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True,
                              check=False)
        head, _, payload = done.stdout.partition(b"\r\n\r\n")
        status = 200
        headers = []
        for line in head.decode().split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _serve
    do_POST = _serve


class AuthGitHttpServer(ThreadingHTTPServer):
    def __init__(self, base: Path, port: int, username: str, token_file: Path) -> None:
        super().__init__(("127.0.0.1", port), _CgiGitHandler)
        self.daemon_threads = True
        self.base, self.username, self.token_file = base, username, token_file
        self.auth_attempts: list[tuple[str, str]] = []

    def url(self, name: str = "app.git") -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"


@dataclass
class Recorded:
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class WebhookReceiver:
    """Records POSTs; answers with `status` (mutable, to simulate a failing app) after
    `delay_s` (a receiver that works on the hook before it answers)."""

    port: int
    status: int = 200
    delay_s: float = 0.0
    calls: list[Recorded] = field(default_factory=list)

    def start(self) -> ThreadingHTTPServer:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.calls.append(Recorded(dict(self.headers.items()), body, time.time()))
                time.sleep(receiver.delay_s)
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


@dataclass
class Sidecar:
    """A running `python -m gitsync` process started from the source tree."""

    root: Path
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path
    link: str = "current"

    @property
    def current(self) -> Path:
        return self.root / self.link

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def read_version(self) -> str | None:
        try:
            return (self.current / "VERSION").read_text().strip()
        except OSError:
            return None

    def request(self, path: str, method: str = "GET", headers: dict[str, str] | None = None,
                body: bytes | None = None) -> tuple[int, Any]:
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=body,
                                     method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                status, raw = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, raw = exc.code, exc.read()
        try:
            return status, json.loads(raw)
        except ValueError:
            return status, raw.decode()

    def status(self) -> dict[str, Any]:
        code, payload = self.request("/status")
        assert code == 200
        assert isinstance(payload, dict)
        return payload

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def sidecar_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "gitsync", *args]


def sidecar_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITSYNC_")}
    env["PYTHONPATH"] = os.pathsep.join([str(IMAGE_DIR), str(IMAGE_DIR.parent / "_common")])
    env.update(extra or {})
    return env


@contextmanager
def running_sidecar(tmp: Path, repo: str, port: int, *args: str, root: Path | None = None,
                    env: dict[str, str] | None = None, wait_ready: bool = True
                    ) -> Iterator[Sidecar]:
    root = root or tmp / "volume"
    log_path = tmp / f"sidecar-{port}.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            sidecar_command("--repo", repo, "--root", str(root), "--period", "1s",
                            "--http-bind", f"127.0.0.1:{port}", *args),
            env=sidecar_env(env), stdout=log, stderr=subprocess.STDOUT)
    sidecar = Sidecar(root, port, proc, log_path)
    try:
        if wait_ready:
            try:
                wait_for("the condition",
                         lambda: _up(port) and sidecar.request("/readyz")[0] == 200, 60)
            except AssertionError:
                raise AssertionError(f"git-sync never became ready; log:\n{sidecar.log()}")\
                    from None
        yield sidecar
    finally:
        sidecar.stop()


def _up(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
