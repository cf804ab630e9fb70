"""Entry point: settings from flags (each with a METRICS_ADAPTER_* twin), then the exporter."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

from .exporters import (
    ADAPTERS,
    DEFAULT_APP_PORTS,
    DEFAULT_PORTS,
    Launch,
    Settings,
    SettingsError,
    launch,
    parse_files,
)

PREFIX = "METRICS_ADAPTER_"
EXIT_CONFIG = 2

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


def parse(argv: list[str]) -> Settings:
    parser = argparse.ArgumentParser(
        prog="metrics-adapter",
        description="Every flag has an environment twin METRICS_ADAPTER_<FLAG>; the flag wins.")
    for flag, (default, help_text) in FLAGS.items():
        env = PREFIX + flag[2:].upper().replace("-", "_")
        parser.add_argument(flag, default=os.environ.get(env, default),
                            help=f"{help_text} (env {env}; default: {default})")
    args = parser.parse_args(argv)
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


def run(plan: Launch) -> int:
    """Start the exporter and stay PID 1: SIGTERM is passed on, and a stop we asked for is a
    clean exit (a Go exporter as PID 1 would ignore SIGTERM's default action)."""
    child = subprocess.Popen(plan.argv, env={**os.environ, **plan.env})
    stopping = False

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        child.send_signal(signum)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    code = child.wait()
    if stopping:
        return 0
    print(f"metrics-adapter: {Path(plan.argv[0]).name} exited with {code}", file=sys.stderr)
    return code if code > 0 else 1


def main(argv: list[str]) -> int:
    try:
        settings = parse(argv)
        plan = launch(settings)
    except SettingsError as exc:
        print(f"metrics-adapter: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    print(f"metrics-adapter: {settings.adapter}: {' '.join(plan.argv)}", flush=True)
    return run(plan)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
