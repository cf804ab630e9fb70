"""Command-line and environment configuration.

Every flag ``--foo-bar`` has an environment twin ``GITSYNC_FOO_BAR``; the flag wins.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from gitsync import __version__

ENV_PREFIX = "GITSYNC_"
PERIOD_FLOOR_S = 1.0
SUBMODULE_MODES = ("off", "shallow", "recursive")
PUBLISH_MODES = ("symlink", "exchange")
FULL_HASH = re.compile(r"^[0-9a-f]{40}$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_LINK_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


class ConfigError(ValueError):
    """A flag or environment value that cannot be used; the message names it and the fix."""


@dataclass(frozen=True)
class Config:
    repo: str
    ref: str
    root: Path
    link: str
    period_s: float
    depth: int
    submodules: str
    sparse_checkout: tuple[str, ...]
    max_failures: int
    max_backoff_s: float
    sync_timeout_s: float
    one_time: bool
    publish: str
    ssh_key_file: Path | None
    known_hosts_file: Path | None
    ssh_host_key_check: bool
    username: str | None
    password_file: Path | None
    webhook_url: str | None
    webhook_timeout_s: float
    exechook_argv: tuple[str, ...]  # empty: no exechook
    exechook_timeout_s: float
    hook_retries: int
    hook_backoff_s: float
    http_bind: tuple[str, int] | None
    trigger_token_file: Path | None
    verbose: bool

    @property
    def stall_after_s(self) -> float:
        """The longest a working loop goes without finishing an attempt: the longest wait
        between attempts plus the time limits of the git commands of one sync (at most six)."""
        return max(self.period_s, self.max_backoff_s) + 6 * self.sync_timeout_s


def parse_duration(text: str) -> float:
    """Parse ``90``, ``1.5s``, ``500ms``, ``1m30s`` or ``2h`` into seconds."""
    value = text.strip()
    if re.fullmatch(r"\d+(?:\.\d+)?", value):
        return float(value)
    parts = _DURATION_PART.findall(value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ConfigError(
            f"invalid duration {text!r}: use a number with a unit, e.g. 10s, 1m, 500ms")
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"invalid boolean {text!r}: use true or false")


def parse_bind(text: str) -> tuple[str, int] | None:
    """``host:port`` or ``:port`` (all interfaces); ``off`` or empty disables the server."""
    value = text.strip()
    if value in ("", "off"):
        return None
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"invalid --http-bind {text!r}: use HOST:PORT, :PORT or off")
    return (host or "0.0.0.0", int(port))


def redact_url(text: str) -> str:
    """Hide the password part of any ``scheme://user:password@host`` in free text."""
    return re.sub(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]*):[^/\s@]*@", r"\1:***@", text)


def _env_name(flag: str) -> str:
    return ENV_PREFIX + flag.lstrip("-").upper().replace("-", "_")


# (flag, default, help). Defaults are strings so the environment and the flag parse alike.
_OPTIONS: tuple[tuple[str, str | None, str], ...] = (
    ("--repo", None, "repository URL: https://, ssh://, user@host:path, git:// or file://"),
    ("--ref", "HEAD", "branch, tag or full 40-character commit hash"),
    ("--root", None, "directory on the shared volume that git-sync owns"),
    ("--link", "current", "name of the published entry under --root (what the app reads)"),
    ("--period", "10s", "time between polls (floor 1s), e.g. 10s, 1m"),
    ("--depth", "1", "commits of history to fetch; 0 = full history"),
    ("--submodules", "off", "off, shallow (depth 1) or recursive"),
    ("--sparse-checkout", "", "comma-separated gitignore-style patterns to check out"),
    ("--max-failures", "3", "consecutive failures before /healthz turns unhealthy"),
    ("--max-backoff", "60s", "longest wait between retries after failures"),
    ("--sync-timeout", "120s", "time limit for each git command"),
    ("--publish", "symlink", "symlink (relative link swapped by rename) or exchange (a real "
     "directory swapped with renameat2 RENAME_EXCHANGE)"),
    ("--ssh-key-file", None, "private key for ssh remotes (re-read on every sync)"),
    ("--known-hosts-file", None, "known_hosts for ssh remotes"),
    ("--ssh-host-key-check", "true", "verify the ssh host key (true/false)"),
    ("--username", None, "username for https remotes"),
    ("--password-file", None, "file holding the https password or token (re-read on every sync)"),
    ("--webhook-url", None, "POST here after each new commit (header Gitsync-Hash)"),
    ("--webhook-timeout", "5s", "time limit for one webhook call"),
    ("--exechook-command", None, "shell command run after each new commit (env GITSYNC_HASH); "
     "or give the command as --exechook-arg items"),
    ("--exechook-timeout", "30s", "time limit for one exechook run"),
    ("--hook-retries", "3", "retries after a failed hook call"),
    ("--hook-backoff", "1s", "first wait between hook retries (doubles each time)"),
    ("--http-bind", "0.0.0.0:8729",
     "HOST:PORT for /healthz /readyz /status /metrics and POST /sync; off disables"),
    ("--trigger-token-file", None, "bearer token (and GitHub webhook secret) for POST /sync"),
)
_FLAGS_BOOL = (
    ("--one-time", "sync once, then exit 0 on success or 1 (init-container mode)"),
    ("--verbose", "log every git command and HTTP request"),
)


_EXECHOOK_ARG_HELP = (
    "one argv item of the command run after each new commit, without a shell; repeat it for "
    "each item, written --exechook-arg=ITEM [env GITSYNC_EXECHOOK_ARG: a JSON array of strings]")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="git-sync",
        description="Keep a git ref checked out under --root and publish each commit atomically.",
        epilog="Every flag --foo-bar can also be set as environment variable GITSYNC_FOO_BAR; "
        "the flag wins. Example: git-sync --repo https://example.com/app.git --ref main "
        "--root /git --period 30s",
    )
    for flag, default, text in _OPTIONS:
        shown = f" (default {default})" if default else ""
        parser.add_argument(flag, default=None, help=f"{text}{shown} [env {_env_name(flag)}]")
    for flag, text in _FLAGS_BOOL:
        parser.add_argument(flag, action="store_true", default=None,
                            help=f"{text} [env {_env_name(flag)}]")
    parser.add_argument("--exechook-arg", action="append", default=None, metavar="ITEM",
                        help=_EXECHOOK_ARG_HELP)
    parser.add_argument("--version", action="version", version=f"git-sync {__version__}")
    return parser


def _exechook_argv(args: argparse.Namespace, env: Mapping[str, str],
                   command: str | None) -> tuple[str, ...]:
    """The hook as argv: --exechook-arg items (or their JSON env twin), else the shell command."""
    items: list[str] | None = args.exechook_arg
    if items is None and env.get("GITSYNC_EXECHOOK_ARG"):
        try:
            loaded = json.loads(env["GITSYNC_EXECHOOK_ARG"])
        except ValueError:
            loaded = None
        if not isinstance(loaded, list) or not all(isinstance(i, str) for i in loaded):
            raise ConfigError("GITSYNC_EXECHOOK_ARG must be a JSON array of strings, "
                              'e.g. ["kill", "-HUP", "1"]')
        items = loaded
    if items and command:
        raise ConfigError("give the exechook as --exechook-command or as --exechook-arg items, "
                          "not both")
    if items:
        return tuple(items)
    return ("/bin/sh", "-c", command) if command else ()


def _merged(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for flag, default, _ in _OPTIONS:
        key = flag.lstrip("-").replace("-", "_")
        given = getattr(args, key)
        values[key] = given if given is not None else env.get(_env_name(flag), default)
    for flag, _ in _FLAGS_BOOL:
        key = flag.lstrip("-").replace("-", "_")
        values[key] = "true" if getattr(args, key) else env.get(_env_name(flag), "false")
    return values


def _int(name: str, text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"--{name} must be an integer, got {text!r}") from None
    if value < minimum:
        raise ConfigError(f"--{name} must be >= {minimum}, got {value}")
    return value


def _optional_path(text: str | None) -> Path | None:
    return Path(text) if text else None


def _check_ref(ref: str) -> None:
    # git check-ref-format rules that matter for a user typo; git itself re-checks later.
    bad = (" ", "~", "^", ":", "?", "*", "[", "\\", "..", "@{", "//")
    if not ref or any(b in ref for b in bad) or ref.endswith((".", "/", ".lock")) \
            or ref.startswith(("/", "-")):
        raise ConfigError(
            f"invalid --ref {ref!r}: use a branch (main), a tag (v1.2), refs/..., HEAD "
            "or a full 40-character commit hash"
        )


def _check_repo(repo: str | None) -> str:
    if not repo:
        raise ConfigError("--repo is required (or set GITSYNC_REPO)")
    if repo.startswith("-") or any(c.isspace() for c in repo):
        raise ConfigError(f"invalid --repo {redact_url(repo)!r}: no spaces, must not start with -")
    return repo


def load_config(argv: Sequence[str], env: Mapping[str, str]) -> Config:
    """Parse flags over environment over defaults, then validate everything at once."""
    args = build_parser().parse_args(list(argv))
    v = _merged(args, env)
    repo = _check_repo(v["repo"])
    if not v["root"]:
        raise ConfigError("--root is required (or set GITSYNC_ROOT)")
    ref = str(v["ref"])
    _check_ref(ref)
    link = str(v["link"])
    if not _LINK_NAME.match(link):
        raise ConfigError(f"invalid --link {link!r}: a plain file name such as current")
    period = parse_duration(str(v["period"]))
    if period < PERIOD_FLOOR_S:
        raise ConfigError(f"--period {v['period']} is below the floor of 1s")
    submodules = str(v["submodules"])
    if submodules not in SUBMODULE_MODES:
        raise ConfigError(f"--submodules must be one of {', '.join(SUBMODULE_MODES)}")
    publish = str(v["publish"])
    if publish not in PUBLISH_MODES:
        raise ConfigError(f"--publish must be one of {', '.join(PUBLISH_MODES)}")
    username = v["username"] or None
    password_file = _optional_path(v["password_file"])
    if username and "\n" in username:
        raise ConfigError("--username must be a single line")
    if password_file and not username:
        raise ConfigError("--password-file needs --username")
    sparse = tuple(p.strip() for p in str(v["sparse_checkout"]).split(",") if p.strip())
    return Config(
        repo=repo,
        ref=ref,
        root=Path(str(v["root"])).absolute(),
        link=link,
        period_s=period,
        depth=_int("depth", str(v["depth"]), 0),
        submodules=submodules,
        sparse_checkout=sparse,
        max_failures=_int("max-failures", str(v["max_failures"]), 1),
        max_backoff_s=parse_duration(str(v["max_backoff"])),
        sync_timeout_s=parse_duration(str(v["sync_timeout"])),
        one_time=parse_bool(str(v["one_time"])),
        publish=publish,
        ssh_key_file=_optional_path(v["ssh_key_file"]),
        known_hosts_file=_optional_path(v["known_hosts_file"]),
        ssh_host_key_check=parse_bool(str(v["ssh_host_key_check"])),
        username=username,
        password_file=password_file,
        webhook_url=v["webhook_url"] or None,
        webhook_timeout_s=parse_duration(str(v["webhook_timeout"])),
        exechook_argv=_exechook_argv(args, env, v["exechook_command"] or None),
        exechook_timeout_s=parse_duration(str(v["exechook_timeout"])),
        hook_retries=_int("hook-retries", str(v["hook_retries"]), 0),
        hook_backoff_s=parse_duration(str(v["hook_backoff"])),
        http_bind=parse_bind(str(v["http_bind"])),
        trigger_token_file=_optional_path(v["trigger_token_file"]),
        verbose=parse_bool(str(v["verbose"])),
    )
