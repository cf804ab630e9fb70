"""Start-up helpers shared by the ssh and ftp sidecars.

Each image folder is its own build context, so this file exists once per image; the copies
must stay byte-identical (tests/images/access checks it). Edit one, then copy it over.
"""

from __future__ import annotations

import argparse
import glob
import os
import socket
import stat
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

EXIT_CONFIG = 2


class ConfigError(Exception):
    """A start-up input the operator must fix; printed without a traceback."""


def env_twin(prefix: str, flag: str) -> str:
    return prefix + flag.lstrip("-").upper().replace("-", "_")


def add_flag(
    parser: argparse.ArgumentParser, prefix: str, flag: str, default: str | None, help_text: str
) -> None:
    """A flag whose default comes from its environment twin; the flag wins."""
    env = env_twin(prefix, flag)
    parser.add_argument(
        flag,
        default=os.environ.get(env, default),
        help=f"{help_text} (env {env}; default: {default})",
    )


def plain_path(path: str) -> bool:
    """An absolute path that is safe inside passwd lines and daemon config lines."""
    return path.startswith("/") and not any(c in path for c in ':"#\\') and all(
        c.isprintable() and not c.isspace() for c in path
    )


def hash_password(password: str) -> str:
    # crypt is deprecated in 3.11 but is the only stdlib route to a libcrypt hash the daemons
    # check (sshd through getpwnam, ProFTPD through AuthUserFile).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_SHA512))


def write_private(path: Path, data: bytes) -> None:
    """Write a 0600 file that the daemons accept (Secrets arrive 0644, behind symlinks)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def nss_wrapper_library() -> str:
    found = sorted(glob.glob("/usr/lib/*/libnss_wrapper.so"))
    if not found:
        raise ConfigError("libnss_wrapper.so not found (package libnss-wrapper)")
    return found[0]


def prepare_state_dir(path: Path) -> None:
    # The daemons refuse key, scoreboard and user files in world-writable dirs such as /tmp.
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise ConfigError(f"state dir {path} must be a directory owned by uid {os.getuid()}")
    os.chmod(path, 0o700)


def warn(program: str, message: str) -> None:
    print(f"{program}: WARNING: {message}", file=sys.stderr, flush=True)


def check_greeting(port: int, expected: bytes, goodbye: bytes = b"") -> int:
    """The healthcheck: 0 when the daemon on 127.0.0.1:port greets with `expected`."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=3) as conn:
            greeting = conn.makefile("rb").readline(512)
            if goodbye:
                conn.sendall(goodbye)
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    if not greeting.startswith(expected):
        print(f"unhealthy: unexpected greeting {greeting!r}", file=sys.stderr)
        return 1
    return 0


Prepared = tuple[list[str], dict[str, str]]


def exec_daemon(program: str, prepare: Callable[[], Prepared]) -> int:
    """Write the daemon's files, then become it: as PID 1 it handles SIGTERM and reaps."""
    try:
        command, env = prepare()
    except (ConfigError, ValueError) as exc:
        print(f"{program}: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    sys.stderr.flush()
    os.execve(command[0], command, env)


def healthcheck_main(
    program: str, prefix: str, default_port: str, argv: Sequence[str], expected: bytes,
    goodbye: bytes = b"",
) -> int:
    parser = argparse.ArgumentParser(prog=f"{program} healthcheck")
    add_flag(parser, prefix, "--port", default_port, "port to check")
    return check_greeting(int(parser.parse_args(argv).port), expected, goodbye)
