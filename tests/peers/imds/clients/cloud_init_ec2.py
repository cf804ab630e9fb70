"""cloud-init's own EC2 datasource (Debian's cloud-init 22.4) against a metadata URL: prints
what DataSourceEc2.get_data() returned and what it read, as JSON.

Usage: cloud_init_ec2.py URL aws|unknown

cloud-init decides from the machine's DMI data whether it runs on EC2 (`identify_platform`); a
container sees the host's DMI, so `aws` stands in for EC2 hardware by setting the platform
cloud-init would have found there. On EC2 it asks for an IMDSv2 token first; elsewhere
(`unknown`) it reads without one.
"""

from __future__ import annotations

import json
import sys

from cloudinit import distros, helpers
from cloudinit.sources import DataSourceEc2 as ec2

url, platform = sys.argv[1], sys.argv[2]
paths = helpers.Paths({"cloud_dir": "/tmp/cloud", "run_dir": "/tmp/cloud-run"})
distro = distros.fetch("debian")("debian", {}, paths)
config = {"datasource": {"Ec2": {"metadata_urls": [url], "max_wait": 4, "timeout": 2}}}
source = ec2.DataSourceEc2(config, distro, paths)
if platform == "aws":
    source._cloud_name = ec2.CloudNames.AWS
ok = source.get_data()
crawled = getattr(source, "_crawled_metadata", None) or {}
print(json.dumps({
    "ok": ok, "cloud": source.cloud_name, "version": crawled.get("_metadata_api_version"),
    "meta-data": source.metadata, "identity": source.identity if ok else None,
    "region": source.region if ok else None, "zone": source.availability_zone if ok else None,
    "instance_id": source.get_instance_id() if ok else None,
}))
