#!/usr/bin/python3
"""Start OpenSSH's sshd as whatever non-root uid/gid the pod gives us.

sshd needs a passwd entry, host keys and authorized keys with strict modes. Kubernetes
Secrets arrive root-owned, 0644 and behind symlinks, and the root filesystem is read-only,
so everything sshd reads is regenerated at each start in a private state dir under /tmp.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from sidecar_common import (
    ConfigError,
    add_flag,
    env_twin,
    exec_daemon,
    hash_password,
    healthcheck_main,
    nss_wrapper_library,
    plain_path,
    prepare_state_dir,
    write_private,
)
from sidecar_common import warn as sidecar_warn

PROGRAM = "ssh-sidecar"
ENV_PREFIX = "SSH_"
SSHD = "/usr/sbin/sshd"
# Key types OpenSSH 9.2 accepts for users (ssh-dss is disabled), with the number of
# length-prefixed fields their public blob holds.
KEY_FIELDS = {
    "ssh-ed25519": 2,
    "ssh-rsa": 3,
    "ecdsa-sha2-nistp256": 3,
    "ecdsa-sha2-nistp384": 3,
    "ecdsa-sha2-nistp521": 3,
    "sk-ssh-ed25519@openssh.com": 3,
    "sk-ecdsa-sha2-nistp256@openssh.com": 4,
}
GENERATED_HOST_KEYS = (("ed25519", "ssh_host_ed25519_key"), ("rsa", "ssh_host_rsa_key"))


@dataclass(frozen=True)
class Identity:
    user: str
    uid: int
    gid: int
    home: str
    shell: str


warn = partial(sidecar_warn, PROGRAM)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="OpenSSH (shell, scp, sftp, rsync) into a shared data dir, as a non-root "
        "uid. 'ssh-sidecar healthcheck' checks the local sshd banner.",
    )
    flag = partial(add_flag, parser, ENV_PREFIX)
    flag("--port", "2222", "TCP port sshd listens on")
    flag("--user", "app", "login name; it gets the container's uid/gid")
    flag("--data-dir", "/data", "shared data dir, the login user's home")
    flag("--shell", "/bin/bash", "login shell")
    flag("--authorized-keys-file", None, "file or dir (Secret) of public keys")
    flag("--authorized-keys", None, "public keys inline, for trials")
    flag(
        "--password-file",
        None,
        "file (Secret) whose first line enables password login with that password",
    )
    flag(
        "--host-keys-dir",
        None,
        "dir (Secret or volume) with ssh_host_*_key "
        "files; generated into it when empty and writable",
    )
    flag("--state-dir", "/tmp/ssh-sidecar", "private dir for generated files")
    flag("--log-level", "INFO", "sshd LogLevel")
    return parser


def split_key_options(line: str) -> tuple[str, str]:
    """Split 'options keytype blob comment' at the first whitespace outside quotes."""
    quoted = False
    for index, char in enumerate(line):
        if char == '"':
            quoted = not quoted
        elif char.isspace() and not quoted:
            return line[:index], line[index:].strip()
    return line, ""


def blob_fields(blob: bytes) -> list[bytes] | None:
    """Split an SSH wire blob into its length-prefixed fields; None if it is truncated."""
    fields = []
    offset = 0
    while offset < len(blob):
        if offset + 4 > len(blob):
            return None
        size = int.from_bytes(blob[offset : offset + 4], "big")
        offset += 4
        if offset + size > len(blob):
            return None
        fields.append(blob[offset : offset + size])
        offset += size
    return fields


def check_key(fields: list[str]) -> bool:
    """True when fields start with a known key type and a complete blob of that type."""
    if len(fields) < 2 or fields[0] not in KEY_FIELDS:
        return False
    try:
        blob = base64.b64decode(fields[1], validate=True)
    except (binascii.Error, ValueError):
        return False
    parts = blob_fields(blob)
    return (
        parts is not None and len(parts) == KEY_FIELDS[fields[0]] and parts[0] == fields[0].encode()
    )


def parse_authorized_keys(text: str, source: str) -> list[str]:
    """Return the key lines of an authorized_keys text; malformed lines are errors."""
    keys: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if check_key(line.split()):
            keys.append(line)
            continue
        _options, rest = split_key_options(line)
        if not check_key(rest.split()):
            raise ConfigError(f"{source}:{number}: not a valid OpenSSH public key line")
        keys.append(line)
    return keys


def visible_files(directory: Path) -> list[Path]:
    """Regular files of a dir, following symlinks, skipping Secret-mount '..data' entries."""
    return sorted(p for p in directory.iterdir() if not p.name.startswith(".") and p.is_file())


def read_key_source(path: Path) -> str:
    if path.is_dir():
        return "\n".join(p.read_text() for p in visible_files(path))
    if not path.is_file():
        raise ConfigError(f"authorized keys file {path} does not exist")
    return path.read_text()


def collect_authorized_keys(keys_file: str | None, inline: str | None) -> list[str]:
    keys: list[str] = []
    if keys_file:
        keys += parse_authorized_keys(read_key_source(Path(keys_file)), keys_file)
    if inline:
        source = env_twin(ENV_PREFIX, "--authorized-keys")
        keys += parse_authorized_keys(inline.replace("\\n", "\n"), source)
    return keys


def read_password(path: str) -> str:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read password file {path}: {exc.strerror}") from exc
    if not lines or not lines[0]:
        raise ConfigError(f"password file {path} is empty")
    return lines[0]


def passwd_text(base: str, who: Identity, password_field: str) -> str:
    """System passwd minus entries clashing with the login user, plus the login user."""
    kept = [
        line
        for line in base.splitlines()
        if line and line.split(":")[0] != who.user and line.split(":")[2:3] != [str(who.uid)]
    ]
    entry = f"{who.user}:{password_field}:{who.uid}:{who.gid}:ssh sidecar:{who.home}:{who.shell}"
    return "\n".join([*kept, entry]) + "\n"


def group_text(base: str, who: Identity) -> str:
    """System group file; adds a group named after the user unless the gid already exists."""
    lines = [line for line in base.splitlines() if line]
    if any(line.split(":")[2:3] == [str(who.gid)] for line in lines):
        return "\n".join(lines) + "\n"
    lines = [line for line in lines if line.split(":")[0] != who.user]
    return "\n".join([*lines, f"{who.user}:x:{who.gid}:"]) + "\n"


def host_key_files(directory: Path) -> list[Path]:
    return [
        p
        for p in visible_files(directory)
        if not p.name.endswith(".pub") and p.read_bytes().startswith(b"-----BEGIN")
    ]


def generate_host_keys(directory: Path, env: dict[str, str]) -> list[Path]:
    created = []
    for key_type, name in GENERATED_HOST_KEYS:
        target = directory / name
        subprocess.run(
            ["ssh-keygen", "-q", "-t", key_type, "-N", "", "-C", "", "-f", str(target)],
            check=True,
            env=env,
        )
        created.append(target)
    return created


def resolve_host_keys(host_keys_dir: str | None, state: Path, env: dict[str, str]) -> list[Path]:
    """Find or create host keys, then copy them 0600 into state (sshd refuses open modes)."""
    if host_keys_dir:
        source = Path(host_keys_dir)
        if not source.is_dir():
            raise ConfigError(f"host keys dir {source} does not exist")
        found = host_key_files(source)
        if not found:
            if not os.access(source, os.W_OK):
                raise ConfigError(f"no ssh_host_*_key in {source} and it is not writable")
            found = generate_host_keys(source, env)
            warn(f"generated new host keys in {source}; they persist only as long as it does")
    else:
        generated = state / "generated"
        shutil.rmtree(generated, ignore_errors=True)
        generated.mkdir(mode=0o700)
        found = generate_host_keys(generated, env)
        warn(
            "no --host-keys-dir: generated ephemeral host keys; clients will see a new "
            "fingerprint after every restart"
        )
    copies = []
    for key in found:
        target = state / "host_keys" / key.name
        write_private(target, key.read_bytes())
        copies.append(target)
    return copies


def sshd_config(
    port: int,
    who: Identity,
    host_keys: Sequence[Path],
    keys_path: Path,
    password_login: bool,
    session_env: dict[str, str],
    log_level: str,
) -> str:
    lines = [f"Port {port}", *(f"HostKey {key}" for key in host_keys)]
    lines += [
        "PidFile none",
        "UsePAM no",
        "PermitRootLogin no",
        f"AllowUsers {who.user}",
        "PubkeyAuthentication yes",
        # StrictModes walks every parent dir of AuthorizedKeysFile up to /, and /tmp and
        # emptyDirs are world-writable; a command avoids that walk and keeps StrictModes on.
        "AuthorizedKeysFile none",
        f"AuthorizedKeysCommand /usr/bin/cat {keys_path}",
        f"AuthorizedKeysCommandUser {who.user}",
        f"PasswordAuthentication {'yes' if password_login else 'no'}",
        "KbdInteractiveAuthentication no",
        "PermitEmptyPasswords no",
        "StrictModes yes",
        "AllowTcpForwarding no",
        "AllowAgentForwarding no",
        "AllowStreamLocalForwarding no",
        "PermitTunnel no",
        "X11Forwarding no",
        "PrintMotd no",
        f"LogLevel {log_level}",
        "Subsystem sftp internal-sftp",
        "SetEnv " + " ".join(f"{k}={v}" for k, v in sorted(session_env.items())),
    ]
    return "\n".join(lines) + "\n"


def prepare(args: argparse.Namespace, uid: int, gid: int) -> tuple[list[str], dict[str, str]]:
    """Write every file sshd needs; return the sshd argv and its environment."""
    if uid == 0:
        raise ConfigError("refusing to run as root: set runAsUser/--user to the app's uid")
    if args.user == "root" or not _portable_name(args.user):
        raise ConfigError(f"--user {args.user!r} is not an allowed login name")
    port = int(args.port)
    for name, path in (("--data-dir", args.data_dir), ("--shell", args.shell)):
        if not plain_path(path):
            raise ConfigError(f"{name} {path!r}: expected an absolute path without spaces or :")
    data_dir = Path(args.data_dir)
    if not data_dir.is_dir():
        raise ConfigError(f"data dir {data_dir} does not exist")
    if not os.access(data_dir, os.W_OK):
        warn(f"data dir {data_dir} is not writable by uid {uid}; uploads will fail")
    keys = collect_authorized_keys(args.authorized_keys_file, args.authorized_keys)
    password = read_password(args.password_file) if args.password_file else None
    if not keys and password is None:
        raise ConfigError(
            "no way to log in: give --authorized-keys-file, --authorized-keys or --password-file"
        )
    state = Path(args.state_dir)
    prepare_state_dir(state)
    who = Identity(args.user, uid, gid, str(data_dir), args.shell)
    # '*' is an unusable hash that, unlike '!', does not mark the account as locked.
    field = hash_password(password) if password is not None else "*"
    write_private(
        state / "passwd", passwd_text(Path("/etc/passwd").read_text(), who, field).encode()
    )
    write_private(state / "group", group_text(Path("/etc/group").read_text(), who).encode())
    nss = {
        "LD_PRELOAD": nss_wrapper_library(),
        "NSS_WRAPPER_PASSWD": str(state / "passwd"),
        "NSS_WRAPPER_GROUP": str(state / "group"),
    }
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", **nss}
    host_keys = resolve_host_keys(args.host_keys_dir, state, env)
    keys_path = state / "authorized_keys"
    write_private(keys_path, "".join(k + "\n" for k in keys).encode())
    config = sshd_config(port, who, host_keys, keys_path, password is not None, nss, args.log_level)
    write_private(state / "sshd_config", config.encode())
    return [SSHD, "-D", "-e", "-f", str(state / "sshd_config")], env


def _portable_name(name: str) -> bool:
    allowed = set("abcdefghijklmnopqrstuvwxyz0123456789_-.")
    return bool(name) and name[0] != "-" and set(name.lower()) <= allowed


def main(argv: Sequence[str]) -> int:
    if argv[:1] == ["healthcheck"]:
        return healthcheck_main(PROGRAM, ENV_PREFIX, "2222", argv[1:], b"SSH-2.0-")
    args = build_parser().parse_args(argv)
    return exec_daemon(PROGRAM, lambda: prepare(args, os.getuid(), os.getgid()))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
