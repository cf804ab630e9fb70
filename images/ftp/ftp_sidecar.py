#!/usr/bin/python3
"""Start ProFTPD (FTP + explicit FTPS) as whatever non-root uid/gid the pod gives us.

Every virtual user maps to the container's uid/gid and has the shared data dir as home;
mod_vroot jails sessions there because chroot(2) needs root. ProFTPD resolves its own
User/Group through NSS, so a passwd entry for the running uid is supplied with nss_wrapper.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import socket
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sidecar_common import (
    ConfigError,
    add_flag,
    exec_daemon,
    hash_password,
    healthcheck_main,
    nss_wrapper_library,
    plain_path,
    prepare_state_dir,
    write_private,
)
from sidecar_common import warn as sidecar_warn

PROGRAM = "ftp-sidecar"
ENV_PREFIX = "FTP_"
PROFTPD = "/usr/sbin/proftpd"
DAEMON_ACCOUNT = "ftpd"
ANONYMOUS_ACCOUNT = "ftp"
RESERVED_NAMES = frozenset({"root", "anonymous", ANONYMOUS_ACCOUNT, DAEMON_ACCOUNT})
NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_-.@")
TLS_MODES = ("on", "required", "off")
# MasqueradeAddress lands in proftpd.conf: a host name or an IPv4 address, nothing else.
HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Settings:
    port: int
    data_dir: str
    passive: tuple[int, int]
    masquerade: str | None
    tls: str
    cert_kind: str
    anonymous: bool
    umask: str


warn = partial(sidecar_warn, PROGRAM)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="ProFTPD serving FTP and explicit FTPS for virtual users jailed to a "
        "shared data dir, as a non-root uid. 'ftp-sidecar healthcheck' checks the greeting.",
    )
    flag = partial(add_flag, parser, ENV_PREFIX)
    flag("--port", "2121", "control connection port")
    flag("--data-dir", "/data", "shared data dir; every user is jailed to it")
    flag(
        "--users-file",
        None,
        "file (Secret) of 'user:password' lines or ftpasswd-format lines",
    )
    flag(
        "--passive-ports",
        "30000-30009",
        "passive data port range MIN-MAX; publish every port of it",
    )
    flag(
        "--masquerade-address",
        None,
        "address announced in PASV replies (the node or load balancer address clients reach)",
    )
    flag("--tls", "on", "explicit FTPS (AUTH TLS): on, required or off")
    flag("--tls-cert-file", None, "PEM certificate (Secret tls.crt)")
    flag("--tls-key-file", None, "PEM private key (Secret tls.key)")
    flag("--anonymous", "false", "true: also allow read-only anonymous login")
    flag("--umask", "022", "umask for uploaded files and dirs")
    flag("--state-dir", "/tmp/ftp-sidecar", "private dir for generated files")
    return parser


def parse_bool(value: str, flag: str) -> bool:
    lowered = value.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ConfigError(f"{flag}: expected true or false, got {value!r}")


def parse_port_range(value: str) -> tuple[int, int]:
    low_text, sep, high_text = value.partition("-")
    try:
        low, high = int(low_text), int(high_text if sep else low_text)
    except ValueError as exc:
        raise ConfigError(f"--passive-ports: expected MIN-MAX, got {value!r}") from exc
    if not 1024 <= low <= high <= 65535:
        raise ConfigError(f"--passive-ports: need 1024 <= MIN <= MAX <= 65535, got {value!r}")
    return low, high


def valid_name(name: str) -> bool:
    return bool(name) and name[0] not in "-." and set(name.lower()) <= NAME_CHARS


def is_ftpasswd_line(fields: list[str]) -> bool:
    return len(fields) == 7 and fields[2].isdigit() and fields[3].isdigit()


def parse_users(text: str, source: str) -> list[tuple[str, str]]:
    """Return (name, crypt hash) pairs; plain passwords are hashed, ftpasswd lines kept."""
    users: list[tuple[str, str]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = line.split(":")
        where = f"{source}:{number}"
        if is_ftpasswd_line(fields):
            name, secret = fields[0], fields[1]
            if not secret.startswith("$"):
                raise ConfigError(f"{where}: ftpasswd line without a crypt hash")
        else:
            name, sep, password = line.partition(":")
            if not sep or not password:
                raise ConfigError(f"{where}: expected 'user:password'")
            secret = hash_password(password)
        if not valid_name(name) or name in RESERVED_NAMES:
            raise ConfigError(f"{where}: user name {name!r} is not allowed")
        if any(name == seen for seen, _ in users):
            raise ConfigError(f"{where}: user {name!r} is listed twice")
        users.append((name, secret))
    return users


def auth_user_file(
    users: Sequence[tuple[str, str]], uid: int, gid: int, home: str, anonymous: bool
) -> str:
    """ProFTPD AuthUserFile: every user shares the container uid/gid and the data dir."""
    rows = [(name, secret) for name, secret in users]
    if anonymous:
        rows.append((ANONYMOUS_ACCOUNT, "*"))
    return "".join(f"{name}:{secret}:{uid}:{gid}::{home}:/bin/false\n" for name, secret in rows)


def nss_passwd(base: str, uid: int, gid: int, home: str) -> str:
    """System passwd with the running uid renamed to the daemon account ProFTPD's User names."""
    kept = [
        line
        for line in base.splitlines()
        if line and line.split(":")[0] != DAEMON_ACCOUNT and line.split(":")[2:3] != [str(uid)]
    ]
    return (
        "\n".join([*kept, f"{DAEMON_ACCOUNT}:x:{uid}:{gid}:ftp sidecar:{home}:/bin/false"]) + "\n"
    )


def nss_group(base: str, gid: int) -> str:
    kept = [
        line
        for line in base.splitlines()
        if line and line.split(":")[0] != DAEMON_ACCOUNT and line.split(":")[2:3] != [str(gid)]
    ]
    return "\n".join([*kept, f"{DAEMON_ACCOUNT}:x:{gid}:"]) + "\n"


def proftpd_config(settings: Settings, state: Path) -> str:
    low, high = settings.passive
    lines = [
        "ModulePath /usr/lib/proftpd",
        "LoadModule mod_vroot.c",
        *(["LoadModule mod_tls.c"] if settings.tls != "off" else []),
        "ServerType standalone",
        'ServerName "ftp sidecar"',
        'ServerIdent on "ftp sidecar ready"',
        "DefaultServer on",
        f"Port {settings.port}",
        f"User {DAEMON_ACCOUNT}",
        f"Group {DAEMON_ACCOUNT}",
        "UseIPv6 off",
        "UseReverseDNS off",
        f"PidFile {state}/proftpd.pid",
        f"ScoreboardFile {state}/proftpd.scoreboard",
        # These features need root or a writable /var; off keeps the log free of errors.
        "ControlsEngine off",
        "CapabilitiesEngine off",
        "DelayEngine off",
        "WtmpLog off",
        "TransferLog none",
        # The image has no locales (a staged root): mod_lang scans an empty folder instead.
        f"LangPath {state}/lang",
        "AuthOrder mod_auth_file.c",
        f"AuthUserFile {state}/ftpd.passwd",
        f"AuthGroupFile {state}/ftpd.group",
        "RequireValidShell off",
        "UseFtpUsers off",
        # chroot(2) needs root; mod_vroot gives the same client view without it.
        "VRootEngine on",
        "DefaultRoot ~",
        "AllowOverwrite on",
        # Resumed uploads: REST before STOR (lftp put -c) and APPE (curl -C - -T).
        "AllowStoreRestart on",
        f"Umask {settings.umask}",
        f"PassivePorts {low} {high}",
        *([f"MasqueradeAddress {settings.masquerade}"] if settings.masquerade else []),
    ]
    if settings.tls != "off":
        prefix = "TLSRSA" if settings.cert_kind == "rsa" else "TLSEC"
        lines += [
            "TLSEngine on",
            "TLSProtocol TLSv1.2 TLSv1.3",
            f"{prefix}CertificateFile {state}/tls/cert.pem",
            f"{prefix}CertificateKeyFile {state}/tls/key.pem",
            # Python's ftplib and many clients do not reuse the control TLS session.
            "TLSOptions NoSessionReuseRequired",
            "TLSVerifyClient off",
            f"TLSRequired {'on' if settings.tls == 'required' else 'off'}",
        ]
    if settings.anonymous:
        lines += [
            f"<Anonymous {settings.data_dir}>",
            f"  User {ANONYMOUS_ACCOUNT}",
            f"  Group {DAEMON_ACCOUNT}",
            f"  UserAlias anonymous {ANONYMOUS_ACCOUNT}",
            "  AnonRequirePassword off",
            "  <Limit WRITE SITE_CHMOD>",
            "    DenyAll",
            "  </Limit>",
            "</Anonymous>",
        ]
    return "\n".join(lines) + "\n"


def certificate_kind(cert: Path) -> str:
    result = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ConfigError(f"{cert} is not a PEM certificate")
    if "rsaEncryption" in result.stdout:
        return "rsa"
    if "id-ecPublicKey" in result.stdout:
        return "ec"
    raise ConfigError(f"{cert}: only RSA and EC certificates are supported")


def install_tls(cert_file: str | None, key_file: str | None, state: Path) -> str:
    """Copy or create cert.pem/key.pem 0600 in state; return the key kind."""
    target = state / "tls"
    if bool(cert_file) != bool(key_file):
        raise ConfigError("--tls-cert-file and --tls-key-file go together")
    if cert_file and key_file:
        for source, name in ((cert_file, "cert.pem"), (key_file, "key.pem")):
            try:
                write_private(target / name, Path(source).read_bytes())
            except FileNotFoundError as exc:
                raise ConfigError(f"TLS file {source} does not exist") from exc
        return certificate_kind(target / "cert.pem")
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "825",
            "-subj",
            f"/CN={socket.gethostname()}",
            "-keyout",
            str(target / "key.pem"),
            "-out",
            str(target / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    os.chmod(target / "key.pem", 0o600)
    warn("no --tls-cert-file: generated a self-signed certificate; clients cannot verify it")
    return "rsa"


def read_users(users_file: str | None) -> list[tuple[str, str]]:
    if not users_file:
        return []
    try:
        text = Path(users_file).read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read users file {users_file}: {exc.strerror}") from exc
    return parse_users(text, users_file)


def prepare(args: argparse.Namespace, uid: int, gid: int) -> tuple[list[str], dict[str, str]]:
    """Write every file ProFTPD needs; return its argv and environment."""
    if uid == 0:
        raise ConfigError("refusing to run as root: set runAsUser to the app's uid")
    anonymous = parse_bool(args.anonymous, "--anonymous")
    if args.tls not in TLS_MODES:
        raise ConfigError(f"--tls must be one of {', '.join(TLS_MODES)}")
    if not plain_path(args.data_dir):
        raise ConfigError(f"--data-dir {args.data_dir!r}: expected an absolute path without "
                          "spaces or :")
    if args.masquerade_address and not HOST_NAME.match(args.masquerade_address):
        raise ConfigError(f"--masquerade-address {args.masquerade_address!r}: expected a host "
                          "name or an IPv4 address")
    if not Path(args.data_dir).is_dir():
        raise ConfigError(f"data dir {args.data_dir} does not exist")
    if not (len(args.umask) == 3 and set(args.umask) <= set("01234567")):
        raise ConfigError(f"--umask: expected three octal digits, got {args.umask!r}")
    users = read_users(args.users_file)
    if not users and not anonymous:
        raise ConfigError("no users: give --users-file (or --anonymous true)")
    state = Path(args.state_dir)
    prepare_state_dir(state)
    cert_kind = (
        install_tls(args.tls_cert_file, args.tls_key_file, state) if args.tls != "off" else "none"
    )
    settings = Settings(
        int(args.port),
        args.data_dir,
        parse_port_range(args.passive_ports),
        args.masquerade_address,
        args.tls,
        cert_kind,
        anonymous,
        args.umask,
    )
    write_private(
        state / "ftpd.passwd", auth_user_file(users, uid, gid, args.data_dir, anonymous).encode()
    )
    write_private(state / "ftpd.group", f"{DAEMON_ACCOUNT}:x:{gid}:\n".encode())
    write_private(
        state / "nss.passwd",
        nss_passwd(Path("/etc/passwd").read_text(), uid, gid, args.data_dir).encode(),
    )
    write_private(state / "nss.group", nss_group(Path("/etc/group").read_text(), gid).encode())
    (state / "lang").mkdir(mode=0o700, exist_ok=True)
    write_private(state / "proftpd.conf", proftpd_config(settings, state).encode())
    env = {
        "PATH": "/usr/bin:/bin:/usr/sbin:/sbin",
        "LD_PRELOAD": f"{uid_wrapper_library()} {nss_wrapper_library()}",
        "UID_WRAPPER": "1",
        "UID_WRAPPER_ROOT": "1",
        "NSS_WRAPPER_PASSWD": str(state / "nss.passwd"),
        "NSS_WRAPPER_GROUP": str(state / "nss.group"),
    }
    return [PROFTPD, "--nodaemon", "-c", str(state / "proftpd.conf")], env


def uid_wrapper_library() -> str:
    found = sorted(glob.glob("/usr/lib/*/libuid_wrapper.so*"))
    if not found:
        raise ConfigError("libuid_wrapper.so not found (package libuid-wrapper)")
    return found[0]


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["healthcheck"]:
        return healthcheck_main(PROGRAM, ENV_PREFIX, "2121", argv[1:], b"220", b"QUIT\r\n")
    args = build_parser().parse_args(argv)
    return exec_daemon(PROGRAM, lambda: prepare(args, os.getuid(), os.getgid()))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
