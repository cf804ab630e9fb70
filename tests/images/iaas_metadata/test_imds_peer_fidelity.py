"""The metadata peers are faithful enough: real client libraries from PyPI accept them,
and they refuse what the real services refuse."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import imds_harness as harness
import pytest

pytestmark = pytest.mark.integration  # real network peers, real client libraries

StartPeer = Callable[..., harness.Peer]


def call(url: str, method: str = "GET", headers: dict[str, str] | None = None) -> tuple[int, str]:
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def targets(peer: harness.Peer) -> list[tuple[str, str]]:
    return [(r["method"], r["target"]) for r in peer.requests()]


def test_botocore_reads_credentials_and_region_through_imdsv2(
    start_peer: StartPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import botocore.session  # type: ignore[import-untyped]
    import botocore.utils  # type: ignore[import-untyped]

    peer = start_peer("aws")
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", peer.url)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    session = botocore.session.Session()

    assert botocore.utils.IMDSRegionProvider(session).provide() == "eu-west-1"
    creds = session.get_credentials()
    assert creds is not None
    assert (creds.method, creds.access_key) == ("iam-role", "ASIAPEERACCESSKEY001")
    fetcher = botocore.utils.InstanceMetadataFetcher(
        timeout=2, num_attempts=1, config={"ec2_metadata_service_endpoint": peer.url})
    assert fetcher.retrieve_iam_role_credentials()["role_name"] == "peer-role"
    seen = targets(peer)
    assert ("PUT", "/latest/api/token") in seen
    assert ("GET", "/latest/meta-data/placement/availability-zone/") in seen


def test_aws_peer_refuses_what_imdsv2_refuses(start_peer: StartPeer) -> None:
    peer = start_peer("aws")
    meta = f"{peer.url}/latest/meta-data/instance-id"
    assert call(meta)[0] == 401  # tokenless read when tokens are required
    assert call(f"{peer.url}/latest/api/token", "PUT")[0] == 400  # TTL header missing
    ttl = {"X-aws-ec2-metadata-token-ttl-seconds": "21601"}
    assert call(f"{peer.url}/latest/api/token", "PUT", ttl)[0] == 400  # above 21600
    relayed = {"X-aws-ec2-metadata-token-ttl-seconds": "60", "X-Forwarded-For": "10.0.0.9"}
    assert call(f"{peer.url}/latest/api/token", "PUT", relayed)[0] == 403
    assert call(meta, headers={"X-aws-ec2-metadata-token": "forged"})[0] == 401


def test_aws_peer_tokens_expire(start_peer: StartPeer) -> None:
    peer = start_peer("aws", "--token-ttl-cap", "1")
    ttl = {"X-aws-ec2-metadata-token-ttl-seconds": "21600"}
    status, token = call(f"{peer.url}/latest/api/token", "PUT", ttl)
    assert status == 200
    meta = f"{peer.url}/latest/meta-data/instance-id"
    assert call(meta, headers={"X-aws-ec2-metadata-token": token}) == (200, "i-0abc123def4567890")
    peer.faults(expire_tokens=True)
    assert call(meta, headers={"X-aws-ec2-metadata-token": token})[0] == 401


def test_alibabacloud_credentials_reads_ram_role_in_hardened_mode(
    start_peer: StartPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alibabacloud_credentials.client import Client  # type: ignore[import-untyped]
    from alibabacloud_credentials.models import Config  # type: ignore[import-untyped]

    peer = start_peer("aliyun")
    # The SDK hard-codes 100.100.100.200 and has no endpoint setting: go through a proxy.
    monkeypatch.setenv("HTTP_PROXY", peer.url)
    monkeypatch.setenv("http_proxy", peer.url)
    monkeypatch.setenv("ALIBABA_CLOUD_IMDSV1_DISABLED", "true")
    credential = Client(Config(type="ecs_ram_role")).get_credential()
    assert (credential.access_key_id, credential.security_token) == ("STS.peerAK", "peerSTStoken")
    seen = peer.requests()
    token_put = next(r for r in seen if r["method"] == "PUT")
    assert token_put["target"] == "http://100.100.100.200/latest/api/token"
    assert "X-aliyun-ecs-metadata-token-ttl-seconds" in token_put["headers"]
    assert all("X-aliyun-ecs-metadata-token" in r["headers"] for r in seen if r["method"] == "GET")


def test_aliyun_peer_refuses_tokenless_reads(start_peer: StartPeer) -> None:
    peer = start_peer("aliyun")
    assert call(f"{peer.url}/latest/meta-data/region-id")[0] == 403
    v1 = start_peer("aliyun", "--imdsv1")
    assert call(f"{v1.url}/latest/meta-data/region-id") == (200, "cn-hangzhou")


# google-auth reads GCE_METADATA_HOST into module globals at import time: in this process a
# reload would leave them pointing at this test's (soon dead) peer for every later test.
# A child process keeps that state to itself, so test order never matters.
GOOGLE_AUTH_CHECK = """import json
import google.auth
import google.auth.transport.requests
from google.auth.compute_engine import _metadata
request = google.auth.transport.requests.Request()
on_gce = _metadata.is_on_gce(request)
credentials, project = google.auth.default()
credentials.refresh(request)
zone = _metadata.get(request, "instance/zone")
print(json.dumps({"on_gce": on_gce, "project": project, "token": credentials.token,
                  "zone": zone}))
"""


def test_google_auth_detects_gce_and_gets_a_token(start_peer: StartPeer) -> None:
    peer = start_peer("gcp")
    host = f"127.0.0.1:{peer.port}"
    env = {"PATH": os.environ.get("PATH", ""), "GCE_METADATA_HOST": host,
           "GCE_METADATA_IP": host, "CLOUDSDK_CONFIG": "/nonexistent", "HOME": "/nonexistent"}
    child = subprocess.run([sys.executable, "-c", GOOGLE_AUTH_CHECK], capture_output=True,
                           text=True, env=env, timeout=60, check=False)
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout) == {
        "on_gce": True, "project": "test-project", "token": "ya29.PEER",
        "zone": "projects/123456789012/zones/europe-west1-b"}
    assert ("GET", "/computeMetadata/v1/instance/service-accounts/default/token") in [
        (r["method"], r["target"].split("?")[0]) for r in peer.requests()]


def test_gcp_peer_requires_the_flavor_header(start_peer: StartPeer) -> None:
    peer = start_peer("gcp")
    url = f"{peer.url}/computeMetadata/v1/instance/id"
    assert call(url)[0] == 403
    flavor = {"Metadata-Flavor": "Google"}
    assert call(url, headers=flavor) == (200, "4567890123456789012")
    assert call(url, headers={**flavor, "X-Forwarded-For": "1.2.3.4"})[0] == 403
    status, body = call(f"{peer.url}/computeMetadata/v1/instance/?recursive=true", headers=flavor)
    assert status == 200
    assert json.loads(body)["machineType"] == "projects/123456789012/machineTypes/e2-medium"


def test_azure_identity_gets_a_managed_identity_token(
    start_peer: StartPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.identity import ManagedIdentityCredential

    peer = start_peer("azure")
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", peer.url)
    for name in ("IDENTITY_ENDPOINT", "IDENTITY_HEADER", "MSI_ENDPOINT", "AZURE_CLIENT_ID"):
        monkeypatch.delenv(name, raising=False)
    token = ManagedIdentityCredential().get_token("https://management.azure.com/.default")
    assert token.token.endswith(".peer.sig")
    request = next(r for r in peer.requests() if "oauth2" in r["target"])
    assert request["headers"].get("Metadata") == "true"
    assert "api-version=2018-02-01" in request["target"]


def test_azure_peer_enforces_header_and_api_version(start_peer: StartPeer) -> None:
    peer = start_peer("azure")
    base = f"{peer.url}/metadata/instance"
    header = {"Metadata": "true"}
    assert call(f"{base}?api-version=2021-02-01")[0] == 400  # no Metadata header
    status, body = call(base, headers=header)
    assert status == 400
    assert "newest-versions" in json.loads(body)
    assert call(f"{base}?api-version=1999-01-01", headers=header)[0] == 400
    status, body = call(f"{base}/compute/location?api-version=2021-02-01&format=text",
                        headers=header)
    assert (status, body) == (200, "westeurope")


def test_openstack_peer_serves_both_apis_and_no_imdsv2(start_peer: StartPeer) -> None:
    peer = start_peer("openstack")
    status, body = call(f"{peer.url}/openstack/latest/meta_data.json")
    meta: dict[str, Any] = json.loads(body)
    assert (status, meta["uuid"], meta["availability_zone"]) == (
        200, "d8e02d56-2648-49a3-bf97-6be8f1204f38", "nova")
    assert call(f"{peer.url}/latest/meta-data/instance-type") == (200, "m1.small")
    ttl = {"X-aws-ec2-metadata-token-ttl-seconds": "60"}
    assert call(f"{peer.url}/latest/api/token", "PUT", ttl)[0] == 404


def test_qingcloud_peer_follows_the_documented_limits(start_peer: StartPeer) -> None:
    # No QingCloud client library exists on PyPI: this peer follows the docs only.
    peer = start_peer("qingcloud")
    statuses = [call(f"{peer.url}/i-abcd1234/")[0] for _ in range(6)]
    assert statuses == [200] * 5 + [429]  # 5 requests per minute per target instance
    assert call(f"{peer.url}/i-someoneelse/")[0] == 404
