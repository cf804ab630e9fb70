"""Start-up logic of the ssh and ftp images, run locally without containers."""

from __future__ import annotations

import importlib
import os
import subprocess
import warnings
from pathlib import Path
from types import ModuleType

import pytest

IMAGES = Path(__file__).resolve().parents[3] / "images"


# In the image sidecar_common sits beside the program; here it comes from images/_common
# (pyproject's pytest pythonpath lists both folders).
ssh: ModuleType = importlib.import_module("ssh_sidecar")
ftp: ModuleType = importlib.import_module("ftp_sidecar")


def verify(password: str, hashed: str) -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

        return crypt.crypt(password, hashed) == hashed


@pytest.fixture(scope="module")
def public_key(tmp_path_factory: pytest.TempPathFactory) -> str:
    key = tmp_path_factory.mktemp("key") / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key.with_suffix(".pub").read_text().strip()


def secret_mount(root: Path, files: dict[str, str]) -> Path:
    """Lay files out as a kubelet Secret volume: ..data symlink, 0644, symlinked entries."""
    version = root / "..2026_11_29_00_00_00.000000001"
    version.mkdir(parents=True)
    for name, text in files.items():
        (version / name).write_text(text)
        (version / name).chmod(0o644)
    (root / "..data").symlink_to(version.name)
    for name in files:
        (root / name).symlink_to(f"..data/{name}")
    return root


# ---- ssh: authorized keys -------------------------------------------------------------


def test_valid_key_lines_are_kept_and_comments_skipped(public_key: str) -> None:
    text = f'# team keys\n\n{public_key}\nfrom="10.0.0.0/8",no-pty {public_key}\n'
    assert ssh.parse_authorized_keys(text, "keys") == [
        public_key,
        f'from="10.0.0.0/8",no-pty {public_key}',
    ]


@pytest.mark.parametrize(
    "mangle",
    [
        lambda k: k.replace("ssh-ed25519", "ssh-rsa", 1),  # type does not match the blob
        lambda k: k[: len(k) // 2],  # truncated base64
        lambda k: k.split()[0] + " " + k.split()[1][:-4] + " c",  # blob cut at a 4-char boundary
        lambda k: "ssh-ed25519",  # no blob at all
        lambda k: "hello world",
    ],
)
def test_malformed_key_is_an_error_naming_the_line(public_key: str, mangle: object) -> None:
    assert callable(mangle)
    with pytest.raises(ssh.ConfigError, match=r"keys:2: not a valid OpenSSH public key"):
        ssh.parse_authorized_keys(f"{public_key}\n{mangle(public_key)}\n", "keys")


def test_keys_are_read_from_a_secret_style_mount(tmp_path: Path, public_key: str) -> None:
    mount = secret_mount(tmp_path / "keys", {"alice.pub": public_key, "bob.pub": public_key})
    assert ssh.collect_authorized_keys(str(mount), None) == [public_key, public_key]


def test_inline_keys_accept_escaped_newlines(public_key: str) -> None:
    assert ssh.collect_authorized_keys(None, f"{public_key}\\n{public_key}") == [public_key] * 2


# ---- ssh: passwd, group, password --------------------------------------------------------

BASE_PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    "app:x:999:999:old app:/home/app:/bin/sh\n"
    "clash:x:4321:4321::/:/bin/sh\n"
)


def test_passwd_replaces_clashing_entries_and_keeps_root() -> None:
    who = ssh.Identity("app", 4321, 4322, "/data", "/bin/bash")
    lines = ssh.passwd_text(BASE_PASSWD, who, "*").splitlines()
    assert lines[0].startswith("root:x:0:0:")
    assert [line for line in lines if ":4321:" in line or line.startswith("app:")] == [
        "app:*:4321:4322:ssh sidecar:/data:/bin/bash"
    ]


def test_group_is_added_only_for_a_new_gid() -> None:
    who = ssh.Identity("app", 4321, 4322, "/data", "/bin/bash")
    assert ssh.group_text("root:x:0:\n", who).splitlines() == ["root:x:0:", "app:x:4322:"]
    assert ssh.group_text("root:x:0:\nusers:x:4322:\n", who).splitlines() == [
        "root:x:0:",
        "users:x:4322:",
    ]


def test_password_is_stored_as_a_sha512_crypt_hash(tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("correct horse\n")
    hashed = ssh.hash_password(ssh.read_password(str(secret)))
    assert hashed.startswith("$6$") and verify("correct horse", hashed)
    assert not verify("wrong", hashed)


def test_empty_password_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("\n")
    with pytest.raises(ssh.ConfigError, match="is empty"):
        ssh.read_password(str(tmp_path / "pw"))


# ---- ssh: host keys -------------------------------------------------------------------------


def make_host_key(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    key = directory / "ssh_host_ed25519_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def test_secret_host_keys_are_copied_with_mode_0600(tmp_path: Path) -> None:
    original = make_host_key(tmp_path / "made")
    mount = secret_mount(
        tmp_path / "secret",
        {original.name: original.read_text(), original.name + ".pub": "ignored"},
    )
    state = tmp_path / "state"
    state.mkdir()
    copies = ssh.resolve_host_keys(str(mount), state, dict(os.environ))
    assert [c.name for c in copies] == ["ssh_host_ed25519_key"]
    assert copies[0].read_text() == original.read_text()
    assert copies[0].stat().st_mode & 0o777 == 0o600
    assert not copies[0].is_symlink()


def test_empty_writable_host_key_dir_gets_persistent_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    volume = tmp_path / "volume"
    volume.mkdir()
    state = tmp_path / "state"
    state.mkdir()
    first = ssh.resolve_host_keys(str(volume), state, dict(os.environ))
    assert sorted(p.name for p in volume.iterdir() if not p.name.endswith(".pub")) == [
        "ssh_host_ed25519_key",
        "ssh_host_rsa_key",
    ]
    assert "WARNING: generated new host keys" in capsys.readouterr().err
    # A restart finds the same keys instead of generating new ones.
    second = ssh.resolve_host_keys(str(volume), state, dict(os.environ))
    assert [p.read_text() for p in second] == [p.read_text() for p in first]
    assert capsys.readouterr().err == ""


def test_no_host_key_dir_means_ephemeral_keys_and_a_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copies = ssh.resolve_host_keys(None, tmp_path, dict(os.environ))
    assert len(copies) == 2
    assert "ephemeral host keys" in capsys.readouterr().err


# ---- ssh: config and refusals ------------------------------------------------------------------


def test_sshd_config_is_key_only_and_never_root(tmp_path: Path) -> None:
    who = ssh.Identity("app", 4321, 4322, "/data", "/bin/bash")
    config = ssh.sshd_config(2222, who, [tmp_path / "k"], tmp_path / "ak", False, {}, "INFO")
    lines = set(config.splitlines())
    assert {
        "PasswordAuthentication no",
        "PermitRootLogin no",
        "AllowUsers app",
        "StrictModes yes",
        "Port 2222",
        "Subsystem sftp internal-sftp",
    } <= lines
    with_password = ssh.sshd_config(2222, who, [], tmp_path / "ak", True, {}, "INFO")
    assert "PasswordAuthentication yes" in with_password.splitlines()


def args_for(parser_argv: list[str]) -> object:
    return ssh.build_parser().parse_args(parser_argv)


def test_root_uid_and_no_credentials_are_refused(tmp_path: Path) -> None:
    args = args_for(["--data-dir", str(tmp_path), "--state-dir", str(tmp_path / "s")])
    with pytest.raises(ssh.ConfigError, match="refusing to run as root"):
        ssh.prepare(args, 0, 0)
    with pytest.raises(ssh.ConfigError, match="no way to log in"):
        ssh.prepare(args, 4321, 4322)
    root_login = args_for(["--user", "root", "--data-dir", str(tmp_path)])
    with pytest.raises(ssh.ConfigError, match="not an allowed login name"):
        ssh.prepare(root_login, 4321, 4322)


def test_every_flag_has_an_env_twin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SSH_PORT", "2200")
    monkeypatch.setenv("SSH_USER", "mysql")
    args = ssh.build_parser().parse_args(["--port", "2300"])
    assert (args.port, args.user) == ("2300", "mysql")  # the flag wins over the env
    assert "SSH_HOST_KEYS_DIR" in ssh.build_parser().format_help()


# ---- ftp ----------------------------------------------------------------------------------


def test_plain_users_are_hashed_and_colons_stay_in_passwords() -> None:
    users = ftp.parse_users("# users\nalice:s3cret\nbob:pa:ss:w:o:r:d\n", "users")
    assert [name for name, _ in users] == ["alice", "bob"]
    assert verify("s3cret", users[0][1])
    assert verify("pa:ss:w:o:r:d", users[1][1])


def test_ftpasswd_lines_keep_their_hash() -> None:
    hashed = ftp.hash_password("pw")
    users = ftp.parse_users(f"carol:{hashed}:1001:1001::/home/carol:/bin/bash\n", "users")
    assert users == [("carol", hashed)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alice\n", "expected 'user:password'"),
        ("alice:\n", "expected 'user:password'"),
        ("root:pw\n", "not allowed"),
        ("anonymous:pw\n", "not allowed"),
        ("a b:pw\n", "not allowed"),
        ("alice:pw\nalice:pw2\n", "listed twice"),
        ("carol:plain:1:1::/h:/bin/sh\n", "without a crypt hash"),
    ],
)
def test_bad_users_file_lines_are_errors(text: str, message: str) -> None:
    with pytest.raises(ftp.ConfigError, match=message):
        ftp.parse_users(text, "users")


def test_auth_user_file_maps_everyone_to_the_container_uid_and_data_dir() -> None:
    rows = ftp.auth_user_file([("alice", "$6$x")], 4321, 4322, "/data", True).splitlines()
    assert rows == ["alice:$6$x:4321:4322::/data:/bin/false", "ftp:*:4321:4322::/data:/bin/false"]


@pytest.mark.parametrize(
    ("value", "expected"), [("30000-30009", (30000, 30009)), ("2100", (2100, 2100))]
)
def test_passive_range_parses(value: str, expected: tuple[int, int]) -> None:
    assert ftp.parse_port_range(value) == expected


@pytest.mark.parametrize("value", ["30009-30000", "80-90", "a-b", "30000-70000"])
def test_bad_passive_range_is_an_error(value: str) -> None:
    with pytest.raises(ftp.ConfigError, match="--passive-ports"):
        ftp.parse_port_range(value)


def settings(**changes: object) -> object:
    base: dict[str, object] = dict(
        port=2121,
        data_dir="/data",
        passive=(30000, 30009),
        masquerade=None,
        tls="on",
        cert_kind="rsa",
        anonymous=False,
        umask="022",
    )
    base.update(changes)
    return ftp.Settings(**base)


def test_proftpd_config_jails_users_and_sets_passive_mode(tmp_path: Path) -> None:
    lines = ftp.proftpd_config(settings(masquerade="203.0.113.7"), tmp_path).splitlines()
    assert {
        "VRootEngine on",
        "DefaultRoot ~",
        "PassivePorts 30000 30009",
        "MasqueradeAddress 203.0.113.7",
        "TLSRequired off",
        "LoadModule mod_tls.c",
        f"TLSRSACertificateFile {tmp_path}/tls/cert.pem",
    } <= set(lines)
    assert not any(line.startswith("<Anonymous") for line in lines)


def test_proftpd_config_variants(tmp_path: Path) -> None:
    required = ftp.proftpd_config(settings(tls="required", cert_kind="ec"), tmp_path)
    assert "TLSRequired on" in required and "TLSECCertificateFile" in required
    plain = ftp.proftpd_config(settings(tls="off"), tmp_path)
    assert "mod_tls" not in plain and "TLSEngine" not in plain
    anonymous = ftp.proftpd_config(settings(anonymous=True), tmp_path)
    assert "<Anonymous /data>" in anonymous
    assert "  <Limit WRITE SITE_CHMOD>\n    DenyAll\n  </Limit>" in anonymous


def test_ftp_refuses_root_and_needs_users(tmp_path: Path) -> None:
    args = ftp.build_parser().parse_args(["--data-dir", str(tmp_path)])
    with pytest.raises(ftp.ConfigError, match="refusing to run as root"):
        ftp.prepare(args, 0, 0)
    with pytest.raises(ftp.ConfigError, match="no users"):
        ftp.prepare(args, 4321, 4322)
    bad_bool = ftp.build_parser().parse_args(["--anonymous", "maybe"])
    with pytest.raises(ftp.ConfigError, match="expected true or false"):
        ftp.prepare(bad_bool, 4321, 4322)


def test_tls_cert_from_secret_is_copied_private(tmp_path: Path) -> None:
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=t",
            "-keyout",
            str(tmp_path / "tls.key"),
            "-out",
            str(tmp_path / "tls.crt"),
        ],
        check=True,
        capture_output=True,
    )
    mount = secret_mount(
        tmp_path / "secret",
        {
            "tls.crt": (tmp_path / "tls.crt").read_text(),
            "tls.key": (tmp_path / "tls.key").read_text(),
        },
    )
    state = tmp_path / "state"
    kind = ftp.install_tls(str(mount / "tls.crt"), str(mount / "tls.key"), state)
    assert kind == "ec"
    assert (state / "tls" / "key.pem").stat().st_mode & 0o777 == 0o600
    with pytest.raises(ftp.ConfigError, match="go together"):
        ftp.install_tls(str(mount / "tls.crt"), None, state)


@pytest.mark.parametrize("path", ["/data:x", "/data\nroot", "/my data", 'x/"y', "relative"])
def test_paths_that_would_break_passwd_or_config_lines_are_refused(path: str) -> None:
    ssh_args = args_for(["--data-dir", path, "--authorized-keys", "x"])
    with pytest.raises(ssh.ConfigError, match=r"--data-dir .*expected an absolute path"):
        ssh.prepare(ssh_args, 4321, 4322)
    ftp_args = ftp.build_parser().parse_args(["--data-dir", path, "--anonymous", "true"])
    with pytest.raises(ftp.ConfigError, match=r"--data-dir .*expected an absolute path"):
        ftp.prepare(ftp_args, 4321, 4322)


def test_a_masquerade_address_that_would_break_the_config_is_refused(tmp_path: Path) -> None:
    args = ftp.build_parser().parse_args(["--data-dir", str(tmp_path), "--anonymous", "true",
                                          "--masquerade-address", "1.2.3.4\nUser root"])
    with pytest.raises(ftp.ConfigError, match="expected a host name or an IPv4 address"):
        ftp.prepare(args, 4321, 4322)
