"""`pattern webhook manifests`: everything that deploys the injection webhook in a cluster.

Namespace, ServiceAccount, Deployment (two replicas spread over nodes, probes, a locked-down
securityContext, resources), PodDisruptionBudget, Service, the profiles ConfigMap (when
given), and the MutatingWebhookConfiguration: `failurePolicy: Fail` by default, never its own
namespace or kube-system (namespaceSelector), only pods labelled OPT_IN_LABEL (objectSelector,
so pods that ask for nothing never wait on the webhook), `sideEffects: None`, a
`timeoutSeconds`, `reinvocationPolicy: IfNeeded`, `admissionReviewVersions: [v1]`.

TLS comes one of two ways:
- `cert-manager`: a self-signed Issuer and a Certificate for the Service's names; cert-manager
  renews it in the Secret the pods mount (the server reloads it), and its CA injector fills the
  caBundle from the annotation `cert-manager.io/inject-ca-from`;
- `self-signed`: this command makes a CA and a serving certificate, puts the certificate and
  key in a Secret and the CA in the caBundle. The CA's key stays on the user's machine, in
  `--ca-dir` when given: run the command again with the same folder before the serving
  certificate expires and only the Secret changes (the caBundle stays the same CA, so there is
  no moment when the API server distrusts the pods' certificate).
"""

from __future__ import annotations

import base64
import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import PatternError, UsageError
from .generate import check_output
from .inject import INJECT_ANNOTATION
from .shipped import DEFAULT_REGISTRY, shipped_folder
from .sidecars import MANAGED_BY_LABEL, MANAGER
from .webhook import read_profiles
from .yamlio import HEADER, dump_documents, load_documents, read_text

NAME = "sidecar-patterns-webhook"
OPT_IN_LABEL = "sidecar-patterns.io/injection"  # value "enabled": the objectSelector
TLS_SECRET = f"{NAME}-tls"
PORT = 8443
TLS_MODES = ("self-signed", "cert-manager")
FAILURE_POLICIES = ("Fail", "Ignore")
CA_DAYS = 3650


@dataclass(frozen=True)
class WebhookManifests:
    namespace: str = NAME
    image: str | None = None
    replicas: int = 2
    tls: str = "self-signed"
    ca_dir: Path | None = None
    cert_days: int = 365
    failure_policy: str = "Fail"
    timeout_seconds: int = 10
    profiles: str | None = None  # a WebhookProfiles file
    k8s_version: str | None = None
    on_error: str = "deny"


def default_image() -> str:
    version_file = shipped_folder("images") / "webhook" / "VERSION"
    version = version_file.read_text().strip() if version_file.is_file() else "0.1.0"
    return f"{DEFAULT_REGISTRY}/webhook:{version}"


def _labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": NAME, "app.kubernetes.io/component": "webhook",
            MANAGED_BY_LABEL: MANAGER}


def _meta(name: str, namespace: str | None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    meta["labels"] = _labels()
    meta.update(extra)
    return meta


def service_names(namespace: str) -> list[str]:
    """The names the API server may use for the Service (it uses NAME.NAMESPACE.svc)."""
    return [NAME, f"{NAME}.{namespace}", f"{NAME}.{namespace}.svc",
            f"{NAME}.{namespace}.svc.cluster.local"]


# ---------------------------------------------------------------- certificates

@dataclass(frozen=True)
class Certificates:
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def _crypto() -> Any:
    try:
        from cryptography import x509
    except ImportError:
        raise PatternError("--tls self-signed needs the cryptography package: pip install "
                           "'sidecar-patterns[webhook]' (or use --tls cert-manager)") from None
    return x509


def make_certificates(namespace: str, days: int, ca_dir: Path | None,
                      now: datetime.datetime | None = None) -> tuple[Certificates, list[str]]:
    """A CA (reused from ca_dir when it holds one) and a serving certificate for the
    Service's names; notes for stderr."""
    x509 = _crypto()
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = now or datetime.datetime.now(datetime.UTC)
    notes: list[str] = []
    pem = serialization.Encoding.PEM
    ca_cert_path = ca_dir / "ca.crt" if ca_dir else None
    ca_key_path = ca_dir / "ca.key" if ca_dir else None
    if ca_cert_path and ca_key_path and ca_cert_path.is_file() and ca_key_path.is_file():
        try:
            ca = x509.load_pem_x509_certificate(ca_cert_path.read_bytes())
            ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), None)
        except (ValueError, TypeError) as error:
            raise PatternError(f"{ca_dir}: ca.crt/ca.key are not a PEM certificate and an "
                               f"unencrypted key: {error}") from None
        if ca.not_valid_after_utc <= now + datetime.timedelta(days=days):
            raise PatternError(f"{ca_cert_path}: the CA expires on "
                               f"{ca.not_valid_after_utc:%Y-%m-%d}, before a {days}-day serving "
                               "certificate would: use a new --ca-dir (the caBundle changes)")
        notes.append(f"reused the CA in {ca_dir}: the caBundle is unchanged, only the Secret's "
                     "serving certificate is new")
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"{NAME} CA")])
        ca = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(minutes=5))
              .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
              .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
              .add_extension(x509.KeyUsage(
                  digital_signature=True, key_cert_sign=True, crl_sign=True,
                  content_commitment=False, key_encipherment=False, data_encipherment=False,
                  key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
              .sign(ca_key, hashes.SHA256()))
        if ca_dir is not None and ca_cert_path and ca_key_path:
            ca_dir.mkdir(parents=True, exist_ok=True)
            ca_key_path.touch(mode=0o600)
            ca_key_path.write_bytes(ca_key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
            ca_cert_path.write_bytes(ca.public_bytes(pem))
            notes.append(f"wrote a new CA to {ca_dir} (keep it: run again with --ca-dir "
                         f"{ca_dir} to renew the serving certificate without a caBundle change)")
        else:
            notes.append("the CA's key was not kept (no --ca-dir): renewing the certificate "
                         "later changes the caBundle too (apply the whole output again)")
    key = ec.generate_private_key(ec.SECP256R1())
    names = service_names(namespace)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[2])]))
            .issuer_name(ca.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    notes.append(f"the serving certificate expires on {cert.not_valid_after_utc:%Y-%m-%d}: run "
                 "this command again before then and apply the Secret")
    return Certificates(ca.public_bytes(pem), cert.public_bytes(pem), key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())), notes


# ---------------------------------------------------------------- objects

def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _deployment(spec: WebhookManifests, image: str) -> dict[str, Any]:
    def probe(path: str, period: int, failures: int) -> dict[str, Any]:
        return {"httpGet": {"path": path, "port": "https", "scheme": "HTTPS"},
                "periodSeconds": period, "timeoutSeconds": 2, "failureThreshold": failures}

    # args of the image's entrypoint, `pattern webhook serve`
    args = ["--port", str(PORT), "--cert-file", "/etc/webhook/tls/tls.crt",
            "--key-file", "/etc/webhook/tls/tls.key", "--on-error", spec.on_error]
    if spec.k8s_version:
        args += ["--k8s-version", spec.k8s_version]
    mounts = [{"name": "tls", "mountPath": "/etc/webhook/tls", "readOnly": True},
              {"name": "tmp", "mountPath": "/tmp"}]
    volumes: list[dict[str, Any]] = [
        {"name": "tls", "secret": {"secretName": TLS_SECRET, "optional": False}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}]
    if spec.profiles:
        args += ["--profiles", "/etc/webhook/profiles/profiles.yaml"]
        mounts.append({"name": "profiles", "mountPath": "/etc/webhook/profiles",
                       "readOnly": True})
        volumes.append({"name": "profiles", "configMap": {"name": f"{NAME}-profiles"}})
    selector = {"app.kubernetes.io/name": NAME}
    container = {
        "name": "webhook", "image": image, "imagePullPolicy": "IfNotPresent", "args": args,
        "ports": [{"name": "https", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": probe("/readyz", 5, 2),
        "livenessProbe": probe("/healthz", 10, 3),
        "startupProbe": probe("/readyz", 1, 30),
        "resources": {"requests": {"cpu": "100m", "memory": "96Mi"},
                      "limits": {"cpu": "1", "memory": "256Mi"}},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "runAsNonRoot": True, "runAsUser": 65532, "runAsGroup": 65532,
                            "capabilities": {"drop": ["ALL"]},
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "volumeMounts": mounts,
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": _meta(NAME, spec.namespace),
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate",
                         "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": {**_labels()},
                             "annotations": {INJECT_ANNOTATION: "false"}},
                "spec": {
                    "serviceAccountName": NAME,
                    "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "terminationGracePeriodSeconds": 30,
                    "topologySpreadConstraints": [{
                        "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                        "whenUnsatisfiable": "ScheduleAnyway",
                        "labelSelector": {"matchLabels": selector}}],
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def _webhook_configuration(spec: WebhookManifests, ca_bundle: bytes | None) -> dict[str, Any]:
    client: dict[str, Any] = {"service": {"namespace": spec.namespace, "name": NAME,
                                          "path": "/mutate", "port": 443}}
    extra: dict[str, Any] = {}
    if ca_bundle is not None:
        client["caBundle"] = _b64(ca_bundle)
    else:
        extra["annotations"] = {"cert-manager.io/inject-ca-from": f"{spec.namespace}/{NAME}"}
    return {
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": _meta(NAME, None, **extra),
        "webhooks": [{
            "name": "inject.sidecar-patterns.io",
            "admissionReviewVersions": ["v1"],
            "clientConfig": client,
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["pods"], "scope": "Namespaced"}],
            "failurePolicy": spec.failure_policy,
            "matchPolicy": "Equivalent",
            "namespaceSelector": {"matchExpressions": [{
                "key": "kubernetes.io/metadata.name", "operator": "NotIn",
                "values": sorted({spec.namespace, "kube-system"})}]},
            "objectSelector": {"matchLabels": {OPT_IN_LABEL: "enabled"}},
            "sideEffects": "None",
            "timeoutSeconds": spec.timeout_seconds,
            "reinvocationPolicy": "IfNeeded",
        }],
    }


def _tls_objects(spec: WebhookManifests) -> tuple[list[dict[str, Any]], bytes | None,
                                                  list[str]]:
    if spec.tls == "cert-manager":
        issuer = f"{NAME}-selfsigned"
        return [
            {"apiVersion": "cert-manager.io/v1", "kind": "Issuer",
             "metadata": _meta(issuer, spec.namespace), "spec": {"selfSigned": {}}},
            {"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
             "metadata": _meta(NAME, spec.namespace),
             "spec": {"secretName": TLS_SECRET, "dnsNames": service_names(spec.namespace),
                      "duration": f"{spec.cert_days * 24}h",
                      "renewBefore": f"{max(1, spec.cert_days // 3) * 24}h",
                      "privateKey": {"algorithm": "ECDSA", "size": 256,
                                     "rotationPolicy": "Always"},
                      "usages": ["server auth", "digital signature"],
                      "issuerRef": {"name": issuer, "kind": "Issuer"}}},
        ], None, ["cert-manager renews the certificate; its CA injector keeps the caBundle in "
                  "step (cert-manager must be installed first)"]
    certs, notes = make_certificates(spec.namespace, spec.cert_days, spec.ca_dir)
    secret = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
              "metadata": _meta(TLS_SECRET, spec.namespace),
              "data": {"tls.crt": _b64(certs.cert_pem), "tls.key": _b64(certs.key_pem),
                       "ca.crt": _b64(certs.ca_pem)}}
    return [secret], certs.ca_pem, notes


def _check(spec: WebhookManifests) -> None:
    if spec.tls not in TLS_MODES:
        raise UsageError(f"--tls {spec.tls!r}: choose {' or '.join(TLS_MODES)}")
    if spec.failure_policy not in FAILURE_POLICIES:
        raise UsageError(f"--failure-policy {spec.failure_policy!r}: choose "
                         f"{' or '.join(FAILURE_POLICIES)}")
    if not 1 <= spec.timeout_seconds <= 30:
        raise UsageError("--timeout-seconds: the API server allows 1 to 30")
    if spec.replicas < 1:
        raise UsageError("--replicas: at least 1 (2 or more, so a failurePolicy Fail webhook "
                         "survives a node drain)")
    if spec.cert_days < 1:
        raise UsageError("--cert-days: at least 1")
    if spec.ca_dir is not None and spec.tls != "self-signed":
        raise UsageError("--ca-dir is for --tls self-signed")
    if spec.on_error not in ("deny", "allow"):
        raise UsageError(f"--on-error {spec.on_error!r}: choose deny or allow")


def webhook_manifests(spec: WebhookManifests) -> tuple[str, list[str]]:
    """The manifests as one YAML stream, checked like generate's output; notes for stderr."""
    _check(spec)
    image = spec.image or default_image()
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(spec.namespace, None)},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(NAME, spec.namespace),
         "automountServiceAccountToken": False},
    ]
    if spec.profiles:
        text, source = read_text(spec.profiles)
        documents = load_documents(text, source)
        if len(documents) != 1:
            raise UsageError(f"{source}: a profiles file holds exactly one YAML document")
        read_profiles(documents[0], source)  # refused here rather than in the cluster
        objects.append({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": _meta(f"{NAME}-profiles", spec.namespace),
                        "data": {"profiles.yaml": text}})
    tls_objects, ca_bundle, notes = _tls_objects(spec)
    objects += tls_objects
    objects += [
        _deployment(spec, image),
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
         "metadata": _meta(NAME, spec.namespace),
         "spec": {"minAvailable": 1 if spec.replicas > 1 else 0,
                  "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}}}},
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta(NAME, spec.namespace),
         "spec": {"selector": {"app.kubernetes.io/name": NAME},
                  "ports": [{"name": "https", "port": 443, "targetPort": "https",
                             "protocol": "TCP"}]}},
        _webhook_configuration(spec, ca_bundle),
    ]
    from .versions import DEFAULT_K8S_VERSION

    check_output(objects, spec.k8s_version or DEFAULT_K8S_VERSION)
    notes.append(f"pods labelled {OPT_IN_LABEL}=enabled and annotated {INJECT_ANNOTATION}: "
                 "PATTERN[,PATTERN] get their sidecars when they are created")
    return HEADER + dump_documents(objects), notes
