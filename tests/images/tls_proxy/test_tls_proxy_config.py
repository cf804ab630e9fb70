"""The nginx.conf tls_proxy.py writes, checked by nginx's own `nginx -t`: for the shipped
example's settings, for every option combination the pattern can set, and against hostile
flag values (each refused in one line before nginx sees it)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import CATALOGUE, ROOT, sidecar_env

IMAGE = ROOT / "images" / "tls-proxy" / "tls_proxy.py"
pytestmark = pytest.mark.skipif(shutil.which("nginx") is None, reason="needs Debian's nginx")


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("secrets")
    (root / "tls").mkdir()
    (root / "ca").mkdir()
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(root / "tls" / "tls.key"),
                    "-out", str(root / "tls" / "tls.crt")],
                   check=True, capture_output=True)
    shutil.copy(root / "tls" / "tls.crt", root / "ca" / "ca.crt")
    return root


def example_env(stack: str, *sets: str) -> dict[str, str]:
    return sidecar_env(CATALOGUE / "tls-proxy" / "examples" / stack, "tls-proxy", *sets)


def check(env: dict[str, str], tmp_path: Path, secrets: Path,
          *flags: str) -> subprocess.CompletedProcess[str]:
    """Render with the image's code, then `nginx -t` (what the entrypoint does at start)."""
    env = {**env, "TLS_PROXY_CERT_DIR": str(secrets / "tls"),
           "TLS_PROXY_STATE_DIR": str(tmp_path / "state")}
    if "TLS_PROXY_CLIENT_CA_DIR" in env:
        env["TLS_PROXY_CLIENT_CA_DIR"] = str(secrets / "ca")
    code = ("import sys, tls_proxy; args = tls_proxy.build_parser().parse_args(sys.argv[1:]); "
            "tls_proxy.prepare(args); print(open(args.state_dir + '/nginx.conf').read())")
    path = os.pathsep.join([str(IMAGE.parent), str(ROOT / "images" / "_common")])
    return subprocess.run([sys.executable, "-c", code, *flags], capture_output=True, text=True,
                          env={**os.environ, **env, "PYTHONPATH": path}, timeout=30, check=False)


def test_the_examples_config_passes_nginx_t(tmp_path: Path, secrets: Path) -> None:
    done = check(example_env("legacy-web.stack.yaml"), tmp_path, secrets)
    assert done.returncode == 0, done.stderr
    conf = done.stdout
    assert "ssl_protocols TLSv1.2 TLSv1.3;" in conf and "server 127.0.0.1:8080" in conf
    assert "return 308 https://$host$request_uri;" in conf
    assert "X-Forwarded-For $remote_addr;" in conf and "ssl_verify_client" not in conf


@pytest.mark.parametrize("sets", [
    ("tls-proxy.clientCaSecret=legacy-web-client-ca",),
    ("tls-proxy.minTlsVersion=1.3", "tls-proxy.hstsSeconds=31536000",
     "tls-proxy.trustForwardedFor=true", "tls-proxy.publicHttpsPort=8443"),
    ("tls-proxy.maxBodySize=0", "tls-proxy.readTimeoutSeconds=86400", "tls-proxy.workers=16",
     "tls-proxy.accessLog=false", "tls-proxy.port=1024", "tls-proxy.appPort=65535"),
])
def test_every_option_the_pattern_sets_passes_nginx_t(tmp_path: Path, secrets: Path,
                                                       sets: tuple[str, ...]) -> None:
    done = check(example_env("legacy-web.stack.yaml", *sets), tmp_path, secrets)
    assert done.returncode == 0, done.stderr


HOSTILE = "1; } server { listen 9999; root /; } #"


@pytest.mark.parametrize("flag", [
    "--port", "--http-port", "--public-https-port", "--app-host", "--app-port", "--min-tls",
    "--trust-forwarded-for", "--hsts-seconds", "--max-body-size", "--read-timeout",
    "--workers", "--access-log", "--cert-dir", "--client-ca-dir", "--state-dir",
])
def test_hostile_values_are_refused_before_nginx_sees_them(tmp_path: Path, secrets: Path,
                                                           flag: str) -> None:
    done = check(example_env("legacy-web.stack.yaml"), tmp_path, secrets, flag, HOSTILE)
    assert done.returncode != 0 and "listen 9999" not in done.stdout
    assert flag in done.stderr, done.stderr


def test_missing_key_and_mismatched_key_are_one_line_errors(tmp_path: Path, secrets: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    shutil.copy(secrets / "tls" / "tls.crt", broken / "tls.crt")
    env = {**example_env("legacy-web.stack.yaml"), "TLS_PROXY_HEALTH_BIND": "127.0.0.1:1"}
    run = [sys.executable, str(IMAGE), "--cert-dir", str(broken), "--state-dir",
           str(tmp_path / "s")]
    path = os.pathsep.join([str(IMAGE.parent), str(ROOT / "images" / "_common")])
    full = {**os.environ, **env, "PYTHONPATH": path}
    done = subprocess.run(run, capture_output=True, text=True, env=full, timeout=30, check=False)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"tls-proxy: error: --cert-dir: {broken}/tls.key is missing "
                                   "(the Secret needs key tls.key)")
    subprocess.run(["openssl", "genpkey", "-algorithm", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-out", str(broken / "tls.key")], check=True,
                   capture_output=True)
    done = subprocess.run(run, capture_output=True, text=True, env=full, timeout=30, check=False)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1
    assert "nginx refused the config" in done.stderr and "key values mismatch" in done.stderr
