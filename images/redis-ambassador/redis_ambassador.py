#!/usr/bin/python3
"""Give the app one redis (or memcached) on localhost, spread over several servers by
twemproxy (Debian's `nutcracker`), which is run by the shared engine supervisor.

The nutcracker.yml is written under the state dir from flags (each with a REDIS_AMBASSADOR_
environment twin) and checked with `nutcracker -t` before the engine starts. nutcracker
cannot reload its configuration: a changed server list means a new container (the pattern
puts the list in the pod spec, so a change rolls the pod).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import engine_supervisor as supervisor
from sidecar_common import ConfigError, add_flag

PROGRAM = "redis-ambassador"
ENV_PREFIX = "REDIS_AMBASSADOR_"
NUTCRACKER = "/usr/sbin/nutcracker"
HASHES = ("one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64", "fnv1a_64",
          "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins")
DISTRIBUTIONS = ("ketama", "modula", "random")
LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
HOST = rf"{LABEL}(?:\.{LABEL})*"
SERVER = re.compile(rf"\A({HOST}):([0-9]{{1,5}}):([0-9]{{1,5}})\Z")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROGRAM,
        description="One redis/memcached on localhost, sharded over several servers "
        "(twemproxy). 'redis-ambassador healthcheck' asks the supervisor's /readyz.")
    flag = partial(add_flag, parser, ENV_PREFIX)
    flag("--listen", "127.0.0.1:6379", "HOST:PORT the app connects to")
    flag("--servers", None, "comma-separated host:port:weight entries (required)")
    flag("--protocol", "redis", "redis or memcache")
    flag("--hash", "fnv1a_64", "key hash: " + ", ".join(HASHES))
    flag("--distribution", "ketama", "ketama (consistent), modula or random")
    flag("--hash-tag", None, "two characters; only the part of a key between them is hashed")
    flag("--timeout-ms", "400", "server timeout in ms (nutcracker's own default waits forever)")
    flag("--auto-eject", "false", "true: eject a failing server and remap its keys (caches)")
    flag("--server-retry-timeout-ms", "30000", "how long an ejected server stays out")
    flag("--server-failure-limit", "2", "failures in a row that eject a server")
    flag("--server-connections", "1", "connections to each server")
    flag("--password-file", None, "file (Secret) whose first line is the servers' password; "
         "the app must then AUTH with it too")
    flag("--stats-port", "22222", "nutcracker's JSON stats port (on 127.0.0.1)")
    flag("--log-level", "5", "nutcracker verbosity 0-11")
    flag("--state-dir", "/tmp/redis-ambassador", "where nutcracker.yml and the pid file live")
    supervisor.add_flags(parser, ENV_PREFIX, health_port=8379)
    return parser


def parse_servers(text: str | None) -> list[tuple[str, int, int]]:
    """host:port:weight entries, separated by commas, spaces or newlines."""
    entries = [e for e in re.split(r"[,\s]+", text or "") if e]
    if not entries:
        raise ConfigError("--servers: give at least one host:port:weight entry")
    servers = []
    for entry in entries:
        found = SERVER.match(entry)
        if not found:
            raise ConfigError(f"--servers: {entry!r} is not host:port:weight (e.g. redis-0:6379:1)")
        host, port, weight = found.group(1), int(found.group(2)), int(found.group(3))
        if not 1 <= port <= 65535 or weight < 1:
            raise ConfigError(f"--servers: {entry!r}: port must be 1-65535 and weight 1 or more")
        if any((host, port) == (h, p) for h, p, _ in servers):
            raise ConfigError(f"--servers: {host}:{port} is listed twice")
        servers.append((host, port, weight))
    return servers


def read_password(path: str) -> str:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as exc:
        raise ConfigError(f"--password-file {path}: {exc.strerror}") from None
    if not lines or not lines[0] or not lines[0].isprintable():
        raise ConfigError(f"--password-file {path}: the first line must be the password")
    return lines[0]


def _int(name: str, value: str, low: int, high: int) -> int:
    if not value.isdigit() or not low <= int(value) <= high:
        raise ConfigError(f"{name} {value!r}: expected a whole number from {low} to {high}")
    return int(value)


def _choice(name: str, value: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ConfigError(f"{name} {value!r}: expected one of {', '.join(choices)}")
    return value


def nutcracker_config(args: argparse.Namespace) -> str:
    """The pool's YAML; every value is checked first, so none can add a key."""
    host, _, port = str(args.listen).rpartition(":")
    if not re.fullmatch(r"[0-9.]{7,15}|localhost|0\.0\.0\.0", host):
        raise ConfigError(f"--listen {args.listen!r}: expected IPv4:PORT (e.g. 127.0.0.1:6379)")
    listen_port = _int("--listen port", port, 1, 65535)
    servers = parse_servers(args.servers)
    protocol = _choice("--protocol", args.protocol, ("redis", "memcache"))
    lines = [
        "ambassador:",
        f"  listen: {host}:{listen_port}",
        f"  hash: {_choice('--hash', args.hash, HASHES)}",
        f"  distribution: {_choice('--distribution', args.distribution, DISTRIBUTIONS)}",
        f"  redis: {'true' if protocol == 'redis' else 'false'}",
        f"  timeout: {_int('--timeout-ms', args.timeout_ms, 1, 3_600_000)}",
        "  backlog: 1024",
        "  preconnect: false",
        f"  server_connections: {_int('--server-connections', args.server_connections, 1, 64)}",
    ]
    if args.hash_tag:
        tag = str(args.hash_tag)
        if len(tag) != 2 or not all(c in "{}[]()<>:#|" for c in tag):
            raise ConfigError(f"--hash-tag {tag!r}: expected two characters such as {{}}")
        lines.append(f'  hash_tag: "{tag}"')
    eject = str(args.auto_eject).lower()
    if eject not in ("true", "false"):
        raise ConfigError(f"--auto-eject {args.auto_eject!r}: expected true or false")
    if args.password_file:
        lines.append(f"  redis_auth: {json.dumps(read_password(args.password_file))}")
    lines += [
        f"  auto_eject_hosts: {eject}",
        "  server_retry_timeout: "
        f"{_int('--server-retry-timeout-ms', args.server_retry_timeout_ms, 1, 86_400_000)}",
        "  server_failure_limit: "
        f"{_int('--server-failure-limit', args.server_failure_limit, 1, 1000)}",
        "  servers:",
        *(f"    - {h}:{p}:{w}" for h, p, w in servers),
    ]
    return "\n".join(lines) + "\n"


def prepare(args: argparse.Namespace) -> tuple[supervisor.Engine, supervisor.Options]:
    options = supervisor.Options.from_args(args)
    if options.watch_dirs:
        raise ConfigError("--watch-dir: nutcracker cannot reload; a change needs a restart")
    config = nutcracker_config(args)
    stats = _int("--stats-port", args.stats_port, 1, 65535)
    verbosity = _int("--log-level", args.log_level, 0, 11)
    state = supervisor.state_dir(args.state_dir)
    path = supervisor.install_config(state / "nutcracker.yml", config,
                                     [NUTCRACKER, "-t", "-c", str(state / "nutcracker.yml")],
                                     "nutcracker")
    listen = str(args.listen).rpartition(":")
    engine = supervisor.Engine(
        name="nutcracker",
        command=[NUTCRACKER, "-c", str(path), "-a", "127.0.0.1", "-s", str(stats),
                 "-v", str(verbosity), "-o", "/dev/stderr", "-p", str(state / "nutcracker.pid")],
        stop_signal=signal.SIGTERM,
        reload_signal=None,
        ready=supervisor.tcp_ready("127.0.0.1" if listen[0] == "0.0.0.0" else listen[0],
                                   int(listen[2])),
    )
    return engine, options


def main(argv: Sequence[str]) -> int:
    return supervisor.image_main(PROGRAM, ENV_PREFIX, 8379, build_parser, prepare, argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
