"""AdmissionReviews as the API server sends them, over TLS verified against the webhook's CA.

Used by the webhook tests (unit and integration) and benchmarks/webhook_bench.py: a pod as the
API server has it at mutating admission (defaulted fields, `creationTimestamp: null`, no uid,
`status: {}`), the review around it, a client that checks the serving certificate for the
Service's DNS name as the API server does, and an in-process server on a free port.
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
import socket
import ssl
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import jsonpatch
from support import free_port

from generator.catalogue import Catalogue
from generator.webhook import Settings
from generator.webhook_manifests import make_certificates, service_names
from generator.webhook_server import ServeOptions, WebhookServer, start

NAMESPACE = "shop"
WEBHOOK_NAMESPACE = "sidecar-patterns-webhook"
SERVER_NAME = service_names(WEBHOOK_NAMESPACE)[2]  # what the API server connects to
# One profile: ssh into the app's /srv/data with the keys of Secret shop-keys.
PROFILES = """\
apiVersion: sidecar-patterns.io/v1alpha1
kind: WebhookProfiles
profiles:
  access:
    sidecars:
      - pattern: ssh
        values: {authorizedKeysSecret: shop-keys, dataPath: /srv/data}
"""


def api_server_pod(name: str | None = "shop", annotations: dict[str, str] | None = None,
                   **spec: Any) -> dict[str, Any]:
    """A pod as the API server hands it to a mutating webhook: defaulted, not yet stored."""
    meta: dict[str, Any] = {"namespace": NAMESPACE, "creationTimestamp": None,
                            "labels": {"app": "shop", "sidecar-patterns.io/injection":
                                       "enabled"},
                            "annotations": dict(annotations or {})}
    if name is None:
        meta["generateName"] = "shop-6b7f9c8d4-"
        meta["labels"]["pod-template-hash"] = "6b7f9c8d4"
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                                    "name": "shop-6b7f9c8d4", "uid": str(uuid.uuid4()),
                                    "controller": True, "blockOwnerDeletion": True}]
    else:
        meta["name"] = name
    return {
        "kind": "Pod", "apiVersion": "v1", "metadata": meta,
        "spec": {
            "containers": [{
                "name": "app", "image": "docker.io/library/debian:bookworm-slim",
                "command": ["sleep", "infinity"], "resources": {},
                "terminationMessagePath": "/dev/termination-log",
                "terminationMessagePolicy": "File", "imagePullPolicy": "IfNotPresent"}],
            "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst", "securityContext": {},
            "schedulerName": "default-scheduler", "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority", "priority": 0, **spec},
        "status": {},
    }


def review_of(pod: Any, *, uid: str | None = None, operation: str = "CREATE",
              namespace: str = NAMESPACE, dry_run: bool = False,
              kind: str = "Pod") -> dict[str, Any]:
    """The AdmissionReview v1 request the API server builds for a pod."""
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": uid or str(uuid.uuid4()),
        "kind": {"group": "", "version": "v1", "kind": kind},
        "resource": {"group": "", "version": "v1", "resource": "pods"},
        "requestKind": {"group": "", "version": "v1", "kind": kind},
        "requestResource": {"group": "", "version": "v1", "resource": "pods"},
        "name": (pod.get("metadata") or {}).get("name", "") if isinstance(pod, dict) else "",
        "namespace": namespace, "operation": operation,
        "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller",
                     "groups": ["system:serviceaccounts", "system:authenticated"]},
        "object": pod, "oldObject": None, "dryRun": dry_run,
        "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1"}}}


def patched(pod: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """The pod after the response's JSONPatch, applied by a maintained RFC 6902 library."""
    if "patch" not in response:
        return copy.deepcopy(pod)
    assert response["patchType"] == "JSONPatch"
    operations = json.loads(base64.b64decode(response["patch"]))
    result: dict[str, Any] = jsonpatch.apply_patch(pod, operations)
    return result


@dataclass(frozen=True)
class Tls:
    folder: Path
    ca: Path
    cert: Path
    key: Path

    @classmethod
    def make(cls, folder: Path, days: int = 30) -> Tls:
        certs, _ = make_certificates(WEBHOOK_NAMESPACE, days, None)
        folder.mkdir(parents=True, exist_ok=True)
        paths = cls(folder, folder / "ca.crt", folder / "tls.crt", folder / "tls.key")
        paths.ca.write_bytes(certs.ca_pem)
        paths.cert.write_bytes(certs.cert_pem)
        paths.key.write_bytes(certs.key_pem)
        return paths


class Client:
    """One kept-alive HTTPS connection to the webhook, verified as the API server verifies
    it: against the caBundle's CA, for the Service's DNS name."""

    def __init__(self, port: int, ca: Path, host: str = "127.0.0.1", timeout: float = 30):
        self.context = ssl.create_default_context(cafile=str(ca))
        self.port, self.host, self.timeout = port, host, timeout
        self.connection: http.client.HTTPSConnection | None = None

    def _connect(self) -> http.client.HTTPSConnection:
        connection = http.client.HTTPSConnection(SERVER_NAME, self.port, timeout=self.timeout,
                                                 context=self.context)
        raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
        # As the API server's Go client: no Nagle (http.client writes headers and body apart).
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        connection.sock = self.context.wrap_socket(raw, server_hostname=SERVER_NAME)
        return connection

    def request(self, method: str, path: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, bytes]:
        for attempt in (1, 2):  # a kept-alive connection the server closed: once more
            if self.connection is None:
                self.connection = self._connect()
            try:
                self.connection.request(method, path, body=body, headers=headers or {})
                answer = self.connection.getresponse()
                data = answer.read()
                if answer.getheader("Connection", "").lower() == "close":
                    self.close()
                return answer.status, data
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def review(self, review: dict[str, Any] | bytes) -> dict[str, Any]:
        body = review if isinstance(review, bytes) else json.dumps(review).encode()
        status, data = self.request("POST", "/mutate", body,
                                    {"Content-Type": "application/json"})
        assert status == 200, (status, data[:300])
        answer: dict[str, Any] = json.loads(data)
        assert answer["apiVersion"] == "admission.k8s.io/v1"
        assert answer["kind"] == "AdmissionReview"
        return answer

    def health(self) -> dict[str, Any]:
        status, data = self.request("GET", "/healthz")
        assert status == 200
        loaded: dict[str, Any] = json.loads(data)
        return loaded

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()
            self.connection = None


@contextmanager
def serving(tls: Tls, settings: Settings | None = None, catalogue: Path | None = None,
            **options: Any) -> Iterator[WebhookServer]:
    """The webhook server of `pattern webhook serve`, in this process on a free port."""
    serve_options = ServeOptions(address="127.0.0.1", port=free_port(), cert_file=tls.cert,
                                 key_file=tls.key, settings=settings or Settings(),
                                 drain_seconds=0, log=lambda _line: None)
    server = start(replace(serve_options, **options), Catalogue(catalogue))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    server.ready.set()
    try:
        yield server
    finally:
        if not server.draining.is_set():
            server.shutdown()
        server.server_close()
        thread.join(10)
