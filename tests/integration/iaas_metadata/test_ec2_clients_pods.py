"""The EC2 dialect read by the clients people run, from Debian, in the app container of a pod
generated from the catalogue: cloud-init's DataSourceEc2, cloud-utils' ec2metadata, AWS CLI v2
and boto3. The sidecar reads the GCP peer; nothing EC2-shaped reaches it."""

from __future__ import annotations

import json
from typing import Any

import pytest
from imds_pod import Peers
from pods import RunningPod, running, stack_documents
from support import CATALOGUE, unique_name

pytestmark = pytest.mark.integration

CLIENTS = CATALOGUE.parent / "tests" / "peers" / "imds" / "clients"
URL = "http://127.0.0.1:8733"
GCP_EC2 = {"instance-id": "4567890123456789012", "instance-type": "e2-medium",
           "ami-id": "projects/debian-cloud/global/images/debian-12-bookworm-v20240110",
           "local-hostname": "vm-1.europe-west1-b.c.test-project.internal",
           "local-ipv4": "10.132.0.5", "public-ipv4": "34.76.0.5",
           "availability-zone": "europe-west1b", "region": "europe-west1"}
NO_AWS_FILES = [{"name": "AWS_CONFIG_FILE", "value": "/nonexistent"},
                {"name": "AWS_SHARED_CREDENTIALS_FILE", "value": "/nonexistent"}]


def clients_stack(pod: str, image: str, values: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "sidecar-patterns.io/v1alpha1", "kind": "Stack",
            "metadata": {"name": pod},
            "spec": {"app": {"image": image, "command": ["sleep", "infinity"],
                             "env": NO_AWS_FILES,
                             "volumeMounts": [{"name": "clients", "mountPath": "/clients",
                                               "readOnly": True}]},
                     "volumes": [{"name": "clients",
                                  "hostPath": {"path": str(CLIENTS), "type": "Directory"}}],
                     "sidecars": [{"pattern": "iaas-metadata", "values": values}]}}


def run_json(pod: RunningPod, *command: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(pod.exec(pod.name, *command).stdout.splitlines()[-1])
    return result


def cloud_init(pod: RunningPod, platform: str) -> dict[str, Any]:
    return run_json(pod, "python3", "/clients/cloud_init_ec2.py", URL, platform)


def aws_cli(pod: RunningPod, endpoint: str, *args: str) -> str:
    proc = pod.exec(pod.name, "env", f"AWS_EC2_METADATA_SERVICE_ENDPOINT={endpoint}", "aws",
                    *args, check=False)
    return proc.stdout + proc.stderr


def test_real_ec2_clients_read_the_dialect(calm: Peers, ec2_clients_image: str) -> None:
    gcp = {"provider": "gcp", "gcpEndpoint": calm.url("gcp"), "ec2Dialect": True}
    required = stack_documents(clients_stack(unique_name("imds-ec2-required"), ec2_clients_image,
                                             gcp), CATALOGUE)
    optional = stack_documents(clients_stack(unique_name("imds-ec2-optional"), ec2_clients_image,
                                             {**gcp, "ec2Tokens": "optional"}), CATALOGUE)
    with running(required + optional) as (strict, lenient):
        # cloud-init on EC2 hardware asks for a token, then the newest version it knows.
        seen = cloud_init(strict, "aws")
        assert (seen["ok"], seen["version"], seen["instance_id"]) == (
            True, "2021-03-23", GCP_EC2["instance-id"])
        assert (seen["region"], seen["zone"]) == ("europe-west1", "europe-west1b")
        assert seen["identity"]["accountId"] == "test-project"
        for key in ("instance-type", "ami-id", "local-hostname", "local-ipv4", "public-ipv4"):
            assert seen["meta-data"][key] == GCP_EC2[key], key
        # Elsewhere cloud-init reads without a token: refused by default, read when optional.
        assert cloud_init(strict, "unknown")["ok"] is False
        tokenless = cloud_init(lenient, "unknown")
        assert (tokenless["ok"], tokenless["version"], tokenless["instance_id"]) == (
            True, "2021-03-23", GCP_EC2["instance-id"])

        # ec2metadata (version 2009-04-04, with a token): each field it prints.
        for option, value in GCP_EC2.items():
            printed = strict.exec(strict.name, "python3", "/clients/ec2metadata_at.py", URL,
                                  f"--{option}").stdout
            assert printed == value + "\n", option
        lacking = strict.exec(strict.name, "python3", "/clients/ec2metadata_at.py", URL,
                              "--ami-launch-index").stdout
        assert lacking == "unavailable\n"

        # AWS CLI v2 takes the region from IMDS, and needs the endpoint's trailing slash.
        listed = aws_cli(strict, URL + "/", "configure", "list")
        assert any(line.split()[:3] == ["region", "europe-west1", "imds"]
                   for line in listed.splitlines()), listed
        assert "Invalid endpoint" in aws_cli(strict, URL, "configure", "list")
        assert "Unable to locate credentials" in aws_cli(strict, URL + "/", "sts",
                                                          "get-caller-identity")

        # boto3 does not take the region from IMDS; botocore's IMDSRegionProvider does.
        for endpoint in (URL, URL + "/"):
            boto = run_json(strict, "env", f"AWS_EC2_METADATA_SERVICE_ENDPOINT={endpoint}",
                            "python3", "/clients/boto3_region.py")
            assert boto == {"boto3_region": None, "boto3_credentials": False,
                            "imds_region_provider": "europe-west1"}, endpoint
    assert not [r for r in calm.requests("gcp") if "meta-data" in r["target"]]
