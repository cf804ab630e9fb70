"""change-notifier: watch a folder, queue each completed change on disk, and POST it as a
CloudEvent (structured JSON, CloudEvents 1.0) to a URL until the receiver answers 2xx.
Every flag has a CHANGE_NOTIFIER_* environment twin; the flag wins."""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import select
import signal
import sys
import threading
import time
import urllib.parse
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

from lean_imports import without_tls

from .queue import Queue, Snapshot, event_id
from .watch import DELETED, WRITTEN, Change, Filter, Inotify, WatchLimit, differences, scan

if TYPE_CHECKING:
    import http.client
    import ssl
    from http.server import ThreadingHTTPServer

# http.client and http.server are imported once the URL is known: for an http:// receiver
# without ssl (lean_imports.without_tls), which only an https:// one needs.

PREFIX = "CHANGE_NOTIFIER_"
EXIT_CONFIG = 2
TYPE_PREFIX = "io.sidecar-patterns.change-notifier.file."


class ConfigError(Exception):
    pass


def flags() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="change-notifier", description=__doc__)
    table = {
        "--url": (None, "where events are POSTed (http:// or https://)"),
        "--ca-file": ("", "PEM CA certificate(s) an https:// receiver's certificate must chain "
                          "to, read again for each new connection (a rotated Secret counts "
                          "from the next one); unset, the system CAs"),
        "--watch-dir": ("/watch", "the folder to watch (a shared volume)"),
        "--state-dir": ("/var/lib/change-notifier", "queue and snapshot (a volume)"),
        "--source": ("/change-notifier", "the events' CloudEvents source"),
        "--include": ("*", "comma-separated globs a path or file name must match"),
        "--exclude": ("", "comma-separated globs that leave a path out"),
        "--recursive": ("true", "watch subfolders too (true/false)"),
        "--debounce": ("500ms", "how long a path must stay quiet before its event is queued"),
        "--mode": ("inotify", "inotify, or poll (also the fallback when inotify is refused)"),
        "--poll-interval": ("2s", "time between scans in poll mode"),
        "--max-backoff": ("30s", "longest wait between delivery attempts"),
        "--timeout": ("10s", "time allowed per delivery attempt"),
        "--max-queued": ("100000", "events kept on disk at most; more are dropped and counted"),
        "--health-bind": ("127.0.0.1:8740", "HOST:PORT of /healthz and /readyz"),
    }
    for flag, (default, text) in table.items():
        env = PREFIX + flag[2:].upper().replace("-", "_")
        parser.add_argument(flag, default=os.environ.get(env, default),
                            help=f"{text} (env {env}; default: {default})")
    return parser


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.delivered = 0
        self.failed_attempts = 0
        self.last_error = ""
        self.mode = "starting"
        self.watching = False

    def report(self, queue: Queue) -> dict[str, Any]:
        with self.lock:
            return {"mode": self.mode, "queued": len(queue), "dropped": queue.dropped,
                    "delivered": self.delivered, "failedAttempts": self.failed_attempts,
                    "oldestQueuedSeconds": round(queue.oldest_age(time.time()), 3),
                    "lastError": self.last_error}


def seconds(flag: str, text: str) -> float:
    """A duration: 1.5, 500ms, 2s, 5m."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit):
            number, scale = text[:-len(unit)], units[unit]
            break
    else:
        number, scale = text, 1.0
    try:
        value = float(number) * scale
    except ValueError:
        raise ConfigError(f"{flag} {text!r}: a duration such as 500ms, 2s or 1m") from None
    if value < 0:
        raise ConfigError(f"{flag} {text!r}: must not be negative")
    return value


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat().replace("+00:00", "Z")


class Notifier:
    def __init__(self, args: argparse.Namespace) -> None:
        url = urllib.parse.urlsplit(args.url or "")
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ConfigError(f"--url {args.url!r}: an http:// or https:// URL is needed")
        self.url = url
        self.ca_file = args.ca_file
        if self.ca_file and url.scheme != "https":
            raise ConfigError(f"--ca-file {self.ca_file}: only for an https:// --url")
        if self.ca_file:
            try:
                self.tls_context()
            except (OSError, ValueError) as exc:
                raise ConfigError(f"--ca-file {self.ca_file}: no CA certificate in PEM to "
                                  f"load ({exc})") from None
        self.root = Path(args.watch_dir)
        if not self.root.is_dir():
            raise ConfigError(f"--watch-dir {self.root}: not a folder")
        self.filter = Filter(tuple(g for g in args.include.split(",") if g),
                             tuple(g for g in args.exclude.split(",") if g),
                             args.recursive.lower() == "true")
        self.source = args.source
        self.debounce = seconds("--debounce", args.debounce)
        self.poll_interval = max(0.05, seconds("--poll-interval", args.poll_interval))
        self.max_backoff = max(0.25, seconds("--max-backoff", args.max_backoff))
        self.timeout = seconds("--timeout", args.timeout)
        self.mode = args.mode
        if self.mode not in ("inotify", "poll"):
            raise ConfigError(f"--mode {self.mode!r}: inotify or poll")
        state = Path(args.state_dir)
        state.mkdir(parents=True, exist_ok=True)
        self.queue = Queue(state, int(args.max_queued))
        self.snapshot = Snapshot(state)
        self.stats = Stats()
        # path -> (kind, last seen, (size, mtime_ns) at the last scan or None)
        self.pending: dict[str, tuple[str, float, tuple[int, int] | None]] = {}
        self.stopping = threading.Event()

    # ------------------------------------------------------------------ finding changes

    def note(self, changes: list[Change],
             metas: dict[str, tuple[int, int]] | None = None) -> None:
        """Start (or restart) a path's quiet time. A scan that finds a pending path as it was
        at the last scan leaves its clock alone, so polling does not keep a file pending."""
        now = time.monotonic()
        for change in changes:
            meta = metas.get(change.path) if metas is not None else None
            before = self.pending.get(change.path)
            if metas is not None and before is not None and before[0] == change.kind \
                    and before[2] == meta:
                continue
            self.pending[change.path] = (change.kind, now, meta)

    def rescan(self) -> None:
        found = scan(self.root, self.filter)
        self.note(differences(self.snapshot.files, found), found)

    def settle(self, force: bool = False) -> None:
        """Queue the events of paths quiet for the debounce time (all of them when forced)."""
        now = time.monotonic()
        ready = [p for p, (_, seen, _) in self.pending.items()
                 if force or now - seen >= self.debounce]
        events = []
        for relative in ready:
            del self.pending[relative]
            event = self.event_for(relative)
            if event is not None:
                events.append(event)
        if events:
            dropped = self.queue.put_many(events)
            if dropped:
                log(f"queue full ({self.queue.limit} events): dropped {dropped}, "
                    f"{self.queue.dropped} in all (see /healthz)")
            self.snapshot.save()

    def event_for(self, relative: str) -> dict[str, Any] | None:
        path = self.root / relative
        before = self.snapshot.files.get(relative)
        try:
            info = path.lstat()
            regular = path.is_file() and not path.is_symlink()
        except FileNotFoundError:
            info, regular = None, False
        if info is None or not regular:
            if before is None:
                return None  # came and went between two looks: nothing completed
            del self.snapshot.files[relative]
            return self.cloudevent(DELETED, relative, before[0], before[1], None)
        meta = (info.st_size, info.st_mtime_ns)
        if before == meta:
            return None  # closed without a change
        try:
            digest = sha256_of(path)
        except FileNotFoundError:
            return None  # deleted meanwhile: its own event follows
        self.snapshot.files[relative] = meta
        return self.cloudevent(WRITTEN, relative, meta[0], meta[1], digest)

    def cloudevent(self, kind: str, relative: str, size: int, mtime_ns: int,
                   digest: str | None) -> dict[str, Any]:
        data: dict[str, Any] = {"path": relative, "change": kind, "size": size,
                                "mtime": iso(mtime_ns)}
        if digest is not None:
            data["sha256"] = digest
        return {"specversion": "1.0", "id": event_id(self.source, kind, relative, size, mtime_ns),
                "source": self.source, "type": TYPE_PREFIX + kind, "subject": relative,
                "time": iso(time.time_ns()), "datacontenttype": "application/json",
                "data": data}

    def watch(self) -> None:
        inotify: Inotify | None = None
        if self.mode == "inotify":
            try:
                inotify = Inotify(self.root, self.filter)
            except WatchLimit as exc:
                log(f"{exc}: falling back to polling every {self.poll_interval:g}s")
        with self.stats.lock:
            self.stats.mode = "inotify" if inotify else "poll"
            self.stats.watching = True
        if not self.snapshot.known:  # first start: what is there already is no change
            self.snapshot.files = scan(self.root, self.filter)
            self.snapshot.save()
        else:
            self.rescan()  # what changed while the sidecar was down
        next_poll = time.monotonic() + self.poll_interval
        while not self.stopping.is_set():
            wait = self.debounce / 2 if self.pending else 1.0
            if inotify is not None:
                readable, _, _ = select.select([inotify.fd], [], [], wait)
                if readable:
                    changes, again = [], False
                    try:
                        for item in inotify.read():
                            if isinstance(item, Change):
                                changes.append(item)
                            else:
                                again = True
                    except WatchLimit as exc:
                        log(f"{exc}: falling back to polling every {self.poll_interval:g}s")
                        inotify.close()
                        inotify = None
                        with self.stats.lock:
                            self.stats.mode = "poll"
                        again = True
                    self.note(changes)
                    if again:
                        self.rescan()
            else:
                self.stopping.wait(min(wait, max(0.0, next_poll - time.monotonic())))
                if time.monotonic() >= next_poll:
                    self.rescan()
                    next_poll = time.monotonic() + self.poll_interval
            self.settle()
        self.settle(force=True)

    # ------------------------------------------------------------------ delivering

    def connect(self) -> http.client.HTTPConnection:
        import http.client

        host, port = self.url.hostname or "", self.url.port
        if self.url.scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=self.timeout,
                                               context=self.tls_context())
        return http.client.HTTPConnection(host, port, timeout=self.timeout)

    def tls_context(self) -> ssl.SSLContext:
        """Verifies the receiver's certificate and name: against --ca-file, read now (an
        unreadable file fails this attempt, counted, and the event stays queued), or the
        system CAs."""
        import ssl

        return ssl.create_default_context(cafile=self.ca_file or None)

    def deliver(self) -> None:
        import http.client

        path = (self.url.path or "/") + (f"?{self.url.query}" if self.url.query else "")
        connection: http.client.HTTPConnection | None = None
        backoff = 0.0
        while True:
            item = self.queue.oldest(timeout=0.5)
            if item is None:
                if self.stopping.is_set():
                    return
                continue
            name, body = item
            try:
                connection = connection or self.connect()
                connection.request("POST", path, body=body, headers={
                    "Content-Type": "application/cloudevents+json; charset=utf-8"})
                response = connection.getresponse()
                response.read()
                ok = 200 <= response.status < 300
                problem = "" if ok else f"HTTP {response.status}"
            except (OSError, http.client.HTTPException) as exc:
                ok, problem = False, f"{type(exc).__name__}: {exc}"
                connection = None
            if ok:
                self.queue.done(name)
                with self.stats.lock:
                    self.stats.delivered += 1
                backoff = 0.0
                continue
            with self.stats.lock:
                self.stats.failed_attempts += 1
                self.stats.last_error = problem
            if connection is not None:
                connection.close()
                connection = None
            backoff = min(self.max_backoff, max(0.25, backoff * 2))
            if self.stopping.wait(backoff):
                return  # stopping: what is left stays queued on disk for the next start


def log(message: str) -> None:
    print(f"change-notifier: {message}", file=sys.stderr, flush=True)


def serve_health(notifier: Notifier, bind: str) -> ThreadingHTTPServer:
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    host, _, port = bind.rpartition(":")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            report = notifier.stats.report(notifier.queue)
            if self.path == "/healthz":
                code = 200
            elif self.path == "/readyz":
                code = 200 if notifier.stats.watching else 503
            else:
                code, report = 404, {"error": "not found"}
            body = (json.dumps(report) + "\n").encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def healthcheck(argv: list[str]) -> int:
    """The probe: GET /healthz or /readyz; prints the counters."""
    bind = os.environ.get(PREFIX + "HEALTH_BIND", "127.0.0.1:8740")
    path = argv[0] if argv else "/readyz"
    without_tls()
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{bind}{path}", timeout=3) as response:
            print(response.read().decode().strip())
            return 0
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str]) -> int:
    if argv[:1] == ["healthcheck"]:
        return healthcheck(argv[1:])
    parser = flags()
    parser.add_argument("--check", action="store_true",
                        help="check the settings and the folders, then exit")
    try:
        args = parser.parse_args(argv)
        notifier = Notifier(args)
        if args.check:
            print(f"change-notifier: ok: {notifier.root} -> {notifier.url.geturl()}")
            return 0
        if notifier.url.scheme == "http":
            without_tls()
        server = serve_health(notifier, args.health_bind)
    except (ConfigError, ValueError, OSError) as exc:
        print(f"change-notifier: error: {exc}", file=sys.stderr)
        return EXIT_CONFIG

    def stop(signum: int, frame: FrameType | None) -> None:
        notifier.stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    sender = threading.Thread(target=notifier.deliver, name="deliver", daemon=True)
    sender.start()
    log(f"watching {notifier.root} -> {notifier.url.geturl()}")
    notifier.watch()
    sender.join(timeout=5)
    server.shutdown()
    log(f"stopped: {len(notifier.queue)} events stay queued for the next start")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
