"""What Debian's boto3 1.26 / botocore 1.29 take from the instance metadata service that
AWS_EC2_METADATA_SERVICE_ENDPOINT names: boto3's region, its credentials, and botocore's
IMDSRegionProvider region, as JSON."""

from __future__ import annotations

import json

import boto3
import botocore.session
import botocore.utils

session = boto3.Session()
print(json.dumps({
    "boto3_region": session.region_name,
    "boto3_credentials": session.get_credentials() is not None,
    "imds_region_provider": botocore.utils.IMDSRegionProvider(botocore.session.Session()).provide(),
}))
