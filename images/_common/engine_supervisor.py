#!/usr/bin/python3
"""Run one Debian engine (nginx, nutcracker, an exporter...) as a well-behaved sidecar.

The supervisor is PID 1 of the container and the engine is its only child:

- it starts the engine in the foreground (the engine must not daemonize: `nginx -g
  'daemon off;'`, `nutcracker` without `-d`) with default signal dispositions;
- SIGTERM or SIGINT is turned into the engine's *graceful* stop signal (nginx: SIGQUIT, which
  lets in-flight requests finish; the default is SIGTERM) and, if the engine is still there
  after the stop timeout, SIGKILL. The supervisor then exits with the engine's code (0 for a
  clean stop); an engine that exits by itself makes the supervisor exit non-zero so the
  kubelet restarts the container;
- orphans re-parented to PID 1 are reaped;
- an HTTP server answers GET /healthz (200 while the engine runs), GET /readyz (200 while it
  runs, is not stopping and the image's readiness check passes) and GET /metrics (counters in
  the Prometheus text format: engine up, reloads, failed reloads, config changes seen);
- every watched directory is fingerprinted by content (the target of a `..data` symlink plus
  the bytes of every visible file; mtimes are not trusted). Kubernetes updates a mounted
  Secret or ConfigMap by swapping `..data` to a new hidden dir, so a watch on the directory
  sees it where a watch on one file would not. On a change the supervisor runs the image's
  `prepare` hook (re-render a config, re-copy a key), then the engine's own syntax check, and
  only when both succeed sends the reload signal (nginx: SIGHUP, a reload that keeps open
  connections). A failed check keeps the engine on its old configuration and counts a failed
  reload. An engine without reload (reload_signal=None) logs that a restart is needed; so
  does the `--reload-signal none` flag. SIGHUP sent to the supervisor forces the same path.

Use it from an image's entrypoint (the file sits beside it; Containerfile:
`COPY --from=common engine_supervisor.py sidecar_common.py /usr/local/lib/<image>/`):

    import engine_supervisor as supervisor

    parser = argparse.ArgumentParser(prog="tls-proxy")
    supervisor.add_flags(parser, "TLS_PROXY_", health_port=8081)  # + the image's own flags
    args = parser.parse_args()
    config = write_config(args)                                    # the image's own job
    return supervisor.supervise(
        supervisor.Engine(
            name="nginx",
            command=["/usr/sbin/nginx", "-c", config, "-g", "daemon off;"],
            stop_signal=signal.SIGQUIT,
            reload_signal=signal.SIGHUP,
            check=["/usr/sbin/nginx", "-t", "-q", "-c", config],
            ready=supervisor.tcp_ready("127.0.0.1", 8443),
            prepare=None,                      # or a callable run before each check
        ),
        supervisor.Options.from_args(args),
    )

`supervisor.image_main(PROGRAM, PREFIX, 8081, build_parser, prepare, argv)` is that whole
entrypoint in one call (plus a `healthcheck` subcommand); `prepare(args)` returns the Engine
and `Options.from_args(args)`.

Flags added by add_flags (each has the environment twin <PREFIX>FLAG, the flag wins):
--health-bind HOST:PORT, --watch-dir DIR[,DIR...], --watch-interval SECONDS,
--stop-timeout SECONDS. `healthcheck(url)` returns 0/1 for an image's `healthcheck` command.

It can also run an engine without an entrypoint of its own:
`engine_supervisor.py [--stop-signal QUIT] [--reload-signal HUP] [--check-command 'nginx -t']
[--ready-tcp 127.0.0.1:8443] [flags above] -- ENGINE ARGV...` (prefix ENGINE_SUPERVISOR_).
Only the standard library is used; the engine's own tools do the checking.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from sidecar_common import ConfigError, add_flag, plain_path

EXIT_CONFIG = 2
HANDLED = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP}
IDLE_WAIT = 3600.0  # seconds the loop sleeps with no files to watch, unless signalled


class SupervisorError(Exception):
    """A start-up input the operator must fix; printed as one line, exit code 2."""


@dataclass(frozen=True)
class Engine:
    name: str
    command: Sequence[str]
    stop_signal: signal.Signals = signal.SIGTERM
    reload_signal: signal.Signals | None = signal.SIGHUP
    check: Sequence[str] | None = None
    ready: Callable[[], bool] | None = None
    prepare: Callable[[], None] | None = None
    env: dict[str, str] | None = None


@dataclass(frozen=True)
class Options:
    health_host: str = "0.0.0.0"
    health_port: int = 8081
    watch_dirs: tuple[Path, ...] = ()
    watch_interval: float = 2.0
    stop_timeout: float = 25.0

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        host, _, port = str(args.health_bind).rpartition(":")
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise SupervisorError(f"--health-bind {args.health_bind!r}: expected HOST:PORT")
        dirs = tuple(Path(d) for d in str(args.watch_dir or "").split(",") if d)
        try:
            interval, stop = float(args.watch_interval), float(args.stop_timeout)
        except ValueError as exc:
            raise SupervisorError(f"--watch-interval/--stop-timeout: {exc}") from None
        if interval <= 0 or stop < 0:
            raise SupervisorError("--watch-interval must be > 0 and --stop-timeout >= 0")
        return cls(host or "0.0.0.0", int(port), dirs, interval, stop)


def add_flags(parser: argparse.ArgumentParser, prefix: str, health_port: int = 8081) -> None:
    """The supervisor's flags, each with its environment twin under `prefix`."""
    add_flag(parser, prefix, "--health-bind", f"0.0.0.0:{health_port}",
             "HOST:PORT of /healthz, /readyz and /metrics")
    add_flag(parser, prefix, "--watch-dir", None,
             "comma-separated dirs (Secret/ConfigMap mounts) whose change reloads the engine")
    add_flag(parser, prefix, "--watch-interval", "2", "seconds between checks of watched dirs")
    add_flag(parser, prefix, "--stop-timeout", "25",
             "seconds the engine gets to stop gracefully before SIGKILL")


def state_dir(value: str) -> Path:
    """The image's --state-dir: an absolute path safe inside engine config lines."""
    if not plain_path(value):
        raise SupervisorError(f"--state-dir {value!r}: expected an absolute path")
    return Path(value)


def install_config(path: Path, text: str, check: Sequence[str], engine: str) -> Path:
    """Write an engine's config (its dir 0700) and run the engine's own syntax check on it:
    a refusal becomes one SupervisorError line with the engine's reason."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    path.write_text(text)
    done = subprocess.run(list(check), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = " ".join((done.stderr + done.stdout).split())
        raise SupervisorError(f"{engine} refused the config: {detail}")
    return path


def tcp_ready(host: str, port: int, timeout: float = 1.0) -> Callable[[], bool]:
    """A readiness check: something accepts TCP connections on host:port."""

    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            return False

    return check


def fingerprint(directories: Sequence[Path]) -> str:
    """Content of the watched dirs: `..data` targets and visible files' bytes, not mtimes."""
    digest = hashlib.sha256()
    for directory in directories:
        digest.update(f"\0dir {directory}\0".encode())
        data = directory / "..data"
        if data.is_symlink():
            digest.update(f"data->{os.readlink(data)}\0".encode())
        try:
            entries = sorted(p for p in directory.iterdir() if not p.name.startswith("."))
        except OSError as exc:
            digest.update(f"unreadable {exc.errno}\0".encode())
            continue
        for entry in entries:
            digest.update(f"{entry.name}\0".encode())
            try:
                if entry.is_file():
                    digest.update(hashlib.sha256(entry.read_bytes()).digest())
            except OSError as exc:  # mid-swap: the next poll sees the settled state
                digest.update(f"unreadable {exc.errno}\0".encode())
    return digest.hexdigest()


@dataclass
class Counters:
    lock: threading.Lock = field(default_factory=threading.Lock)
    engine_up: bool = False
    stopping: bool = False
    reloads: int = 0
    reload_failures: int = 0
    changes: int = 0
    started: float = field(default_factory=time.time)

    def add(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)

    def metrics(self, engine: str) -> str:
        label = '{engine="' + engine.replace("\\", "").replace('"', "") + '"}'
        rows = [
            ("engine_up", "gauge", "1 while the engine process runs", int(self.engine_up)),
            ("reloads_total", "counter", "reload signals sent after a passed check", self.reloads),
            ("reload_failures_total", "counter", "changes whose prepare or check failed",
             self.reload_failures),
            ("config_changes_total", "counter", "changes seen in watched dirs", self.changes),
            ("start_time_seconds", "gauge", "when the supervisor started", self.started),
        ]
        out = []
        for name, kind, text, value in rows:
            full = "engine_supervisor_" + name
            out += [f"# HELP {full} {text}", f"# TYPE {full} {kind}", f"{full}{label} {value}"]
        return "\n".join(out) + "\n"


def _handler(engine: Engine, counters: Counters) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                self._send(*((200, "ok\n") if counters.engine_up else (503, "engine down\n")))
            elif path == "/readyz":
                self._send(*self._ready())
            elif path == "/metrics":
                self._send(200, counters.metrics(engine.name),
                           "text/plain; version=0.0.4; charset=utf-8")
            else:
                self._send(404, "not found\n")

        def _ready(self) -> tuple[int, str]:
            if not counters.engine_up:
                return 503, "engine down\n"
            if counters.stopping:
                return 503, "stopping\n"
            if engine.ready is not None and not engine.ready():
                return 503, f"{engine.name} not ready\n"
            return 200, "ready\n"

        def _send(self, code: int, body: str, kind: str = "text/plain; charset=utf-8") -> None:
            data = body.encode()
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return  # probes every few seconds would drown the engine's own log

    return Handler


class Supervisor:
    def __init__(self, engine: Engine, options: Options, log: Callable[[str], None]) -> None:
        self.engine, self.options, self.log = engine, options, log
        self.counters = Counters()
        self.pid = 0
        self.status: int | None = None
        self.stop_deadline: float | None = None
        self.killed = False

    def start_http(self) -> ThreadingHTTPServer:
        try:
            server = ThreadingHTTPServer((self.options.health_host, self.options.health_port),
                                         _handler(self.engine, self.counters))
        except OSError as exc:
            raise SupervisorError(f"cannot serve health on {self.options.health_host}:"
                                  f"{self.options.health_port}: {exc.strerror}") from None
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="health", daemon=True).start()
        return server

    def spawn(self) -> None:
        command = list(self.engine.command)
        try:
            # Our own mask blocks the handled signals; the engine starts with none blocked.
            self.pid = os.posix_spawn(command[0], command,
                                      self.engine.env if self.engine.env is not None
                                      else dict(os.environ),
                                      setsigmask=(), setsigdef=HANDLED)
        except OSError as exc:
            raise SupervisorError(f"cannot start {command[0]}: {exc.strerror}") from None
        self.counters.engine_up = True
        self.log(f"started {self.engine.name} (pid {self.pid})")

    def stop(self, why: str) -> None:
        if self.stop_deadline is not None:
            return
        self.counters.stopping = True
        self.stop_deadline = time.monotonic() + self.options.stop_timeout
        self.log(f"{why}: sending {self.engine.stop_signal.name} to {self.engine.name}")
        self._signal(self.engine.stop_signal)

    def _signal(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):  # already gone: reap() sees it
            os.kill(self.pid, sig)

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.pid:
                self.status = os.waitstatus_to_exitcode(status)
                self.counters.engine_up = False

    def reload(self, why: str) -> None:
        engine = self.engine
        self.counters.add("changes")
        if engine.reload_signal is None:
            self.log(f"{why}; {engine.name} has no reload: restart the container to apply it")
            return
        try:
            if engine.prepare is not None:
                engine.prepare()
            if engine.check is not None:
                done = subprocess.run(list(engine.check), capture_output=True, text=True,
                                      timeout=60, check=False, env=engine.env)
                if done.returncode != 0:
                    detail = " ".join((done.stderr + done.stdout).split())[-400:]
                    raise SupervisorError(f"check failed (exit {done.returncode}): {detail}")
        except (SupervisorError, OSError, ValueError, subprocess.TimeoutExpired) as exc:
            self.counters.add("reload_failures")
            self.log(f"{why}; not reloading, {engine.name} keeps its running config: {exc}")
            return
        self._signal(engine.reload_signal)
        self.counters.add("reloads")
        self.log(f"{why}; sent {engine.reload_signal.name} to {engine.name}")

    def loop(self) -> int:
        watching = self.options.watch_dirs
        seen = fingerprint(watching) if watching else ""
        next_poll = time.monotonic() + self.options.watch_interval
        while True:
            now = time.monotonic()
            # Nothing to poll: sleep until a signal (SIGCHLD included) wakes the loop.
            wait = max(0.0, next_poll - now) if watching else IDLE_WAIT
            if self.stop_deadline is not None:
                wait = min(wait, max(0.0, self.stop_deadline - now)) if not self.killed else 1.0
            info = signal.sigtimedwait(HANDLED, wait)
            if info is not None:
                if info.si_signo in (signal.SIGTERM, signal.SIGINT):
                    self.stop(f"got {signal.Signals(info.si_signo).name}")
                elif info.si_signo == signal.SIGHUP and self.stop_deadline is None:
                    self.reload("got SIGHUP")
            self.reap()
            if self.status is not None:
                return self._exit_code()
            now = time.monotonic()
            if self.stop_deadline is not None:
                if now >= self.stop_deadline and not self.killed:
                    self.log(f"{self.engine.name} still running after "
                             f"{self.options.stop_timeout:g}s: SIGKILL")
                    self.killed = True
                    self._signal(signal.SIGKILL)
            elif watching and now >= next_poll:
                current = fingerprint(watching)
                if current != seen:
                    seen = current
                    self.reload("watched files changed")
                next_poll = time.monotonic() + self.options.watch_interval

    def _exit_code(self) -> int:
        code = self.status if self.status is not None else 1
        if self.stop_deadline is not None:
            self.log(f"{self.engine.name} stopped (exit {code})")
            if code == 0 or (code == -self.engine.stop_signal and not self.killed):
                return 0
            return 128 - code if code < 0 else code
        self.log(f"{self.engine.name} exited by itself (exit {code})")
        return code if code > 0 else 1 if code == 0 else 128 - code


def _stderr(program: str) -> Callable[[str], None]:
    def log(message: str) -> None:
        print(f"{program}: {message}", file=sys.stderr, flush=True)

    return log


def supervise(engine: Engine, options: Options, program: str | None = None) -> int:
    """Run the engine until it stops; returns the container's exit code."""
    log = _stderr(program or f"{engine.name}-supervisor")
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)  # before any thread: they inherit it
    supervisor = Supervisor(engine, options, log)
    try:
        for directory in options.watch_dirs:
            if not directory.is_dir():
                raise SupervisorError(f"watched dir {directory} does not exist")
        server = supervisor.start_http()
        supervisor.spawn()
    except SupervisorError as exc:
        log(f"error: {exc}")
        return EXIT_CONFIG
    try:
        return supervisor.loop()
    finally:
        server.shutdown()


def healthcheck(url: str, timeout: float = 3.0) -> int:
    """0 when GET url answers 2xx: an image's `healthcheck` command (HEALTHCHECK, exec probe)."""
    import urllib.error  # here: most runs never call it (idle memory, lean_imports)
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 0 if 200 <= response.status < 300 else 1
    except urllib.error.HTTPError as exc:
        print(f"unhealthy: {url}: {exc.code}", file=sys.stderr)
    except OSError as exc:
        print(f"unhealthy: {url}: {exc}", file=sys.stderr)
    return 1


def image_main(program: str, prefix: str, health_port: int,
               build_parser: Callable[[], argparse.ArgumentParser],
               prepare: Callable[[argparse.Namespace], tuple[Engine, Options]],
               argv: Sequence[str]) -> int:
    """An image's whole entrypoint: `PROGRAM healthcheck` asks /readyz; otherwise parse the
    flags, let `prepare` write the engine's config (raising ConfigError or SupervisorError
    for bad input: one line, exit 2) and supervise the engine it returns."""
    if argv[:1] == ["healthcheck"]:
        parser = argparse.ArgumentParser(prog=f"{program} healthcheck")
        add_flags(parser, prefix, health_port=health_port)
        port = str(parser.parse_known_args(argv[1:])[0].health_bind).rpartition(":")[2]
        return healthcheck(f"http://127.0.0.1:{port}/readyz")
    args = build_parser().parse_args(argv)
    try:
        engine, options = prepare(args)
    except (ConfigError, SupervisorError) as exc:
        print(f"{program}: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return supervise(engine, options, program)


def parse_signal(value: str, flag: str, allow_none: bool = False) -> signal.Signals | None:
    name = value.upper()
    if allow_none and name == "NONE":
        return None
    try:
        return signal.Signals[name if name.startswith("SIG") else "SIG" + name]
    except KeyError:
        raise SupervisorError(f"{flag} {value!r}: not a signal name") from None


def main(argv: Sequence[str]) -> int:
    prefix = "ENGINE_SUPERVISOR_"
    parser = argparse.ArgumentParser(
        prog="engine-supervisor", usage="%(prog)s [flags] -- ENGINE ARGV...",
        description="Run one engine as PID 1: graceful stop, health over HTTP, reload on a "
        "watched dir's change.")
    add_flag(parser, prefix, "--name", None, "engine name in logs and metrics")
    add_flag(parser, prefix, "--stop-signal", "TERM", "signal for a graceful stop")
    add_flag(parser, prefix, "--reload-signal", "HUP", "signal that reloads, or none")
    add_flag(parser, prefix, "--check-command", None, "command that must pass before a reload")
    add_flag(parser, prefix, "--ready-tcp", None, "HOST:PORT that must accept for /readyz")
    add_flags(parser, prefix)
    own, command = _split(argv)
    args = parser.parse_args(own)
    log = _stderr("engine-supervisor")
    try:
        if not command:
            raise SupervisorError("no engine command after --")
        ready = None
        if args.ready_tcp:
            host, _, port = args.ready_tcp.rpartition(":")
            if not port.isdigit():
                raise SupervisorError(f"--ready-tcp {args.ready_tcp!r}: expected HOST:PORT")
            ready = tcp_ready(host or "127.0.0.1", int(port))
        stop = parse_signal(args.stop_signal, "--stop-signal")
        assert stop is not None
        engine = Engine(
            name=args.name or Path(command[0]).name,
            command=command,
            stop_signal=stop,
            reload_signal=parse_signal(args.reload_signal, "--reload-signal", allow_none=True),
            check=shlex.split(args.check_command) if args.check_command else None,
            ready=ready,
        )
        options = Options.from_args(args)
    except (SupervisorError, ValueError) as exc:
        log(f"error: {exc}")
        return EXIT_CONFIG
    return supervise(engine, options, "engine-supervisor")


def _split(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """The supervisor's own flags, and the engine's argv after the first `--`."""
    items = list(argv)
    if "--" not in items:
        return items, []
    at = items.index("--")
    return items[:at], items[at + 1:]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
