"""The iaas-metadata pattern in pods generated from the catalogue and run by the harness: an
agent beside the adapter reads one schema on every cloud, AWS SDKs read the EC2 dialect, and
the faults the issue lists (service down at start, slow, tokens expiring, credentials asked
for) behave as documented. The six cloud peers run as a pod of their own."""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from imds_pod import PYTHON_IMAGE, Peers
from pods import RunningPod, cli, ensure_images, running, stack_documents
from support import CATALOGUE, unique_name, wait_for

from generator.runner.runtime import Runtime

pytestmark = pytest.mark.integration

EXAMPLES = CATALOGUE / "iaas-metadata" / "examples"
ENDPOINT_PARAMETER = {c: f"{c}Endpoint" for c in
                      ("aws", "aliyun", "gcp", "azure", "openstack", "qingcloud")}
SCHEMA = {"provider", "instance_id", "hostname", "instance_type", "image_id", "region", "zone",
          "private_ipv4", "public_ipv4", "account_id", "tags", "missing", "age_seconds",
          "stale", "last_error"}
# Each peer's values (tests/peers/imds/imds_peer.py), as the agent must see them.
EXPECTED: dict[str, dict[str, Any]] = {
    "aws": {"instance_id": "i-0abc123def4567890", "region": "eu-west-1", "zone": "eu-west-1b",
            "instance_type": "m5.large", "account_id": "123456789012",
            "public_ipv4": "203.0.113.10", "tags": {"Name": "web-1", "team": "infra"}},
    "aliyun": {"instance_id": "i-bp1abcdefghij0123456", "region": "cn-hangzhou",
               "zone": "cn-hangzhou-h", "instance_type": "ecs.g6.large",
               "account_id": "1234567890123456", "public_ipv4": "47.96.0.10"},
    "gcp": {"instance_id": "4567890123456789012", "region": "europe-west1",
            "zone": "europe-west1-b", "instance_type": "e2-medium", "account_id": "test-project",
            "private_ipv4": "10.132.0.5", "tags": None},
    "azure": {"instance_id": "02aab8a4-74ef-476e-8182-f6d2ba4166a6", "region": "westeurope",
              "zone": "2", "instance_type": "Standard_D2s_v3",
              "account_id": "8d10da13-8125-4ba9-a717-bf7490507b3d",
              "tags": {"env": "prod", "team": "infra"}},
    "openstack": {"instance_id": "d8e02d56-2648-49a3-bf97-6be8f1204f38", "region": None,
                  "zone": "nova", "instance_type": "m1.small", "hostname": "os-vm-1.novalocal",
                  "tags": {"role": "db"}},
    # QingCloud has no region or zone in its metadata: the pod supplies both (documented).
    "qingcloud": {"instance_id": "i-abcd1234", "instance_type": "s1.small.r1",
                  "region": "pek3", "zone": "pek3a", "private_ipv4": None, "hostname": None},
}

# What an agent in the pod runs to ask the adapter something: status, headers, body, time.
ASK = """
import json, sys, time, urllib.error, urllib.request
request = urllib.request.Request('http://127.0.0.1:8733' + sys.argv[1])
started = time.perf_counter()
try:
    response = urllib.request.urlopen(request, timeout=10)
except urllib.error.HTTPError as error:
    response = error
body = response.read().decode()
print(json.dumps({'status': response.getcode(), 'headers': dict(response.headers.items()),
                  'body': body, 'seconds': time.perf_counter() - started}))
"""
# A relay-style request (absolute-form target), which urllib cannot send.
ASK_RAW = """import socket, sys
with socket.create_connection(('127.0.0.1', 8733), timeout=5) as sock:
    sock.sendall(sys.argv[1].encode())
    print(sock.recv(4096).decode().split()[1])
"""
BOTOCORE_AGENT = """import json, os, botocore.session, botocore.utils
session = botocore.session.Session()
fetcher = botocore.utils.InstanceMetadataFetcher(timeout=2, num_attempts=1, config={
    'ec2_metadata_service_endpoint': os.environ['AWS_EC2_METADATA_SERVICE_ENDPOINT']})
print(json.dumps({'region': botocore.utils.IMDSRegionProvider(session).provide(),
                  'credentials': fetcher.retrieve_iam_role_credentials()}))
"""


def example(name: str, pod: str) -> dict[str, Any]:
    stack: dict[str, Any] = yaml.safe_load((EXAMPLES / f"{name}.stack.yaml").read_text())
    stack["metadata"]["name"] = pod
    return stack


def python_agent_stack(pod: str, values: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "sidecar-patterns.io/v1alpha1", "kind": "Stack",
            "metadata": {"name": pod},
            "spec": {"app": {"image": PYTHON_IMAGE, "command": ["sleep", "infinity"]},
                     "sidecars": [{"pattern": "iaas-metadata", "values": values}]}}


def pointing_at(peers: Peers, cloud: str) -> dict[str, Any]:
    values: dict[str, Any] = {"provider": cloud, ENDPOINT_PARAMETER[cloud]: peers.url(cloud)}
    if cloud == "qingcloud":
        values |= {"qingcloudInstanceId": "i-abcd1234", "region": "pek3", "zone": "pek3a"}
    return values


def sets(values: dict[str, Any]) -> tuple[str, ...]:
    return tuple(f"iaas-metadata.{key}={value}" for key, value in values.items())


def ask(pod: RunningPod, path: str) -> dict[str, Any]:
    answer: dict[str, Any] = json.loads(pod.exec(pod.name, "python3", "-c", ASK, path).stdout)
    if answer["headers"].get("Content-Type") == "application/json":
        answer["json"] = json.loads(answer["body"])
    return answer


def agent_stdout(pod: RunningPod) -> list[str]:
    return pod.logs(pod.name).splitlines()


def agent_document(pod: RunningPod) -> dict[str, Any] | None:
    """The JSON the example's busybox agent printed after its first 'running in' line."""
    lines = agent_stdout(pod)
    try:
        start = next(i for i, line in enumerate(lines) if line.startswith("running in"))
        end = lines.index("}", start) + 1
        document: dict[str, Any] = json.loads("\n".join(lines[start + 1:end]))
    except (StopIteration, ValueError):
        return None
    return document


def container_state(pod: str, container: str) -> str:
    return cli("inspect", f"{pod}-{container}", "--format", "{{.State.Status}}").stdout.strip()


def test_the_node_agent_reads_one_schema_on_every_cloud(calm: Peers) -> None:
    documents: list[dict[str, Any]] = []
    names = {cloud: unique_name(f"imds-agent-{cloud}") for cloud in EXPECTED}
    for cloud in EXPECTED:
        stack = example("node-agent", names[cloud])
        if cloud == "openstack":  # a cluster without native sidecars: an init container waits
            stack["spec"]["k8sVersion"] = "1.27"
        documents += stack_documents(stack, CATALOGUE, sets(pointing_at(calm, cloud)))
    # Detection: every endpoint points at the AWS peer; only the AWS probe may match.
    detect = example("node-agent", unique_name("imds-agent-auto"))
    documents += stack_documents(detect, CATALOGUE, sets(
        {ENDPOINT_PARAMETER[c]: calm.url("aws") for c in EXPECTED}))
    with running(documents) as pods:
        by_cloud = dict(zip([*EXPECTED, "auto"], pods, strict=True))
        assert any(line == f"{names['openstack']}/iaas-metadata-init: completed"
                   for line in pods[0].log)
        for cloud, pod in by_cloud.items():
            doc = wait_for(f"{cloud} agent output", lambda pod=pod: agent_document(pod), 60)
            assert set(doc) == SCHEMA, cloud
            assert doc["provider"] == ("aws" if cloud == "auto" else cloud)
            for name, value in EXPECTED["aws" if cloud == "auto" else cloud].items():
                assert doc[name] == value, (cloud, name)
            for name in SCHEMA - {"missing", "age_seconds", "stale", "last_error"}:
                assert (doc[name] is None) == (name in doc["missing"]), (cloud, name)
            assert doc["stale"] is False
            # The shell agent's first line: one field as plain text.
            assert agent_stdout(pod)[0] == f"running in {doc['region'] or ''}"
        openstack = agent_document(by_cloud["openstack"])
        assert openstack is not None and "no region" in openstack["missing"]["region"]
        detection = json.loads(by_cloud["auto"].exec(
            by_cloud["auto"].name, "wget", "-qO-", "http://127.0.0.1:8733/v1/provider").stdout)
        assert detection["provider"] == "aws"
        tried = [(p["provider"], p["matched"]) for p in detection["probes"]]
        assert tried == [("gcp", False), ("azure", False), ("openstack", False), ("aws", True)]


def test_ec2_dialect_lets_aws_agents_read_gcp(calm: Peers) -> None:
    gcp = sets(pointing_at(calm, "gcp"))
    shell = stack_documents(example("ec2-dialect", unique_name("imds-ec2-shell")), CATALOGUE,
                            gcp)
    # botocore is pure Python: the venv's copy runs on the image's Debian python3 as well.
    site_packages = Path(str(importlib.util.find_spec("botocore").origin)).parents[1]  # type: ignore[union-attr]
    sdk = example("ec2-dialect", unique_name("imds-ec2-botocore"))
    sdk["spec"]["app"] = {
        "image": PYTHON_IMAGE, "command": ["sleep", "infinity"],
        "env": [*sdk["spec"]["app"]["env"],
                {"name": "PYTHONPATH", "value": "/botocore"},
                {"name": "AWS_CONFIG_FILE", "value": "/nonexistent"},
                {"name": "AWS_SHARED_CREDENTIALS_FILE", "value": "/nonexistent"}],
        "volumeMounts": [{"name": "botocore", "mountPath": "/botocore", "readOnly": True}]}
    sdk["spec"]["volumes"] = [{"name": "botocore", "hostPath": {"path": str(site_packages),
                                                                "type": "Directory"}}]
    with running(shell + stack_documents(sdk, CATALOGUE, gcp)) as (shell_pod, sdk_pod):
        wait_for("the example agent's line", lambda: "instance 4567890123456789012 in europe-west1"
                 in shell_pod.logs(shell_pod.name), 60)
        seen = json.loads(sdk_pod.exec(sdk_pod.name, "python3", "-c", BOTOCORE_AGENT).stdout)
        assert seen == {"region": "europe-west1", "credentials": {}}
    # The dialect answered from the cache: nothing EC2-shaped ever reached the GCP peer.
    assert not [r for r in calm.requests("gcp") if "/latest/" in r["target"]]


def test_not_ready_while_the_metadata_service_is_down_then_ready(calm: Peers) -> None:
    calm.faults("azure", down=True)
    name = unique_name("imds-down")
    documents = stack_documents(
        python_agent_stack(name, {**pointing_at(calm, "azure"), "ttl": "4s"}), CATALOGUE)
    seen: list[tuple[int, str, str]] = []

    def watch_then_restore() -> None:
        # The outage lasts until the sidecar has said "not ready" a few times (a loaded
        # machine may take long to start the pod), or a minute and a half at most.
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and len(
                [s for s in seen if s[0] == 1 and s[1].startswith("not ready:")]) < 4:
            probe = cli("exec", f"{name}-iaas-metadata", "python3", "-m",
                        "iaas_metadata.probe", "/readyz")
            seen.append((probe.returncode, probe.stdout.strip(),
                         container_state(name, name)))
            time.sleep(0.5)
        calm.faults("azure", down=False)

    watcher = threading.Thread(target=watch_then_restore)
    watcher.start()
    try:
        with running(documents, timeout=240) as (pod,):
            after = ask(pod, "/v1/instance")
    finally:
        watcher.join()
        calm.faults("azure", down=False)
    down = [s for s in seen if s[0] == 1 and s[1].startswith("not ready:")]
    assert down, seen  # a clear not-ready state while the service was down...
    assert all(state != "running" for _, _, state in down)  # ...and the agent held back
    assert (after["status"], after["json"]["region"], after["json"]["stale"]) == (
        200, "westeurope", False)


def test_slow_metadata_service_is_bounded_and_served_from_cache(calm: Peers,
                                                               runtime: Runtime) -> None:
    """On each engine (the peers stay on podman; the pod reaches them by IP)."""
    ensure_images(["iaas-metadata"], runtime)
    # An agent that waited on the slow service would take 2.5 s at least: far from the bound
    # below, so a loaded machine's slow answer is not mistaken for waiting.
    values = {**pointing_at(calm, "gcp"), "ttl": "2s", "timeout": "2500ms", "retries": 1}
    with running(stack_documents(python_agent_stack(unique_name("imds-slow"), values),
                                 CATALOGUE), runtime=runtime) as (pod,):
        calm.faults("gcp", slow=5)
        # Stale (older than the ttl) as soon as a refresh is late; the error once it timed out.
        stale = wait_for("a failed refresh",
                         lambda: (a := ask(pod, "/v1/instance"))["json"]["last_error"] and a, 60)
        assert stale["json"]["stale"] is True
        assert stale["seconds"] < 1.5  # the agent never waits on the slow service
        assert stale["json"]["instance_id"] == EXPECTED["gcp"]["instance_id"]
        assert "no answer within 2.5s" in stale["json"]["last_error"]
        assert stale["headers"]["X-Metadata-Stale"] == "true"
        assert int(stale["headers"]["Age"]) >= 2
        ready = pod.exec("iaas-metadata", "python3", "-m", "iaas_metadata.probe", "/readyz")
        assert ready.stdout.strip() == "ready"  # cached data keeps the pod ready
        calm.faults("gcp", slow=0)
        wait_for("fresh data", lambda: not ask(pod, "/v1/instance")["json"]["stale"], 60)


def test_expired_tokens_are_renewed_and_credentials_never_leave(calm: Peers) -> None:
    # Tokens optional: the credential paths themselves are refused, not a missing token.
    values = {**pointing_at(calm, "aws"), "ttl": "1s", "ec2Dialect": True,
              "ec2Tokens": "optional", "exposeUserData": True}
    documents = stack_documents(python_agent_stack(unique_name("imds-aws"), values), CATALOGUE)
    with running(documents) as (pod,):
        calm.faults("aws", expire_tokens=True, token_ttl_cap=3)
        # Several refreshes: a 401 on the old token, then 3 s tokens expiring and renewed.
        wait_for("a second token",
                 lambda: len([r for r in calm.requests("aws") if r["method"] == "PUT"]) >= 2, 60)
        doc = wait_for("a refresh with the renewed token",
                       lambda: (d := ask(pod, "/v1/instance")["json"])["last_error"] is None
                         and d, 60)
        assert (doc["stale"], doc["last_error"]) == (False, None)
        for path in ("/v1/credentials", "/v1/token",
                     "/latest/meta-data/iam/security-credentials/",
                     "/latest/meta-data/iam/security-credentials/peer-role"):
            refused = ask(pod, path)
            assert refused["status"] in (403, 404), (path, refused)
            assert "ASIA" not in refused["body"] and "peer-role" not in refused["body"]
        relay = ("GET http://169.254.169.254/latest/meta-data/iam/security-credentials/ "
                 "HTTP/1.1\r\nHost: 169.254.169.254\r\n\r\n")
        assert pod.exec(pod.name, "python3", "-c", ASK_RAW, relay).stdout.strip() == "400"
        user_data = ask(pod, "/v1/user-data")  # the one item this pod opted into
        assert (user_data["status"], user_data["body"].startswith("#cloud-config")) == (200, True)
    assert not [r for r in calm.requests("aws") if "/iam/" in r["target"]]
