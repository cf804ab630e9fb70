"""What the data-loader pattern renders, bad values stopping `pattern generate` in one line,
and the loader's own code: source URLs to rclone remotes, credentials from Secret files, the
checksum manifest, and bad flags refused without a traceback."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dataloader
import pytest
from support import CATALOGUE, ROOT, one_error, run_pattern

from generator.catalogue import Catalogue
from generator.compose import compose
from generator.sidecars import SidecarRequest
from generator.stack import Stack

SOURCE = "https://data.example.org/ref/"
APP = ("--name", "shop", "--app-image", "localhost/busybox:latest", "--with", "data-loader")


def containers(values: dict[str, Any], k8s: str = "1.33") -> list[dict[str, Any]]:
    stack = Stack(name="shop", app={"image": "localhost/busybox:latest"}, k8s_version=k8s,
                  sidecars=(SidecarRequest("data-loader", "data-loader",
                                           values={"source": SOURCE, **values}),))
    pod = next(d for d in compose(stack, Catalogue(CATALOGUE), []) if d["kind"] == "Pod")
    found: list[dict[str, Any]] = pod["spec"].get("initContainers", [])
    return [*found, *pod["spec"]["containers"]]


def env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def test_native_sidecar_ready_only_with_data_and_the_app_reads_it_read_only() -> None:
    loader, app = containers({"refreshPeriod": "1h", "checksumFile": "SHA256SUMS"})
    assert loader["restartPolicy"] == "Always"
    assert env(loader) == {
        "DATALOADER_SOURCE": SOURCE, "DATALOADER_ROOT": "/data", "DATALOADER_LINK": "current",
        "DATALOADER_INTERVAL": "1h", "DATALOADER_CHECKSUM_FILE": "SHA256SUMS",
        "DATALOADER_MAX_FAILURES": "3", "DATALOADER_TRANSFERS": "4",
        "DATALOADER_TIMEOUT": "1h", "DATALOADER_HTTP_BIND": "0.0.0.0:8736"}
    assert loader["startupProbe"]["httpGet"]["path"] == "/readyz"
    assert loader["startupProbe"]["failureThreshold"] == 3600
    assert loader["livenessProbe"] == {"tcpSocket": {"port": "http"}, "periodSeconds": 20,
                                       "failureThreshold": 3}
    assert app["volumeMounts"] == [{"name": "data-loader-data", "mountPath": "/data",
                                    "readOnly": True}]


def test_classic_targets_load_once_in_an_init_container_then_refresh_in_the_sidecar() -> None:
    init, _app, loader = containers({"refreshPeriod": "10m", "credentialsSecret": "src"}, "1.27")
    assert env(init)["DATALOADER_ONE_TIME"] == "true" and "restartPolicy" not in init
    assert env(loader)["DATALOADER_INTERVAL"] == "10m"
    mounts = {m["mountPath"]: m for m in loader["volumeMounts"]}
    assert mounts["/etc/data-loader/credentials"]["readOnly"] is True


@pytest.mark.parametrize(("sets", "message"), [
    (["source=https://user:hunter2@data.example.org/ref/"], "no credentials in it"),
    (["source=sftp://data@files.example.org/srv"], "no credentials in it"),
    (["source=https://data.example.org/ref/?token=abc"], "no credentials in it"),
    (["source=ftp://data.example.org/"], "must be an http(s)://, webdav(s)://, sftp://"),
    (["refreshPeriod=10s"], "data-loader.refreshPeriod: "),
    (["path=data"], "data-loader.path: "),
    (["checksumFile=../SUMS"], "must be a file name"),
    (["source=sftp://files.example.org/srv"], "an sftp:// source needs credentialsSecret"),
    (["source=s3://bucket/prefix"], "an s3:// source needs s3Endpoint"),
])
def test_bad_values_stop_generate_in_one_line(sets: list[str], message: str) -> None:
    args = [a for s in sets for a in ("--set", f"data-loader.{s}")]
    base = [] if any(s.startswith("source=") for s in sets) else [
        "--set", f"data-loader.source={SOURCE}"]
    error = one_error(run_pattern("generate", *APP, *base, *args, catalogue=CATALOGUE))
    assert error.startswith("error: ") and message in error, error


def test_source_urls_become_rclone_remotes() -> None:
    http = dataloader.parse_source("https://data.example.org/ref")
    assert http.config == {"TYPE": "http", "URL": "https://data.example.org/ref/"}
    assert http.remote == "src:"
    sftp = dataloader.parse_source("sftp://files.example.org:2222/srv/data")
    assert sftp.config["HOST"] == "files.example.org" and sftp.config["PORT"] == "2222"
    assert sftp.remote == "src:/srv/data"
    dav = dataloader.parse_source("webdavs://dav.example.org/share")
    assert dav.config["URL"] == "https://dav.example.org/share"
    s3 = dataloader.parse_source("s3://bucket/prefix/", "https://minio.example.org")
    assert s3.remote == "src:bucket/prefix" and s3.config["ENDPOINT"] == "https://minio.example.org"
    for bad in ("https://u:p@host/", "sftp://u@host/", "ftp://host/", "https://host/?t=1"):
        with pytest.raises(dataloader.ConfigError):
            dataloader.parse_source(bad)


def test_sftp_needs_known_hosts_and_passwords_reach_rclone_obscured(tmp_path: Path) -> None:
    sftp = dataloader.parse_source("sftp://files.example.org/srv")
    (tmp_path / "username").write_text("data\n")
    with pytest.raises(dataloader.ConfigError, match="known_hosts"):
        dataloader.credentials(sftp, tmp_path)
    (tmp_path / "known_hosts").write_text("files.example.org ssh-ed25519 AAAA\n")
    (tmp_path / "password").write_text("plain secret\n")
    creds = dataloader.credentials(sftp, tmp_path)
    assert creds["USER"] == "data" and creds["KNOWN_HOSTS_FILE"] == str(tmp_path / "known_hosts")
    assert creds["PASS"] != "plain secret"
    revealed = subprocess.run(["rclone", "reveal", "--", creds["PASS"]], capture_output=True,
                              text=True, check=True).stdout.strip()
    assert revealed == "plain secret"


def test_the_manifest_must_list_every_file_with_its_sha256(tmp_path: Path) -> None:
    (tmp_path / "a").write_text("one\n")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_text("two\n")
    digests = {n: dataloader.sha256_of(tmp_path / n) for n in ("a", "sub/b")}
    (tmp_path / "SUMS").write_text("".join(f"{d}  {n}\n" for n, d in digests.items()))
    assert dataloader.verify_manifest(tmp_path, "SUMS") == 2
    (tmp_path / "extra").write_text("unlisted\n")
    with pytest.raises(dataloader.LoadError, match="extra is not in SUMS"):
        dataloader.verify_manifest(tmp_path, "SUMS")
    (tmp_path / "extra").unlink()
    (tmp_path / "sub" / "b").write_text("changed\n")
    with pytest.raises(dataloader.LoadError, match="checksum mismatch: sub/b"):
        dataloader.verify_manifest(tmp_path, "SUMS")


@pytest.mark.parametrize("argv", [[], ["--source", "https://u:p@host/"],
                                  ["--source", "https://host/", "--interval", "soon"]])
def test_bad_flags_exit_2_with_one_line(argv: list[str]) -> None:
    image = ROOT / "images"
    proc = subprocess.run([sys.executable, str(image / "data-loader" / "dataloader.py"), *argv],
                          capture_output=True, text=True, timeout=30,
                          env={"PYTHONPATH": str(image / "_common"), "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2 and proc.stdout == "", proc
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith("data-loader: error: "), proc


def test_the_healthcheck_asks_the_loops_endpoint(tmp_path: Path) -> None:
    """0 while /healthz answers 200, 1 (one line) when nothing listens, 2 without an address."""
    image = ROOT / "images"
    env = {"PYTHONPATH": str(image / "_common"), "PATH": "/usr/bin:/bin"}

    def check(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(image / "data-loader" / "dataloader.py"),
                               "healthcheck", *argv], capture_output=True, text=True,
                              timeout=30, env=env)

    (tmp_path / "healthz").write_text("ok\n")
    for url in _serve(tmp_path):
        bind = url.removeprefix("http://").rstrip("/")
        assert check("--http-bind", bind).returncode == 0
        missing = check("--http-bind", bind, "--path", "/readyz")
        assert missing.returncode == 1 and missing.stderr.startswith("unhealthy: 404")
    refused = check("--http-bind", "127.0.0.1:9")
    assert refused.returncode == 1 and refused.stderr.count("\n") == 1, refused
    off = check("--http-bind", "off")
    assert off.returncode == 2 and off.stderr.count("\n") == 1, off


def _serve(directory: Path) -> Iterator[str]:
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        handler.log_message = lambda *_args: None  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/"
        finally:
            server.shutdown()


def _publish(source: Path, contents: dict[str, str], when: float) -> None:
    for name, text in contents.items():
        (source / name).write_text(text)
    sums = "".join(f"{dataloader.sha256_of(source / n)}  {n}\n" for n in sorted(contents))
    (source / "SUMS").write_text(sums)
    for name in [*contents, "SUMS"]:
        os.utime(source / name, (when, when))


def test_a_rewrite_at_the_same_size_and_time_is_loaded_not_reused(tmp_path: Path) -> None:
    """What CI caught: every file, the manifest too, rewritten within the source's time
    resolution at the same size; the listing is unchanged and only the content tells."""
    source, root = tmp_path / "source", tmp_path / "root"
    source.mkdir()
    root.mkdir()
    when = 1_700_000_000.0
    _publish(source, {"a.dat": "version 1\n", "b.dat": "steady\n"}, when)
    for url in _serve(source):
        loader = dataloader.Loader(dataloader.parser().parse_args(
            ["--source", url, "--root", str(root), "--checksum-file", "SUMS", "--interval", "1h"]))
        loader.prepare()
        assert loader.load().ok
        _publish(source, {"a.dat": "version 2\n", "b.dat": "steady\n"}, when)
        result = loader.load()
        assert result.ok, result.error
        assert (root / "current" / "a.dat").read_text() == "version 2\n"
        assert result.facts["filesReused"] == 1, result.facts  # b.dat only
