"""Start-up helpers the Python sidecars share: flags with environment twins (add_flag,
add_switch), and Secret files, passwords and the daemon hand-over (ssh, ftp).

An image takes this file from the named build context `common` (images/_common) and puts it
beside its program.
"""

from __future__ import annotations

import argparse
import os
import socket
import stat
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

EXIT_CONFIG = 2


class ConfigError(Exception):
    """A start-up input the operator must fix; printed without a traceback."""


def env_twin(prefix: str, flag: str) -> str:
    return prefix + flag.lstrip("-").upper().replace("-", "_")


def add_flag(
    parser: argparse.ArgumentParser, prefix: str, flag: str, default: str | None, help_text: str,
    *, type: Callable[[str], Any] | None = None, choices: Sequence[Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> None:
    """A flag whose default comes from its environment twin (in `environ`, os.environ unless
    given); the flag wins.

    `type` turns the text into a value and refuses bad text (argparse.ArgumentTypeError says
    why, ValueError gives argparse's "invalid <type> value"); `choices` are the values
    accepted. Both apply to the twin as to the flag: argparse converts a text default as it
    converts a flag's text, and the choices are checked in that conversion too (argparse checks
    them for a flag only). Bad text either way is argparse's usage error, exit 2.
    """
    env = env_twin(prefix, flag)
    convert = type
    if choices is not None:
        convert = _one_of(tuple(choices), type)
    parser.add_argument(
        flag,
        default=(os.environ if environ is None else environ).get(env, default),
        type=convert,
        choices=choices,
        help=f"{help_text} (env {env}; default: {default})",
    )


def _one_of(choices: tuple[Any, ...], type: Callable[[str], Any] | None) -> Callable[[str], Any]:
    def checked(text: str) -> Any:
        value = type(text) if type else text
        if value not in choices:
            listed = ", ".join(map(repr, choices))
            raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {listed})")
        return value

    checked.__name__ = getattr(type, "__name__", "choice")  # for argparse's "invalid int value"
    return checked


ON, OFF = ("1", "true", "yes", "on"), ("", "0", "false", "no", "off")


def on_off(text: str) -> bool:
    """An environment twin's on/off text (any case): 1/true/yes/on, or 0/false/no/off/empty."""
    if text.strip().lower() in ON:
        return True
    if text.strip().lower() in OFF:
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is neither on ({'/'.join(ON)}) "
                                     f"nor off ({'/'.join(OFF[1:])} or empty)")


class _Switch(argparse.Action):
    """Given: on. Not given: the default, which argparse converts with on_off when it is the
    environment twin's text."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kw: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, type=on_off, **kw)

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: Any, option_string: str | None = None) -> None:
        setattr(namespace, self.dest, True)


def add_switch(
    parser: argparse.ArgumentParser, prefix: str, flag: str, help_text: str,
    *, environ: Mapping[str, str] | None = None,
) -> None:
    """An on/off flag that takes no value (given: on), off by default; its environment twin
    turns it on or off with true/false text (on_off; other text is a usage error, exit 2)."""
    env = env_twin(prefix, flag)
    parser.add_argument(
        flag,
        action=_Switch,
        default=(os.environ if environ is None else environ).get(env, False),
        help=f"{help_text} (env {env}=true; default: off)",
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
    import glob  # here: only the ssh and ftp images look for it

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
