"""tls-proxy in pods the generator makes, in front of a plain-HTTP Python app: real clients
(curl, Python ssl, sslscan) through host ports picked at run time, certificates from a test CA,
a Secret rotated the way the kubelet does it while a download is running."""

from __future__ import annotations

import base64
import http.client
import json
import re
import shutil
import socket
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pki import SERVER, Pki, issue, make_ca
from pods import RunningPod, running, stack_documents
from support import CATALOGUE, free_port, kubelet_update, unique_name, wait_for

from generator.runner import state

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("ambassador_images")]

APP_IMAGE = "localhost/python3-debian:3.11-bookworm"
CHUNK, CHUNKS = 64 * 1024, 40  # the app's /slow: 2.5 MiB over about 4 s
APP = f"""
import http.server, json, time
class App(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        if self.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Length", str({CHUNK} * {CHUNKS}))
            self.end_headers()
            for number in range({CHUNKS}):
                self.wfile.write(bytes([number]) * {CHUNK})
                self.wfile.flush()
                time.sleep(0.1)
            return
        body = json.dumps({{"path": self.path, "headers": dict(self.headers)}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", 8080), App).serve_forever()
"""
# One line without quotes: podman 4.3's kube play misparses a long escaped multi-line scalar.
APP_COMMAND = f"import base64; exec(base64.b64decode('{base64.b64encode(APP.encode()).decode()}'))"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    root = tmp_path_factory.mktemp("pki")
    make_ca(root, "test-ca")
    issue(root, "test-ca", "server-1", SERVER)
    issue(root, "test-ca", "server-2", SERVER)
    make_ca(root, "client-ca")
    issue(root, "client-ca", "alice", "extendedKeyUsage=clientAuth\n")
    make_ca(root, "other-ca")
    issue(root, "other-ca", "mallory", "extendedKeyUsage=clientAuth\n")
    return Pki(root)


def tls_secret(name: str, cert: str, key: str) -> dict[str, Any]:
    """What `kubectl create secret tls` makes."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
            "metadata": {"name": name},
            "data": {"tls.crt": base64.b64encode(cert.encode()).decode(),
                     "tls.key": base64.b64encode(key.encode()).decode()}}


def app_stack(name: str, values: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "sidecar-patterns.io/v1alpha1", "kind": "Stack",
            "metadata": {"name": name},
            "spec": {"kind": "Pod",
                     "app": {"image": APP_IMAGE, "command": ["python3", "-c", APP_COMMAND],
                             "securityContext": {"runAsUser": 1000, "runAsGroup": 1000}},
                     "sidecars": [{"pattern": "tls-proxy", "values": values}]}}


@dataclass(frozen=True)
class Proxy:
    pod: RunningPod
    https: int
    http: int
    health: int

    def secret_dir(self) -> Path:
        return state.root() / "files" / self.pod.name / "tls-proxy-tls"

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.health}/metrics", timeout=5) as r:
            text = r.read().decode()
        found = re.search(rf"^engine_supervisor_{name}\{{[^}}]*\}} (\S+)$", text, re.M)
        assert found, text
        return float(found.group(1))


@contextmanager
def start_proxy(name: str, pki: Pki, extra: dict[str, Any] | None = None,
                secrets: list[dict[str, Any]] | None = None,
                client: str | None = None) -> Iterator[Proxy]:
    https, http_port, health = free_port(), free_port(), free_port()
    values = {"tlsSecret": f"{name}-tls", "publicHttpsPort": https, **(extra or {})}
    docs = [tls_secret(f"{name}-tls", pki.text("server-1.crt"), pki.text("server-1.key")),
            *(secrets or []), *stack_documents(app_stack(name, values), CATALOGUE)]
    with running(docs, publish={8443: https, 8880: http_port, 8881: health}) as (pod,):
        proxy = Proxy(pod, https, http_port, health)
        wait_for("the app behind the proxy", lambda: _answers(proxy, pki, client), 30)
        yield proxy


def _answers(proxy: Proxy, pki: Pki, client: str | None) -> bool:
    try:
        get(proxy.https, pki, "/", context(pki, client=client))
        return True
    except (OSError, http.client.HTTPException):
        return False


@pytest.fixture(scope="module")
def proxy(pki: Pki) -> Iterator[Proxy]:
    with start_proxy(unique_name("amb-tls"), pki) as started:
        yield started


def context(pki: Pki, version: ssl.TLSVersion | None = None,
            client: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.path("test-ca.crt")))
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    if client is not None:
        ctx.load_cert_chain(pki.path(f"{client}.crt"), pki.path(f"{client}.key"))
    return ctx


def get(port: int, pki: Pki, path: str, ctx: ssl.SSLContext | None = None,
        headers: dict[str, str] | None = None) -> tuple[int, bytes, str | None]:
    """One request on a new connection: status, body and the TLS version it used."""
    conn = http.client.HTTPSConnection("localhost", port, timeout=10,
                                       context=ctx or context(pki))
    try:
        conn.request("GET", path, headers=headers or {})
        sock = conn.sock
        assert isinstance(sock, ssl.SSLSocket)
        version = sock.version()
        response = conn.getresponse()
        return response.status, response.read(), version
    finally:
        conn.close()


def peer_serial(proxy: Proxy, pki: Pki) -> int:
    with socket.create_connection(("127.0.0.1", proxy.https), timeout=5) as raw, \
            context(pki).wrap_socket(raw, server_hostname="localhost") as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    pem = ssl.DER_cert_to_PEM_cert(der)
    out = subprocess.run(["openssl", "x509", "-noout", "-serial"], input=pem, text=True,
                         capture_output=True, check=True).stdout
    return int(out.strip().split("=", 1)[1], 16)


def serial_of(pki: Pki, name: str) -> int:
    out = subprocess.run(["openssl", "x509", "-noout", "-serial", "-in", str(pki.path(name))],
                         text=True, capture_output=True, check=True).stdout
    return int(out.strip().split("=", 1)[1], 16)


@pytest.mark.parametrize(("version", "name"), [(ssl.TLSVersion.TLSv1_3, "TLSv1.3"),
                                               (ssl.TLSVersion.TLSv1_2, "TLSv1.2")])
def test_python_ssl_gets_the_app_over_tls_1_3_and_1_2(proxy: Proxy, pki: Pki,
                                                      version: ssl.TLSVersion, name: str) -> None:
    status, body, used = get(proxy.https, pki, "/hello", context(pki, version))
    assert status == 200 and json.loads(body)["path"] == "/hello"
    assert used == name


@pytest.mark.parametrize("flags", [["--tlsv1.3"], ["--tlsv1.2", "--tls-max", "1.2"]])
def test_curl_verifies_the_chain_and_gets_the_app(proxy: Proxy, pki: Pki,
                                                  flags: list[str]) -> None:
    done = subprocess.run(["curl", "-sS", "--fail", "-v", "--cacert", str(pki.path("test-ca.crt")),
                           *flags, f"https://localhost:{proxy.https}/via-curl"],
                          capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["path"] == "/via-curl"
    assert "SSL certificate verify ok" in done.stderr
    bad = subprocess.run(["curl", "-sS", f"https://localhost:{proxy.https}/"],  # system CAs
                         capture_output=True, text=True, timeout=30, check=False)
    assert bad.returncode == 60, bad.stderr  # the chain is checked, not just encrypted


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_tls_1_0_and_1_1_are_refused_by_the_server(proxy: Proxy, pki: Pki,
                                                   version: ssl.TLSVersion) -> None:
    ctx = context(pki, version)
    ctx.set_ciphers("DEFAULT@SECLEVEL=0")  # let the client offer them; the server must refuse
    with pytest.raises(ssl.SSLError, match=r"PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|NO_PROTOCOLS"):
        get(proxy.https, pki, "/", ctx)


def test_forwarded_headers_reach_the_app_and_cannot_be_forged(proxy: Proxy, pki: Pki) -> None:
    status, body, _ = get(proxy.https, pki, "/headers", headers={"X-Forwarded-For": "6.6.6.6",
                                                           "X-Client-Subject": "CN=admin"})
    headers = json.loads(body)["headers"]
    assert status == 200
    assert headers["X-Forwarded-Proto"] == "https"
    assert headers["X-Forwarded-For"] == headers["X-Real-IP"] != "6.6.6.6"
    assert re.fullmatch(r"[0-9.]+", headers["X-Forwarded-For"]), headers
    assert headers["X-Forwarded-Port"] == str(proxy.https)
    assert headers["Host"] == f"localhost:{proxy.https}" and "X-Client-Subject" not in headers


def test_plain_http_is_redirected_to_https(proxy: Proxy) -> None:
    conn = http.client.HTTPConnection("localhost", proxy.http, timeout=10)
    conn.request("POST", "/orders?id=7", body=b"x")
    response = conn.getresponse()
    assert response.status == 308
    assert response.getheader("Location") == f"https://localhost:{proxy.https}/orders?id=7"
    conn.close()


def test_the_images_healthcheck_command_answers_in_the_pod(proxy: Proxy) -> None:
    assert proxy.pod.exec("tls-proxy", "tls-proxy", "healthcheck").returncode == 0
    assert proxy.metric("engine_up") == 1


def test_the_apps_port_is_not_published_by_the_pattern(proxy: Proxy) -> None:
    ports = [p["containerPort"] for c in proxy.pod.plan.play["spec"]["containers"]
             for p in c.get("ports") or []]
    assert 8080 not in ports and {8443, 8880, 8881} <= set(ports)


def test_rotation_mid_download_new_connections_new_cert_old_download_completes(
        proxy: Proxy, pki: Pki) -> None:
    assert peer_serial(proxy, pki) == serial_of(pki, "server-1.crt")
    conn = http.client.HTTPSConnection("localhost", proxy.https, timeout=20, context=context(pki))
    conn.request("GET", "/slow")
    response = conn.getresponse()
    received = response.read(CHUNK)
    kubelet_update(proxy.secret_dir(), {"tls.crt": pki.path("server-2.crt").read_bytes(),
                                        "tls.key": pki.path("server-2.key").read_bytes()})
    wait_for("new connections to get the new certificate",
             lambda: peer_serial(proxy, pki) == serial_of(pki, "server-2.crt"), 20)
    assert not response.isclosed()
    received += response.read()
    conn.close()
    assert received == b"".join(bytes([n]) * CHUNK for n in range(CHUNKS))
    assert proxy.metric("reloads_total") == 1
    # A key that does not match the certificate: nginx -t refuses it, the old one stays.
    kubelet_update(proxy.secret_dir(), {"tls.crt": pki.path("server-1.crt").read_bytes(),
                                        "tls.key": pki.path("server-2.key").read_bytes()})
    wait_for("the refused reload", lambda: proxy.metric("reload_failures_total") == 1, 30)
    assert peer_serial(proxy, pki) == serial_of(pki, "server-2.crt")
    # The supervisor logs the refusal just after it counted it.
    wait_for("the refusal in the log", lambda: "key values mismatch" in proxy.pod.logs("tls-proxy"),
             30)


@pytest.mark.skipif(shutil.which("sslscan") is None, reason="sslscan (Debian) is not installed")
def test_sslscan_finds_only_tls_1_2_and_1_3_and_strong_ciphers(proxy: Proxy) -> None:
    out = subprocess.run(["sslscan", "--no-colour", f"127.0.0.1:{proxy.https}"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    enabled = dict(re.findall(r"^(SSLv[23]|TLSv1\.[0-3])\s+(enabled|disabled)", out, re.M))
    assert enabled == {"SSLv2": "disabled", "SSLv3": "disabled", "TLSv1.0": "disabled",
                       "TLSv1.1": "disabled", "TLSv1.2": "enabled", "TLSv1.3": "enabled"}, out
    accepted = re.findall(r"^(?:Preferred|Accepted)\s+\S+\s+\d+ bits\s+(\S+)", out, re.M)
    assert accepted and all(re.search(r"GCM|CHACHA20", c) for c in accepted), accepted
    assert not re.search(r"RC4|3DES|CBC|NULL|EXPORT|MD5", " ".join(accepted))
    print(out)


def test_mtls_refuses_clients_without_a_certificate_of_the_ca(pki: Pki) -> None:
    ca = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
          "metadata": {"name": "amb-mtls-client-ca"},
          "data": {"ca.crt": base64.b64encode(pki.path("client-ca.crt").read_bytes()).decode()}}
    with start_proxy(unique_name("amb-mtls"), pki, {"clientCaSecret": "amb-mtls-client-ca"}, [ca],
                     client="alice") as proxy:
        # nginx completes the handshake (TLS 1.3 asks for the certificate after it) and then
        # answers 400 itself: the request never reaches the app.
        for client, reason in ((None, b"No required SSL certificate was sent"),
                               ("mallory", b"The SSL certificate error")):
            status, body, _ = get(proxy.https, pki, "/", context(pki, client=client))
            assert status == 400 and reason in body, (client, body)
        status, body, _ = get(proxy.https, pki, "/whoami", context(pki, client="alice"))
        assert status == 200
        assert json.loads(body)["headers"]["X-Client-Subject"] == "CN=alice"


def test_the_legacy_web_example_runs_as_written(pki: Pki) -> None:
    stack = yaml.safe_load((CATALOGUE / "tls-proxy" / "examples" /
                            "legacy-web.stack.yaml").read_text())
    stack["metadata"]["name"] = unique_name("legacy-web")  # a pod no other run uses
    https = free_port()
    docs = [tls_secret("legacy-web-tls", pki.text("server-1.crt"), pki.text("server-1.key")),
            *stack_documents(stack, CATALOGUE)]
    with running(docs, publish={8443: https}):
        status, body, version = wait_for("the example's page over TLS",
                                         lambda: _page(https, pki), 30)
    assert status == 200 and b"Directory listing for /" in body and version == "TLSv1.3"


def _page(port: int, pki: Pki) -> tuple[int, bytes, str | None] | None:
    try:
        return get(port, pki, "/")
    except (OSError, http.client.HTTPException):
        return None
