"""Start and stop the metadata peers and the adapter as local processes, for tests."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support import free_port, wait_for

PEER_SCRIPT = Path(__file__).with_name("imds_peer.py")
REPO = Path(__file__).resolve().parents[3]
ADAPTER_DIR = REPO / "images" / "iaas-metadata"
# The adapter's PYTHONPATH: its package, and beside it (as in the image) sidecar_common.
ADAPTER_PATH = os.pathsep.join(str(folder) for folder in (ADAPTER_DIR, REPO / "images" / "_common"))

# Which adapter flag points each provider at a peer.
ENDPOINT_FLAG = {
    "aws": "--aws-endpoint", "aliyun": "--aliyun-endpoint", "gcp": "--gcp-endpoint",
    "azure": "--azure-endpoint", "openstack": "--openstack-endpoint",
    "qingcloud": "--qingcloud-endpoint",
}



def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    def listening() -> bool:
        if proc.poll() is not None:
            out = proc.stdout.read().decode() if proc.stdout else ""
            raise RuntimeError(f"process exited with {proc.returncode}: {out}")
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", port)) == 0
    wait_for(f"a listener on 127.0.0.1:{port}", listening, timeout, interval=0.02)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class Peer:
    cloud: str
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.url}/__peer__/requests", timeout=5) as resp:
            result: list[dict[str, Any]] = json.load(resp)
            return result

    def faults(self, **change: Any) -> None:
        req = urllib.request.Request(f"{self.url}/__peer__/faults",
                                     data=json.dumps(change).encode(), method="POST")
        urllib.request.urlopen(req, timeout=5).close()


def start_peer(cloud: str, *extra: str, port: int | None = None, wait: bool = True) -> Peer:
    port = port or free_port()
    cmd = [sys.executable, str(PEER_SCRIPT), "--cloud", cloud, "--port", str(port), *extra]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if wait:
        wait_listening(port, proc)
    return Peer(cloud, port, proc)


@dataclass
class Adapter:
    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, headers: dict[str, str] | None = None,
            method: str = "GET") -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(self.url + path, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers.items()), err.read()

    def instance(self) -> dict[str, Any]:
        status, _, body = self.get("/v1/instance")
        assert status == 200, body
        result: dict[str, Any] = json.loads(body)
        return result

    def wait_ready(self, timeout: float = 30.0) -> None:
        wait_for("the adapter's /readyz", lambda: self.get("/readyz")[0] == 200, timeout)


def start_adapter(*args: str, env: dict[str, str] | None = None) -> Adapter:
    port = free_port()
    cmd = [sys.executable, "-m", "iaas_metadata", "--listen", f"127.0.0.1:{port}", *args]
    full_env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": ADAPTER_PATH,
                **(env or {})}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=full_env)
    wait_listening(port, proc)
    return Adapter(port, proc)


def adapter_for(peer: Peer, *args: str) -> Adapter:
    return start_adapter("--provider", peer.cloud, ENDPOINT_FLAG[peer.cloud], peer.url, *args)
