"""One reader per cloud: how to recognize it, and how to map its metadata to the schema."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from iaas_metadata.fields import Snapshot
from iaas_metadata.upstream import Response, Upstream, UpstreamError


class ProviderError(Exception):
    """The metadata service answered, but not in the way this cloud documents."""


class Provider(Protocol):
    name: str

    def probe(self) -> str:
        """Return why this is the cloud, or raise ProviderError/UpstreamError."""
        ...

    def fetch(self) -> Snapshot: ...

    def user_data(self) -> bytes | None: ...


def expect_ok(response: Response, what: str) -> str:
    if response.status != 200:
        raise ProviderError(f"{what}: HTTP {response.status}")
    return response.text


# ---------------------------------------------------------------- EC2-shaped clouds


@dataclass
class TokenSession:
    """IMDSv2-style session token (AWS, Aliyun hardened mode), renewed before it expires
    and again whenever the service says 401."""

    upstream: Upstream
    ttl_header: str
    token_header: str
    ttl_seconds: int
    allow_tokenless: bool
    _token: str | None = None
    _expires: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def headers(self) -> dict[str, str]:
        with self._lock:
            # Renew with a margin so a token never expires between check and use.
            if self._token is None or time.monotonic() > self._expires - 5:
                self._token = self._new_token()
            return {self.token_header: self._token} if self._token else {}

    def forget(self) -> None:
        with self._lock:
            self._token = None

    def _new_token(self) -> str | None:
        response = self.upstream.request("PUT", "/latest/api/token",
                                         {self.ttl_header: str(self.ttl_seconds)})
        if response.status == 200 and response.text:
            granted = response.header(self.ttl_header)
            ttl = int(granted) if granted.isdigit() else self.ttl_seconds
            self._expires = time.monotonic() + ttl
            return response.text
        if self.allow_tokenless and response.status in (403, 404, 405):
            return None
        raise ProviderError(f"token PUT /latest/api/token: HTTP {response.status}")

    def get(self, path: str) -> Response:
        response = self.upstream.request("GET", path, self.headers())
        if response.status == 401:
            self.forget()
            response = self.upstream.request("GET", path, self.headers())
        return response


@dataclass
class Ec2Reader:
    """Read /latest/meta-data/<path> through a token session; 404 means absent."""

    session: TokenSession

    def value(self, path: str) -> str | None:
        response = self.session.get(f"/latest/meta-data/{path}")
        if response.status == 404:
            return None
        return expect_ok(response, path)

    def listing(self, path: str) -> list[str] | None:
        text = self.value(path)
        return None if text is None else [line for line in text.splitlines() if line]

    def tags(self) -> dict[str, str] | None:
        names = self.listing("tags/instance/")
        if names is None:
            return None
        return {name: self.value(f"tags/instance/{name}") or "" for name in names}


@dataclass
class Aws:
    upstream: Upstream
    imdsv1: bool = False
    token_ttl: int = 21600
    name: str = "aws"

    def __post_init__(self) -> None:
        self.session = TokenSession(self.upstream, "X-aws-ec2-metadata-token-ttl-seconds",
                                    "X-aws-ec2-metadata-token", self.token_ttl, self.imdsv1)
        self.reader = Ec2Reader(self.session)

    def probe(self) -> str:
        self.session.forget()
        self.session.headers()
        return "PUT /latest/api/token issued an IMDSv2 token"

    def fetch(self) -> Snapshot:
        r, snap = self.reader, Snapshot(values={"provider": "aws"})
        snap.put("instance_id", r.value("instance-id"), "instance-id not served")
        snap.put("hostname", r.value("local-hostname"), "local-hostname not served")
        snap.put("instance_type", r.value("instance-type"), "instance-type not served")
        snap.put("image_id", r.value("ami-id"), "ami-id not served")
        snap.put("zone", r.value("placement/availability-zone"), "availability-zone not served")
        snap.put("private_ipv4", r.value("local-ipv4"), "no private IPv4 (IPv6-only instance)")
        snap.put("public_ipv4", r.value("public-ipv4"),
                 "no public IPv4 address is associated with the instance")
        doc = self._identity_document()
        region = r.value("placement/region") or doc.get("region")
        snap.put("region", region, "placement/region and identity document lack a region")
        snap.put("account_id", doc.get("accountId"), "identity document lacks accountId")
        snap.put("tags", r.tags(),
                 "instance tags are not exposed (enable InstanceMetadataTags on the instance)")
        return snap

    def _identity_document(self) -> dict[str, Any]:
        response = self.session.get("/latest/dynamic/instance-identity/document")
        if response.status != 200:
            return {}
        doc: dict[str, Any] = json.loads(response.body)
        return doc

    def user_data(self) -> bytes | None:
        response = self.session.get("/latest/user-data")
        return response.body if response.status == 200 else None


@dataclass
class Aliyun:
    upstream: Upstream
    token_ttl: int = 21600
    name: str = "aliyun"

    def __post_init__(self) -> None:
        # Hardened (token) mode only: the adapter never reads Aliyun metadata tokenless.
        self.session = TokenSession(self.upstream, "X-aliyun-ecs-metadata-token-ttl-seconds",
                                    "X-aliyun-ecs-metadata-token", self.token_ttl, False)
        self.reader = Ec2Reader(self.session)

    def probe(self) -> str:
        self.session.forget()
        self.session.headers()
        expect_ok(self.session.get("/latest/meta-data/region-id"), "region-id")
        return "PUT /latest/api/token issued a hardened-mode token and region-id answered"

    def fetch(self) -> Snapshot:
        r, snap = self.reader, Snapshot(values={"provider": "aliyun"})
        snap.put("instance_id", r.value("instance-id"), "instance-id not served")
        snap.put("hostname", r.value("hostname"), "hostname not served")
        snap.put("instance_type", r.value("instance/instance-type"), "instance-type not served")
        snap.put("image_id", r.value("image-id"), "image-id not served")
        snap.put("region", r.value("region-id"), "region-id not served")
        snap.put("zone", r.value("zone-id"), "zone-id not served")
        snap.put("private_ipv4", r.value("private-ipv4"), "private-ipv4 not served")
        snap.put("public_ipv4", r.value("eipv4") or r.value("public-ipv4"),
                 "no EIP or public IPv4 is associated with the instance")
        snap.put("account_id", r.value("owner-account-id"), "owner-account-id not served")
        snap.put("tags", r.tags(),
                 "instance tags are not exposed (enable InstanceMetadataTags on the instance)")
        return snap

    def user_data(self) -> bytes | None:
        response = self.session.get("/latest/user-data")
        return response.body if response.status == 200 else None


# ---------------------------------------------------------------- GCP

GCP_HEADERS = {"Metadata-Flavor": "Google"}


@dataclass
class Gcp:
    upstream: Upstream
    name: str = "gcp"

    def probe(self) -> str:
        response = self.upstream.request("GET", "/", GCP_HEADERS)
        if response.header("Metadata-Flavor") != "Google":
            raise ProviderError("GET / answered without Metadata-Flavor: Google")
        return "GET / answered with Metadata-Flavor: Google"

    def _get(self, path: str) -> str | None:
        response = self.upstream.request("GET", f"/computeMetadata/v1/{path}", GCP_HEADERS)
        if response.header("Metadata-Flavor") != "Google":
            raise ProviderError(f"{path}: answer lacks Metadata-Flavor: Google")
        if response.status == 404:
            return None
        return expect_ok(response, path)

    def fetch(self) -> Snapshot:
        snap = Snapshot(values={"provider": "gcp"})
        snap.put("instance_id", self._get("instance/id"), "instance/id not served")
        snap.put("hostname", self._get("instance/hostname"), "instance/hostname not served")
        machine = self._get("instance/machine-type") or ""
        snap.put("instance_type", machine.rsplit("/", 1)[-1], "instance/machine-type not served")
        snap.put("image_id", self._get("instance/image"), "instance/image not served")
        zone = (self._get("instance/zone") or "").rsplit("/", 1)[-1]
        snap.put("zone", zone, "instance/zone not served")
        # GCE serves no region path; a zone is always <region>-<letter>.
        snap.put("region", zone.rsplit("-", 1)[0] if "-" in zone else "",
                 "derived from instance/zone, which was not served")
        snap.put("private_ipv4", self._get("instance/network-interfaces/0/ip"),
                 "network-interfaces/0/ip not served")
        snap.put("public_ipv4",
                 self._get("instance/network-interfaces/0/access-configs/0/external-ip"),
                 "no external IP (access config) on the first network interface")
        snap.put("account_id", self._get("project/project-id"), "project/project-id not served")
        snap.lack("tags", "GCE labels are not served by the metadata server "
                          "(instance/tags are firewall network tags, not labels)")
        return snap

    def user_data(self) -> bytes | None:
        value = self._get("instance/attributes/user-data")
        return None if value is None else value.encode()


# ---------------------------------------------------------------- Azure

AZURE_API_VERSION = "2021-02-01"


@dataclass
class Azure:
    upstream: Upstream
    name: str = "azure"

    def _get(self, path: str, extra: str = "") -> Response:
        target = f"/metadata/{path}?api-version={AZURE_API_VERSION}{extra}"
        return self.upstream.request("GET", target, {"Metadata": "true"})

    def probe(self) -> str:
        doc = json.loads(expect_ok(self._get("instance"), "/metadata/instance"))
        if "compute" not in doc:
            raise ProviderError("/metadata/instance has no compute section")
        return "GET /metadata/instance (Metadata: true) returned a compute section"

    def fetch(self) -> Snapshot:
        doc = json.loads(expect_ok(self._get("instance"), "/metadata/instance"))
        compute: dict[str, Any] = doc.get("compute", {})
        snap = Snapshot(values={"provider": "azure"})
        snap.put("instance_id", compute.get("vmId"), "compute.vmId not served")
        hostname = compute.get("osProfile", {}).get("computerName") or compute.get("name")
        snap.put("hostname", hostname, "compute.osProfile.computerName not served")
        snap.put("instance_type", compute.get("vmSize"), "compute.vmSize not served")
        snap.put("image_id", azure_image(compute), "compute.storageProfile.imageReference empty")
        snap.put("region", compute.get("location"), "compute.location not served")
        snap.put("zone", compute.get("zone"), "the VM is not deployed in an availability zone")
        address = azure_first_address(doc)
        snap.put("private_ipv4", address.get("privateIpAddress"), "no private IPv4 on NIC 0")
        snap.put("public_ipv4", address.get("publicIpAddress"),
                 "no public IPv4 on NIC 0 (IMDS shows only Basic-SKU public IPs)")
        snap.put("account_id", compute.get("subscriptionId"), "compute.subscriptionId not served")
        tags = {t["name"]: t["value"] for t in compute.get("tagsList", [])}
        snap.put("tags", tags, "the VM has no tags")
        return snap

    def user_data(self) -> bytes | None:
        response = self._get("instance/compute/userData", "&format=text")
        return response.body if response.status == 200 and response.body else None


def azure_image(compute: dict[str, Any]) -> str:
    ref = compute.get("storageProfile", {}).get("imageReference", {})
    if ref.get("id"):
        return str(ref["id"])
    parts = [ref.get(k, "") for k in ("publisher", "offer", "sku", "version")]
    return ":".join(parts) if all(parts) else ""


def azure_first_address(doc: dict[str, Any]) -> dict[str, str]:
    interfaces = doc.get("network", {}).get("interface", [])
    addresses = interfaces[0].get("ipv4", {}).get("ipAddress", []) if interfaces else []
    return dict(addresses[0]) if addresses else {}


# ---------------------------------------------------------------- OpenStack


@dataclass
class OpenStack:
    upstream: Upstream
    name: str = "openstack"

    def probe(self) -> str:
        versions = expect_ok(self.upstream.request("GET", "/openstack"), "/openstack")
        if "latest" not in versions.split():
            raise ProviderError("/openstack lists no 'latest' version")
        return "GET /openstack listed the OpenStack metadata API versions"

    def _ec2(self, path: str) -> str | None:
        response = self.upstream.request("GET", f"/latest/meta-data/{path}")
        if response.status == 404:
            return None
        return expect_ok(response, path)

    def fetch(self) -> Snapshot:
        snap = Snapshot(values={"provider": "openstack"})
        response = self.upstream.request("GET", "/openstack/latest/meta_data.json")
        meta: dict[str, Any] = json.loads(response.body) if response.status == 200 else {}
        if meta:
            snap.put("instance_id", meta.get("uuid"), "meta_data.json lacks uuid")
            snap.put("hostname", meta.get("hostname"), "meta_data.json lacks hostname")
            snap.put("zone", meta.get("availability_zone"), "no availability_zone")
            snap.put("account_id", meta.get("project_id"), "meta_data.json lacks project_id")
            snap.put("tags", meta.get("meta"), "the server has no metadata key/value pairs")
        else:
            # EC2-compatible fallback: ids are EC2-style (i-0000000N), not Nova UUIDs.
            snap.put("instance_id", self._ec2("instance-id"), "instance-id not served")
            snap.put("hostname", self._ec2("local-hostname"), "local-hostname not served")
            snap.put("zone", self._ec2("placement/availability-zone"), "no availability zone")
            snap.lack("account_id", "meta_data.json unavailable; the EC2 API has no project id")
            snap.lack("tags", "meta_data.json unavailable; the EC2 API has no server metadata")
        snap.put("instance_type", self._ec2("instance-type"), "EC2 instance-type not served")
        snap.put("image_id", self._ec2("ami-id"), "EC2 ami-id not served")
        snap.put("private_ipv4", self._ec2("local-ipv4"), "EC2 local-ipv4 not served")
        snap.put("public_ipv4", self._ec2("public-ipv4"), "no floating IP is associated")
        snap.lack("region", "OpenStack metadata has no region (only availability_zone); "
                            "set --region")
        return snap

    def user_data(self) -> bytes | None:
        response = self.upstream.request("GET", "/openstack/latest/user_data")
        return response.body if response.status == 200 else None


# ---------------------------------------------------------------- QingCloud


@dataclass
class QingCloud:
    """QingCloud documents a JSON document per instance, by file or by Metadata Server."""

    upstream: Upstream
    instance_id: str = ""
    metadata_file: str = ""
    name: str = "qingcloud"

    def _document(self) -> dict[str, Any]:
        if self.metadata_file and Path(self.metadata_file).is_file():
            doc: dict[str, Any] = json.loads(Path(self.metadata_file).read_text())
            return doc
        if not self.instance_id:
            raise ProviderError("set --qingcloud-instance-id (the VM's instance id, which is "
                                "its hostname) or --qingcloud-metadata-file")
        response = self.upstream.request("GET", f"/{self.instance_id}/")
        doc = json.loads(expect_ok(response, f"/{self.instance_id}/"))
        return doc

    def probe(self) -> str:
        doc = self._document()
        if "instance_id" not in doc:
            raise ProviderError("QingCloud metadata document lacks instance_id")
        return "the QingCloud metadata document named this instance"

    def fetch(self) -> Snapshot:
        doc = self._document()
        snap = Snapshot(values={"provider": "qingcloud"})
        snap.put("instance_id", doc.get("instance_id"), "instance_id not in metadata")
        snap.put("instance_type", doc.get("instance_type"), "instance_type not in metadata")
        snap.put("image_id", doc.get("image_id"), "image_id not in metadata")
        snap.lack("hostname", "QingCloud metadata has no hostname (instance_name is a display "
                              "name); set --hostname")
        for name in ("region", "zone"):
            snap.lack(name, f"QingCloud metadata has no {name}; set --{name}")
        for name in ("private_ipv4", "public_ipv4"):
            snap.lack(name, "QingCloud metadata lists vxnets with MAC addresses only, no IPs")
        snap.lack("account_id", "QingCloud metadata has no account id; set --account-id")
        snap.lack("tags", "QingCloud metadata has no tags")
        return snap

    def user_data(self) -> bytes | None:
        return None


def safe_probe(provider: Provider) -> tuple[bool, str]:
    try:
        return True, provider.probe()
    except (UpstreamError, ProviderError, ValueError) as err:
        return False, str(err)
