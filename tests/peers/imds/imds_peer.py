#!/usr/bin/env python3
"""Fake-but-faithful cloud instance metadata servers, one cloud per process.

Each mode follows its cloud's documented protocol: paths, required headers, token flows
with TTL and expiry, and error codes. Real client libraries are pointed at these peers in
the tests to prove that (botocore, alibabacloud-credentials, google-auth, azure-identity).
QingCloud has no client library; its mode follows the QingCloud userdata documentation only.

Test-only control endpoints live under /__peer__/ and skip every cloud check:
  GET  /__peer__/requests   the requests seen so far (method, target, headers)
  POST /__peer__/faults     JSON {"slow": s, "down": bool, "expire_tokens": true,
                                  "token_ttl_cap": n}

Usage: imds_peer.py --cloud aws --port 22001 [--set zone=eu-west-1c] [--tag team=infra]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

CLOUDS = ("aws", "aliyun", "gcp", "azure", "openstack", "qingcloud")
MAX_TOKEN_TTL = 21600  # AWS and Aliyun both document 1..21600 seconds

DEFAULTS: dict[str, dict[str, str]] = {
    "aws": {
        "instance_id": "i-0abc123def4567890", "hostname": "ip-10-0-1-23.eu-west-1.compute.internal",
        "instance_type": "m5.large", "image_id": "ami-0123456789abcdef0", "region": "eu-west-1",
        "zone": "eu-west-1b", "private_ipv4": "10.0.1.23", "public_ipv4": "203.0.113.10",
        "account_id": "123456789012", "role": "peer-role",
    },
    "aliyun": {
        "instance_id": "i-bp1abcdefghij0123456", "hostname": "iZbp1abcdefghij0123456Z",
        "instance_type": "ecs.g6.large", "image_id": "aliyun_3_x64_20G_alibase_20240101.vhd",
        "region": "cn-hangzhou", "zone": "cn-hangzhou-h", "private_ipv4": "172.16.0.10",
        "public_ipv4": "47.96.0.10", "account_id": "1234567890123456", "role": "peer-ram-role",
    },
    "gcp": {
        "instance_id": "4567890123456789012", "name": "vm-1",
        "hostname": "vm-1.europe-west1-b.c.test-project.internal", "instance_type": "e2-medium",
        "image_id": "projects/debian-cloud/global/images/debian-12-bookworm-v20240110",
        "zone": "europe-west1-b", "private_ipv4": "10.132.0.5", "public_ipv4": "34.76.0.5",
        "account_id": "test-project", "numeric_project": "123456789012",
    },
    "azure": {
        "instance_id": "02aab8a4-74ef-476e-8182-f6d2ba4166a6", "name": "vm-az-1",
        "hostname": "vm-az-1", "instance_type": "Standard_D2s_v3",
        "image_id": "Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:22.04.202401100",
        "region": "westeurope", "zone": "2", "private_ipv4": "10.1.0.4",
        "public_ipv4": "20.50.0.4", "account_id": "8d10da13-8125-4ba9-a717-bf7490507b3d",
    },
    "openstack": {
        "instance_id": "d8e02d56-2648-49a3-bf97-6be8f1204f38", "name": "os-vm-1",
        "hostname": "os-vm-1.novalocal", "instance_type": "m1.small", "image_id": "ami-00000002",
        "zone": "nova", "private_ipv4": "10.0.0.165", "public_ipv4": "172.24.4.10",
        "account_id": "6f70656e737461636b20726f636b7321", "ec2_instance_id": "i-00000004",
    },
    "qingcloud": {
        "instance_id": "i-abcd1234", "name": "qc-vm-1", "instance_type": "s1.small.r1",
        "image_id": "bionic1x64",
    },
}
DEFAULT_TAGS: dict[str, dict[str, str]] = {
    "aws": {"Name": "web-1", "team": "infra"},
    "aliyun": {"team": "infra"},
    "azure": {"env": "prod", "team": "infra"},
    "openstack": {"role": "db"},
}
USER_DATA = "#cloud-config\n# peer user-data: must never leak through the adapter\n"


@dataclass
class Faults:
    slow: float = 0.0
    down: bool = False
    token_ttl_cap: int = MAX_TOKEN_TTL


@dataclass
class PeerState:
    cloud: str
    values: dict[str, str]
    tags: dict[str, str]
    imdsv1: bool
    qingcloud_per_target: int
    faults: Faults = field(default_factory=Faults)
    tokens: dict[str, float] = field(default_factory=dict)  # token -> expiry (monotonic)
    seen: list[dict[str, Any]] = field(default_factory=list)
    hits: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue_token(self, ttl: int) -> str:
        token = secrets.token_urlsafe(32)
        with self.lock:
            self.tokens[token] = time.monotonic() + min(ttl, self.faults.token_ttl_cap)
        return token

    def token_valid(self, token: str) -> bool:
        with self.lock:
            expiry = self.tokens.get(token)
        return expiry is not None and time.monotonic() < expiry

    def rate_limited(self, window: float = 60.0) -> bool:
        now = time.monotonic()
        with self.lock:
            self.hits = [t for t in self.hits if now - t < window]
            if len(self.hits) >= self.qingcloud_per_target:
                return True
            self.hits.append(now)
            return False


@dataclass
class Reply:
    status: int
    body: str = ""
    content_type: str = "text/plain"
    headers: dict[str, str] = field(default_factory=dict)


def text(body: str) -> Reply:
    return Reply(200, body)


def as_json(doc: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(doc), "application/json")


def not_found() -> Reply:
    # EC2-style IMDS answers 404 with a small HTML page; clients only look at the status.
    return Reply(404, "<html><body><h1>404 - Not Found</h1></body></html>", "text/html")


def tree_lookup(tree: dict[str, Any], path: str) -> Reply:
    """Serve an EC2-style tree: directories list their children, leaves are text.

    A trailing slash on a leaf is tolerated because botocore asks for
    `placement/availability-zone/` and real EC2 answers it.
    """
    node: Any = tree
    for part in [p for p in path.split("/") if p]:
        if not isinstance(node, dict) or part not in node:
            return not_found()
        node = node[part]
    if isinstance(node, dict):
        names = [f"{k}/" if isinstance(v, dict) else k for k, v in node.items()]
        return text("\n".join(names))
    return text(str(node))


# ---------------------------------------------------------------- AWS and Aliyun (EC2 shape)


def aws_tree(s: PeerState) -> dict[str, Any]:
    v = s.values
    tree: dict[str, Any] = {
        "ami-id": v["image_id"], "hostname": v["hostname"], "instance-id": v["instance_id"],
        "instance-type": v["instance_type"], "local-hostname": v["hostname"],
        "local-ipv4": v["private_ipv4"],
        "placement": {"availability-zone": v["zone"], "region": v["region"]},
        "iam": {"info": json.dumps({"Code": "Success", "InstanceProfileArn":
                                    f"arn:aws:iam::{v['account_id']}:instance-profile/peer"}),
                "security-credentials": {v["role"]: json.dumps(aws_credentials())}},
    }
    if v.get("public_ipv4"):
        tree["public-ipv4"] = v["public_ipv4"]
    if s.tags:
        tree["tags"] = {"instance": dict(s.tags)}
    return tree


def aws_credentials() -> dict[str, str]:
    expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    return {"Code": "Success", "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Type": "AWS-HMAC", "AccessKeyId": "ASIAPEERACCESSKEY001",
            "SecretAccessKey": "peer-secret", "Token": "peer-session-token", "Expiration": expiry}


def aws_identity_document(s: PeerState) -> dict[str, Any]:
    v = s.values
    return {"accountId": v["account_id"], "architecture": "x86_64",
            "availabilityZone": v["zone"], "imageId": v["image_id"],
            "instanceId": v["instance_id"], "instanceType": v["instance_type"],
            "privateIp": v["private_ipv4"], "region": v["region"], "version": "2017-09-30"}


def aliyun_tree(s: PeerState) -> dict[str, Any]:
    v = s.values
    creds = {"AccessKeyId": "STS.peerAK", "AccessKeySecret": "peerSK",
             "SecurityToken": "peerSTStoken", "Code": "Success",
             "Expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600)),
             "LastUpdated": time.strftime("%Y-%m-%dT%H:%M:%SZ")}
    tree: dict[str, Any] = {
        "hostname": v["hostname"], "image-id": v["image_id"], "instance-id": v["instance_id"],
        "instance": {"instance-type": v["instance_type"], "instance-name": v["hostname"]},
        "owner-account-id": v["account_id"], "private-ipv4": v["private_ipv4"],
        "region-id": v["region"], "zone-id": v["zone"], "network-type": "vpc",
        "ram": {"security-credentials": {v["role"]: json.dumps(creds)}},
    }
    if v.get("public_ipv4"):
        tree["eipv4"] = v["public_ipv4"]
        tree["public-ipv4"] = v["public_ipv4"]
    if s.tags:
        tree["tags"] = {"instance": dict(s.tags)}
    return tree


@dataclass(frozen=True)
class TokenDialect:
    ttl_header: str
    token_header: str
    missing_token_status: int  # answer to a tokenless GET when tokens are required


AWS_TOKENS = TokenDialect("X-aws-ec2-metadata-token-ttl-seconds", "X-aws-ec2-metadata-token", 401)
# Aliyun's hardened-only mode refuses tokenless reads; the docs give no code, 403 is chosen.
ALIYUN_TOKENS = TokenDialect(
    "X-aliyun-ecs-metadata-token-ttl-seconds", "X-aliyun-ecs-metadata-token", 403
)


def ec2_shape(s: PeerState, method: str, path: str, headers: Any, d: TokenDialect,
              tree: dict[str, Any], dynamic: dict[str, Any]) -> Reply:
    if path.rstrip("/") == "/latest/api/token":
        if method != "PUT":
            return Reply(405, "Method Not Allowed")
        if headers.get("X-Forwarded-For"):
            return Reply(403, "Forbidden")  # token requests through a proxy are refused
        raw = headers.get(d.ttl_header, "")
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_TOKEN_TTL:
            return Reply(400, "Bad Request")
        ttl = min(int(raw), s.faults.token_ttl_cap)
        return Reply(200, s.issue_token(ttl), headers={d.ttl_header: str(ttl)})
    if method != "GET":
        return Reply(405, "Method Not Allowed")
    token = headers.get(d.token_header)
    if token is not None and not s.token_valid(token):
        return Reply(401, "Unauthorized")
    if token is None and not s.imdsv1:
        return Reply(d.missing_token_status, "Unauthorized")
    for version in ("latest", "2016-01-01", "2021-03-23"):
        prefix = f"/{version}/"
        if path.startswith(prefix):
            rest = path[len(prefix):]
            if rest.startswith("meta-data"):
                return tree_lookup(tree, rest[len("meta-data"):])
            if rest == "user-data":
                return text(USER_DATA)
            if rest.startswith("dynamic"):
                return tree_lookup(dynamic, rest[len("dynamic"):])
    if path == "/":
        return text("latest")
    return not_found()


def serve_aws(s: PeerState, method: str, path: str, query: dict[str, list[str]],
              headers: Any) -> Reply:
    doc = json.dumps(aws_identity_document(s))
    dynamic = {"instance-identity": {"document": doc}}
    return ec2_shape(s, method, path, headers, AWS_TOKENS, aws_tree(s), dynamic)


def serve_aliyun(s: PeerState, method: str, path: str, query: dict[str, list[str]],
                 headers: Any) -> Reply:
    return ec2_shape(s, method, path, headers, ALIYUN_TOKENS, aliyun_tree(s), {})


# ---------------------------------------------------------------- GCP


def gcp_tree(s: PeerState) -> dict[str, Any]:
    v = s.values
    num = v["numeric_project"]
    nic = {"ip": v["private_ipv4"], "mac": "42:01:0a:84:00:05",
           "network": f"projects/{num}/networks/default",
           "access-configs": {"0": {"external-ip": v.get("public_ipv4", ""),
                                    "type": "ONE_TO_ONE_NAT"}}}
    sa = {"email": f"{num}-compute@developer.gserviceaccount.com", "aliases": "default",
          "scopes": "https://www.googleapis.com/auth/cloud-platform"}
    return {
        "instance": {
            "id": v["instance_id"], "name": v["name"], "hostname": v["hostname"],
            "zone": f"projects/{num}/zones/{v['zone']}",
            "machine-type": f"projects/{num}/machineTypes/{v['instance_type']}",
            "image": v["image_id"], "tags": json.dumps(sorted(s.tags)),
            "network-interfaces": {"0": nic},
            "attributes": {"startup-script": "echo peer", "user-data": USER_DATA},
            "service-accounts": {"default": sa},
        },
        "project": {"project-id": v["account_id"], "numeric-project-id": num},
    }


def gcp_recursive(node: Any) -> Any:
    if isinstance(node, dict):
        return {_camel(k): gcp_recursive(val) for k, val in node.items()}
    return node


def _camel(name: str) -> str:
    head, *rest = name.split("-")
    return head + "".join(p.title() for p in rest)


def serve_gcp(s: PeerState, method: str, path: str, query: dict[str, list[str]],
              headers: Any) -> Reply:
    flavor = {"Metadata-Flavor": "Google"}
    if path == "/":
        return Reply(200, "computeMetadata/\n", headers=flavor)  # google-auth's ping
    if headers.get("X-Forwarded-For"):
        return Reply(403, "Forbidden: X-Forwarded-For header is not allowed", headers=flavor)
    if headers.get("Metadata-Flavor") != "Google":
        body = "Your client does not have permission to get URL from this server. " \
               "Missing Metadata-Flavor:Google header."
        return Reply(403, body, "text/html", headers=flavor)
    if method != "GET":
        return Reply(405, "Method Not Allowed", headers=flavor)
    prefix = "/computeMetadata/v1/"
    if not path.startswith(prefix):
        return Reply(404, "Not Found", headers=flavor)
    rest = path[len(prefix):]
    if rest.startswith("instance/service-accounts/default/token"):
        token = {"access_token": "ya29.PEER", "expires_in": 3599, "token_type": "Bearer"}
        return Reply(200, json.dumps(token), "application/json", headers=flavor)
    node: Any = gcp_tree(s)
    for part in [p for p in rest.split("/") if p]:
        if not isinstance(node, dict) or part not in node:
            return Reply(404, "Not Found", headers=flavor)
        node = node[part]
    if query.get("recursive", [""])[0] == "true" or (isinstance(node, dict) and
                                                     query.get("alt", [""])[0] == "json"):
        return Reply(200, json.dumps(gcp_recursive(node)), "application/json", headers=flavor)
    if isinstance(node, dict):
        names = [f"{k}/" if isinstance(val, dict) else k for k, val in node.items()]
        return Reply(200, "\n".join(names), headers=flavor)
    ctype = "application/json" if str(node).startswith("[") else "application/text"
    return Reply(200, str(node), ctype, headers=flavor)


# ---------------------------------------------------------------- Azure

AZURE_VERSIONS = ("2017-08-01", "2018-02-01", "2019-06-01", "2020-09-01", "2021-02-01",
                  "2021-05-01", "2021-12-13", "2023-07-01")


def azure_instance(s: PeerState) -> dict[str, Any]:
    v = s.values
    publisher, offer, sku, version = v["image_id"].split(":")
    compute = {
        "azEnvironment": "AzurePublicCloud", "location": v["region"], "name": v["name"],
        "osProfile": {"computerName": v["hostname"], "adminUsername": "azureuser"},
        "osType": "Linux", "resourceGroupName": "peer-rg",
        "resourceId": f"/subscriptions/{v['account_id']}/resourceGroups/peer-rg/providers/"
                      f"Microsoft.Compute/virtualMachines/{v['name']}",
        "storageProfile": {"imageReference": {"id": "", "offer": offer, "publisher": publisher,
                                              "sku": sku, "version": version}},
        "subscriptionId": v["account_id"],
        "tags": ";".join(f"{k}:{val}" for k, val in s.tags.items()),
        "tagsList": [{"name": k, "value": val} for k, val in s.tags.items()],
        "userData": "", "vmId": v["instance_id"], "vmSize": v["instance_type"],
        "zone": v.get("zone", ""),
    }
    public = [{"privateIpAddress": v["private_ipv4"], "publicIpAddress": v.get("public_ipv4", "")}]
    network = {"interface": [{"ipv4": {"ipAddress": public,
                                       "subnet": [{"address": "10.1.0.0", "prefix": "24"}]},
                              "ipv6": {"ipAddress": []}, "macAddress": "000D3A123456"}]}
    return {"compute": compute, "network": network}


def azure_error(message: str, status: int = 400) -> Reply:
    return as_json({"error": message}, status)


def serve_azure(s: PeerState, method: str, path: str, query: dict[str, list[str]],
                headers: Any) -> Reply:
    if not path.startswith("/metadata/"):
        return azure_error("Not found", 404)
    if headers.get("X-Forwarded-For"):
        return azure_error("Bad request. Requests with X-Forwarded-For header are not allowed")
    if headers.get("Metadata", "").lower() != "true":
        return azure_error("Bad request. Required metadata header not specified")
    if method != "GET":
        return azure_error("Method not allowed", 405)
    api_version = query.get("api-version", [""])[0]
    if not api_version:
        return as_json({"error": "Bad request. api-version was not specified in the request. "
                                 "For more information refer to aka.ms/azureimds",
                        "newest-versions": list(AZURE_VERSIONS[-3:])}, 400)
    if api_version not in AZURE_VERSIONS:
        return as_json({"error": "Bad request. api-version is invalid or was not specified in "
                                 "the request.", "newest-versions": list(AZURE_VERSIONS[-3:])}, 400)
    if path.startswith("/metadata/identity/oauth2/token"):
        if not query.get("resource"):
            return azure_error("invalid_request: Required query variable 'resource' is missing")
        now = int(time.time())
        return as_json({"access_token": "eyJ0eXAiOiJKV1QiLCJwZWVyIjoidHJ1ZSJ9.peer.sig",
                        "client_id": "00000000-0000-0000-0000-000000000000",
                        "expires_in": "3599", "expires_on": str(now + 3599),
                        "ext_expires_in": "3599", "not_before": str(now),
                        "resource": query["resource"][0], "token_type": "Bearer"})
    if not path.startswith("/metadata/instance"):
        return azure_error("Not found", 404)
    node: Any = azure_instance(s)
    for part in [p for p in path[len("/metadata/instance"):].split("/") if p]:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return azure_error("Not found", 404)
    if query.get("format", ["json"])[0] == "text":
        if isinstance(node, (dict, list)):
            return azure_error("Bad request. Querying a non-leaf node with format=text")
        return text(str(node))
    return as_json(node)


# ---------------------------------------------------------------- OpenStack

OPENSTACK_VERSIONS = ("2012-08-10", "2013-04-04", "2013-10-17", "2015-10-15", "2016-06-30",
                      "2016-10-06", "2017-02-22", "2018-08-27", "latest")


def openstack_meta(s: PeerState) -> dict[str, Any]:
    v = s.values
    return {"uuid": v["instance_id"], "name": v["name"], "hostname": v["hostname"],
            "availability_zone": v["zone"], "project_id": v["account_id"], "launch_index": 0,
            "meta": dict(s.tags), "public_keys": {}, "keys": [], "devices": [],
            "random_seed": "cGVlcg=="}


def openstack_ec2_tree(s: PeerState) -> dict[str, Any]:
    v = s.values
    return {"ami-id": v["image_id"], "hostname": v["hostname"],
            "instance-id": v["ec2_instance_id"], "instance-type": v["instance_type"],
            "local-hostname": v["hostname"], "local-ipv4": v["private_ipv4"],
            # Nova answers an empty body, not 404, when no floating IP is attached.
            "public-ipv4": v.get("public_ipv4", ""),
            "placement": {"availability-zone": v["zone"]}}


def serve_openstack(s: PeerState, method: str, path: str, query: dict[str, list[str]],
                    headers: Any) -> Reply:
    if method != "GET":
        # Nova has no IMDSv2: the token PUT is unknown (OTel's ec2 detector trips on this 404).
        return not_found()
    if path.rstrip("/") == "/openstack":
        return text("\n".join(OPENSTACK_VERSIONS))
    for version in OPENSTACK_VERSIONS:
        prefix = f"/openstack/{version}/"
        if path.startswith(prefix):
            rest = path[len(prefix):]
            if rest == "meta_data.json":
                return as_json(openstack_meta(s))
            if rest == "user_data":
                return text(USER_DATA)
            return not_found()
    for version in ("latest", "2009-04-04"):
        prefix = f"/{version}/meta-data"
        if path.startswith(prefix):
            return tree_lookup(openstack_ec2_tree(s), path[len(prefix):])
    if path == "/":
        return text("1.0\n2009-04-04\nlatest")
    return not_found()


# ---------------------------------------------------------------- QingCloud


def qingcloud_doc(s: PeerState) -> dict[str, Any]:
    v = s.values
    vxnets = [{"vxnet_id": "vxnet-0", "nic_id": "52:54:39:ea:a5:a2"}]
    return {"instance_id": v["instance_id"], "instance_name": v["name"],
            "instance_type": v["instance_type"], "vcpus_current": 1, "memory_current": 1024,
            "image_id": v["image_id"], "platform": "linux", "os_family": "ubuntu",
            "volume_ids": "", "vxnets_count": len(vxnets), "vxnets": vxnets}


def serve_qingcloud(s: PeerState, method: str, path: str, query: dict[str, list[str]],
                    headers: Any) -> Reply:
    if method != "GET":
        return Reply(405, "Method Not Allowed")
    wanted = path.strip("/")
    if wanted != s.values["instance_id"]:
        # The docs: only instances of the caller's own account are served.
        return as_json({"ret_code": 1400, "message": "resource not found"}, 404)
    if s.rate_limited():
        # Documented limit: 5 requests/minute per target; the status code is not documented.
        return as_json({"ret_code": 2400, "message": "too many requests"}, 429)
    return as_json(qingcloud_doc(s))


Handler = Callable[[PeerState, str, str, dict[str, list[str]], Any], Reply]
SERVERS: dict[str, Handler] = {
    "aws": serve_aws, "aliyun": serve_aliyun, "gcp": serve_gcp, "azure": serve_azure,
    "openstack": serve_openstack, "qingcloud": serve_qingcloud,
}


def make_handler(state: PeerState) -> type[BaseHTTPRequestHandler]:
    class PeerHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "imds-peer"

        def log_message(self, format: str, *args: Any) -> None:
            return  # requests are recorded in state.seen instead

        def _handle(self, method: str) -> None:
            # Absolute-form targets arrive when a client uses this peer as HTTP_PROXY
            # (alibabacloud-credentials has no endpoint setting).
            parts = urlsplit(self.path)
            path, query = parts.path or "/", parse_qs(parts.query)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if path.startswith("/__peer__/"):
                self._send(control(state, method, path, body))
                return
            with state.lock:
                state.seen.append({"method": method, "target": self.path,
                                   "headers": dict(self.headers.items())})
                faults = Faults(**vars(state.faults))
            if faults.down:
                self.close_connection = True
                self.connection.close()
                return
            if faults.slow:
                time.sleep(faults.slow)
            self._send(SERVERS[state.cloud](state, method, path, query, self.headers))

        def _send(self, reply: Reply) -> None:
            data = reply.body.encode()
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._handle("GET")

        def do_PUT(self) -> None:
            self._handle("PUT")

        def do_POST(self) -> None:
            self._handle("POST")

        def do_DELETE(self) -> None:
            self._handle("DELETE")

    return PeerHandler


def control(state: PeerState, method: str, path: str, body: bytes) -> Reply:
    if path == "/__peer__/requests" and method == "GET":
        with state.lock:
            return as_json(list(state.seen))
    if path == "/__peer__/requests" and method == "DELETE":
        with state.lock:
            state.seen.clear()
        return as_json({})
    if path == "/__peer__/faults" and method == "POST":
        change = json.loads(body or b"{}")
        with state.lock:
            if change.pop("expire_tokens", False):
                state.tokens.clear()
            for key, value in change.items():
                setattr(state.faults, key, value)
            return as_json(vars(state.faults))
    return Reply(404, "unknown control path")


def parse_pairs(pairs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"expected KEY=VALUE, got {pair!r}")
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cloud", choices=CLOUDS, required=True)
    parser.add_argument("--listen", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="instance value, e.g. zone=eu-west-1c; public_ipv4= removes it")
    parser.add_argument("--tag", action="append", default=None, metavar="KEY=VALUE")
    parser.add_argument("--no-tags", action="store_true")
    parser.add_argument("--imdsv1", action="store_true",
                        help="aws/aliyun: also answer reads without a token")
    parser.add_argument("--token-ttl-cap", type=int, default=MAX_TOKEN_TTL,
                        help="issue tokens for at most this many seconds (expiry tests)")
    parser.add_argument("--slow", type=float, default=0.0, help="delay every answer")
    parser.add_argument("--qingcloud-per-target", type=int, default=5,
                        help="QingCloud's documented limit: requests per minute per instance")
    args = parser.parse_args(argv)
    values = {**DEFAULTS[args.cloud], **parse_pairs(args.set)}
    tags = {} if args.no_tags else (parse_pairs(args.tag) if args.tag is not None
                                    else dict(DEFAULT_TAGS.get(args.cloud, {})))
    state = PeerState(args.cloud, {k: v for k, v in values.items() if v}, tags, args.imdsv1,
                      args.qingcloud_per_target,
                      Faults(slow=args.slow, token_ttl_cap=args.token_ttl_cap))
    server = ThreadingHTTPServer((args.listen, args.port), make_handler(state))
    server.daemon_threads = True
    print(f"imds-peer {args.cloud} listening on {args.listen}:{args.port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
