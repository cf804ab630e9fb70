"""Entry point: settings from flags (each with a METRICS_ADAPTER_* twin), then the exporter,
run by the shared engine supervisor (images/_common/engine_supervisor.py) as PID 1."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import engine_supervisor as supervisor

from .exporters import (
    ADAPTERS,
    DEFAULT_APP_PORTS,
    DEFAULT_PORTS,
    Launch,
    Settings,
    SettingsError,
    assemble_programs,
    launch,
    parse_files,
)

PREFIX = "METRICS_ADAPTER_"
EXIT_CONFIG = 2
HEALTH_PORT = 9899

FLAGS: dict[str, tuple[str | None, str]] = {
    "--adapter": (None, f"what to export: {', '.join(ADAPTERS)}"),
    "--port": (None, "metrics port on every address of the pod (default: the exporter's usual "
               + ", ".join(f"{a} {p}" for a, p in DEFAULT_PORTS.items()) + ")"),
    "--app-port": (None, "the app's port on 127.0.0.1 (default: "
                   + ", ".join(f"{a} {p}" for a, p in DEFAULT_APP_PORTS.items()) + ")"),
    "--credentials-dir": ("/etc/metrics-adapter/credentials",
                          "folder with the files username and password (a Secret)"),
    "--state-dir": ("/tmp/metrics-adapter", "where files for the exporter are written"),
    "--database": ("postgres", "postgres: the database to connect to"),
    "--sslmode": ("disable", "postgres: libpq sslmode over localhost"),
    "--stub-status-path": ("/stub_status", "nginx: the path of the app's stub_status page"),
    "--log-dir": ("/var/log/app", "logs: the app's log folder (a shared volume)"),
    "--files": ("error.log=error,warning.log=warning,info.log=info",
                "logs: comma-separated GLOB=LEVEL (or GLOB) in --log-dir"),
    "--level-counters": ("true", "logs: count every line under its file's level (true/false)"),
    "--program-dirs": ("/etc/metrics-adapter/programs",
                       "logs: comma-separated folders of your *.mtail programs"),
    "--exporter-args": ("", "extra exporter flags, separated by newlines (never credentials)"),
}


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="metrics-adapter",
        description="Every flag has an environment twin METRICS_ADAPTER_<FLAG>; the flag wins. "
        "`metrics-adapter healthcheck [/healthz|/readyz]` is the probe.")
    for flag, (default, help_text) in FLAGS.items():
        env = PREFIX + flag[2:].upper().replace("-", "_")
        parser.add_argument(flag, default=os.environ.get(env, default),
                            help=f"{help_text} (env {env}; default: {default})")
    supervisor.add_flags(parser, PREFIX, health_port=HEALTH_PORT)
    return parser


def parse(argv: list[str]) -> Settings:
    return settings(parser().parse_args(argv))


def settings(args: argparse.Namespace) -> Settings:
    if not args.adapter:
        raise SettingsError(f"--adapter is required: one of {', '.join(ADAPTERS)}")
    if args.adapter not in ADAPTERS:
        raise SettingsError(f"--adapter {args.adapter!r}: choose one of {', '.join(ADAPTERS)}")

    def number(flag: str, value: str | None, default: int) -> int:
        if not value:
            return default
        if not value.isdigit() or not 0 < int(value) < 65536:
            raise SettingsError(f"{flag} {value!r}: a port number is 1-65535")
        return int(value)

    def boolean(flag: str, value: str) -> bool:
        if value.lower() not in ("true", "false"):
            raise SettingsError(f"{flag} {value!r}: true or false")
        return value.lower() == "true"

    return Settings(
        adapter=args.adapter,
        port=number("--port", args.port, DEFAULT_PORTS[args.adapter]),
        app_port=number("--app-port", args.app_port, DEFAULT_APP_PORTS.get(args.adapter, 0)),
        credentials_dir=Path(args.credentials_dir),
        state_dir=Path(args.state_dir),
        database=args.database,
        sslmode=args.sslmode,
        stub_status_path=args.stub_status_path,
        log_dir=Path(args.log_dir),
        files=parse_files(args.files),
        level_counters=boolean("--level-counters", args.level_counters),
        program_dirs=tuple(Path(d) for d in args.program_dirs.split(",") if d),
        exporter_args=tuple(a for a in args.exporter_args.splitlines() if a.strip()),
    )


def engine(s: Settings, plan: Launch) -> supervisor.Engine:
    """The exporter for the supervisor: ready once it listens; mtail reloads its programs on
    SIGHUP after they compile, the exporters read their credentials only at start."""
    ready = supervisor.tcp_ready("127.0.0.1", s.port)
    env = {**os.environ, **plan.env}
    if s.adapter != "logs":
        return supervisor.Engine(name=Path(plan.argv[0]).name, command=plan.argv,
                                 reload_signal=None, ready=ready, env=env)
    progs = plan.argv[plan.argv.index("-progs") + 1]

    def prepare() -> None:  # a ConfigMap of programs changed: copy them again
        assemble_programs(s, Path(progs))

    return supervisor.Engine(
        name="mtail", command=plan.argv, reload_signal=signal.SIGHUP, ready=ready, env=env,
        prepare=prepare,
        # -port 0: the check must not bind the running mtail's port (it does, even compiling)
        check=[plan.argv[0], "-compile_only", "-progs", progs, "-port", "0", "-logtostderr"])


def healthcheck(argv: list[str]) -> int:
    """The probe: GET /healthz (liveness: the exporter runs) or /readyz (it listens)."""
    path = argv[0] if argv else "/readyz"
    bind = os.environ.get(PREFIX + "HEALTH_BIND", f"127.0.0.1:{HEALTH_PORT}")
    host, _, port = bind.rpartition(":")
    host = "127.0.0.1" if host in ("", "0.0.0.0") else host
    return supervisor.healthcheck(f"http://{host}:{port}{path}")


def main(argv: list[str]) -> int:
    if argv[:1] == ["healthcheck"]:
        return healthcheck(argv[1:])
    try:
        args = parser().parse_args(argv)
        setup = settings(args)
        plan = launch(setup)
        options = supervisor.Options.from_args(args)
        if setup.adapter == "logs":
            options = supervisor.Options(
                options.health_host, options.health_port,
                options.watch_dirs or tuple(d for d in setup.program_dirs if d.is_dir()),
                options.watch_interval, options.stop_timeout)
    except (SettingsError, supervisor.SupervisorError) as exc:
        print(f"metrics-adapter: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"metrics-adapter: {setup.adapter}: {' '.join(plan.argv)}", flush=True)
    return supervisor.supervise(engine(setup, plan), options, "metrics-adapter")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
