"""sftp repositories: restic over OpenSSH to a real sshd (the ssh pattern's pod), with the
client key and the server's host key from a Secret only. Snapshots, retention and a restore
into a new pod's empty volume on both engines; a server whose host key is not the one in
known_hosts is refused, counted, and leaves no snapshot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bk_support as bk
from access_support import keygen
from pods import ensure_images, present_in, running, stack_documents
from support import wait_for

from generator.runner.runtime import Runtime


def _docs(name: str, values: dict[str, Any], sftp: bk.SftpServer,
          host_key: str | None = None) -> list[dict[str, Any]]:
    return [bk.secret(f"{name}-password", {"password": bk.PASSWORD}),
            sftp.secret(f"{name}-ssh", host_key),
            *stack_documents(bk.stack(name, {**values, "sshSecret": f"{name}-ssh"}),
                             bk.CATALOGUE)]


def test_sftp_snapshots_retention_and_restore(runtime: Runtime, backup_image: str,
                                              sftp_server: bk.SftpServer) -> None:
    ensure_images(["backup"], runtime)
    present_in(runtime, bk.PYTHON_IMAGE)
    name = bk.unique(f"bk-sftp-{runtime.name[:2]}")
    values = {"repository": sftp_server.repository(name), "host": name, "keepLast": 1}
    with running(_docs(name, values, sftp_server), runtime=runtime) as (pod,):
        sidecar = (pod, "backup")
        wait_for("the app", lambda: "app ready" in pod.logs(name), 60)
        first = bk.call(sidecar, "POST", "/run")
        pod.exec(name, "python3", "-c", "open('/srv/data/round.txt', 'w').write('second\\n')")
        second = bk.call(sidecar, "POST", "/run")
        kept = bk.snapshots(sidecar)
        written = bk.hashes(sidecar)
    for code, body in (first, second):
        assert code == 200 and isinstance(body, dict), (code, body)
    assert isinstance(second[1], dict) and second[1]["snapshots"] == 2, second
    assert second[1]["snapshotsKept"] == 1 and second[1]["failures"] == 0, second
    assert [s["short_id"] for s in kept] == [second[1]["lastSnapshotId"]], kept  # keepLast 1
    assert {s["hostname"] for s in kept} == {name}
    with running(_docs(f"{name}-new", {**values, "restore": True}, sftp_server),
                 runtime=runtime) as (pod,):
        wait_for("the app", lambda: "app ready" in pod.logs(f"{name}-new"), 60)
        said = pod.logs("backup")
        restored = bk.hashes((pod, "backup"))
    assert "restored snapshot latest into /data" in said, said
    assert restored == written and written["round.txt"] == bk.hashes_of_text("second\n")
    assert len(written) == 45


def test_sftp_server_with_another_host_key_is_refused(backup_image: str, tmp_path: Path,
                                                      sftp_server: bk.SftpServer) -> None:
    name = bk.unique("bk-sftp-mitm")
    impostor = keygen(tmp_path / "other_host_key").with_suffix(".pub").read_text()
    values = {"repository": sftp_server.repository(name), "host": name}
    with running(_docs(name, values, sftp_server, host_key=impostor)) as (pod,):
        wait_for("the app", lambda: "app ready" in pod.logs(name), 60)
        code, body = bk.call((pod, "backup"), "POST", "/run")
        health = bk.call((pod, "backup"), "GET", "/healthz")
    assert code == 500 and isinstance(body, dict), (code, body)
    # ssh stops at the host key; restic reports the session it could not start (ssh's own
    # "Host key verification failed" only when restic relays ssh's stderr in time).
    assert "unable to start the sftp session" in body["lastError"], body
    assert "snapshots" not in body and body["failures"] == 1, body
    assert health[0] == 200  # one failure of maxFailures 2: still healthy, and it says so
