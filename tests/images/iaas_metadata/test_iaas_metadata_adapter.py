"""The adapter process against the cloud peers: fine-grained behaviour (fields, detection,
faults, attacks, the EC2 dialect, --once) that is quicker to pin down without a pod. The same
schema on every cloud and the issue's faults in real pods: tests/integration/iaas_metadata/."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import imds_harness as harness
import pytest
from support import wait_for

pytestmark = pytest.mark.integration  # real processes talking HTTP

StartPeer = Callable[..., harness.Peer]
StartAdapter = Callable[..., harness.Adapter]

QINGCLOUD_ARGS = ("--qingcloud-instance-id", "i-abcd1234")


def test_single_fields_are_plain_text_and_null_is_404_with_reason(
    start_peer: StartPeer, start_adapter: StartAdapter
) -> None:
    adapter = start_adapter(peer=start_peer("openstack"))
    adapter.wait_ready()
    assert adapter.get("/v1/instance/zone")[::2] == (200, b"nova\n")
    status, _, body = adapter.get("/v1/instance/region")
    assert status == 404
    assert b"no region" in body
    assert adapter.get("/v1/instance/tags")[::2] == (200, b"role=db\n")
    assert adapter.get("/v1/instance/no_such_field")[0] == 404


def test_flags_supply_what_the_cloud_lacks(
    start_peer: StartPeer, start_adapter: StartAdapter
) -> None:
    adapter = start_adapter(*QINGCLOUD_ARGS, "--region", "pek3", "--zone", "pek3a",
                            peer=start_peer("qingcloud"))
    adapter.wait_ready()
    doc = adapter.instance()
    assert (doc["region"], doc["zone"]) == ("pek3", "pek3a")
    assert "region" not in doc["missing"]


def test_auto_detection_reports_its_reason(
    start_peer: StartPeer, start_adapter: StartAdapter
) -> None:
    peer = start_peer("azure")
    dead = f"http://127.0.0.1:{harness.free_port()}"  # nothing listens: refused at once
    adapter = start_adapter("--provider", "auto", "--azure-endpoint", peer.url,
                            *[a for c in ("aws", "aliyun", "gcp", "openstack", "qingcloud")
                              for a in (harness.ENDPOINT_FLAG[c], dead)])
    adapter.wait_ready()
    _, _, body = adapter.get("/v1/provider")
    detection = json.loads(body)
    assert detection["provider"] == "azure"
    assert "Metadata: true" in detection["reason"]
    assert [p["provider"] for p in detection["probes"]] == ["gcp", "azure"]
    assert adapter.instance()["region"] == "westeurope"


def test_openstack_is_not_mistaken_for_aws(
    start_peer: StartPeer, start_adapter: StartAdapter
) -> None:
    peer = start_peer("openstack")
    # One metadata address for everything, as on a real OpenStack VM.
    adapter = start_adapter("--provider", "auto", *[a for c in harness.ENDPOINT_FLAG
                                                    for a in (harness.ENDPOINT_FLAG[c], peer.url)])
    adapter.wait_ready()
    assert adapter.instance()["provider"] == "openstack"


def test_slow_metadata_service_is_bounded_by_the_timeout(
    start_peer: StartPeer, start_adapter: StartAdapter
) -> None:
    peer = start_peer("azure", "--slow", "5")
    # A reader that waited on upstream would take 2.5 s at least: far from the bound, so a
    # loaded machine's slow answer is not mistaken for waiting.
    adapter = start_adapter("--timeout", "2.5", "--retries", "1", peer=peer)
    started = time.monotonic()
    status = adapter.get("/readyz")[0]
    assert time.monotonic() - started < 1.5  # readers never wait on upstream
    assert status == 503
    wait_for("the timed-out attempts", lambda: b"no answer within 2.5s"
             in adapter.get("/readyz")[2], 30)
    peer.faults(slow=0)
    adapter.wait_ready(timeout=30)


def test_serves_from_cache_while_upstream_blips_and_says_how_old(
    start_peer: StartPeer, start_adapter: StartAdapter
) -> None:
    peer = start_peer("gcp")
    adapter = start_adapter("--ttl", "0.5", "--timeout", "0.2", "--retries", "0", peer=peer)
    adapter.wait_ready()
    peer.faults(down=True)
    # Stale once a refresh failed and the data is a second old.
    status, headers, body = wait_for("stale data a second old", lambda: (
        a := adapter.get("/v1/instance")) and json.loads(a[2])["age_seconds"] >= 1.0
        and json.loads(a[2])["stale"] and a, 30)
    doc = json.loads(body)
    assert status == 200
    assert doc["instance_id"] == "4567890123456789012"
    assert doc["stale"] is True and doc["last_error"]
    assert doc["age_seconds"] >= 1.0
    assert headers["X-Metadata-Stale"] == "true"
    assert int(headers["Age"]) >= 1
    peer.faults(down=False)
    wait_for("fresh data", lambda: adapter.instance()["stale"] is False, 30)


@pytest.mark.parametrize("cloud", ["aws", "aliyun"])
def test_expired_session_token_is_renewed(
    cloud: str, start_peer: StartPeer, start_adapter: StartAdapter
) -> None:
    peer = start_peer(cloud)
    adapter = start_adapter("--ttl", "0.3", peer=peer)
    adapter.wait_ready()
    peer.faults(expire_tokens=True)  # every token the adapter holds is now refused
    # Refused, then renewed: a second token, and a refresh with it that succeeded.
    wait_for("a renewed token", lambda: len([r for r in peer.requests()
                                             if r["method"] == "PUT"]) >= 2, 30)
    doc = wait_for("a refresh with the new token", lambda: (
        d := adapter.instance())["last_error"] is None and not d["stale"] and d, 30)
    assert doc["stale"] is False and doc["last_error"] is None


def test_short_lived_tokens_are_renewed_before_use(
    start_peer: StartPeer, start_adapter: StartAdapter
) -> None:
    peer = start_peer("aws", "--token-ttl-cap", "6")
    adapter = start_adapter("--ttl", "0.5", peer=peer)
    adapter.wait_ready()
    # A 6 s token with a 5 s safety margin is renewed about every second.
    wait_for("a renewed token", lambda: len([r for r in peer.requests()
                                             if r["method"] == "PUT"]) >= 2, 30)
    # Fresh data with it (a loaded machine may let one 0.5 s refresh fail).
    wait_for("fresh data", lambda: adapter.instance()["stale"] is False, 30)


def test_aws_without_tokens_needs_the_imdsv1_opt_in(
    start_peer: StartPeer, start_adapter: StartAdapter
) -> None:
    peer = start_peer("openstack")  # an EC2-style service that issues no IMDSv2 tokens
    strict = start_adapter("--provider", "aws", "--aws-endpoint", peer.url)
    # Not ready after its first attempt was refused (and says why), not merely not yet.
    refused = wait_for("the strict adapter's refused attempt", lambda: (
        r := strict.get("/readyz"))[2].rstrip() != b"not ready: no metadata fetched yet"
        and r, 30)
    assert refused[0] == 503 and b"/latest/api/token" in refused[2], refused
    lenient = start_adapter("--provider", "aws", "--aws-endpoint", peer.url, "--aws-imdsv1")
    lenient.wait_ready()
    assert lenient.instance()["instance_id"] == "i-00000004"


@pytest.mark.parametrize("path", [
    "/v1/credentials", "/v1/token", "/latest/meta-data/iam/security-credentials/",
    "/computeMetadata/v1/instance/service-accounts/default/token",
    "/metadata/identity/oauth2/token?resource=x", "/v1/user-data",
])
def test_credentials_tokens_and_user_data_are_refused(
    path: str, start_peer: StartPeer, start_adapter: StartAdapter
) -> None:
    peer = start_peer("aws")
    # Tokens optional: the path itself is refused, not the missing token.
    adapter = start_adapter("--ec2-dialect", "--ec2-tokens", "optional", peer=peer)
    adapter.wait_ready()
    status, _, body = adapter.get(path)
    assert status in (403, 404)
    if path == "/v1/user-data":
        assert b"exposeUserData" in body  # the pattern parameter, not only the image flag
    assert b"peer-secret" not in body and b"ASIA" not in body and b"cloud-config" not in body
    credential_paths = [r for r in peer.requests() if "security-credentials" in r["target"]]
    assert credential_paths == []  # never proxied by path


def test_user_data_is_served_only_with_its_opt_in(
    start_peer: StartPeer, start_adapter: StartAdapter
) -> None:
    peer = start_peer("openstack")
    adapter = start_adapter("--expose", "user-data", "--ec2-dialect", "--ec2-tokens", "optional",
                            peer=peer)
    adapter.wait_ready()
    status, _, body = adapter.get("/v1/user-data")
    assert (status, body.startswith(b"#cloud-config")) == (200, True)
    status, _, body = adapter.get("/2009-04-04/user-data")
    assert (status, body.startswith(b"#cloud-config")) == (200, True)
    assert adapter.get("/latest/")[2] == b"dynamic\nmeta-data\nuser-data"
    assert adapter.get("/v1/credentials")[0] == 403  # one opt-in does not open the rest


def raw_request(port: int, request: bytes) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        reply = sock.recv(4096).decode()
    return int(reply.split()[1])


def test_ssrf_looking_requests_are_refused(
    start_peer: StartPeer, start_adapter: StartAdapter
) -> None:
    adapter = start_adapter(peer=start_peer("gcp"))
    adapter.wait_ready()
    absolute = (b"GET http://169.254.169.254/computeMetadata/v1/instance/id HTTP/1.1\r\n"
                b"Host: 169.254.169.254\r\n\r\n")
    assert raw_request(adapter.port, absolute) == 400
    connect = b"CONNECT 169.254.169.254:80 HTTP/1.1\r\nHost: 169.254.169.254:80\r\n\r\n"
    assert raw_request(adapter.port, connect) == 400
    assert adapter.get("/v1/instance", {"Host": "metadata.google.internal"})[0] == 421
    assert adapter.get("/v1/instance", {"Host": "169.254.169.254"})[0] == 421
    assert adapter.get("/v1/instance", {"X-Forwarded-For": "203.0.113.7"})[0] == 403
    assert adapter.get("/v1/instance", method="POST")[0] == 405
    assert adapter.get("/v1/instance", {"Host": f"localhost:{adapter.port}"})[0] == 200


@pytest.mark.parametrize("cloud,region", [("gcp", "europe-west1"), ("azure", "westeurope"),
                                          ("aliyun", "cn-hangzhou")])
def test_botocore_region_provider_reads_the_ec2_dialect_on_other_clouds(
    cloud: str, region: str, start_peer: StartPeer, start_adapter: StartAdapter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import botocore.session  # type: ignore[import-untyped]
    import botocore.utils  # type: ignore[import-untyped]

    adapter = start_adapter("--ec2-dialect", peer=start_peer(cloud))
    adapter.wait_ready()
    monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", adapter.url)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    provided = botocore.utils.IMDSRegionProvider(botocore.session.Session()).provide()
    assert provided == region
    fetcher = botocore.utils.InstanceMetadataFetcher(
        timeout=2, num_attempts=1, config={"ec2_metadata_service_endpoint": adapter.url})
    assert fetcher.retrieve_iam_role_credentials() == {}  # nothing to steal here


def test_ec2_dialect_is_off_by_default_and_checks_tokens(
    start_peer: StartPeer, start_adapter: StartAdapter
) -> None:
    peer = start_peer("azure")
    plain = start_adapter(peer=peer)
    plain.wait_ready()
    assert plain.get("/latest/meta-data/instance-id")[0] == 404
    dialect = start_adapter("--ec2-dialect", peer=peer)
    dialect.wait_ready()
    header = {"X-aws-ec2-metadata-token-ttl-seconds": "60"}
    status, _, token = dialect.get("/latest/api/token", header, method="PUT")
    assert status == 200
    good = {"X-aws-ec2-metadata-token": token.decode()}
    assert dialect.get("/latest/meta-data/instance-type", good)[::2] == (200, b"Standard_D2s_v3")
    forged = {"X-aws-ec2-metadata-token": "forged"}
    assert dialect.get("/latest/meta-data/instance-type", forged)[0] == 401
    status, _, body = dialect.get("/2009-04-04/meta-data/instance-type")
    assert (status, b"ec2Tokens: optional" in body) == (401, True)  # required by default
    # The real service's listings, under every version.
    assert dialect.get("/", good)[2].split(b"\n")[-3:] == [b"2022-09-24", b"2024-04-11",
                                                          b"latest"]
    assert dialect.get("/2016-09-02/", good)[::2] == (200, b"dynamic\nmeta-data")
    assert dialect.get("/latest/dynamic/", good)[::2] == (200, b"instance-identity/")
    assert dialect.get("/latest/dynamic/instance-identity/", good)[::2] == (200, b"document")
    assert dialect.get("/2009-04-04/user-data", good)[0] == 404
    lenient = start_adapter("--ec2-dialect", "--ec2-tokens", "optional", peer=peer)
    lenient.wait_ready()
    assert lenient.get("/2009-04-04/meta-data/instance-type")[::2] == (200, b"Standard_D2s_v3")
    assert lenient.get("/latest/meta-data/instance-type", forged)[0] == 401


def test_sigterm_stops_the_adapter_promptly_with_exit_0(
    start_peer: StartPeer, start_adapter: StartAdapter
) -> None:
    adapter = start_adapter(peer=start_peer("aws"))
    adapter.wait_ready()
    conn = http.client.HTTPConnection("127.0.0.1", adapter.port, timeout=5)
    conn.request("GET", "/healthz")
    assert conn.getresponse().status == 200
    started = time.monotonic()
    adapter.proc.send_signal(signal.SIGTERM)
    assert adapter.proc.wait(5) == 0
    assert time.monotonic() - started < 2


def test_once_waits_for_the_first_answer_prints_it_and_exits_0(
    start_peer: StartPeer, start_adapter: StartAdapter
) -> None:
    """What the classic-mode init container runs: hold the app until metadata answered."""
    port = harness.free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "iaas_metadata", "--once", "--provider", "aliyun",
         "--aliyun-endpoint", f"http://127.0.0.1:{port}", "--timeout", "200ms"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": harness.ADAPTER_PATH})
    try:
        time.sleep(1.0)
        assert proc.poll() is None  # still waiting: nothing answers yet
        start_peer("aliyun", port=port)
        out, _ = proc.communicate(timeout=30)
    finally:
        harness.stop(proc)
    assert proc.returncode == 0
    doc = json.loads(out)
    assert (doc["provider"], doc["region"]) == ("aliyun", "cn-hangzhou")
