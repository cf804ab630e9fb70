"""Bad input to the ssh and ftp patterns is refused by `pattern generate`, in one line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from support import CATALOGUE, Result, run_pattern

APP = ("--name", "shop", "--app-image", "docker.io/library/debian:bookworm-slim")


def generate(*args: str) -> Result:
    return run_pattern("generate", *APP, *args, catalogue=CATALOGUE)


def one_error(result: Result) -> str:
    assert result.code == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def public_key(tmp_path_factory: pytest.TempPathFactory) -> str:
    key = tmp_path_factory.mktemp("key") / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "op@laptop",
                    "-f", str(key)], check=True)
    return Path(f"{key}.pub").read_text().strip()


@pytest.mark.parametrize("key", [
    "ssh-ed25519 AAAA",  # truncated
    "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",  # wrong type
    "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",  # no type
    "-----BEGIN OPENSSH PRIVATE KEY-----",  # a private key pasted by mistake
])
def test_a_malformed_public_key_is_refused(key: str) -> None:
    error = one_error(generate("--with", "ssh", "--set", f"ssh.authorizedKeys={key}"))
    assert error.startswith("error: ssh.authorizedKeys: ")
    assert "is not a list of OpenSSH public keys" in error


def test_valid_trial_keys_reach_the_sidecar_verbatim(public_key: str) -> None:
    keys = f"{public_key}\n{public_key.replace('op@laptop', 'second')}"
    result = generate("--with", "ssh", "--set", f"ssh.authorizedKeys={keys}")
    assert result.code == 0, result.stderr
    pod = yaml.safe_load(result.stdout)
    env = {e["name"]: e["value"] for e in pod["spec"]["initContainers"][0]["env"]}
    assert env["SSH_AUTHORIZED_KEYS"] == keys
    assert "SSH_PASSWORD_FILE" not in env  # key-only unless a password Secret is named


def test_an_inline_password_is_not_a_parameter() -> None:
    error = one_error(generate("--with", "ssh", "--set", "ssh.password=hunter2"))
    assert error == ("error: ssh.password: unknown parameter of ssh "
                     "(did you mean passwordSecret?)\n")


def test_root_is_not_a_login_name() -> None:
    error = one_error(generate("--with", "ssh", "--set", "ssh.user=root"))
    assert error.startswith("error: ssh.user: 'root' must be a login name")


@pytest.mark.parametrize(("low", "high", "message"), [
    (30000, 30020, "passive range 30000-30020 has 21 ports; at most 20"),
    (30009, 30000, "passivePortMax 30000 is below passivePortMin 30009"),
])
def test_a_bad_passive_range_is_refused(low: int, high: int, message: str) -> None:
    error = one_error(generate("--with", "ftp", "--set", "ftp.usersSecret=users",
                               "--set", f"ftp.passivePortMin={low}",
                               "--set", f"ftp.passivePortMax={high}"))
    assert error.startswith(f"error: ftp: {message}")


def test_ftp_needs_a_users_secret_and_has_no_inline_password() -> None:
    error = one_error(generate("--with", "ftp", "--set", "ftp.password=x"))
    assert "ftp.password: unknown parameter of ftp" in error
    assert "ftp.usersSecret: is required" in error


def test_the_service_lists_every_passive_port() -> None:
    result = generate("--with", "ftp", "--set", "ftp.usersSecret=users",
                      "--set", "ftp.passivePortMax=30002", "--set", "ftp.serviceType=NodePort")
    assert result.code == 0, result.stderr
    service, pod = yaml.safe_load_all(result.stdout)
    assert [(p["port"], p.get("nodePort")) for p in service["spec"]["ports"]] == [
        (2121, None), (30000, 30000), (30001, 30001), (30002, 30002)]
    assert service["spec"]["selector"] == {"app.kubernetes.io/name": "shop"}
    sidecar = pod["spec"]["initContainers"][0]
    assert [p["containerPort"] for p in sidecar["ports"]] == [2121, 30000, 30001, 30002]
