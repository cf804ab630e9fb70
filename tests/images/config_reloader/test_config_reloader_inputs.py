"""config-reloader: what `pattern generate` refuses (one clear line each) and renders, and the
image's decisions run on the host: one change per new content (not per `..data` swap), the
HTTP notification, and the restart request on /livez."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import CATALOGUE, ROOT, free_port, kubelet_update, run_pattern, wait_for

from generator.runner import atomic

IMAGE = ROOT / "images" / "config-reloader"


def stack(values: dict[str, Any], mount: dict[str, Any] | None = None,
          volume: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"apiVersion": "sidecar-patterns.io/v1alpha1", "kind": "Stack",
            "metadata": {"name": "web"},
            "spec": {"kind": "Deployment",
                     "app": {"image": "localhost/nginx:1",
                             "volumeMounts": [mount or {"name": "conf",
                                                        "mountPath": "/etc/nginx/conf"}]},
                     "volumes": [volume or {"name": "conf", "configMap": {"name": "web-nginx"}}],
                     "sidecars": [{"pattern": "config-reloader", "values": values}]}}


def generate(tmp_path: Path, document: dict[str, Any]) -> Any:
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(document))
    return run_pattern("generate", "-f", str(path), catalogue=CATALOGUE)


SIGNAL = {"watch": ["/etc/nginx/conf"], "process": "nginx"}


@pytest.mark.parametrize(("values", "mount", "volume", "message"), [
    ({**SIGNAL, "watch": ["/etc/other"]}, None, None,
     "watch /etc/other: not a mount of the app container web (mounted: /etc/nginx/conf)"),
    (SIGNAL, {"name": "conf", "mountPath": "/etc/nginx/conf", "subPath": "nginx.conf"}, None,
     "watch /etc/nginx/conf: a subPath mount (nginx.conf) of volume conf, which the kubelet "
     "never updates; mount the whole volume"),
    (SIGNAL, None, {"name": "conf", "emptyDir": {}},
     "watch /etc/nginx/conf: volume conf is a emptyDir, not a ConfigMap, Secret or projected"),
    ({**SIGNAL, "signal": "RELOAD"}, None, None,
     "config-reloader.signal: 'RELOAD' is not one of: HUP, USR1, USR2, INT, QUIT, TERM, WINCH"),
    ({**SIGNAL, "watch": ["etc/nginx"]}, None, None, "is not an absolute path"),
    ({"watch": ["/etc/nginx/conf"], "notify": "http", "url": "http://prometheus:9090/-/reload"},
     None, None, "config-reloader.url: 'http://prometheus:9090/-/reload' must be an http(s) "
     "URL on localhost"),
    ({"watch": ["/etc/nginx/conf"], "notify": "http", "url": "http://127.0.0.1/a b"}, None, None,
     "config-reloader.url: 'http://127.0.0.1/a b' is not a URI"),
    ({"watch": ["/etc/nginx/conf"], "notify": "http"}, None, None,
     "notify http needs url"),
    ({"watch": ["/etc/nginx/conf"]}, None, None, "notify signal needs process"),
    ({**SIGNAL, "validate": ["nginx", "-t\n-c"]}, None, None, "must be one line"),
    ({**SIGNAL, "pollInterval": "100ms"}, None, None, "config-reloader.pollInterval"),
])
def test_bad_values_are_one_clear_line(tmp_path: Path, values: dict[str, Any],
                                       mount: dict[str, Any] | None,
                                       volume: dict[str, Any] | None, message: str) -> None:
    result = generate(tmp_path, stack(values, mount, volume))
    assert result.code == 1, result.stdout
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def _pod(text: str) -> dict[str, Any]:
    (workload,) = [d for d in yaml.safe_load_all(text) if d and d["kind"] == "Deployment"]
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def test_signal_mode_shares_the_process_namespace_and_mounts_the_apps_paths(
        tmp_path: Path) -> None:
    validate = ["nginx", "-t", "-q", "-e", "stderr", "-c", "/etc/nginx/conf/nginx.conf"]
    result = generate(tmp_path, stack({**SIGNAL, "validate": validate}))
    assert result.code == 0, result.stderr
    spec = _pod(result.stdout)
    assert spec["shareProcessNamespace"] is True
    sidecar = next(c for c in spec.get("initContainers", []) + spec["containers"]
                   if c["name"] == "config-reloader")
    assert {"name": "conf", "mountPath": "/etc/nginx/conf", "readOnly": True} in \
        sidecar["volumeMounts"]
    env = {e["name"]: e["value"] for e in sidecar["env"]}
    assert sidecar["args"] == ["run", "--", *validate]
    assert env["CONFIG_RELOADER_PROCESS"] == "nginx" and env["CONFIG_RELOADER_SIGNAL"] == "HUP"


def test_http_mode_leaves_the_process_namespaces_apart(tmp_path: Path) -> None:
    result = generate(tmp_path, stack({"watch": ["/etc/nginx/conf"], "notify": "http",
                                       "url": "http://127.0.0.1:9090/-/reload"},
                                      volume={"name": "conf", "secret": {"secretName": "s"}}))
    assert result.code == 0, result.stderr
    assert "shareProcessNamespace" not in _pod(result.stdout)


# ---------------------------------------------------------------- the image's loop, on the host

class Calls:
    def __init__(self) -> None:
        self.posts: list[str] = []
        port = free_port()
        calls = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                calls.posts.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.url = f"http://127.0.0.1:{port}/-/reload"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@contextmanager
def reloader(*flags: str) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'images' / '_common'}"}
    proc = subprocess.Popen([sys.executable, str(IMAGE / "config_reloader.py"),
                             "--check-interval", "50ms", "--poll-interval", "1s",
                             "--http-bind", f"127.0.0.1:{port}", *flags],
                            env=env, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for("the reloader's /readyz", lambda: _get(base + "/readyz") == 200, 60)
        yield base
    finally:
        proc.terminate()
        proc.wait(10)


def _get(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError:
        return None


def _status(base: str) -> dict[str, Any]:
    with urllib.request.urlopen(base + "/status", timeout=10) as reply:
        status: dict[str, Any] = json.loads(reply.read())
        return status


def test_one_reload_per_new_content_not_per_swap(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    atomic.write(conf, {"a.conf": (b"1", 0o644)})
    calls = Calls()
    with reloader("--watch", str(conf), "--notify", "http", "--url", calls.url) as base:
        kubelet_update(conf, {"a.conf": b"1"})  # a new ..data, the same content
        wait_for("two full polls", lambda: _status(base)["runs"] >= 25, 60)
        assert calls.posts == [] and _status(base)["reloads"] == 0
        atomic.write(conf, {"a.conf": (b"2", 0o644)})
        wait_for("the reload call", lambda: calls.posts == ["/-/reload"], 30)
        status = wait_for("the counters", lambda: (s := _status(base))["reloads"] == 1 and s, 30)
        assert status["lastHash"] == status["lastSeenHash"] and status["notifyFailures"] == 0
    calls.server.shutdown()


def test_restart_mode_fails_livez_as_often_as_asked(tmp_path: Path) -> None:
    conf = tmp_path / "conf"
    atomic.write(conf, {"a.conf": (b"1", 0o644)})
    livez = f"http://127.0.0.1:{free_port()}"
    with reloader("--watch", str(conf), "--notify", "restart", "--restart-bind",
                  livez.removeprefix("http://"), "--restart-failures", "2") as base:
        assert _get(livez + "/livez") == 200
        atomic.write(conf, {"a.conf": (b"2", 0o644)})
        wait_for("the change", lambda: _status(base)["reloads"] == 1, 30)
        assert [_get(livez + "/livez") for _ in range(3)] == [503, 503, 200]


def test_a_missing_watched_folder_is_one_line_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'images' / '_common'}"}
    done = subprocess.run([sys.executable, str(IMAGE / "config_reloader.py"), "--watch",
                           str(tmp_path / "nope"), "--process", "nginx"], env=env,
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 2
    assert done.stderr == f"config-reloader: error: watched folder {tmp_path / 'nope'} does " \
                          "not exist (is it mounted?)\n"
