"""Flags, each with an IAAS_METADATA_* environment twin (images/_common/sidecar_common.py); a
flag on the command line wins."""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

from sidecar_common import add_flag, add_switch

from iaas_metadata.ec2 import TOKEN_MODES

ENV_PREFIX = "IAAS_METADATA_"
PROVIDERS = ("aws", "aliyun", "gcp", "azure", "openstack", "qingcloud")
# Probe order for --provider auto: unmistakable answers first. OpenStack precedes AWS
# because Nova also serves EC2 paths, while AWS never serves /openstack.
AUTO_ORDER = ("gcp", "azure", "openstack", "aws", "aliyun", "qingcloud")
DEFAULT_ENDPOINTS = {
    "aws": "http://169.254.169.254",
    "aliyun": "http://100.100.100.200",
    "gcp": "http://169.254.169.254",
    "azure": "http://169.254.169.254",
    "openstack": "http://169.254.169.254",
    "qingcloud": "http://metadata.ks.qingcloud.com",
}
EXPOSABLE = ("user-data",)
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Config:
    listen_host: str
    listen_port: int
    provider: str
    endpoints: dict[str, str]
    ttl: float
    timeout: float
    retries: int
    probe_timeout: float
    aws_imdsv1: bool
    token_ttl: int
    qingcloud_instance_id: str
    qingcloud_metadata_file: str
    fallbacks: dict[str, str]
    ec2_dialect: bool
    ec2_tokens: str
    allowed_hosts: frozenset[str]
    expose: frozenset[str]
    once: bool


def seconds(text: str) -> float:
    """Seconds from `1.5` or a Go-style duration (`10s`, `1m30s`, `500ms`): Kubernetes
    manifests and the catalogue speak durations, shells speak numbers."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds or a duration")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


_PLAIN_HTTP_URL = re.compile(r"http://[A-Za-z0-9.:\[\]-]{1,300}(?:/[^\s?#'`\"\\\x00-\x1f\x7f]{0,1000})?")


def endpoint(text: str) -> str:
    """A metadata service's base URL: plain HTTP (every cloud's is; the image has no TLS)."""
    if not _PLAIN_HTTP_URL.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a plain http:// URL "
                                         "(host[:port] and an optional path)")
    return text


def build_parser(env: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="iaas-metadata",
        description="Serve one normalized instance-metadata API on localhost, on any cloud. "
                    "Every flag has an environment twin, shown with it; the flag wins.",
    )
    add = partial(add_flag, parser, ENV_PREFIX, environ=env)
    switch = partial(add_switch, parser, ENV_PREFIX, environ=env)

    add("--listen", "127.0.0.1:8733", "HOST:PORT to serve on (localhost only by default)")
    add("--provider", "auto", "cloud, or auto for ordered probes", choices=("auto", *PROVIDERS))
    for name in PROVIDERS:
        add(f"--{name}-endpoint", DEFAULT_ENDPOINTS[name],
            f"{name} metadata service base URL (plain http://)", type=endpoint)
    add("--ttl", "60", "how long a fetched snapshot stays fresh (seconds or 1m, 500ms...)",
        type=seconds)
    add("--timeout", "1", "time allowed per upstream request", type=seconds)
    add("--retries", "2", "extra attempts per upstream request", type=int)
    add("--probe-timeout", "0.5", "time allowed per auto-detection probe", type=seconds)
    switch("--aws-imdsv1", "let AWS fall back to IMDSv1 when no token is issued")
    add("--token-ttl", "21600", "seconds requested for AWS/Aliyun session tokens", type=int)
    add("--qingcloud-instance-id", "", "QingCloud instance id (the VM's hostname)")
    add("--qingcloud-metadata-file", "", "QingCloud metadata.json mounted from the host")
    for name in ("hostname", "region", "zone", "account-id"):
        add(f"--{name}", "", f"{name} to serve when the cloud does not report one")
    switch("--ec2-dialect", "also answer EC2-style /latest/meta-data/ for the normalized fields")
    add("--ec2-tokens", "required", "EC2 dialect: required = a GET needs an IMDSv2 session "
        "token (401 without), as AWS defaults new instances to; optional = tokenless GETs are "
        "answered too", choices=TOKEN_MODES)
    add("--allowed-hosts", "", "extra comma-separated Host names accepted (e.g. the pod IP)")
    add("--expose", "", f"comma-separated sensitive items to serve; known: {', '.join(EXPOSABLE)}")
    switch("--once", "fetch one snapshot (retrying until it succeeds), print it as JSON and "
           "exit: for init containers")
    return parser


def split_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"--listen wants HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def csv(value: str) -> frozenset[str]:
    return frozenset(item.strip() for item in value.split(",") if item.strip())


def parse(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
    parser = build_parser(os.environ if env is None else env)
    args = parser.parse_args(argv)
    try:
        host, port = split_listen(args.listen)
    except ValueError as err:
        parser.error(str(err))
    if args.provider == "qingcloud" and bool(args.region) != bool(args.zone):
        parser.error("qingcloud reports neither region nor zone: set both --region and --zone "
                     "(EC2 clients derive the region from the zone) or neither")
    expose = csv(args.expose)
    unknown = expose - set(EXPOSABLE)
    if unknown:
        parser.error(f"--expose: unknown item(s) {sorted(unknown)}; known: {list(EXPOSABLE)}")
    return Config(
        listen_host=host,
        listen_port=port,
        provider=args.provider,
        endpoints={name: getattr(args, f"{name}_endpoint") for name in PROVIDERS},
        ttl=float(args.ttl),
        timeout=float(args.timeout),
        retries=int(args.retries),
        probe_timeout=float(args.probe_timeout),
        aws_imdsv1=bool(args.aws_imdsv1),
        token_ttl=int(args.token_ttl),
        qingcloud_instance_id=args.qingcloud_instance_id,
        qingcloud_metadata_file=args.qingcloud_metadata_file,
        fallbacks={"hostname": args.hostname, "region": args.region, "zone": args.zone,
                   "account_id": args.account_id},
        ec2_dialect=bool(args.ec2_dialect),
        ec2_tokens=args.ec2_tokens,
        allowed_hosts=csv(args.allowed_hosts),
        expose=expose,
        once=bool(args.once),
    )
