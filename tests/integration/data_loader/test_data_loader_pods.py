"""The data-loader pattern in pods generated from it, against real sources: nginx (HTTP
directory listings), OpenSSH's sftp server and `rclone serve webdav`. The app reads the
dataset while it is refreshed 50 times and never sees two versions mixed; a download whose
bytes differ from the source's SHA256SUMS is refused, counted and keeps the last good data;
a first load that fails keeps the app from starting."""

from __future__ import annotations

from typing import Any

import dl_support as dl
import pytest
from dl_support import Sources
from pods import ensure_images, present_in, require_runtime, running, stack_documents
from support import CATALOGUE, wait_for

from generator.runner.run import NotReady
from generator.runner.runtime import Runtime

REFRESHES = 50


def _ready(runtime: Runtime) -> None:
    ensure_images(["data-loader"], runtime)
    present_in(runtime, dl.PYTHON_IMAGE)


def _reader_sees(pod: Any, app: str, version: int) -> dict[str, Any]:
    try:
        return wait_for(f"the app reading version {version}",
                        lambda: (s := dl.reader_stats(pod, app)) and str(version) in s["versions"]
                        and s, 60)
    except AssertionError as error:
        raise AssertionError(f"{error}; the reader saw {dl.reader_stats(pod, app)}, the loader "
                             f"says {dl.call(pod, app, 'GET', '/status')[1]}") from None


def test_refreshes_are_published_atomically_and_a_corrupt_download_is_refused(
        runtime: Runtime, sources: Sources) -> None:
    _ready(runtime)
    name = dl.unique("dlhttp")
    values = {"source": f"http://{sources.ip}:{dl.HTTP_PORT}/", "checksumFile": "SHA256SUMS",
              "refreshPeriod": "1h", "maxFailures": 2}
    with running(stack_documents(dl.stack(name, values), CATALOGUE), runtime=runtime) as (pod,):
        _reader_sees(pod, name, 1)
        for version in range(2, REFRESHES + 2):
            dl.write_dataset(sources.dataset, version)
            code, status = dl.call(pod, name, "POST", "/run")
            assert code == 200, (version, status)
        stats = _reader_sees(pod, name, REFRESHES + 1)
        status = dl.call(pod, name, "GET", "/status")[1]
        assert status["loads"] == REFRESHES + 1 and status["failures"] == 0, status
        assert stats["mixes"] == 0 and stats["vanished"] == 0, stats
        print(f"reader: {stats['passes']} passes over {len(stats['versions'])} versions, "
              f"0 mixed")

        # One file's bytes no longer match SHA256SUMS: refused, counted, last good data kept.
        dl.write_dataset(sources.dataset, 99, corrupt="part1/file04.dat")
        code, status = dl.call(pod, name, "POST", "/run")
        assert code == 500 and status["checksumMismatches"] == 1, status
        assert "checksum mismatch: part1/file04.dat" in status["lastError"], status
        assert dl.call(pod, name, "GET", "/healthz")[0] == 200  # one failure of maxFailures 2
        assert dl.call(pod, name, "POST", "/run")[0] == 500
        assert dl.call(pod, name, "GET", "/healthz")[0] == 503
        stats = dl.reader_stats(pod, name)
        assert "99" not in stats["versions"] and stats["mixes"] == 0, stats

        dl.write_dataset(sources.dataset, 100)
        assert dl.call(pod, name, "POST", "/run")[0] == 200
        assert dl.call(pod, name, "GET", "/healthz")[0] == 200
        _reader_sees(pod, name, 100)
        left = pod.exec(name, "ls", "/srv/dataset/.data-loader/versions").stdout.split()
        assert len(left) == 2, left  # the published version and the one before it


def test_sftp_and_webdav_sources_load_before_the_app_and_refresh(
        runtime: Runtime, sources: Sources) -> None:
    _ready(runtime)
    name = dl.unique("dlsftp")
    docs = [sources.sftp_secret(f"{name}-src"), *stack_documents(dl.stack(name, {
        "source": f"sftp://{sources.ip}:{dl.SFTP_PORT}/srv/data",
        "credentialsSecret": f"{name}-src", "checksumFile": "SHA256SUMS"}), CATALOGUE)]
    with running(docs, runtime=runtime) as (pod,):
        _reader_sees(pod, name, 1)
        assert dl.call(pod, name, "GET", "/status")[1]["files"] == dl.FILES + 1

    name = dl.unique("dldav")
    docs = [dl.secret(f"{name}-src", {"username": dl.DAV_USER, "password": dl.DAV_PASSWORD}),
            *stack_documents(dl.stack(name, {
                "source": f"webdav://{sources.ip}:{dl.DAV_PORT}/",
                "credentialsSecret": f"{name}-src", "refreshPeriod": "30s"}), CATALOGUE)]
    with running(docs, runtime=runtime) as (pod,):
        _reader_sees(pod, name, 1)
        dl.write_dataset(sources.dataset, 2)
        code, status = dl.call(pod, name, "POST", "/run")
        assert code == 200 and status["loads"] == 2, status
        stats = _reader_sees(pod, name, 2)
        assert stats["mixes"] == 0, stats
        assert dl.DAV_PASSWORD not in pod.logs("data-loader")


@pytest.mark.parametrize("k8s", ["1.27", "1.33"])
def test_a_first_load_that_fails_keeps_the_app_from_starting(
        sources: Sources, k8s: str) -> None:
    _ready(require_runtime("podman"))
    name = dl.unique("dlfail")
    values = {"source": f"http://{sources.ip}:{dl.HTTP_PORT}/no-such-dir/"}
    documents = stack_documents(dl.stack(name, values, k8s=k8s), CATALOGUE)
    expected = (r"data-loader-init: init container exited 1" if k8s == "1.27"
                else r"data-loader")
    with pytest.raises(NotReady, match=expected), running(documents, timeout=40):
        pass

