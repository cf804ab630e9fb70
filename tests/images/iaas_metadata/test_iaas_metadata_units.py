"""Offline checks of the adapter's pure rules: EC2 zone shape, Host parsing, env twins,
durations."""

from __future__ import annotations

import pytest
from iaas_metadata.config import build_parser, parse, seconds
from iaas_metadata.ec2 import ec2_availability_zone, split_version
from iaas_metadata.fields import Snapshot
from iaas_metadata.server import host_name


@pytest.mark.parametrize("region,zone,expected", [
    ("eu-west-1", "eu-west-1b", "eu-west-1b"),          # AWS: unchanged
    ("europe-west1", "europe-west1-b", "europe-west1b"),  # GCP
    ("cn-hangzhou", "cn-hangzhou-h", "cn-hangzhouh"),    # Aliyun
    ("westeurope", "2", "westeuropeb"),                  # Azure numbered zone
    ("RegionOne", "nova", "RegionOnea"),                 # OpenStack with --region
    ("westeurope", None, None),                          # no zone: nothing invented
    (None, "nova", None),
])
def test_ec2_zone_keeps_the_region_when_the_last_character_is_dropped(
    region: str | None, zone: str | None, expected: str | None
) -> None:
    shaped = ec2_availability_zone(region, zone)
    assert shaped == expected
    if shaped:
        assert shaped[:-1] == region


@pytest.mark.parametrize("header,name", [
    ("localhost:8733", "localhost"), ("127.0.0.1", "127.0.0.1"), ("[::1]:8733", "::1"),
    ("169.254.169.254:80", "169.254.169.254"),
])
def test_host_header_name(header: str, name: str) -> None:
    assert host_name(header) == name


def test_every_flag_has_an_env_twin_and_the_flag_wins() -> None:
    env = {"IAAS_METADATA_PROVIDER": "gcp", "IAAS_METADATA_TTL": "5",
           "IAAS_METADATA_EC2_DIALECT": "true", "IAAS_METADATA_REGION": "pek3"}
    config = parse([], env)
    assert (config.provider, config.ttl, config.ec2_dialect) == ("gcp", 5.0, True)
    assert config.fallbacks["region"] == "pek3"
    assert parse(["--provider", "azure"], env).provider == "azure"


@pytest.mark.parametrize("twin,value,said", [
    ("IAAS_METADATA_PROVIDER", "bogus", "argument --provider: invalid choice: 'bogus'"),
    ("IAAS_METADATA_EC2_TOKENS", "maybe", "argument --ec2-tokens: invalid choice: 'maybe'"),
    ("IAAS_METADATA_EC2_DIALECT", "ture", "argument --ec2-dialect: 'ture' is neither on"),
    ("IAAS_METADATA_RETRIES", "x", "argument --retries: invalid int value: 'x'"),
])
def test_a_twin_is_checked_as_its_flag_is(twin: str, value: str, said: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    """A provider or token mode the image does not know, or a switch that says neither true
    nor false, stops it with one usage line (the provider ended in a KeyError traceback)."""
    with pytest.raises(SystemExit) as exc:
        parse([], {twin: value})
    assert exc.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].startswith(f"iaas-metadata: error: {said}")


def test_switches_are_on_when_given_or_when_their_twin_says_true() -> None:
    off = parse([], {"IAAS_METADATA_AWS_IMDSV1": "false", "IAAS_METADATA_EC2_DIALECT": ""})
    assert (off.aws_imdsv1, off.ec2_dialect, off.once) == (False, False, False)
    on = parse(["--once"], {"IAAS_METADATA_AWS_IMDSV1": "true", "IAAS_METADATA_EC2_DIALECT": "1"})
    assert (on.aws_imdsv1, on.ec2_dialect, on.once) == (True, True, True)
    assert parse(["--ec2-dialect"], {"IAAS_METADATA_EC2_DIALECT": "false"}).ec2_dialect


def test_defaults_are_the_documented_ones() -> None:
    config = parse([], {})
    assert (config.listen_host, config.listen_port, config.provider) == ("127.0.0.1", 8733, "auto")
    assert (config.ttl, config.timeout, config.retries, config.probe_timeout,
            config.token_ttl, config.ec2_tokens) == (60.0, 1.0, 2, 0.5, 21600, "required")
    assert config.endpoints["qingcloud"] == "http://metadata.ks.qingcloud.com"
    assert config.fallbacks == {"hostname": "", "region": "", "zone": "", "account_id": ""}


def test_help_names_every_flag_with_its_twin() -> None:
    shown = " ".join(build_parser({}).format_help().split())
    flags = [a.option_strings[0] for a in build_parser({})._actions if a.dest != "help"]
    assert len(flags) == 25  # the README's table
    for flag in flags:
        assert f"(env IAAS_METADATA_{flag[2:].upper().replace('-', '_')}" in shown, flag


def test_qingcloud_needs_region_and_zone_together() -> None:
    for half in (["--region", "pek3"], ["--zone", "pek3a"]):
        with pytest.raises(SystemExit) as exc:
            parse(["--provider", "qingcloud", *half], {})
        assert exc.value.code == 2
    both = parse(["--provider", "qingcloud", "--region", "pek3", "--zone", "pek3a"], {})
    assert both.fallbacks["zone"] == "pek3a"
    assert parse(["--provider", "openstack", "--region", "RegionOne"], {}).ec2_tokens == "required"


@pytest.mark.parametrize("url", ["https://169.254.169.254", "http://169.254.169.254\n",
                                 "169.254.169.254", "http://a b/", "http://x/?q=1"])
def test_an_endpoint_that_is_not_plain_http_is_refused(
        url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Metadata services speak plain HTTP and the image has no TLS: an https:// endpoint (or a
    flag's environment twin) stops the sidecar with one line, not a plain-text talk to :80."""
    for argv, env in ((["--aws-endpoint", url], {}), ([], {"IAAS_METADATA_AWS_ENDPOINT": url})):
        with pytest.raises(SystemExit) as exc:
            parse(argv, env)
        assert exc.value.code == 2
        assert "is not a plain http:// URL" in capsys.readouterr().err
    assert parse(["--aws-endpoint", "http://[fd00:ec2::254]:80/"], {}).endpoints["aws"]


@pytest.mark.parametrize("path,split", [
    ("/", ("", "")), ("/latest/", ("latest", "")), ("/2009-04-04", ("2009-04-04", "")),
    ("/2021-03-23/meta-data/instance-id", ("2021-03-23", "meta-data/instance-id")),
    ("/v1/instance", None), ("/2009-04-05/meta-data/", None),
])
def test_ec2_paths_are_the_listed_versions(path: str, split: tuple[str, str] | None) -> None:
    assert split_version(path) == split


def test_unknown_expose_item_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exc:
        parse(["--expose", "credentials"], {})
    assert exc.value.code == 2


def test_fallbacks_fill_only_missing_fields() -> None:
    snap = Snapshot(values={"region": "eu-west-1"}, missing={"zone": "none"})
    filled = snap.with_fallbacks({"region": "other", "zone": "z1"})
    assert (filled.values["region"], filled.values["zone"]) == ("eu-west-1", "z1")
    assert filled.document()["missing"].get("zone") is None


@pytest.mark.parametrize("text,expected", [
    ("60", 60.0), ("0.5", 0.5), ("60s", 60.0), ("500ms", 0.5), ("1m30s", 90.0), ("1h", 3600.0),
])
def test_times_are_seconds_or_catalogue_durations(text: str, expected: float) -> None:
    assert seconds(text) == expected
    assert parse([], {"IAAS_METADATA_TTL": text}).ttl == expected


@pytest.mark.parametrize("text", ["", "1x", "s", "10s junk", "-1s"])
def test_other_times_are_usage_errors(text: str) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(["--timeout", text], {})
    assert exc.value.code == 2
