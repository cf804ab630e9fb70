"""Values the iaas-metadata pattern refuses at `pattern generate` time, in one line."""

from __future__ import annotations

import pytest
import yaml
from support import CATALOGUE, run_pattern

APP = ("--name", "agent", "--app-image", "docker.io/library/debian:bookworm-slim",
       "--with", "iaas-metadata", "--set", "iaas-metadata.provider=qingcloud",
       "--set", "iaas-metadata.qingcloudInstanceId=i-abcd1234")


@pytest.mark.parametrize("half", ["region=pek3", "zone=pek3a"])
def test_qingcloud_region_without_zone_is_refused(half: str) -> None:
    # Without a zone the EC2 dialect's placement/availability-zone is 404, so SDKs that derive
    # the region from it (botocore's IMDSRegionProvider) would get none.
    result = run_pattern("generate", *APP, "--set", f"iaas-metadata.{half}",
                         catalogue=CATALOGUE)
    assert (result.code, result.stdout) == (1, "")
    assert result.stderr.count("\n") == 1 and "set both region and zone" in result.stderr


def test_qingcloud_with_region_and_zone_renders_both() -> None:
    result = run_pattern("generate", *APP, "--set", "iaas-metadata.region=pek3",
                         "--set", "iaas-metadata.zone=pek3a", catalogue=CATALOGUE)
    assert result.code == 0, result.stderr
    pod = list(yaml.safe_load_all(result.stdout))[-1]["spec"]
    sidecar = next(c for c in pod.get("initContainers", []) + pod["containers"]
                   if c["name"] == "iaas-metadata")
    env = {e["name"]: e["value"] for e in sidecar["env"]}
    assert (env["IAAS_METADATA_REGION"], env["IAAS_METADATA_ZONE"]) == ("pek3", "pek3a")
    assert env["IAAS_METADATA_EC2_TOKENS"] == "required"
