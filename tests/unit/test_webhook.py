"""`pattern webhook serve`: real AdmissionReview v1 requests over TLS, verified against the
generated CA; the JSONPatch applied with the jsonpatch library gives what `pattern inject`
writes for the same pod and values, and passes `pattern validate`."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml
from admission import (
    NAMESPACE,
    PROFILES,
    Client,
    Tls,
    api_server_pod,
    patched,
    review_of,
    serving,
)
from support import CATALOGUE, run_in_process, wait_for

from generator.catalogue import Catalogue
from generator.inject import RECORD_ANNOTATION
from generator.validate import check_object
from generator.webhook import MAX_REQUEST_BYTES, Settings, review
from generator.webhook_server import ServeOptions, WebhookServer

SSH = {"sidecar-patterns.io/inject": "ssh",
       "sidecar-patterns.io/set.ssh.authorizedKeysSecret": "shop-keys",
       "sidecar-patterns.io/set.ssh.dataPath": "/srv/data"}
SSH_FLAGS = ["--with", "ssh", "--set", "ssh.authorizedKeysSecret=shop-keys",
             "--set", "ssh.dataPath=/srv/data"]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Tls:
    return Tls.make(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def server(tls: Tls) -> Any:
    with serving(tls) as running:
        yield running


@pytest.fixture
def client(server: WebhookServer, tls: Tls) -> Any:
    connection = Client(server.server_address[1], tls.ca)
    yield connection
    connection.close()


def injected_by_cli(pod: dict[str, Any], *flags: str) -> list[dict[str, Any]]:
    result = run_in_process("inject", "-f", "-", *flags, stdin=json.dumps(pod).encode(),
                            catalogue=CATALOGUE)
    assert result.code == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def test_the_patched_pod_is_what_inject_writes_and_it_validates(client: Client) -> None:
    pod = api_server_pod(annotations=SSH)
    answer = client.review(review_of(pod, uid="3f1c0b2e-uid", dry_run=True))["response"]
    assert answer["uid"] == "3f1c0b2e-uid" and answer["allowed"] is True
    after = patched(pod, answer)
    assert injected_by_cli(pod, *SSH_FLAGS) == [after]
    assert RECORD_ANNOTATION in after["metadata"]["annotations"]
    assert check_object(after, "1.33") == []
    assert [c["name"] for c in after["spec"]["initContainers"]] == ["ssh"]  # native on 1.33


def test_companion_objects_are_named_in_a_warning_and_the_pod_matches_inject(
        client: Client) -> None:
    pod = api_server_pod(annotations={"sidecar-patterns.io/inject": "log-collector"})
    answer = client.review(review_of(pod))["response"]
    config_map, injected = injected_by_cli(pod, "--with", "log-collector")
    assert patched(pod, answer) == injected
    assert config_map["kind"] == "ConfigMap"
    assert any(config_map["metadata"]["name"] in w for w in answer["warnings"])


def test_a_deployments_pod_is_named_after_the_deployment(client: Client) -> None:
    pod = api_server_pod(name=None, annotations={"sidecar-patterns.io/inject":
                                                 "log-collector"})
    answer = client.review(review_of(pod))["response"]
    after = patched(pod, answer)
    assert after["metadata"]["generateName"] == pod["metadata"]["generateName"]
    assert "namespace" in after["metadata"] and "name" not in after["metadata"]
    assert any("shop-log-collector-config" in w for w in answer["warnings"])
    env = {e["name"]: e.get("value") for e in after["spec"]["initContainers"][0]["env"]}
    assert env["LOG_COLLECTOR_APP"] == "shop"


def test_an_injected_pod_is_left_alone_when_reinvoked(client: Client) -> None:
    pod = api_server_pod(annotations=SSH)
    after = patched(pod, client.review(review_of(pod))["response"])
    after["spec"]["containers"].append({"name": "other-webhooks", "image": "proxy:1"})
    again = client.review(review_of(after))["response"]
    assert again["allowed"] is True and "patch" not in again and "warnings" not in again


@pytest.mark.parametrize(("change", "reason"), [
    ({"annotations": {"sidecar-patterns.io/inject": "false"}}, 'is "false"'),
    ({"annotations": SSH, "hostNetwork": True}, "hostNetwork"),
    ({"annotations": {}}, "no sidecars asked for"),
])
def test_skipped_pods_say_why_in_warnings(client: Client, change: dict[str, Any],
                                          reason: str) -> None:
    annotations = change.pop("annotations")
    pod = api_server_pod(annotations=annotations, **change)
    answer = client.review(review_of(pod))["response"]
    assert answer["allowed"] is True and "patch" not in answer
    assert reason in answer["warnings"][0]


def _denied(answer: dict[str, Any]) -> str:
    response = answer["response"]
    assert response["allowed"] is False, response
    message: str = response["status"]["message"]
    assert "\n" not in message and "Traceback" not in message
    return message


@pytest.mark.parametrize(("body", "expected"), [
    (b"{not json", "not JSON"),
    (json.dumps({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
                 "request": {"uid": "u"}}).encode(), "expected an AdmissionReview of"),
    (json.dumps([1, 2]).encode(), "expected an AdmissionReview"),
    (b"[" * 100_000, "not JSON"),
])
def test_unreadable_requests_are_denied_and_the_server_stays_up(
        client: Client, body: bytes, expected: str) -> None:
    assert expected in _denied(client.review(body))
    assert client.health()["status"] == "ok"


@pytest.mark.parametrize(("annotations", "expected"), [
    ({"sidecar-patterns.io/inject": "no-such-pattern"}, "no-such-pattern"),
    ({"sidecar-patterns.io/inject": "ssh", "sidecar-patterns.io/set.ssh.port": "22"},
     "ssh.port"),
    ({"sidecar-patterns.io/inject": "ssh", "sidecar-patterns.io/set.ssh.nope": "1"}, "nope"),
    ({"sidecar-patterns.io/inject": "Not A Name"}, "inject"),
    ({"sidecar-patterns.io/inject": "app=ssh"}, "app container's name"),
    ({"sidecar-patterns.io/profile": "missing"}, "no profile 'missing'"),
])
def test_pods_that_cannot_be_injected_are_denied_with_the_reason(
        client: Client, annotations: dict[str, str], expected: str) -> None:
    uid = "deny-me"
    answer = client.review(review_of(api_server_pod(annotations=annotations), uid=uid))
    assert answer["response"]["uid"] == uid
    assert expected in _denied(answer)


def test_a_pod_the_sidecars_would_break_is_denied(client: Client) -> None:
    pod = api_server_pod(annotations=SSH)
    pod["spec"]["containers"][0]["ports"] = [{"containerPort": 2222}]
    assert "2222" in _denied(client.review(review_of(pod)))


def test_other_kinds_and_operations(client: Client) -> None:
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}
    assert "injects Pods" in _denied(client.review(review_of(deployment, kind="Deployment")))
    update = client.review(review_of(api_server_pod(annotations=SSH), operation="UPDATE"))
    assert update["response"]["allowed"] is True and "patch" not in update["response"]


def test_a_request_over_the_size_limit_is_denied(client: Client) -> None:
    pod = api_server_pod(annotations={**SSH, "padding": "x" * MAX_REQUEST_BYTES})
    assert "more than the" in _denied(client.review(review_of(pod)))
    assert client.health()["status"] == "ok"


def test_allow_mode_lets_the_pod_through_unchanged_with_the_reason() -> None:
    body = json.dumps(review_of(api_server_pod(
        annotations={"sidecar-patterns.io/inject": "no-such-pattern"}))).encode()
    answer = review(body, Settings(on_error="allow"), Catalogue())["response"]
    assert answer["allowed"] is True and "patch" not in answer
    assert "no-such-pattern" in answer["warnings"][0]


def _job_pod() -> dict[str, Any]:
    pod = api_server_pod(annotations=SSH, restartPolicy="Never")
    pod["metadata"]["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "Job",
                                           "name": "nightly", "uid": "j", "controller": True}]
    return pod


def test_native_or_classic_by_the_clusters_version_and_jobs_as_inject() -> None:
    pod = api_server_pod(annotations=SSH)
    classic = review(json.dumps(review_of(pod)).encode(), Settings(k8s_version="1.28"),
                     Catalogue())["response"]
    after = patched(pod, classic)
    assert [c["name"] for c in after["spec"]["containers"]] == ["app", "ssh"]
    assert after == injected_by_cli(pod, *SSH_FLAGS, "--k8s-version", "1.28")[0]
    job = json.dumps(review_of(_job_pod())).encode()
    denied = review(job, Settings(k8s_version="1.28"), Catalogue())
    assert "would never complete" in _denied(denied)
    native = review(job, Settings(k8s_version="1.30"), Catalogue())["response"]
    assert native["allowed"] is True
    assert patched(_job_pod(), native)["spec"]["initContainers"][0]["restartPolicy"] == "Always"




def test_a_profile_gives_its_sidecars_and_is_read_again_when_it_changes(
        tls: Tls, tmp_path: Path) -> None:
    profiles = tmp_path / "profiles.yaml"
    profiles.write_text(PROFILES)
    pod = api_server_pod(annotations={"sidecar-patterns.io/profile": "access"})
    with serving(tls, profiles_file=profiles) as server:
        client = Client(server.server_address[1], tls.ca)
        after = patched(pod, client.review(review_of(pod))["response"])
        assert after == injected_by_cli(pod, *SSH_FLAGS)[0]
        profiles.write_text(PROFILES.replace("access:", "files:"))
        server.reload()
        assert "no profile 'access'" in _denied(client.review(review_of(pod)))
        profiles.write_text("kind: Nonsense\n")
        server.reload()  # a broken file keeps the profiles it had, and says so in health
        health = client.health()
        assert health["profile_errors"] == 1 and "WebhookProfiles" in health["last_error"]
        pod["metadata"]["annotations"]["sidecar-patterns.io/profile"] = "files"
        assert client.review(review_of(pod))["response"]["allowed"] is True
        client.close()


def test_the_certificate_is_read_again_when_it_changes(tls: Tls, tmp_path: Path) -> None:
    own = Tls.make(tmp_path / "old")
    with serving(own) as server:
        port = server.server_address[1]
        Client(port, own.ca).health()
        new = Tls.make(tmp_path / "new")
        own.cert.write_bytes(new.cert.read_bytes())
        own.key.write_bytes(new.key.read_bytes())
        server.reload()
        assert Client(port, new.ca).health()["cert_reloads"] == 1
        with pytest.raises(ssl.SSLCertVerificationError):
            Client(port, own.ca).health()


def test_a_client_that_is_not_tls_or_goes_silent_does_not_hold_the_server(tls: Tls) -> None:
    with serving(tls, idle_timeout=0.5, max_connections=2) as server:
        port = server.server_address[1]
        silent = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
        plain = socket.create_connection(("127.0.0.1", port))
        plain.sendall(b"GET /healthz HTTP/1.1\r\n\r\n")
        client = Client(port, tls.ca)
        assert client.review(review_of(api_server_pod(annotations=SSH)))["response"]["allowed"]
        wait_for("TLS errors counted", lambda: client.health()["tls_errors"] >= 1)
        for sock in [*silent, plain]:
            sock.close()
        client.close()


def test_sigterm_drains_a_request_in_flight(tls: Tls) -> None:
    """A request whose body is still arriving when the drain starts is answered; then the
    server stops accepting."""
    with serving(tls) as server:
        port = server.server_address[1]
        body = json.dumps(review_of(api_server_pod(annotations=SSH), uid="in-flight")).encode()
        context = ssl.create_default_context(cafile=str(tls.ca))
        from admission import SERVER_NAME

        sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                                   server_hostname=SERVER_NAME)
        sock.sendall(b"POST /mutate HTTP/1.1\r\nHost: webhook\r\nContent-Type: "
                     b"application/json\r\nContent-Length: " + str(len(body)).encode()
                     + b"\r\n\r\n" + body[:100])
        wait_for("the request in flight", lambda: any(h.busy for h in server._handlers))
        drain = threading.Thread(target=server.drain)
        drain.start()
        wait_for("not ready", server.draining.is_set)
        sock.sendall(body[100:])
        answer = b""
        while b"in-flight" not in answer:
            chunk = sock.recv(65536)
            assert chunk, answer
            answer += chunk
        assert answer.startswith(b"HTTP/1.1 200") and b"Connection: close" in answer
        drain.join(10)
        sock.close()
        server.server_close()
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_the_server_refuses_a_certificate_it_cannot_load(tmp_path: Path) -> None:
    (tmp_path / "tls.crt").write_text("not a certificate")
    (tmp_path / "tls.key").write_text("not a key")
    from generator.errors import PatternError

    with pytest.raises(PatternError, match="TLS certificate"):
        WebhookServer(ServeOptions(address="127.0.0.1", port=0, cert_file=tmp_path / "tls.crt",
                                   key_file=tmp_path / "tls.key"), Catalogue())


def test_namespace_comes_from_the_request(client: Client) -> None:
    pod = api_server_pod(annotations=SSH)
    del pod["metadata"]["namespace"]
    answer = client.review(review_of(pod, namespace=NAMESPACE))["response"]
    assert "namespace" not in patched(pod, answer)["metadata"]


def test_the_cli_does_not_import_the_server_until_webhook_serve_runs() -> None:
    import subprocess
    import sys

    code = ("import sys, generator.cli; print(sorted(m for m in sys.modules if m.startswith("
            "('generator.webhook', 'http.server', 'cryptography'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
