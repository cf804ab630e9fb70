"""backup: snapshot a shared data volume with Debian's restic on a schedule; restore it.

  backup run       (default) the loop: optionally restore first, then every --interval one
                   snapshot of --data-dir, then retention (restic forget --prune)
  backup once      one snapshot + retention; exit 1 if it failed
  backup restore   restore --restore-snapshot into --data-dir if it is empty; exit 1 on error
  backup check     open the repository (create it with --init); exit 1 if it cannot

With --dump-arg items (or --dump-command, a JSON array; an argv, no shell), each run also
streams that command's output (e.g. mariadb-dump over 127.0.0.1) into a snapshot of its own,
/--dump-name, with `restic backup --stdin`. A dump that exits non-zero fails the run, and the
snapshot restic made of its partial output is forgotten at once: no partial "success".

With --load-arg items (the loader, e.g. mariadb over 127.0.0.1; the pattern passes them
when restore is on), `run` first loads the dump of --restore-snapshot into the app once the
app answers: one time per data volume, which then holds the marker file .backup-dump-loaded
(left out of snapshots); remove it to load again. Until the load is done no snapshot is
taken; a load that still fails after --restore-timeout ends the sidecar with exit 1 (the pod
says so, loudly).

Every run first unlocks stale locks only (`restic unlock` removes locks of dead processes on
this host and locks older than 30 minutes, never a live one), snapshots under a stable
--host (retention groups by host and paths), and counts: a snapshot that restic could not
finish (exit 3: files it could not read) is a failure, not a success. HTTP (periodic_job):
/healthz, /readyz, /status, /metrics, POST /run. Every flag --foo-bar has an environment twin
BACKUP_FOO_BAR; the flag wins. restic reads RESTIC_REPOSITORY / RESTIC_PASSWORD_FILE itself.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import periodic_job as job
from periodic_job import seconds
from sidecar_common import add_flag

PROGRAM = "backup"
PREFIX = "BACKUP_"
LOADED_MARKER = ".backup-dump-loaded"
EXIT_FAILED, EXIT_USAGE = 1, 2
RETENTION = ("last", "hourly", "daily", "weekly", "monthly", "yearly")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROGRAM, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: backup run --data-dir /data --host shop --interval 1h --keep-daily 7")
    p.add_argument("command", nargs="?", default="run", choices=["run", "once", "restore", "check"])

    def flag(name: str, default: str | None, text: str) -> None:
        add_flag(p, PREFIX, name, default, text)

    flag("--data-dir", "/data", "the directory to snapshot (the shared volume)")
    flag("--host", None, "restic's host name for snapshots (stable: the workload's name)")
    flag("--interval", "1h", "time between snapshots")
    flag("--max-failures", "3", "failed runs in a row after which /healthz answers 503")
    flag("--http-bind", "0.0.0.0:8735", "address of the HTTP endpoints, or off")
    flag("--init", "true", "create the repository when there is none")
    flag("--restore", "false", "run: restore into an empty --data-dir before the first snapshot")
    flag("--restore-snapshot", "latest", "the snapshot to restore: latest or an id")
    flag("--timeout", "6h", "time limit of one restic command")
    flag("--dump-command", None, 'a JSON array, e.g. ["mariadb-dump", "--all-databases"]')
    p.add_argument("--dump-arg", action="append", default=[], metavar="ITEM",
                   help="the dump command as argv, one item per flag, written --dump-arg=ITEM "
                        "(so items may start with -); instead of --dump-command")
    flag("--dump-name", "dump.sql", "the file name the dump has in its snapshot")
    flag("--load-command", None, 'run: first load the dump with this JSON array (its stdin)')
    p.add_argument("--load-arg", action="append", default=[], metavar="ITEM",
                   help="the loader as argv, one item per flag (--load-arg=ITEM)")
    flag("--restore-timeout", "10m", "how long the dump load retries while the app starts")
    for period in RETENTION:
        flag(f"--keep-{period}", None, f"retention: restic forget --keep-{period} N")
    return p


def log(message: str) -> None:
    print(f"{PROGRAM}: {message}", file=sys.stderr, flush=True)


def restic(args: argparse.Namespace, *command: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["restic", "-q", *command], capture_output=True, text=True,
                              check=False, timeout=seconds(args.timeout))
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(command, 124, "", f"timed out after {args.timeout}")


def _said(proc: subprocess.CompletedProcess[str]) -> str:
    """restic's last Fatal line; with what ssh said before it (sftp: the real reason)."""
    lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
    fatal = [line for line in lines if line.startswith("Fatal:")]
    ssh = [line.removeprefix("subprocess ssh: ") for line in lines
           if line.startswith("subprocess ssh: ")]  # restic passes ssh's stderr on so
    said = (fatal or lines or [f"exit {proc.returncode}"])[-1]
    return f"{said} (ssh said: {ssh[-1]})" if ssh and fatal else said


def ensure_repository(args: argparse.Namespace) -> str:
    """'' when the repository opens with the password; else what is wrong."""
    proc = restic(args, "cat", "config")
    if proc.returncode == 0:
        return ""
    if "unable to open config file" in proc.stderr and args.init == "true":
        made = restic(args, "init")
        if made.returncode == 0:
            log(f"created the repository {os.environ.get('RESTIC_REPOSITORY', '')}")
            return ""
        return f"cannot create the repository: {_said(made)}"
    return f"cannot open the repository: {_said(proc)}"


def snapshot(args: argparse.Namespace) -> job.Result:
    started = time.monotonic()
    problem = ensure_repository(args)
    if problem:
        return job.Result(False, problem)
    restic(args, "unlock")  # stale locks only; a live one makes the backup below wait or fail
    proc = restic(args, "backup", "--json", "--host", args.host,
                  "--exclude", str(Path(args.data_dir) / LOADED_MARKER), args.data_dir)
    summary: dict[str, object] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{") and '"summary"' in line:
            summary = json.loads(line)
    if proc.returncode != 0 or not summary:
        why = ("some files could not be read, the snapshot is incomplete"
               if proc.returncode == 3 else _said(proc))
        return job.Result(False, f"backup failed: {why}", counts={"snapshotsFailed": 1})
    counts = {"snapshots": 1}
    facts: dict[str, object] = {
        "lastSnapshotId": summary.get("snapshot_id"),
        "lastSnapshotBytes": summary.get("total_bytes_processed"),
        "lastSnapshotFiles": summary.get("total_files_processed"),
        "lastDataAdded": summary.get("data_added"),
    }
    log(f"snapshot {summary.get('snapshot_id')} of {args.data_dir}: "
        f"{summary.get('total_files_processed')} files, {summary.get('data_added')} bytes new")
    paths = [args.data_dir]
    if args.dump_command:
        dumped = dump(args)
        facts.update(dumped.facts)
        counts.update(dumped.counts)
        if not dumped.ok:
            return job.Result(False, dumped.error, facts, counts)
        paths.append("/" + args.dump_name)
    keep = [a for period in RETENTION if getattr(args, f"keep_{period}")
            for a in (f"--keep-{period}", getattr(args, f"keep_{period}"))]
    for path in paths if keep else []:
        forgot = restic(args, "forget", "--prune", "--host", args.host, "--path", path, *keep)
        if forgot.returncode != 0:
            return job.Result(False, f"retention failed: {_said(forgot)}", facts, counts)
    listed = restic(args, "snapshots", "--json", "--host", args.host, "--path", args.data_dir)
    if listed.returncode == 0:
        facts["snapshotsKept"] = len(json.loads(listed.stdout or "[]"))
    facts["lastDurationSeconds"] = round(time.monotonic() - started, 3)
    return job.Result(True, "", facts, counts)


def dump(args: argparse.Namespace) -> job.Result:
    """The dump command's output as a snapshot of its own; forgotten if the command failed."""
    command = json.loads(args.dump_command)
    try:
        producer = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        return job.Result(False, f"dump command {command[0]!r} cannot run: {exc}",
                          counts={"dumpsFailed": 1})
    assert producer.stdout is not None and producer.stderr is not None
    proc = subprocess.run(["restic", "-q", "backup", "--json", "--host", args.host, "--stdin",
                           "--stdin-filename", args.dump_name], stdin=producer.stdout,
                          capture_output=True, text=True, check=False,
                          timeout=seconds(args.timeout))
    producer.stdout.close()
    said = producer.stderr.read().decode(errors="replace").strip().splitlines()
    code = producer.wait()
    summary: dict[str, object] = {}
    for line in proc.stdout.splitlines():
        if line.startswith("{") and '"summary"' in line:
            summary = json.loads(line)
    if code != 0:
        if summary.get("snapshot_id"):
            restic(args, "forget", str(summary["snapshot_id"]))
        why = said[-1] if said else f"exit {code}"
        return job.Result(False, f"dump failed (exit {code}): {why}; its snapshot was removed",
                          counts={"dumpsFailed": 1})
    if proc.returncode != 0 or not summary:
        return job.Result(False, f"dump snapshot failed: {_said(proc)}",
                          counts={"dumpsFailed": 1})
    log(f"dump snapshot {summary.get('snapshot_id')}: {summary.get('total_bytes_processed')} "
        f"bytes of {command[0]}")
    return job.Result(True, "", {"lastDumpId": summary.get("snapshot_id"),
                                 "lastDumpBytes": summary.get("total_bytes_processed")},
                      {"dumps": 1})


def load_dump(args: argparse.Namespace) -> job.Result:
    """Once per data volume: the dump of --restore-snapshot into the app, by the loader."""
    marker = Path(args.data_dir) / LOADED_MARKER
    if marker.exists():
        said = marker.read_text().strip()
        log(f"restore: the dump was loaded into this volume before ({said}); not again "
            f"(remove {marker} to load it again)")
        return job.Result(True, facts={"dumpLoad": "done before"})
    problem = ensure_repository(args)
    if problem:
        return job.Result(False, f"dump load: {problem}", counts={"dumpLoadsFailed": 1})
    path = "/" + args.dump_name
    listed = restic(args, "snapshots", "--json", "--host", args.host, "--path", path,
                    *([] if args.restore_snapshot == "latest" else [args.restore_snapshot]))
    if listed.returncode != 0:
        return job.Result(False, f"dump load: cannot list snapshots: {_said(listed)}",
                          counts={"dumpLoadsFailed": 1})
    found = json.loads(listed.stdout or "[]")
    if not found:
        if args.restore_snapshot != "latest":
            return job.Result(False, f"dump load: no snapshot {args.restore_snapshot} of {path}",
                              counts={"dumpLoadsFailed": 1})
        log(f"restore: no dump {path} by host {args.host} yet; nothing to load")
        marker.write_text("no dump yet\n")
        return job.Result(True, facts={"dumpLoad": "no dump"})
    snapshot_id = max(found, key=lambda s: s["time"])["short_id"]
    command = json.loads(args.load_command)
    deadline = time.monotonic() + seconds(args.restore_timeout)
    attempt, why = 0, ""
    while time.monotonic() < deadline:
        attempt += 1
        reader = subprocess.Popen(["restic", "-q", "dump", snapshot_id, path],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert reader.stdout is not None and reader.stderr is not None
        loaded = subprocess.run(command, stdin=reader.stdout, capture_output=True, text=True,
                                check=False, timeout=seconds(args.timeout))
        reader.stdout.close()
        reader_said = reader.stderr.read().decode(errors="replace").strip()
        read_code = reader.wait()
        if loaded.returncode == 0 and read_code == 0:
            marker.write_text(f"snapshot {snapshot_id} loaded at "
                              f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n")
            log(f"restore: loaded the dump of snapshot {snapshot_id} with {command[0]} "
                f"(attempt {attempt})")
            return job.Result(True, facts={"dumpLoad": "loaded", "dumpLoadedId": snapshot_id},
                              counts={"dumpLoads": 1})
        if loaded.returncode == 0:  # the loader took all it got, but restic could not read it
            why = reader_said.splitlines()[-1] if reader_said else f"exit {read_code}"
            return job.Result(False, f"dump load: restic dump {snapshot_id} failed: {why}",
                              counts={"dumpLoadsFailed": 1})
        lines = [line for line in loaded.stderr.splitlines() if line.strip()]
        why = lines[-1] if lines else f"exit {loaded.returncode}"
        if attempt == 1:
            log(f"restore: {command[0]} cannot load the dump yet ({why}); retrying until the "
                f"app answers, for up to {args.restore_timeout}")
        time.sleep(2)
    return job.Result(False, f"dump load failed after {args.restore_timeout}: {why}",
                      counts={"dumpLoadsFailed": 1})


def restore(args: argparse.Namespace) -> int:
    data = Path(args.data_dir)
    if any(p.name != "lost+found" for p in data.iterdir()):
        log(f"restore: {data} is not empty; nothing restored (it restores only an empty volume)")
        return 0
    problem = ensure_repository(args)
    if problem:
        log(f"error: restore: {problem}")
        return EXIT_FAILED
    listed = restic(args, "snapshots", "--json", "--host", args.host, "--path", args.data_dir)
    if listed.returncode != 0:
        log(f"error: restore: cannot list snapshots: {_said(listed)}")
        return EXIT_FAILED
    if not json.loads(listed.stdout or "[]"):
        log(f"restore: no snapshot of {args.data_dir} by host {args.host} yet; starting empty")
        return 0
    proc = restic(args, "restore", args.restore_snapshot, "--host", args.host,
                  "--path", args.data_dir, "--target", "/")
    if proc.returncode != 0:
        log(f"error: restore of {args.restore_snapshot} failed: {_said(proc)}")
        return EXIT_FAILED
    log(f"restored snapshot {args.restore_snapshot} into {args.data_dir}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        seconds(args.interval)
        seconds(args.timeout)
        int(args.max_failures)
        seconds(args.restore_timeout)
        if args.dump_arg:
            args.dump_command = json.dumps(args.dump_arg)
        if args.load_arg:
            args.load_command = json.dumps(args.load_arg)
        for which in ("dump", "load"):
            text = getattr(args, f"{which}_command")
            command = json.loads(text) if text else ["-"]
            if not command or not all(isinstance(c, str) for c in command):
                raise ValueError(f"--{which}-command must be a JSON array of strings")
        for period in RETENTION:
            value = getattr(args, f"keep_{period}")
            if value is not None and int(value) < 1:
                raise ValueError(f"--keep-{period} must be at least 1")
    except ValueError as exc:  # json.JSONDecodeError is one
        log(f"error: {exc}")
        return EXIT_USAGE
    if not args.host:
        log("error: --host is required (a stable name: retention groups snapshots by host)")
        return EXIT_USAGE
    if args.command == "restore":
        return restore(args)
    if args.command == "check":
        problem = ensure_repository(args)
        log(f"error: {problem}" if problem else "the repository opens with the password")
        return EXIT_FAILED if problem else 0
    if args.command == "once":
        result = snapshot(args)
        if not result.ok:
            log(f"error: {result.error}")
        return 0 if result.ok else EXIT_FAILED
    if args.restore == "true" and restore(args) != 0:
        return EXIT_FAILED
    status = job.Status(max_failures=int(args.max_failures))
    log(f"snapshots of {args.data_dir} every {args.interval} as host {args.host}")
    first = (lambda: load_dump(args)) if args.load_command else None
    return job.run_every(seconds(args.interval), lambda: snapshot(args), status, args.http_bind,
                         "backup", log, run_at_start=False, first=first)


if __name__ == "__main__":
    sys.exit(main())
