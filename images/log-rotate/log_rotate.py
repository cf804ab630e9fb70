"""log-rotate: run Debian's logrotate on a schedule against a shared log directory.

One process is the only runner of its state file (logrotate locks it; two runners would
conflict). It runs `logrotate -v -s STATE CONFIG` at start and every --interval, counts runs,
rotations and failures, and answers on HTTP:

  GET /healthz  200 unless the last --max-failures runs in a row failed (then 503)
  GET /readyz   200 once the first run has finished
  GET /status   the counters as JSON;  GET /metrics  the same as Prometheus text
  POST /run     run now (and answer with the run's result)

`log-rotate reopen` is what the rendered config's postrotate script calls: it tells the app
to reopen its files, with a signal to processes of the shared process namespace named
--reopen-process, or an HTTP call to --reopen-url. `log-rotate check` parses the config
with `logrotate -d`. Every flag --foo-bar has an environment twin LOG_ROTATE_FOO_BAR; the
flag wins. Stdlib only.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import periodic_job as job
from periodic_job import seconds
from sidecar_common import add_flag
from tell_app import call, find_processes

PROGRAM = "log-rotate"
PREFIX = "LOG_ROTATE_"
EXIT_FAILED, EXIT_USAGE = 1, 2
SIGNALS = {"HUP": signal.SIGHUP, "USR1": signal.SIGUSR1, "USR2": signal.SIGUSR2}
_ROTATING = re.compile(r"^rotating log (\S+), log->rotateCount is \d+", re.MULTILINE)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROGRAM, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: log-rotate run --config /etc/log-rotate/logrotate.conf --interval 1m")
    p.add_argument("command", nargs="?", default="run", choices=["run", "once", "check", "reopen"],
                   help="run (default): the loop; once: one run, exit 1 if it failed; "
                        "check: logrotate -d on the config; reopen: tell the app to reopen")

    def flag(name: str, default: str | None, text: str) -> None:
        add_flag(p, PREFIX, name, default, text)

    flag("--config", "/etc/log-rotate/logrotate.conf", "the logrotate configuration")
    flag("--state-dir", "/var/lib/log-rotate", "holds logrotate's state file (a volume)")
    flag("--interval", "1m", "time between runs; logrotate itself decides what is due")
    flag("--max-failures", "3", "failed runs in a row after which /healthz answers 503")
    flag("--http-bind", "0.0.0.0:8734", "address of the HTTP endpoints, or off")
    flag("--reopen-signal", "HUP", "signal for reopen: HUP, USR1 or USR2")
    flag("--reopen-process", None, "reopen signals the processes with this name (comm)")
    flag("--reopen-url", None, "reopen calls this URL instead (2xx is success)")
    flag("--reopen-method", "POST", "HTTP method of the reopen call")
    flag("--reopen-timeout", "5s", "time limit of the reopen call")
    return p


class Runner:
    """One logrotate run at a time (it is the state file's only user), as a periodic job."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.reopen_pending = False  # the last reopen failed: the app still writes a rotated file
        self.config = args.config
        self.state_file = str(Path(args.state_dir) / "logrotate.status")
        self.last_rotated: dict[str, float] = {}  # per file, when it was last rotated

    def run_once(self) -> tuple[job.Result, str]:
        proc = subprocess.run(["logrotate", "-v", "-s", self.state_file, self.config],
                              capture_output=True, text=True, check=False)
        output = proc.stdout + proc.stderr
        rotated = _ROTATING.findall(output)
        errors = [line for line in output.splitlines() if line.startswith("error:")]
        if any("postrotate script" in line for line in errors):
            self.reopen_pending = True
        elif rotated:
            self.reopen_pending = False
        elif self.reopen_pending:
            # Nothing was due (the new file stays empty while the app writes the old one),
            # so tell the app again, every run until it works.
            if reopen(self.args) == 0:
                self.reopen_pending = False
            else:
                errors.append("error: the app was not told to reopen its files "
                              "(retried every run)")
        for path in rotated:
            log(f"rotated {path}")
        for line in output.splitlines():  # what `log-rotate reopen` said, from postrotate
            if line.startswith(PROGRAM + ":"):
                print(line, file=sys.stderr, flush=True)
        self.last_rotated.update({path: time.time() for path in rotated})
        ok = proc.returncode == 0 and not errors
        error = "; ".join(errors) or f"logrotate exited {proc.returncode}"
        return job.Result(ok, "" if ok else error, {"lastRotated": dict(self.last_rotated)},
                          {"rotations": len(rotated)}), output


def log(message: str) -> None:
    print(f"{PROGRAM}: {message}", file=sys.stderr, flush=True)


def loop(args: argparse.Namespace) -> int:
    state_dir = Path(args.state_dir)
    if not os.access(state_dir, os.W_OK):
        log(f"error: state dir {state_dir} is not writable by uid {os.getuid()}; mount a volume")
        return EXIT_FAILED
    runner = Runner(args)
    status = job.Status(max_failures=int(args.max_failures))
    log(f"running logrotate on {args.config} every {args.interval} (state {runner.state_file})")
    return job.run_every(seconds(args.interval), lambda: runner.run_once()[0], status,
                         args.http_bind, "log_rotate", log)


def reopen(args: argparse.Namespace) -> int:
    if args.reopen_url:
        code, error = call(args.reopen_method, args.reopen_url, seconds(args.reopen_timeout))
        if code is None:
            log(f"error: reopen call {args.reopen_method} {args.reopen_url} failed: {error}")
            return EXIT_FAILED
        if not 200 <= code < 300:
            log(f"error: reopen call {args.reopen_method} {args.reopen_url} answered {code}")
            return EXIT_FAILED
        log(f"reopen: {args.reopen_method} {args.reopen_url} -> {code}")
        return 0
    if not args.reopen_process:
        log("error: reopen needs --reopen-process or --reopen-url")
        return EXIT_USAGE
    sig = SIGNALS.get(args.reopen_signal)
    if sig is None:
        log(f"error: --reopen-signal must be one of {', '.join(SIGNALS)}")
        return EXIT_USAGE
    pids = find_processes(args.reopen_process)
    if not pids:
        log(f"error: no process named {args.reopen_process!r} to signal (is "
            "shareProcessNamespace on and the app running?)")
        return EXIT_FAILED
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError as exc:
            log(f"error: cannot send SIG{args.reopen_signal} to {pid}: {exc} (run the sidecar "
                "as the app's uid)")
            return EXIT_FAILED
    log(f"reopen: SIG{args.reopen_signal} to {args.reopen_process} {pids}")
    return 0


def check(args: argparse.Namespace) -> int:
    """logrotate -d: parses the config and shows what it would do, changing nothing."""
    state = Path(os.environ.get("TMPDIR", "/tmp")) / "log-rotate-check.status"
    proc = subprocess.run(["logrotate", "-d", "-s", str(state), args.config],
                          capture_output=True, text=True, check=False)
    errors = [line for line in (proc.stdout + proc.stderr).splitlines()
              if line.startswith("error:")]
    for line in errors:
        log(line)
    if proc.returncode != 0 or errors:
        log(f"error: the configuration {args.config} is not valid")
        return EXIT_FAILED
    log(f"configuration {args.config} is valid")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        seconds(args.interval)
        seconds(args.reopen_timeout)
        int(args.max_failures)
    except ValueError as exc:
        log(f"error: {exc}")
        return EXIT_USAGE
    if args.command == "reopen":
        return reopen(args)
    if args.command == "check":
        return check(args)
    if args.command == "once":
        result, output = Runner(args).run_once()
        sys.stderr.write(output)
        return 0 if result.ok else EXIT_FAILED
    return loop(args)


if __name__ == "__main__":
    sys.exit(main())
