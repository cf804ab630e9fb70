"""config-reloader: reload an unchanged app when its mounted ConfigMaps or Secrets change.

The kubelet updates a ConfigMap or Secret volume by writing a new `..<timestamp>` folder and
swapping the `..data` symlink. Watchers that trust event kinds miss swaps reported as another
kind, and mtimes are unreliable, so this sidecar decides by content: it reads `..data` of each
watched folder every --check-interval (one readlink, cheap) and hashes the whole tree when a
link moved, and every --poll-interval anyway (the backstop: folders without the kubelet's
layout, or a swap back and forth between two checks). A new hash is one change: the optional
--validate command runs on the new files (the folders are mounted at the app's paths, so the
app's own checker sees what the app will read); a refused change is counted and not applied.
An accepted one is told to the app by --notify:

  signal   --signal (HUP) to the processes named --process (shareProcessNamespace: true)
  http     --method (POST) --url, e.g. http://127.0.0.1:9090/-/reload; 2xx expected
  restart  GET /livez on --restart-bind answers 503 --restart-failures times, so the app's
           liveness probe pointed there makes the kubelet restart the app

A failed notification is retried at every poll until it works. HTTP (--http-bind):
GET /healthz, /readyz (baseline taken), /status (JSON counters: reloads, validationFailures,
notifyFailures, lastHash...), /metrics; POST /run checks now. Every flag --foo-bar has an
environment twin CONFIG_RELOADER_FOO_BAR; the flag wins. Stdlib only.
"""

from __future__ import annotations

import sys

import lean_imports

# Before http.client is first imported (by periodic_job, engine_supervisor, tell_app): ssl
# only when an https:// URL may be called (lean_imports).
if not lean_imports.https_named(sys.argv[1:], "CONFIG_RELOADER_"):
    lean_imports.without_tls()

import argparse
import hashlib
import json
import os
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import periodic_job as job
from engine_supervisor import SupervisorError, parse_signal
from engine_supervisor import healthcheck as get_ok
from periodic_job import seconds
from sidecar_common import add_flag
from tell_app import call, find_processes

PROGRAM = "config-reloader"
PREFIX = "CONFIG_RELOADER_"
EXIT_USAGE = 2
DATA = "..data"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROGRAM, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: config-reloader --watch /etc/nginx/conf --process nginx -- nginx -t -q "
               "-e stderr -c /etc/nginx/conf/nginx.conf")
    p.add_argument("command", nargs="?", default="run", choices=["run", "healthcheck", "hash"],
                   help="run (default): the loop; healthcheck [PATH]: exit 0 when the HTTP "
                        "endpoint answers 200; hash: print the watched tree's hash")
    p.add_argument("path", nargs="?", default="/healthz", help="for healthcheck")

    def flag(name: str, default: str | None, text: str) -> None:
        add_flag(p, PREFIX, name, default, text)

    flag("--watch", None, "folders to watch, comma-separated (mounted ConfigMaps/Secrets)")
    flag("--check-interval", "250ms", "how often each ..data link is read")
    flag("--poll-interval", "10s", "how often the whole tree is hashed anyway")
    flag("--validate", None, "command run on a change before the app is told, as a JSON "
                             "array (or its words after `--`); a non-zero exit refuses it")
    flag("--validate-timeout", "30s", "longest run of --validate")
    flag("--notify", "signal", "signal, http or restart")
    flag("--process", None, "signal: the app's process name (as /proc/PID/comm shows it)")
    flag("--signal", "HUP", "signal: its name (HUP, USR1, ...)")
    flag("--url", None, "http: the URL to call")
    flag("--method", "POST", "http: POST, PUT or GET")
    flag("--timeout", "10s", "http: longest call")
    flag("--restart-bind", "0.0.0.0:8743", "restart: address of GET /livez for the app's probe")
    flag("--restart-failures", "3", "restart: how many /livez answers are 503 after a change "
                                    "(the app's livenessProbe failureThreshold)")
    flag("--http-bind", "127.0.0.1:8742", "address of the health endpoints, or off")
    return p


def log(message: str) -> None:
    print(f"{PROGRAM}: {message}", file=sys.stderr, flush=True)


def _files(folder: Path) -> list[Path]:
    """The files the app sees: through `..data` in the kubelet's layout, else every file
    (names starting with '..' are the kubelet's own)."""
    root = folder / DATA if (folder / DATA).is_dir() else folder
    found = []
    for path in sorted(root.rglob("*")):
        if any(part.startswith("..") for part in path.relative_to(root).parts):
            continue
        if path.is_file():
            found.append(path)
    return found


def tree_hash(folders: list[Path]) -> str:
    digest = hashlib.sha256()
    for folder in folders:
        root = folder / DATA if (folder / DATA).is_dir() else folder
        for path in _files(folder):
            digest.update(f"{folder}\0{path.relative_to(root)}\0".encode())
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def links(folders: list[Path]) -> tuple[str | None, ...]:
    out = []
    for folder in folders:
        try:
            out.append(os.readlink(folder / DATA))
        except OSError:
            out.append(None)
    return tuple(out)


class Reloader:
    def __init__(self, args: argparse.Namespace) -> None:
        if not args.watch:
            raise ValueError("--watch is required")
        self.folders = [Path(f) for f in args.watch.split(",") if f]
        for folder in self.folders:
            if not folder.is_dir():
                raise ValueError(f"watched folder {folder} does not exist (is it mounted?)")
        self.args = args
        self.validate: list[str] | None = None
        if args.validate:
            command = json.loads(args.validate)
            if not isinstance(command, list) or not command or \
                    not all(isinstance(c, str) for c in command):
                raise ValueError("--validate must be a JSON array of strings")
            self.validate = command
        if args.notify not in ("signal", "http", "restart"):
            raise ValueError("--notify must be signal, http or restart")
        if args.notify == "signal":
            if not args.process:
                raise ValueError("--notify signal needs --process")
            try:
                self.signal = parse_signal(args.signal, "--signal")
            except SupervisorError as exc:
                raise ValueError(str(exc)) from None
        if args.notify == "http" and not str(args.url or "").startswith(("http://", "https://")):
            raise ValueError("--notify http needs --url http://...")
        self.restart_failures = int(args.restart_failures)
        self.livez_failing = 0
        self.lock = threading.Lock()
        self.status = job.Status(max_failures=2**31)
        self.applied = tree_hash(self.folders)
        self.seen = self.applied
        self.pending = False  # accepted but not told to the app yet (retried every poll)
        self.links = links(self.folders)
        self.last_poll = time.monotonic()
        self.status.facts.update({"reloads": 0, "validationFailures": 0, "notifyFailures": 0,
                                  "lastHash": self.applied, "lastSeenHash": self.seen,
                                  "notify": args.notify, "watched": len(self.folders),
                                  "lastReload": None})
        log(f"watching {', '.join(map(str, self.folders))}: hash {self.applied[:12]}")

    # -- one check
    def check(self, force: bool = False) -> job.Result:
        """One tick of the loop (run_every records its result in the counters)."""
        with self.lock:
            now = time.monotonic()
            current_links = links(self.folders)
            due = force or current_links != self.links or \
                now - self.last_poll >= seconds(self.args.poll_interval)
            if not due:
                return job.Result(True)
            self.links, self.last_poll = current_links, now
            try:
                new = tree_hash(self.folders)
            except OSError as exc:  # a swap between listing and reading: next check
                return job.Result(False, f"reading the watched files: {exc}")
            if new == self.seen and not self.pending:
                return job.Result(True)
            return self._change(new)

    def _change(self, new: str) -> job.Result:
        fresh = new != self.seen
        self.seen = new
        self.status.facts["lastSeenHash"] = new
        if fresh and self.validate is not None:
            self.pending = False
            ok, detail = self._run_validate()
            if not ok:
                self.status.facts["validationFailures"] = \
                    int(str(self.status.facts["validationFailures"])) + 1
                return job.Result(False, f"change {new[:12]} refused by validation, not "
                                         f"applied: {detail}")
        ok, detail = self._notify()
        if not ok:
            self.pending = True
            self.status.facts["notifyFailures"] = \
                int(str(self.status.facts["notifyFailures"])) + 1
            return job.Result(False, f"change {new[:12]}: telling the app failed (retried "
                                     f"every poll): {detail}")
        self.pending = False
        self.applied = new
        self.status.facts.update({"lastHash": new, "lastReload": time.time(),
                                  "reloads": int(str(self.status.facts["reloads"])) + 1})
        log(f"change {new[:12]} applied: {detail}")
        return job.Result(True)

    def _run_validate(self) -> tuple[bool, str]:
        assert self.validate is not None
        try:
            proc = subprocess.run(self.validate, capture_output=True, text=True, cwd="/tmp",
                                  timeout=seconds(self.args.validate_timeout), check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return False, str(exc)
        output = " | ".join(ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip())
        return proc.returncode == 0, output[-500:] or f"exit {proc.returncode}"

    def _notify(self) -> tuple[bool, str]:
        args = self.args
        if args.notify == "restart":
            self.livez_failing = self.restart_failures
            return True, f"restart requested (/livez 503 x{self.restart_failures})"
        if args.notify == "http":
            method = args.method.upper()
            code, error = call(method, args.url, seconds(args.timeout))
            if code is None:
                return False, f"{method} {args.url}: {error}"
            return 200 <= code < 300, f"{method} {args.url} -> {code}"
        pids = find_processes(args.process)
        if not pids:
            return False, (f"no process named {args.process!r} (is shareProcessNamespace on "
                           "and the app running?)")
        try:
            for pid in pids:
                os.kill(pid, self.signal)
        except OSError as exc:
            return False, f"{self.signal.name} to {pids}: {exc} (run as the app's uid)"
        return True, f"{self.signal.name} to {args.process} {pids}"

    def livez(self) -> bool:
        with self.lock:
            if self.livez_failing > 0:
                self.livez_failing -= 1
                return False
            return True


def serve_livez(bind: str, reloader: Reloader) -> ThreadingHTTPServer:
    host, _, port = bind.rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            ok = self.path == "/livez" and reloader.livez()
            body = b"ok\n" if ok else b"restart requested: the configuration changed\n"
            self.send_response(200 if ok else (503 if self.path == "/livez" else 404))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((host or "0.0.0.0", int(port)), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def healthcheck(args: argparse.Namespace) -> int:
    host, _, port = args.http_bind.rpartition(":")
    return get_ok(f"http://{host or '127.0.0.1'}:{port}{args.path}")


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    command: list[str] = []
    if "--" in words:  # the validation command, word for word (what the pattern passes)
        at = words.index("--")
        words, command = words[:at], words[at + 1:]
    args = parser().parse_args(words)
    if command:
        args.validate = json.dumps(command)
    if args.command == "healthcheck":
        return healthcheck(args)
    try:
        reloader = Reloader(args)
        interval = seconds(args.check_interval)
        seconds(args.poll_interval)
    except (ValueError, OSError) as exc:
        log(f"error: {exc}")
        return EXIT_USAGE
    if args.command == "hash":
        print(reloader.applied)
        return 0
    if args.notify == "restart":
        serve_livez(args.restart_bind, reloader)
    # The baseline is the configuration the app started with: ready at once, first check
    # after one interval.
    return job.run_every(interval, reloader.check, reloader.status, args.http_bind,
                         "config_reloader", log, run_at_start=False)


if __name__ == "__main__":
    sys.exit(main())
