#!/usr/bin/python3
"""data-loader: fill a shared volume with a dataset from a remote source (Debian's rclone),
verify it, and publish each version atomically; optionally refresh it on a period.

  data-loader [flags]              the loop: load now, then every --interval
  data-loader --one-time true ...  one load; exit 0 when a verified version is published
  data-loader healthcheck [--path /readyz]  exit 0 when the running loop's endpoint answers 200

Sources (--source, never with credentials in it): http:// and https:// (a directory listing,
e.g. nginx autoindex), webdav:// and webdavs:// (WebDAV over http/https), sftp://host[:port]/path
and s3://bucket/prefix (--s3-endpoint). Credentials are files in --credentials-dir (a mounted
Secret), re-read at every load: username, password, bearer-token, ssh-privatekey, known_hosts
(required for sftp: host keys are always checked), access-key-id, secret-access-key.

Layout under --root (the shared volume; the app reads <root>/<link>):

  <root>/<link>                        relative symlink to the published version
  <root>/.data-loader/versions/<name>  one complete, verified dataset per version
  <root>/.data-loader/staging          the download in progress (same filesystem: no EXDEV)
  <root>/.data-loader/published        fingerprint and name of the published version

A load lists the source (rclone lsjson); an unchanged listing (and checksum file, when one is
named) publishes nothing. Otherwise
the files whose size and time at the source are those saved with the published version are
hard-linked from it into staging, and rclone copies the others (--files-from), so only
changes cross the network and no published file is ever written again. Then staging is checked: with
--checksum-file NAME, NAME (sha256sum format, at the source's top level) must list every
file with its SHA-256; without, `rclone check` compares hashes where both sides have one,
sizes otherwise. A mismatch is refused and counted; the last good version stays published.
A good staging dir becomes a version and the link is swapped to it in one rename
(images/_common/atomic_publish). The previous version is kept for readers still in it;
older ones are deleted.

HTTP (periodic_job): /healthz (503 after --max-failures failed loads in a row), /readyz (200
once a version is published), /status, /metrics, POST /run (load now). Every flag --foo-bar
has an environment twin DATALOADER_FOO_BAR; the flag wins. Exit codes: 0 stopped or loaded
(--one-time), 1 the load failed (--one-time), 2 bad flags.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import periodic_job as job
from atomic_publish import prune, remove_path, swap_symlink, write_state
from periodic_job import seconds
from sidecar_common import ConfigError, add_flag

PROGRAM = "data-loader"
PREFIX = "DATALOADER_"
EXIT_FAILED, EXIT_USAGE = 1, 2
SCHEMES = ("http", "https", "webdav", "webdavs", "sftp", "s3")
REMOTE = "src"  # rclone remote defined by RCLONE_CONFIG_SRC_* variables
CREDENTIAL_KEYS = ("username", "password", "bearer-token", "ssh-privatekey", "known_hosts",
                   "access-key-id", "secret-access-key")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROGRAM, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example: data-loader --source https://data.example.org/ref/ --root /data "
               "--interval 1h --checksum-file SHA256SUMS")

    def flag(name: str, default: str | None, text: str) -> None:
        add_flag(p, PREFIX, name, default, text)

    flag("--source", None, "where the dataset is: http(s)://, webdav(s)://, sftp://, s3:// URL")
    flag("--root", "/data", "the shared volume")
    flag("--link", "current", "name of the published link under --root (what the app reads)")
    flag("--interval", "", "time between refreshes; empty: load once (retrying until it works)")
    flag("--retry", "10s", "time between tries while no version is published")
    flag("--max-failures", "3", "failed loads in a row after which /healthz answers 503")
    flag("--checksum-file", "", "name of a sha256sum manifest at the source's top level")
    flag("--credentials-dir", "/etc/data-loader/credentials", "the mounted credentials Secret")
    flag("--s3-endpoint", "", "the S3 endpoint URL (s3:// sources)")
    flag("--s3-region", "", "the S3 region (s3:// sources)")
    flag("--transfers", "4", "files downloaded in parallel")
    flag("--timeout", "1h", "time limit of one rclone command")
    flag("--http-bind", "0.0.0.0:8736", "address of the HTTP endpoints, or off")
    flag("--one-time", "false", "load once and exit (an init container)")
    return p


def log(message: str) -> None:
    print(f"{PROGRAM}: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Source:
    """The rclone remote a --source URL means: its config variables and the path in it."""

    scheme: str
    config: dict[str, str]
    path: str

    @property
    def remote(self) -> str:
        return f"{REMOTE}:{self.path}"


def parse_source(url: str, s3_endpoint: str = "", s3_region: str = "") -> Source:
    if not url:
        raise ConfigError("--source is required")
    if any(c.isspace() or ord(c) < 0x20 for c in url):
        raise ConfigError("--source must be one URL without spaces or control characters")
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        schemes = ", ".join(s + "://" for s in SCHEMES)
        raise ConfigError(f"--source must start with one of {schemes}")
    if "@" in parts.netloc:
        raise ConfigError("--source has credentials in it (user@ or user:password@): put them "
                          "in the credentials Secret, never in the URL")
    if not parts.hostname:
        raise ConfigError("--source names no host (or bucket)")
    if parts.query or parts.fragment:
        raise ConfigError("--source must not have a query or a fragment (tokens go in the Secret)")
    path = parts.path or "/"
    if parts.scheme in ("http", "https"):
        directory = path if path.endswith("/") else path + "/"
        return Source(parts.scheme, {"TYPE": "http", "URL": f"{parts.scheme}://{parts.netloc}"
                                     f"{directory}"}, "")
    if parts.scheme in ("webdav", "webdavs"):
        http = "https" if parts.scheme == "webdavs" else "http"
        return Source(parts.scheme, {"TYPE": "webdav", "VENDOR": "other",
                                     "URL": f"{http}://{parts.netloc}{path}"}, "")
    if parts.scheme == "sftp":
        config = {"TYPE": "sftp", "HOST": parts.hostname, "PORT": str(parts.port or 22),
                  "SHELL_TYPE": "none"}
        return Source("sftp", config, path)
    if not s3_endpoint:
        raise ConfigError("an s3:// source needs --s3-endpoint")
    config = {"TYPE": "s3", "PROVIDER": "Other", "ENDPOINT": s3_endpoint, "ENV_AUTH": "false"}
    if s3_region:
        config["REGION"] = s3_region
    return Source("s3", config, f"{parts.hostname}{path.rstrip('/')}")


def obscure(password: str) -> str:
    """rclone reads passwords only in its obscured form; the plain one goes in by stdin."""
    proc = subprocess.run(["rclone", "obscure", "-"], input=password, capture_output=True,
                          text=True, check=True, timeout=30)
    return proc.stdout.strip()


def credentials(source: Source, folder: Path) -> dict[str, str]:
    """The remote's credential settings from the Secret's files (read at every load)."""
    found = {key: folder / key for key in CREDENTIAL_KEYS if (folder / key).is_file()}

    def text(key: str) -> str:
        return found[key].read_text().strip()

    config: dict[str, str] = {}
    kind = source.config["TYPE"]
    if kind in ("webdav", "sftp") and "username" in found:
        config["USER"] = text("username")
    if kind in ("webdav", "sftp") and "password" in found:
        config["PASS"] = obscure(text("password"))
    if kind == "webdav" and "bearer-token" in found:
        config["BEARER_TOKEN"] = text("bearer-token")
    if kind == "http" and "bearer-token" in found:
        config["HEADERS"] = f'"Authorization","Bearer {text("bearer-token")}"'
    if kind == "sftp":
        if "known_hosts" not in found:
            raise ConfigError("an sftp source needs known_hosts in the credentials Secret "
                              "(host keys are always checked)")
        config["KNOWN_HOSTS_FILE"] = str(found["known_hosts"])
        if "ssh-privatekey" in found:
            config["KEY_FILE"] = str(found["ssh-privatekey"])
    if kind == "s3":
        if "access-key-id" in found:
            config["ACCESS_KEY_ID"] = text("access-key-id")
        if "secret-access-key" in found:
            config["SECRET_ACCESS_KEY"] = text("secret-access-key")
    return config


def rclone_env(source: Source, creds: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_")}
    env["RCLONE_CONFIG"] = "/dev/null"  # no config file: the remote is these variables only
    for key, value in {**source.config, **creds}.items():
        env[f"RCLONE_CONFIG_{REMOTE.upper()}_{key}"] = value
    return env


class LoadError(Exception):
    def __init__(self, counter: str, message: str) -> None:
        super().__init__(message)
        self.counter = counter


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def parse_manifest(text: str) -> dict[str, str]:
    """sha256sum output: `<64 hex>  <path>` (or ` *<path>`) per line."""
    listed: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        digest, _, name = line.partition(" ")
        name = name[1:] if name[:1] in (" ", "*") else name
        name = name.removeprefix("./")
        if len(digest) != 64 or any(c not in "0123456789abcdefABCDEF" for c in digest) or not name:
            raise LoadError("checksumMismatches", f"checksum file line {number} is not "
                            "'<sha256>  <path>'")
        listed[name] = digest.lower()
    return listed


def verify_manifest(tree: Path, manifest_name: str) -> int:
    """Every file but the manifest is listed and matches; returns the files checked."""
    manifest = tree / manifest_name
    if not manifest.is_file():
        raise LoadError("checksumMismatches", f"checksum file {manifest_name} not at the source")
    listed = parse_manifest(manifest.read_text())
    present = {str(p.relative_to(tree)) for p in tree.rglob("*") if p.is_file()}
    present.discard(manifest_name)
    for name in sorted(present - set(listed)):
        raise LoadError("checksumMismatches", f"{name} is not in {manifest_name}")
    for name, digest in sorted(listed.items()):
        if name not in present:
            raise LoadError("checksumMismatches", f"{name} is in {manifest_name} but missing")
        if sha256_of(tree / name) != digest:
            raise LoadError("checksumMismatches", f"checksum mismatch: {name}")
    return len(listed)


def manifest_agreement(old_tree: Path, manifest_name: str,
                       new_text: str | None) -> Callable[[str], bool]:
    """Whether a path may be reused as far as the checksum manifests tell: without one, any
    path; with one, a path both manifests list with the same digest (never the manifest)."""
    if not manifest_name or new_text is None:
        return lambda _name: True
    try:
        new = parse_manifest(new_text)
        old = parse_manifest((old_tree / manifest_name).read_text())
    except (OSError, UnicodeDecodeError, LoadError):
        return lambda _name: False
    return lambda name: name != manifest_name and name in new and new[name] == old.get(name)


class Loader:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.source = parse_source(args.source, args.s3_endpoint, args.s3_region)
        self.root = Path(args.root)
        self.meta = self.root / ".data-loader"
        self.versions = self.meta / "versions"
        self.staging = self.meta / "staging"
        self.state = self.meta / "published"
        self.link = self.root / args.link
        self.timeout = seconds(args.timeout)
        self.refresh = bool(args.interval)

    # --- state -------------------------------------------------------------------------
    def prepare(self) -> None:
        """Create the layout and drop what a killed run left (a staging dir, old versions)."""
        self.versions.mkdir(parents=True, exist_ok=True)
        remove_path(self.staging)
        published = self.published()
        keep = {published[1]} if published else set()
        for err in prune(self.versions, keep):
            log(f"cleanup failed: {err}")
        log(f"prepared {self.root}; published: {published[1] if published else 'none'}")

    def published(self) -> tuple[str, str] | None:
        """(fingerprint, version name) of what the app sees, or None."""
        if not self.state.is_file() or not self.link.is_symlink():
            return None
        fingerprint, _, name = self.state.read_text().strip().partition(" ")
        if os.path.basename(os.readlink(self.link)) != name or not (self.versions / name).is_dir():
            return None
        return fingerprint, name

    # --- one load ------------------------------------------------------------------------
    def rclone(self, env: dict[str, str], *command: str) -> str:
        try:
            proc = subprocess.run(["rclone", *command], env=env, capture_output=True, text=True,
                                  check=False, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise LoadError("downloadFailures", f"rclone {command[0]} took over "
                            f"{self.args.timeout}") from None
        if proc.returncode != 0:
            said = [ln for ln in proc.stderr.splitlines() if ln.strip()]
            raise LoadError("downloadFailures", f"rclone {command[0]} failed "
                            f"(exit {proc.returncode}): {said[-1] if said else 'no message'}")
        return proc.stdout

    def listing(self, env: dict[str, str]) -> tuple[str, list[list[object]], str | None]:
        """The source's fingerprint, its files as [path, size, modification time], and the
        checksum manifest's text when there is one."""
        entries = json.loads(self.rclone(env, "lsjson", "-R", "--files-only", "--no-mimetype",
                                         self.source.remote) or "[]")
        rows = sorted([e["Path"], e["Size"], e.get("ModTime", "")] for e in entries)
        digest = hashlib.sha256(json.dumps(rows).encode())
        manifest = self.args.checksum_file
        text = None
        if manifest and any(row[0] == manifest for row in rows):
            # Files rewritten within the source's time resolution at the same size leave the
            # listing as it was; the manifest names their content, so it is part of the
            # fingerprint (a few bytes per file, fetched on every check).
            text = self.rclone(env, "cat", f"{self.source.remote}{manifest}"
                               if self.source.remote.endswith(("/", ":"))
                               else f"{self.source.remote}/{manifest}")
            digest.update(text.encode())
        return digest.hexdigest()[:16], rows, text

    def listing_of(self, name: str) -> Path:
        return self.meta / "listings" / f"{name}.json"

    def reuse(self, published: str, rows: list[list[object]], manifest: str | None) -> list[str]:
        """Hard-link into staging the files the published version has with the same size and
        time at the source (and, with a checksum manifest, the same listed digest); return the
        paths still to download. The comparison is this listing's against the one saved at
        that publish, not rclone's own (which, for a source whose times it cannot set, such as
        WebDAV, would compare sizes only). The manifest itself is always downloaded: it is
        what says a file rewritten within the source's time resolution changed. No published
        file is ever written again: a changed file is a new one."""
        try:
            old = {r[0]: r[1:] for r in json.loads(self.listing_of(published).read_text())}
        except (OSError, ValueError):
            old = {}
        same_digest = manifest_agreement(self.versions / published, self.args.checksum_file,
                                         manifest)
        fetch = []
        for path, size, when in rows:
            name = str(path)
            source = self.versions / published / name
            if (not when or old.get(name) != [size, when] or not source.is_file()
                    or not same_digest(name)):
                fetch.append(name)
                continue
            target = self.staging / name
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(source, target)
            except OSError:
                shutil.copy2(source, target)
        return fetch

    def download(self, env: dict[str, str], only: list[str] | None) -> None:
        """rclone copy into staging: everything, or only the paths in `only`."""
        copy = ["copy", "--transfers", self.args.transfers, "--stats", "0"]
        if only is None:
            self.rclone(env, *copy, self.source.remote, str(self.staging))
        elif only:
            wanted = self.meta / "fetch.txt"
            wanted.write_text("".join(f"{name}\n" for name in only))
            self.rclone(env, *copy, "--files-from-raw", str(wanted), "--no-traverse",
                        self.source.remote, str(self.staging))

    def verify(self, env: dict[str, str]) -> str:
        if self.args.checksum_file:
            checked = verify_manifest(self.staging, self.args.checksum_file)
            return f"{checked} files match {self.args.checksum_file}"
        try:
            self.rclone(env, "check", "--one-way", self.source.remote, str(self.staging))
        except LoadError as exc:
            raise LoadError("checksumMismatches", f"rclone check: {exc}") from None
        return "rclone check (hashes where both sides have them, else sizes)"

    def load(self) -> job.Result:
        started = time.monotonic()
        try:
            env = rclone_env(self.source, credentials(self.source, Path(self.args.credentials_dir)))
            published = self.published()
            if published and not self.refresh:
                return job.Result(True, facts={"version": published[1]})
            fingerprint, rows, manifest = self.listing(env)
            if published and published[0] == fingerprint:
                return job.Result(True, counts={"unchanged": 1})
            remove_path(self.staging)
            self.staging.mkdir()
            fetch = (self.reuse(published[1], rows, manifest) if published
                     else [str(r[0]) for r in rows])
            self.download(env, fetch if published else None)
            try:
                verified = self.verify(env)
            except LoadError:
                if not published or len(fetch) == len(rows):
                    raise
                # A file changed within the source's time resolution keeping its size looks
                # unchanged: fetch everything once before calling the source wrong.
                remove_path(self.staging)
                self.staging.mkdir()
                fetch = [str(r[0]) for r in rows]
                self.download(env, None)
                verified = self.verify(env)
            name = f"{time.strftime('%Y%m%dT%H%M%S')}.{time.time_ns() % 10**9:09d}-{fingerprint}"
            version = self.versions / name
            remove_path(version)
            self.staging.rename(version)
            swap_symlink(self.link, version, self.meta / "link.tmp")
            self.listing_of(name).parent.mkdir(exist_ok=True)
            self.listing_of(name).write_text(json.dumps(rows))
            write_state(self.state, f"{fingerprint} {name}")
            keep = {name, published[1]} if published else {name}
            for err in prune(self.versions, keep) + prune(
                    self.listing_of(name).parent, {f"{k}.json" for k in keep}):
                log(f"cleanup failed: {err}")
        except LoadError as exc:
            remove_path(self.staging)
            return job.Result(False, str(exc), counts={exc.counter: 1})
        except (ConfigError, OSError, ValueError) as exc:
            remove_path(self.staging)
            return job.Result(False, str(exc), counts={"loadErrors": 1})
        took = time.monotonic() - started
        size = sum(max(int(str(r[1])), 0) for r in rows)
        reused = len(rows) - len(fetch)
        log(f"published {name}: {len(rows)} files ({reused} unchanged, reused), {size} bytes "
            f"in {took:.1f}s ({verified})")
        return job.Result(True, facts={"version": name, "files": len(rows), "bytes": size,
                                       "filesReused": reused,
                                       "lastLoadSeconds": round(took, 3),
                                       "lastPublished": time.time()},
                          counts={"loads": 1})


def healthcheck(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog=f"{PROGRAM} healthcheck",
                                description="Exit 0 when the running loop's endpoint answers 200.")
    add_flag(p, PREFIX, "--http-bind", "0.0.0.0:8736", "address of the loop's HTTP endpoints")
    p.add_argument("--path", default="/healthz", choices=("/healthz", "/readyz"),
                   help="the endpoint to ask (default /healthz)")
    args = p.parse_args(argv)
    if args.http_bind == "off" or not args.http_bind.rpartition(":")[2].isdigit():
        print(f"{PROGRAM} healthcheck: error: --http-bind must be HOST:PORT (the loop's "
              f"endpoints are {args.http_bind!r})", file=sys.stderr)
        return EXIT_USAGE
    return job.healthcheck(args.http_bind, args.path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["healthcheck"]:
        return healthcheck(argv[1:])
    try:
        args = parser().parse_args(argv)
        one_time = args.one_time.lower() in ("1", "true", "yes")
        interval = seconds(args.interval) if args.interval else seconds(args.retry)
        loader = Loader(args)
        status = job.Status(max_failures=int(args.max_failures))
        int(args.transfers)
    except (ConfigError, ValueError) as exc:
        print(f"{PROGRAM}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        loader.prepare()
    except OSError as exc:
        print(f"{PROGRAM}: error: cannot prepare {args.root}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    if one_time:
        result = loader.load()
        if not result.ok:
            log(f"load failed: {result.error}")
        return 0 if result.ok else EXIT_FAILED
    return job.run_every(interval, loader.load, status, args.http_bind, "data_loader", log,
                         ready_on_success=True)


if __name__ == "__main__":
    sys.exit(main())
