"""`pattern webhook manifests`: what deploys the webhook passes `pattern validate` and the
strict schema, and its TLS works: the Secret's certificate, served, verifies against the
caBundle for the Service's name."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
import yaml
from admission import PROFILES, Client, Tls, api_server_pod, review_of, serving
from support import CATALOGUE, one_error, run_in_process, run_pattern

from generator.webhook_manifests import NAME, OPT_IN_LABEL, TLS_SECRET


def manifests(*args: str) -> dict[str, dict[str, Any]]:
    result = run_in_process("webhook", "manifests", *args, catalogue=CATALOGUE)
    assert result.code == 0, result.stderr + (result.traceback or "")
    checked = run_pattern("validate", "-f", "-", stdin=result.stdout, catalogue=CATALOGUE)
    assert checked.code == 0, checked.stdout + checked.stderr
    return {d["kind"]: d for d in yaml.safe_load_all(result.stdout) if d}


def test_everything_to_deploy_it_with_the_safe_defaults() -> None:
    found = manifests()
    assert sorted(found) == ["Deployment", "MutatingWebhookConfiguration", "Namespace",
                             "PodDisruptionBudget", "Secret", "Service", "ServiceAccount"]
    (hook,) = found["MutatingWebhookConfiguration"]["webhooks"]
    assert hook["failurePolicy"] == "Fail" and hook["sideEffects"] == "None"
    assert hook["reinvocationPolicy"] == "IfNeeded" and hook["admissionReviewVersions"] == ["v1"]
    assert hook["timeoutSeconds"] == 10
    assert hook["objectSelector"] == {"matchLabels": {OPT_IN_LABEL: "enabled"}}
    assert hook["namespaceSelector"]["matchExpressions"] == [{
        "key": "kubernetes.io/metadata.name", "operator": "NotIn",
        "values": ["kube-system", NAME]}]
    assert hook["rules"] == [{"operations": ["CREATE"], "apiGroups": [""],
                              "apiVersions": ["v1"], "resources": ["pods"],
                              "scope": "Namespaced"}]
    deployment = found["Deployment"]
    assert deployment["spec"]["replicas"] == 2
    assert found["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert {"readinessProbe", "livenessProbe", "startupProbe", "resources"} <= set(container)
    assert all(a.startswith("--") for a in container["args"][::2])  # to `pattern webhook serve`
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False


def _write_secret(found: dict[str, dict[str, Any]], folder: Path) -> Tls:
    data = found["Secret"]["data"]
    folder.mkdir()
    tls = Tls(folder, folder / "ca.crt", folder / "tls.crt", folder / "tls.key")
    tls.cert.write_bytes(base64.b64decode(data["tls.crt"]))
    tls.key.write_bytes(base64.b64decode(data["tls.key"]))
    (hook,) = found["MutatingWebhookConfiguration"]["webhooks"]
    tls.ca.write_bytes(base64.b64decode(hook["clientConfig"]["caBundle"]))
    return tls


def test_the_self_signed_certificate_verifies_against_the_ca_bundle(tmp_path: Path) -> None:
    tls = _write_secret(manifests(), tmp_path / "tls")
    with serving(tls) as server:
        client = Client(server.server_address[1], tls.ca)
        pod = api_server_pod(annotations={"sidecar-patterns.io/inject": "git-sync",
                                          "sidecar-patterns.io/set.git-sync.repo":
                                          "https://example.org/shop.git"})
        assert "patch" in client.review(review_of(pod))["response"]
        client.close()


def test_a_kept_ca_renews_the_certificate_without_changing_the_ca_bundle(
        tmp_path: Path) -> None:
    first = manifests("--ca-dir", str(tmp_path / "ca"))
    assert (tmp_path / "ca" / "ca.key").stat().st_mode & 0o077 == 0
    second = manifests("--ca-dir", str(tmp_path / "ca"))

    def bundle(found: dict[str, dict[str, Any]]) -> str:
        return str(found["MutatingWebhookConfiguration"]["webhooks"][0]["clientConfig"]
                   ["caBundle"])

    assert bundle(first) == bundle(second)
    assert first["Secret"]["data"]["tls.crt"] != second["Secret"]["data"]["tls.crt"]
    old = _write_secret(first, tmp_path / "old")
    new = _write_secret(second, tmp_path / "new")
    with serving(new) as server:  # the new certificate, trusted through the same caBundle
        Client(server.server_address[1], old.ca).health()


def test_cert_manager_mode_names_the_secret_the_pods_mount() -> None:
    found = manifests("--tls", "cert-manager")
    assert "Secret" not in found
    certificate = found["Certificate"]
    assert certificate["spec"]["secretName"] == TLS_SECRET
    assert f"{NAME}.{NAME}.svc" in certificate["spec"]["dnsNames"]
    config = found["MutatingWebhookConfiguration"]
    assert config["metadata"]["annotations"] == {
        "cert-manager.io/inject-ca-from": f"{NAME}/{NAME}"}
    assert "caBundle" not in config["webhooks"][0]["clientConfig"]
    volumes = found["Deployment"]["spec"]["template"]["spec"]["volumes"]
    assert {"name": "tls", "secret": {"secretName": TLS_SECRET, "optional": False}} in volumes


def test_profiles_go_in_a_config_map_the_server_reads(tmp_path: Path) -> None:
    (tmp_path / "profiles.yaml").write_text(PROFILES)
    found = manifests("--profiles", str(tmp_path / "profiles.yaml"), "-n", "injector")
    assert found["ConfigMap"]["data"] == {"profiles.yaml": PROFILES}
    args = found["Deployment"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--profiles") + 1] == "/etc/webhook/profiles/profiles.yaml"
    hook = found["MutatingWebhookConfiguration"]["webhooks"][0]
    assert hook["namespaceSelector"]["matchExpressions"][0]["values"] == ["injector",
                                                                          "kube-system"]


@pytest.mark.parametrize(("args", "expected"), [
    (["--tls", "vault"], "--tls 'vault'"),
    (["--failure-policy", "Maybe"], "--failure-policy"),
    (["--timeout-seconds", "31"], "1 to 30"),
    (["--tls", "cert-manager", "--ca-dir", "x"], "--ca-dir is for"),
    (["--profiles", "/nonexistent/profiles.yaml"], "profiles.yaml"),
])
def test_bad_options_are_one_line(args: list[str], expected: str) -> None:
    result = run_pattern("webhook", "manifests", *args, catalogue=CATALOGUE)
    assert result.code in (1, 2) and expected in result.stderr, result
    assert result.stderr.count("\n") == 1


def test_a_profiles_file_with_a_bad_sidecar_is_refused_before_the_cluster(
        tmp_path: Path) -> None:
    (tmp_path / "profiles.yaml").write_text(PROFILES.replace("- pattern: ssh",
                                                             "- pattern: 12"))
    message = one_error(run_pattern("webhook", "manifests", "--profiles",
                                    str(tmp_path / "profiles.yaml"), catalogue=CATALOGUE))
    assert "profiles.access" in message
