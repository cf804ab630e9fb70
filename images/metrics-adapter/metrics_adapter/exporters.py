"""What each adapter runs: the Debian exporter's command line and environment, built from the
settings and the credential files. Nothing here touches the network; `start` only writes the
files an exporter reads (mysqld_exporter's my.cnf, the assembled mtail programs)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

ADAPTERS = ("mysql", "postgres", "nginx", "redis", "logs")

# The exporters' usual ports, so dashboards and scrape configs find them where they expect.
DEFAULT_PORTS = {"mysql": 9104, "postgres": 9187, "nginx": 9113, "redis": 9121, "logs": 3903}
# The app's usual port on the pod's localhost (nginx: where stub_status is served).
DEFAULT_APP_PORTS = {"mysql": 3306, "postgres": 5432, "nginx": 8080, "redis": 6379}

BINARIES = {
    "mysql": "/usr/bin/prometheus-mysqld-exporter",
    "postgres": "/usr/bin/prometheus-postgres-exporter",
    "nginx": "/usr/bin/prometheus-nginx-exporter",
    "redis": "/usr/bin/prometheus-redis-exporter",
    "logs": "/usr/bin/mtail",
}

# Flags the adapter sets itself or that would carry a credential on the command line (where
# `ps` and /proc show it): refused in --exporter-args.
RESERVED = {
    "mysql": ("--config.my-cnf", "--web.listen-address", "--mysqld.address",
              "--mysqld.username"),
    "postgres": ("--web.listen-address",),
    "nginx": ("-nginx.scrape-uri", "-web.listen-address", "-nginx.retries"),
    "redis": ("-redis.addr", "-redis.password", "-redis.user", "-redis.password-file",
              "-web.listen-address"),
    "logs": ("-progs", "-logs", "-port", "-address"),
}


class SettingsError(Exception):
    """A setting or credential file the operator must fix; printed as one line."""


@dataclass(frozen=True)
class Settings:
    adapter: str
    port: int
    app_port: int
    credentials_dir: Path
    state_dir: Path
    database: str = "postgres"
    sslmode: str = "disable"
    stub_status_path: str = "/stub_status"
    log_dir: Path = Path("/var/log/app")
    files: tuple[tuple[str, str], ...] = (("error.log", "error"), ("warning.log", "warning"),
                                          ("info.log", "info"))  # (glob, level or "")
    level_counters: bool = True
    program_dirs: tuple[Path, ...] = ()
    exporter_args: tuple[str, ...] = ()


@dataclass
class Launch:
    """The exporter's argv and its environment (credentials only ever in files or env)."""

    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)  # written for the exporter, 0600


def _flag_name(arg: str) -> str:
    return arg.split("=", 1)[0]


def check_exporter_args(adapter: str, args: tuple[str, ...]) -> None:
    reserved = {name.lstrip("-") for name in RESERVED[adapter]}
    for arg in args:
        if not arg.startswith("-"):
            raise SettingsError(f"--exporter-args: {arg!r} is not a flag (write --name=value)")
        name = _flag_name(arg).lstrip("-")
        if name in reserved or "password" in name or "dsn" in name.lower():
            raise SettingsError(f"--exporter-args: {_flag_name(arg)} is set by the adapter or "
                                f"carries a credential; credentials come from files only")


def _read(folder: Path, key: str, required: bool) -> str | None:
    path = folder / key
    if not path.is_file():
        if required:
            raise SettingsError(f"credential file {path} is missing (the Secret needs the key "
                                f"{key!r})")
        return None
    text = path.read_text(encoding="utf-8")
    if text.endswith("\n"):  # `kubectl create secret --from-file` keeps the file's newline
        text = text[:-1]
    if "\n" in text or "\r" in text or "\0" in text:
        raise SettingsError(f"credential file {path} must hold one line")
    return text


def my_cnf_value(text: str) -> str:
    """A value for mysqld_exporter's my.cnf (read by go-ini): quoted so that #, ;, quotes and
    spaces survive; go-ini takes a value between backticks or double quotes verbatim."""
    for quote in ("`", '"', '"""'):
        if quote not in text:
            return f"{quote}{text}{quote}"
    raise SettingsError("the mysql password holds `, \" and \"\"\" at once: my.cnf cannot "
                        "carry it")


def write_private(path: Path, text: str) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def _mysql(s: Settings) -> Launch:
    user = _read(s.credentials_dir, "username", required=True) or ""
    password = _read(s.credentials_dir, "password", required=False)
    lines = ["[client]", f"user = {my_cnf_value(user)}"]
    if password is not None:
        if "?" in password:  # measured: mysql_up stays 0 ("Unknown database '&lock_...'")
            raise SettingsError("the mysql password holds '?', which mysqld_exporter 0.14 "
                                "cannot use (it pastes it into a DSN): choose another")
        lines.append(f"password = {my_cnf_value(password)}")
    lines += ["host = 127.0.0.1", f"port = {s.app_port}", ""]
    cnf = s.state_dir / "my.cnf"
    write_private(cnf, "\n".join(lines))
    return Launch([BINARIES["mysql"], f"--config.my-cnf={cnf}",
                   f"--web.listen-address=:{s.port}"], files=[cnf])


def _postgres(s: Settings) -> Launch:
    user = s.credentials_dir / "username"
    _read(s.credentials_dir, "username", required=True)
    env = {"DATA_SOURCE_URI": f"127.0.0.1:{s.app_port}/{s.database}?sslmode={s.sslmode}",
           "DATA_SOURCE_USER_FILE": str(user)}
    password = _read(s.credentials_dir, "password", required=False)
    if password is not None:
        if " " in password:  # measured: the exporter exits with "malformed dsn"
            raise SettingsError("the postgres password holds a space, which postgres_exporter "
                                "0.11 cannot use (it re-parses its DSN): choose another")
        env["DATA_SOURCE_PASS_FILE"] = str(s.credentials_dir / "password")
    return Launch([BINARIES["postgres"], f"--web.listen-address=:{s.port}"], env=env)


def _nginx(s: Settings) -> Launch:
    # The exporter gives up at start when stub_status does not answer; it starts beside the
    # app, so it waits for it (an hour at 1 s), answering nothing until then.
    return Launch([BINARIES["nginx"],
                   f"-nginx.scrape-uri=http://127.0.0.1:{s.app_port}{s.stub_status_path}",
                   f"-web.listen-address=:{s.port}", "-nginx.retries=3600",
                   "-nginx.retry-interval=1s"])


def _redis(s: Settings) -> Launch:
    env = {}
    password = _read(s.credentials_dir, "password", required=False)
    if password is not None:
        env["REDIS_PASSWORD"] = password
    user = _read(s.credentials_dir, "username", required=False)
    if user is not None:
        env["REDIS_USER"] = user
    return Launch([BINARIES["redis"], f"-redis.addr=redis://127.0.0.1:{s.app_port}",
                   f"-web.listen-address=:{s.port}"], env=env)


LEVELS = ("emergency", "alert", "critical", "error", "warning", "notice", "info", "debug")
GLOB_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-@.+*?")


def parse_files(text: str) -> tuple[tuple[str, str], ...]:
    """`glob=level,glob,...` (a file without a level is watched, not counted by level)."""
    files = []
    for item in (i.strip() for i in text.split(",")):
        if not item:
            continue
        glob, _, level = item.partition("=")
        if not glob or not set(glob) <= GLOB_CHARS:
            raise SettingsError(f"--files: {glob!r} must be a file name or glob in --log-dir "
                                "(letters, digits and ._-+@ with * and ?)")
        if level and level not in LEVELS:
            raise SettingsError(f"--files: level {level!r}: choose one of {', '.join(LEVELS)}")
        files.append((glob, level))
    if not files:
        raise SettingsError("--files: name at least one log file or glob")
    return tuple(files)


def glob_regex(glob: str) -> str:
    """A glob as an RE2 matching the end of a path, for mtail's getfilename() (between /s)."""
    parts = {"*": "[^\\/]*", "?": "[^\\/]", ".": "\\.", "+": "\\+"}  # / ends the literal
    return "\\/" + "".join(parts.get(c, c) for c in glob) + "$"


def level_program(files: tuple[tuple[str, str], ...]) -> str:
    """The default program: every line of a file counted under its level."""
    lines = ["# Written by metrics-adapter: lines of each log file, counted by its level.",
             "counter log_lines_total by level", "", "/$/ {"]
    for glob, level in files:
        if level:
            lines += [f"  getfilename() =~ /{glob_regex(glob)}/ {{",
                      f'    log_lines_total["{level}"]++', "  }"]
    return "\n".join([*lines, "}", ""])


def assemble_programs(s: Settings, target: Path) -> list[str]:
    """mtail reads one folder of programs: the level counters and the user's, copied into one."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(mode=0o700, parents=True)
    names: list[str] = []
    if s.level_counters and any(level for _, level in s.files):
        (target / "levels.mtail").write_text(level_program(s.files), encoding="utf-8")
        names.append("levels.mtail")
    for folder in s.program_dirs:
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            # ConfigMap volumes hold ..data and timestamped folders beside the visible links.
            if path.name.startswith(".") or not path.name.endswith(".mtail") or \
                    not path.is_file():
                continue
            if path.name in names:
                raise SettingsError(f"two mtail programs are named {path.name}")
            shutil.copyfile(path, target / path.name)
            names.append(path.name)
    if not names:
        raise SettingsError("no mtail program: keep the level counters (files with levels) or "
                            f"give *.mtail files in {', '.join(map(str, s.program_dirs))}")
    return names


def create_missing(s: Settings) -> list[Path]:
    """mtail reads a file it finds after its start from the file's end, so the lines written
    before it looks again (every 250 ms) would be missed. The files named without a glob are
    created empty before mtail starts (the sidecar starts before the app), mode 0666 because
    the app's uid is not known; an app opens them for appending as it would have created them."""
    created = []
    for glob, _ in s.files:
        path = s.log_dir / glob
        if "*" in glob or "?" in glob or path.exists():
            continue
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)
        except FileExistsError:
            continue
        except OSError as exc:
            raise SettingsError(f"cannot create {path} in the log folder: {exc.strerror}") from None
        os.fchmod(fd, 0o666)
        os.close(fd)
        created.append(path)
    return created


def _logs(s: Settings) -> Launch:
    progs = s.state_dir / "mtail-programs"
    assemble_programs(s, progs)
    create_missing(s)
    # Globs over the folder (not single files) are matched again every poll, so a file that
    # is rotated away and created again is followed.
    logs = ",".join(str(s.log_dir / glob) for glob, _ in s.files)
    return Launch([BINARIES["logs"], "-progs", str(progs), "-logs", logs,
                   "-port", str(s.port), "-logtostderr"])


BUILDERS = {"mysql": _mysql, "postgres": _postgres, "nginx": _nginx, "redis": _redis,
            "logs": _logs}


def launch(s: Settings) -> Launch:
    if s.adapter not in ADAPTERS:
        raise SettingsError(f"--adapter {s.adapter!r}: choose one of {', '.join(ADAPTERS)}")
    check_exporter_args(s.adapter, s.exporter_args)
    built = BUILDERS[s.adapter](s)
    built.argv += list(s.exporter_args)
    return built
