"""The optional EC2 dialect: /latest/meta-data/... for the normalized fields, on any cloud."""

from __future__ import annotations

import json
import secrets
import threading
import time
from typing import Any

MAX_TOKEN_TTL = 21600
# The API versions the EC2 instance metadata service lists at GET /. Clients pin one: cloud-init
# tries 2021-03-23, 2018-09-24 and 2016-09-02, then falls back to 2009-04-04; cloud-utils'
# ec2metadata always asks 2009-04-04. Every version serves the same tree here (the fields the
# normalized document has), which is what those clients read.
VERSIONS: tuple[str, ...] = (
    "1.0", "2007-01-19", "2007-03-01", "2007-08-29", "2007-10-10", "2007-12-15", "2008-02-01",
    "2008-09-01", "2009-04-04", "2011-01-01", "2011-05-01", "2012-01-12", "2014-02-25",
    "2014-11-05", "2015-10-20", "2016-04-19", "2016-06-30", "2016-09-02", "2018-03-28",
    "2018-08-17", "2018-09-24", "2019-10-01", "2020-10-27", "2021-01-03", "2021-03-23",
    "2021-07-15", "2022-09-24", "2024-04-11", "latest",
)
TOKEN_MODES = ("required", "optional")


def split_version(path: str) -> tuple[str, str] | None:
    """('2009-04-04', 'meta-data/instance-id') for '/2009-04-04/meta-data/instance-id';
    ('', '') for '/'; None when the path is not an EC2 one."""
    if path == "/":
        return "", ""
    version, _, rest = path[1:].partition("/")
    if version not in VERSIONS:
        return None
    return version, rest


def ec2_availability_zone(region: str | None, zone: str | None) -> str | None:
    """An EC2-shaped zone, <region><letter>, because EC2 clients derive the region by
    dropping the last character (botocore's IMDSRegionProvider does exactly that).

    The letter is the cloud zone's trailing letter (GCP europe-west1-b -> b, Aliyun
    cn-hangzhou-h -> h), or for numbered zones (Azure "2") the matching letter (b).
    Without a zone nothing is invented: the path answers 404.
    """
    if not region or not zone:
        return None
    if zone.startswith(region) and len(zone) == len(region) + 1 and zone[-1].isalpha():
        return zone
    last = zone[-1].lower()
    if last.isdigit() and last != "0":
        last = chr(ord("a") + int(last) - 1)
    elif not last.isalpha():
        last = "a"
    return region + last


def ec2_tree(doc: dict[str, Any]) -> dict[str, Any]:
    """The EC2 meta-data tree built from a normalized document; absent fields are left out."""
    leaves = {
        "instance-id": doc.get("instance_id"),
        "instance-type": doc.get("instance_type"),
        "ami-id": doc.get("image_id"),
        "hostname": doc.get("hostname"),
        "local-hostname": doc.get("hostname"),
        "local-ipv4": doc.get("private_ipv4"),
        "public-ipv4": doc.get("public_ipv4"),
    }
    tree: dict[str, Any] = {k: v for k, v in leaves.items() if v}
    placement = {
        "availability-zone": ec2_availability_zone(doc.get("region"), doc.get("zone")),
        "region": doc.get("region"),
    }
    placement = {k: v for k, v in placement.items() if v}
    if placement:
        tree["placement"] = placement
    if doc.get("tags"):
        tree["tags"] = {"instance": dict(doc["tags"])}
    return tree


def identity_document(doc: dict[str, Any]) -> str:
    fields = {
        "accountId": doc.get("account_id"),
        "availabilityZone": ec2_availability_zone(doc.get("region"), doc.get("zone")),
        "imageId": doc.get("image_id"),
        "instanceId": doc.get("instance_id"),
        "instanceType": doc.get("instance_type"),
        "privateIp": doc.get("private_ipv4"),
        "region": doc.get("region"),
    }
    return json.dumps({k: v for k, v in fields.items() if v}, indent=2)


def version_tree(doc: dict[str, Any], user_data: bool) -> dict[str, Any]:
    """One version's root: GET /<version>/ lists it, as the real service does."""
    tree: dict[str, Any] = {"dynamic": {"instance-identity": {"document": identity_document(doc)}},
                            "meta-data": ec2_tree(doc)}
    if user_data:
        tree["user-data"] = ""  # a leaf; its body is fetched from the provider when asked
    return tree


def lookup(tree: dict[str, Any], path: str) -> str | None:
    """A leaf's text or a directory listing; None for 404. Trailing slashes are tolerated."""
    node: Any = tree
    for part in [p for p in path.split("/") if p]:
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, dict):
        return "\n".join(f"{k}/" if isinstance(v, dict) else k for k, v in node.items())
    return str(node)


class TokenStore:
    """Session tokens for the dialect's PUT /latest/api/token, so IMDSv2 clients work."""

    def __init__(self, limit: int = 1024) -> None:
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()
        self._limit = limit

    def issue(self, ttl: int) -> str:
        token = secrets.token_urlsafe(32)
        now = time.monotonic()
        with self._lock:
            self._tokens = {t: exp for t, exp in self._tokens.items() if exp > now}
            if len(self._tokens) >= self._limit:
                self._tokens.pop(min(self._tokens, key=self._tokens.__getitem__))
            self._tokens[token] = now + ttl
        return token

    def valid(self, token: str) -> bool:
        with self._lock:
            expiry = self._tokens.get(token)
        return expiry is not None and expiry > time.monotonic()
